package irc

import (
	"slices"
	"strings"
)

// Capability names (IRCv3).
const (
	CapTLS  = "tls"  // the STARTTLS extension
	CapSASL = "sasl" // SASL, value: the mechanisms
	CapSTS  = "sts"  // Strict Transport Security: a policy, not STARTTLS
)

// Bounds on what the client keeps from CAP LS.
const (
	maxCaps      = 256
	maxSASLMechs = 64
	// maxPreamble bounds the lines the client accepts before the answer
	// to CAP LS (NOTICEs, PINGs).
	maxPreamble = 64
)

// capName returns the name of "name=value".
func capName(c string) string {
	n, _, _ := strings.Cut(c, "=")
	return n
}

// capValue returns the value of capability name and whether it is listed.
func capValue(caps []string, name string) (string, bool) {
	for _, c := range caps {
		n, v, _ := strings.Cut(c, "=")
		if n == name {
			return v, true
		}
	}
	return "", false
}

// hasCap reports whether the capability name is listed.
func hasCap(caps []string, name string) bool {
	_, ok := capValue(caps, name)
	return ok
}

// splitCaps adds the space-separated capabilities of one CAP LS line to
// caps, without duplicates and at most maxCaps.
func splitCaps(caps []string, list string) []string {
	for _, c := range strings.Fields(list) {
		if len(caps) >= maxCaps {
			break
		}
		name := capName(c)
		if !slices.ContainsFunc(caps, func(x string) bool { return capName(x) == name }) {
			caps = append(caps, c)
		}
	}
	return caps
}

// authMechs returns the SASL mechanisms the capabilities offer, upper
// case: the value of "sasl=PLAIN,EXTERNAL" (CAP 302), or "SASL" when the
// capability has no value (CAP 301 or a server that does not list them).
func authMechs(caps []string) []string {
	v, ok := capValue(caps, CapSASL)
	if !ok {
		return nil
	}
	var out []string
	for _, m := range strings.Split(v, ",") {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" || len(out) >= maxSASLMechs {
			continue
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		out = []string{"SASL"}
	}
	return out
}
