package pop3

import (
	"strings"
)

// Capability names (RFC 2449 §6, RFC 2595 §4, RFC 3206 §6).
const (
	CapSTLS         = "STLS"
	CapUSER         = "USER"
	CapSASL         = "SASL"
	CapTOP          = "TOP"
	CapUIDL         = "UIDL"
	CapRespCodes    = "RESP-CODES"
	CapAuthRespCode = "AUTH-RESP-CODE"
	CapPipelining   = "PIPELINING"
)

// maxSASLMechs bounds the mechanisms taken from one SASL capability line
// (EAST pop3/others/X_1: a very long SASL list).
const maxSASLMechs = 64

// normalizeCap upper-cases the keyword of a CAPA line and keeps its
// arguments as sent, single-spaced. It returns "" for an empty line.
func normalizeCap(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	f[0] = strings.ToUpper(f[0])
	return strings.Join(f, " ")
}

// parseCaps turns the lines of a CAPA answer into capabilities (RFC 2449
// §5: one capability per line, keyword first). Empty lines are dropped.
func parseCaps(lines []string) []string {
	caps := make([]string, 0, len(lines))
	for _, l := range lines {
		if c := normalizeCap(l); c != "" {
			caps = append(caps, c)
		}
	}
	return caps
}

// capArgs returns the arguments of the capability named kw and whether it
// is present.
func capArgs(caps []string, kw string) ([]string, bool) {
	for _, c := range caps {
		name, args, _ := strings.Cut(c, " ")
		if name == kw {
			return strings.Fields(args), true
		}
	}
	return nil, false
}

// hasCap reports whether the capability kw is listed.
func hasCap(caps []string, kw string) bool {
	_, ok := capArgs(caps, kw)
	return ok
}

// authMechs returns the login mechanisms the capabilities offer: "USER" for
// USER/PASS (RFC 2449 §6.3), then each SASL mechanism (RFC 2449 §6.4,
// RFC 5034), upper case, without duplicates and at most maxSASLMechs.
func authMechs(caps []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(m string) {
		m = strings.ToUpper(m)
		if !seen[m] && len(out) < maxSASLMechs+1 {
			seen[m] = true
			out = append(out, m)
		}
	}
	if hasCap(caps, CapUSER) {
		add(CapUSER)
	}
	if mechs, ok := capArgs(caps, CapSASL); ok {
		for _, m := range mechs {
			add(m)
		}
	}
	return out
}

// hasSASL reports whether the SASL capability lists mech.
func hasSASL(caps []string, mech string) bool {
	mechs, _ := capArgs(caps, CapSASL)
	for _, m := range mechs {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}
