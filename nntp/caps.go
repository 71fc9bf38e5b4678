package nntp

import "strings"

// Capability labels (RFC 3977 §3.3.2, RFC 4642 §2.1, RFC 4643 §2.1).
const (
	CapVersion        = "VERSION"
	CapReader         = "READER"
	CapModeReader     = "MODE-READER"
	CapSTARTTLS       = "STARTTLS"
	CapAuthInfo       = "AUTHINFO"
	CapSASL           = "SASL"
	CapList           = "LIST"
	CapImplementation = "IMPLEMENTATION"
)

// maxSASLMechs bounds the mechanisms taken from one SASL capability line.
const maxSASLMechs = 64

// normalizeCap upper-cases the label of a capability line and keeps its
// arguments as sent, single-spaced. It returns "" for an empty line.
func normalizeCap(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	f[0] = strings.ToUpper(f[0])
	return strings.Join(f, " ")
}

// parseCaps turns the lines of a CAPABILITIES answer into capabilities
// (RFC 3977 §5.2.2: one capability per line, label first).
func parseCaps(lines []string) []string {
	caps := make([]string, 0, len(lines))
	for _, l := range lines {
		if c := normalizeCap(l); c != "" {
			caps = append(caps, c)
		}
	}
	return caps
}

// capArgs returns the arguments of the capability labelled kw and whether
// it is present.
func capArgs(caps []string, kw string) ([]string, bool) {
	for _, c := range caps {
		name, args, _ := strings.Cut(c, " ")
		if name == kw {
			return strings.Fields(args), true
		}
	}
	return nil, false
}

func hasCap(caps []string, kw string) bool {
	_, ok := capArgs(caps, kw)
	return ok
}

// hasArg reports whether capability kw lists arg (case-insensitive).
func hasArg(caps []string, kw, arg string) bool {
	args, _ := capArgs(caps, kw)
	for _, a := range args {
		if strings.EqualFold(a, arg) {
			return true
		}
	}
	return false
}

// authMechs returns the login mechanisms the capabilities offer now
// (RFC 4643 §2.1): "USER" when AUTHINFO lists USER, and each mechanism of
// the SASL capability when AUTHINFO lists SASL; upper case, no duplicates,
// at most maxSASLMechs+1. An AUTHINFO without arguments offers nothing.
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
	if hasArg(caps, CapAuthInfo, "USER") {
		add("USER")
	}
	if hasArg(caps, CapAuthInfo, "SASL") {
		mechs, _ := capArgs(caps, CapSASL)
		for _, m := range mechs {
			add(m)
		}
	}
	return out
}
