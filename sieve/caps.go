package sieve

import "strings"

// Capability names (RFC 5804 §1.7).
const (
	CapImplementation = "IMPLEMENTATION"
	CapSASL           = "SASL"
	CapSieve          = "SIEVE"
	CapSTARTTLS       = "STARTTLS"
	CapMaxRedirects   = "MAXREDIRECTS"
	CapNotify         = "NOTIFY"
	CapLanguage       = "LANGUAGE"
	CapOwner          = "OWNER"
	CapVersion        = "VERSION"
)

// maxSASLMechs bounds the mechanisms taken from the SASL capability.
const maxSASLMechs = 64

// capValue returns the value of capability name and whether it is listed.
func capValue(caps []string, name string) (string, bool) {
	for _, c := range caps {
		n, v, _ := strings.Cut(c, " ")
		if n == name {
			return v, true
		}
	}
	return "", false
}

func hasCap(caps []string, name string) bool {
	_, ok := capValue(caps, name)
	return ok
}

// authMechs returns the SASL mechanisms of the capabilities (RFC 5804
// §1.7: "SASL" lists them space-separated; empty means none now), upper
// case, without duplicates, at most maxSASLMechs.
func authMechs(caps []string) []string {
	v, _ := capValue(caps, CapSASL)
	var out []string
	seen := map[string]bool{}
	for _, m := range strings.Fields(v) {
		m = strings.ToUpper(m)
		if !seen[m] && len(out) < maxSASLMechs {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

func hasMech(caps []string, mech string) bool {
	for _, m := range authMechs(caps) {
		if m == mech {
			return true
		}
	}
	return false
}
