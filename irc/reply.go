package irc

import (
	"strings"

	"github.com/starttls/starttls"
)

// Numerics this package sends or recognises (RFC 2812 §5, IRCv3 tls and
// sasl extensions).
const (
	RplWelcome           = "001"
	RplYourHost          = "002"
	RplCreated           = "003"
	RplMyInfo            = "004"
	RplISupport          = "005"
	RplNamReply          = "353"
	RplEndOfNames        = "366"
	RplMOTD              = "372"
	RplMOTDStart         = "375"
	RplEndOfMOTD         = "376"
	ErrNoSuchNick        = "401"
	ErrNoSuchChannel     = "403"
	ErrCannotSendToChan  = "404"
	ErrTooManyChannels   = "405"
	ErrNoRecipient       = "411"
	ErrNoTextToSend      = "412"
	ErrUnknownCommand    = "421"
	ErrNoNicknameGiven   = "431"
	ErrErroneusNick      = "432"
	ErrNicknameInUse     = "433"
	ErrNotOnChannel      = "442"
	ErrNotRegistered     = "451"
	ErrNeedMoreParams    = "461"
	ErrAlreadyRegistered = "462"
	ErrInvalidCapCmd     = "410"
	RplStartTLS          = "670"
	ErrStartTLS          = "691"
	RplLoggedIn          = "900"
	RplSASLSuccess       = "903"
	ErrSASLFail          = "904"
	ErrSASLTooLong       = "905"
	ErrSASLAborted       = "906"
	ErrSASLAlready       = "907"
	RplSASLMechs         = "908"
)

// Error is an error reply from the server: a numeric (400–599, 691, 902–908)
// or an ERROR message. Params are the reply's parameters after the target
// nick; Text is the last one.
type Error struct {
	Command string // "691", "433", "ERROR", …
	Params  []string
}

// Text returns the human-readable part of the reply.
func (e *Error) Text() string {
	if len(e.Params) == 0 {
		return ""
	}
	return e.Params[len(e.Params)-1]
}

// Error renders the reply as "irc: 691 STARTTLS failure".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("irc: ")
	b.WriteString(e.Command)
	for _, p := range e.Params {
		b.WriteByte(' ')
		b.WriteString(starttls.Escape(clip(p, 200)))
	}
	return b.String()
}

// Temporary reports whether the reply says "try again later": 263
// RPL_TRYAGAIN, 437 ERR_UNAVAILRESOURCE, or an ERROR that mentions
// throttling.
func (e *Error) Temporary() bool {
	switch e.Command {
	case "263", "437":
		return true
	case "ERROR":
		t := strings.ToLower(e.Text())
		return strings.Contains(t, "throttl") || strings.Contains(t, "too many connections") || strings.Contains(t, "try again")
	}
	return false
}

// replyError turns a server message into an *Error, dropping the target
// nick of a numeric.
func replyError(m *Message) *Error {
	p := m.Params
	if m.IsNumeric() && len(p) > 0 {
		p = p[1:]
	}
	return &Error{Command: m.Command, Params: append([]string(nil), p...)}
}

// isErrorNumeric reports numerics that are error replies: 4xx, 5xx
// (RFC 2812 §5.2), ERR_STARTTLS and the SASL failures.
func isErrorNumeric(cmd string) bool {
	if !isNumeric(cmd) {
		return false
	}
	switch {
	case cmd[0] == '4' || cmd[0] == '5':
		return true
	case cmd == ErrStartTLS, cmd == "902", cmd == ErrSASLFail, cmd == ErrSASLTooLong, cmd == ErrSASLAborted, cmd == ErrSASLAlready:
		return true
	}
	return false
}
