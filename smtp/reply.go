package smtp

import (
	"fmt"
	"strings"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// ReplyError is an SMTP or LMTP reply that reports a failure (4xx or 5xx):
// the client returns it when the server refuses a command, and a Backend
// returns it to choose the reply the server sends.
type ReplyError struct {
	// Code is the three-digit reply code (RFC 5321 §4.2).
	Code int
	// Enhanced is the enhanced status code (RFC 3463), {0, 0, 0} when the
	// reply carried none.
	Enhanced [3]int
	// Message is the reply text without codes; the lines of a multi-line
	// reply are joined with "\n".
	Message string
}

// Error returns the reply as "smtp: 454 4.7.0 TLS not available".
func (e *ReplyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "smtp: %d", e.Code)
	if e.Enhanced != [3]int{} {
		fmt.Fprintf(&b, " %d.%d.%d", e.Enhanced[0], e.Enhanced[1], e.Enhanced[2])
	}
	if e.Message != "" {
		b.WriteByte(' ')
		b.WriteString(escapeReply(e.Message))
	}
	return b.String()
}

// Temporary reports whether the reply is a transient failure (4xx): the
// command may succeed later. starttls.IsTemporary recognises it.
func (e *ReplyError) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Is makes errors.Is match replies by code and enhanced code, ignoring the
// text: errors.Is(err, ErrTLSNotAvailable) holds for any "454 4.7.0" reply.
func (e *ReplyError) Is(target error) bool {
	t, ok := target.(*ReplyError)
	return ok && t.Code == e.Code && t.Enhanced == e.Enhanced
}

// Common replies. A Backend may return them; errors.Is compares codes.
var (
	// ErrTLSNotAvailable is the refusal of STARTTLS (RFC 3207 §4).
	ErrTLSNotAvailable = &ReplyError{454, [3]int{4, 7, 0}, "TLS not available due to temporary reason"}
	// ErrTLSRequired refuses a command that needs TLS first (RFC 3207 §4).
	ErrTLSRequired = &ReplyError{530, [3]int{5, 7, 0}, "Must issue a STARTTLS command first"}
	// ErrAuthRequired refuses mail before authentication on a submission
	// server (RFC 4954 §6).
	ErrAuthRequired = &ReplyError{530, [3]int{5, 7, 0}, "Authentication required"}
	// ErrAuthFailed rejects credentials (RFC 4954 §6).
	ErrAuthFailed = &ReplyError{535, [3]int{5, 7, 8}, "Authentication credentials invalid"}
	// ErrEncryptionRequired refuses login without TLS on a server that
	// cannot offer TLS (RFC 4954 §6).
	ErrEncryptionRequired = &ReplyError{538, [3]int{5, 7, 11}, "Encryption required for requested authentication mechanism"}
	// ErrMessageTooBig rejects a message over the size limit (RFC 1870).
	ErrMessageTooBig = &ReplyError{552, [3]int{5, 3, 4}, "Message size exceeds fixed maximum message size"}
	// ErrTooManyRecipients rejects one recipient too many (RFC 5321 §4.5.3.1.10).
	ErrTooManyRecipients = &ReplyError{452, [3]int{4, 5, 3}, "Too many recipients"}
	// ErrMailboxUnavailable rejects a recipient.
	ErrMailboxUnavailable = &ReplyError{550, [3]int{5, 1, 1}, "Mailbox unavailable"}
	// ErrLocalError is a temporary failure of the server itself.
	ErrLocalError = &ReplyError{451, [3]int{4, 3, 0}, "Local error in processing"}
	// ErrBadSequence refuses a command out of order.
	ErrBadSequence = &ReplyError{503, [3]int{5, 5, 1}, "Bad sequence of commands"}
	// ErrUnknownCommand refuses a command the server does not know.
	ErrUnknownCommand = &ReplyError{500, [3]int{5, 5, 2}, "Command not recognized"}
	// ErrServiceUnavailable is the "service not available, closing
	// transmission channel" reply (RFC 5321 §3.8).
	ErrServiceUnavailable = &ReplyError{421, [3]int{4, 3, 0}, "Service not available, closing transmission channel"}
)

// replyError converts a parsed reply into a *ReplyError, taking the
// enhanced status code from the lines that carry one (RFC 2034 §4: every
// line of a reply carries it).
func replyError(r textline.Reply) *ReplyError {
	e := &ReplyError{Code: r.Code}
	lines := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		if enh, rest, ok := parseEnhanced(l, r.Code); ok {
			if i == 0 {
				e.Enhanced = enh
			}
			l = rest
		}
		lines[i] = l
	}
	e.Message = strings.Join(lines, "\n")
	return e
}

// parseEnhanced splits "4.7.0 text" into the enhanced status code and the
// text. RFC 3463 §2: class "." subject "." detail, class in {2,4,5} and equal
// to the first digit of the reply code, subject and detail 1–3 digits.
func parseEnhanced(s string, code int) (enh [3]int, rest string, ok bool) {
	part := 0
	digits := 0
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			if digits > 3 {
				return [3]int{}, s, false
			}
			enh[part] = enh[part]*10 + int(c-'0')
		case c == '.' && part < 2 && digits > 0:
			part++
			digits = 0
		case c == ' ' && part == 2 && digits > 0:
			goto done
		default:
			return [3]int{}, s, false
		}
	}
	if part != 2 || digits == 0 {
		return [3]int{}, s, false
	}
done:
	if enh[0] != 2 && enh[0] != 4 && enh[0] != 5 {
		return [3]int{}, s, false
	}
	if code != 0 && enh[0] != code/100 {
		return [3]int{}, s, false
	}
	if i < len(s) {
		i++ // the space
	}
	return enh, s[i:], true
}

// escapeReply keeps a peer's text printable in error strings.
func escapeReply(s string) string {
	return starttls.Escape(strings.ReplaceAll(s, "\n", " / "))
}

// lines renders the reply as wire lines ("250-a", "250 b"), with the
// enhanced code on every line when it has one.
func (e *ReplyError) lines() []string {
	text := strings.Split(e.Message, "\n")
	out := make([]string, len(text))
	for i, t := range text {
		sep := "-"
		if i == len(text)-1 {
			sep = " "
		}
		t = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return '?'
			}
			return r
		}, t)
		if e.Enhanced != [3]int{} {
			out[i] = fmt.Sprintf("%d%s%d.%d.%d %s", e.Code, sep, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], t)
		} else {
			out[i] = fmt.Sprintf("%d%s%s", e.Code, sep, t)
		}
	}
	return out
}
