// Package imap implements both sides of IMAP secured with TLS, as far as an
// upgrade, a login and a mailbox listing need: a client that upgrades per a
// starttls.Mode, and a small read-only server.
//
// Implemented:
//
//   - RFC 3501 (IMAP4rev1), with the RFC 9051 (IMAP4rev2) greeting and
//     capability rules the client accepts: the greeting (§7.1: "* OK",
//     "* PREAUTH", "* BYE"), tagged commands, the not authenticated,
//     authenticated and selected states (§3), CAPABILITY, NOOP, LOGOUT
//     (§6.1), LOGIN (§6.2.3), AUTHENTICATE (§6.2.2), SELECT, EXAMINE, LIST,
//     LSUB, STATUS (§6.3), CHECK, CLOSE, SEARCH, FETCH and UID (§6.4), the
//     response codes (§7.1) and the wire format (§4, §9): atoms, quoted
//     strings, literals and parenthesised lists.
//   - RFC 3501 §6.2.1 and RFC 2595 §3.1, STARTTLS: valid only in the not
//     authenticated state; TLS starts right after the tagged OK;
//     capabilities are asked again over TLS.
//   - RFC 3501 §6.2.3, LOGINDISABLED: the server announces it before TLS
//     and refuses LOGIN with "NO [PRIVACYREQUIRED]" (RFC 9051 §7.1); the
//     client never sends LOGIN when it is announced.
//   - RFC 4959 (SASL-IR) and RFC 4616 for AUTHENTICATE PLAIN, with an
//     initial response or a "+ " continuation.
//   - RFC 2971 ID (answered NIL), RFC 5161 ENABLE (enables nothing), RFC
//     3691 UNSELECT, RFC 7888 non-synchronising literals ({n+}) accepted
//     with a small cap before login.
//   - RFC 8314 §3, implicit TLS on port 993 (ModeImplicit, Server.Implicit).
//   - RFC 7817, the server identity check, through crypto/tls.
//
// # Client
//
// Upgrade and Dial read the greeting, which must be untagged OK, PREAUTH or
// BYE; anything else is a protocol error, and BYE an *Error. The
// capabilities come from the greeting's [CAPABILITY …] code when present,
// else from a CAPABILITY command. A PREAUTH greeting puts the session in the
// authenticated state, where STARTTLS is not allowed: ModeRequired fails,
// ModeOpportunistic goes on without TLS. After the tagged OK to STARTTLS,
// any byte already received is response injection and fails with
// starttls.ErrPlaintextAfterUpgrade. After the handshake the client always
// sends CAPABILITY again and trusts nothing it read before: neither
// capabilities from the STARTTLS answer nor any untagged response. Untagged
// responses the client did not ask for are ignored (their number is
// bounded); an [ALERT] received before TLS is noted in the transcript as
// untrusted. Literals in responses are capped at MaxLiteral bytes, and a
// literal size that is not a valid uint32 is an error before anything is
// allocated.
//
// Login uses LOGIN unless the server announces LOGINDISABLED, else
// AUTHENTICATE PLAIN; it refuses to send credentials without TLS unless the
// mode is ModePlain, and never sends LOGIN when LOGINDISABLED is announced.
//
// # Server
//
// Server greets with "* OK [CAPABILITY …] host ready". Before TLS, when
// TLSConfig is set and AllowPlaintextLogin is not, it announces STARTTLS and
// LOGINDISABLED and no AUTH= mechanism, and refuses LOGIN and AUTHENTICATE
// with "NO [PRIVACYREQUIRED]". Over TLS it announces AUTH=PLAIN and
// SASL-IR and no STARTTLS. Command lines must end in CRLF. Commands
// pipelined after STARTTLS (CVE-2011-0411) are discarded and the connection
// is closed right after the tagged OK, so the client's handshake fails;
// InsecureKeepPipelined instead executes them inside TLS, to reproduce the
// bug in the lab. The mail store (Backend) is read-only: SELECT reports
// READ-WRITE, as clients such as Python's imaplib expect, but only the
// \Seen flag changes, for the rest of the session; STORE, EXPUNGE, APPEND
// and the mailbox management commands are refused. UIDs are message
// positions; UIDVALIDITY changes when the mailbox content changes.
package imap

import (
	"strings"

	"github.com/starttls/starttls"
)

// Error is a NO, BAD or BYE response from the server (RFC 3501 §7.1).
type Error struct {
	// Type is "NO", "BAD" or "BYE".
	Type string
	// Code is the response code in brackets, such as "PRIVACYREQUIRED",
	// "UNAVAILABLE" or "AUTHENTICATIONFAILED"; empty when there is none.
	Code string
	// Text is the human-readable text, as received (Error escapes
	// control characters).
	Text string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("imap: ")
	b.WriteString(e.Type)
	if e.Code != "" {
		b.WriteString(" [" + e.Code + "]")
	}
	if e.Text != "" {
		b.WriteString(" " + starttls.Escape(e.Text))
	}
	return b.String()
}

// Temporary reports whether the server said the failure is temporary: the
// UNAVAILABLE and INUSE response codes (RFC 5530 §3).
func (e *Error) Temporary() bool {
	return e.Code == "UNAVAILABLE" || e.Code == "INUSE"
}
