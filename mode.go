package starttls

import (
	"fmt"
	"strings"
)

// Mode says how a client secures a connection.
//
// The zero value is ModeAuto, which is safe: it never permits plaintext.
type Mode int

const (
	// ModeAuto picks ModeImplicit on the ports where TLS starts with the first
	// byte (465, 993, 995, …; see ImplicitPort) and ModeRequired elsewhere.
	ModeAuto Mode = iota
	// ModePlain never upgrades. It is the only mode in which a client sends
	// credentials over plaintext, and only because the caller asked for it.
	ModePlain
	// ModeOpportunistic upgrades when the server offers it and goes on in
	// plaintext otherwise. An active attacker can force plaintext; use it only
	// where that is acceptable (SMTP relay without MTA-STS or DANE).
	ModeOpportunistic
	// ModeRequired upgrades or fails: a missing, refused or failed upgrade is
	// an error, never a plaintext fallback.
	ModeRequired
	// ModeImplicit speaks TLS from the first byte (RFC 8314).
	ModeImplicit
)

var modeNames = [...]string{
	ModeAuto:          "auto",
	ModePlain:         "plain",
	ModeOpportunistic: "opportunistic",
	ModeRequired:      "required",
	ModeImplicit:      "implicit",
}

// String returns the mode's name as ParseMode accepts it.
func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// ParseMode parses a mode name: auto, plain, opportunistic, required or
// implicit (case-insensitive).
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if strings.EqualFold(s, name) {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("starttls: unknown mode %q (want auto, plain, opportunistic, required or implicit)", s)
}

// Resolve turns ModeAuto into ModeImplicit or ModeRequired for the given port
// and returns any other mode unchanged.
func (m Mode) Resolve(port int) Mode {
	if m != ModeAuto {
		return m
	}
	if ImplicitPort(port) {
		return ModeImplicit
	}
	return ModeRequired
}
