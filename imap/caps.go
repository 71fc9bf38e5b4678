package imap

import "strings"

// Capability names (RFC 3501 §6.1.1, §7.2.1; RFC 9051 §7.2.2).
const (
	CapIMAP4rev1     = "IMAP4REV1"
	CapIMAP4rev2     = "IMAP4REV2"
	CapSTARTTLS      = "STARTTLS"      // RFC 3501 §6.2.1, RFC 2595 §3.1
	CapLoginDisabled = "LOGINDISABLED" // RFC 3501 §6.2.3: LOGIN must not be sent
	CapSASLIR        = "SASL-IR"       // RFC 4959
	CapID            = "ID"            // RFC 2971
	CapEnable        = "ENABLE"        // RFC 5161
	CapUnselect      = "UNSELECT"      // RFC 3691
	// CapAuthPrefix starts each SASL mechanism capability, "AUTH=PLAIN".
	CapAuthPrefix = "AUTH="
)

// parseCaps splits a capability list ("IMAP4rev1 STARTTLS AUTH=PLAIN")
// into upper-case names, keeping at most max (RFC 3501 §7.2.1 says
// capability names are case-insensitive).
func parseCaps(s string, max int) ([]string, bool) {
	fields := strings.Fields(s)
	if len(fields) > max {
		return nil, false
	}
	caps := make([]string, 0, len(fields))
	for _, f := range fields {
		caps = append(caps, strings.ToUpper(f))
	}
	return caps, true
}

// hasCap reports whether caps lists name (upper case).
func hasCap(caps []string, name string) bool {
	for _, c := range caps {
		if c == name {
			return true
		}
	}
	return false
}

// authMechs returns the login methods that caps offer: "LOGIN" for the
// LOGIN command unless LOGINDISABLED is listed, then each AUTH=X
// mechanism. An empty capability list offers nothing that can be relied
// on, so it gives nil.
func authMechs(caps []string) []string {
	if len(caps) == 0 {
		return nil
	}
	var mechs []string
	add := func(m string) {
		if !hasCap(mechs, m) {
			mechs = append(mechs, m)
		}
	}
	if !hasCap(caps, CapLoginDisabled) {
		add("LOGIN")
	}
	for _, c := range caps {
		if m, ok := strings.CutPrefix(c, CapAuthPrefix); ok && m != "" {
			add(m)
		}
	}
	return mechs
}

// serverCaps is what the server announces (RFC 3501 §6.1.1).
// Before TLS with the upgrade available it offers STARTTLS and
// LOGINDISABLED and no AUTH= (RFC 3501 §6.2.3, RFC 2595 §3.1); login
// methods appear once TLS protects them, or with AllowPlaintextLogin.
func (ss *session) caps() []string {
	caps := []string{"IMAP4rev1"}
	if ss.offersSTARTTLS() {
		caps = append(caps, "STARTTLS")
	}
	if ss.state == stateNotAuthenticated {
		if ss.loginAllowed() {
			caps = append(caps, "AUTH=PLAIN", "SASL-IR")
		} else {
			caps = append(caps, "LOGINDISABLED")
		}
	}
	return append(caps, "ID", "ENABLE", "UNSELECT")
}
