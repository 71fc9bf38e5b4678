package smtp

import (
	"strings"

	"github.com/starttls/starttls"
)

// This file is the SMTP side of the stripping simulator (starttls strip):
// the server it puts in front of a client under test and what it needs to
// read that client's commands. It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused; messages are accepted and discarded).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMServerLMTP is MITMServer speaking LMTP.
func MITMServerLMTP(o starttls.ServerOptions) *Server {
	return &Server{ServerOptions: o, LMTP: true}
}

// MITMCommand names the command of a client line ("" when it is no SMTP
// command: a SASL response, message text) so that a transcript can show it
// without its arguments, and reports whether it only discovers the
// server, asks for the upgrade or leaves (EHLO, STARTTLS, QUIT…): a client
// that sends nothing else once the upgrade is stripped or refused has not
// continued in plaintext.
func MITMCommand(line string) (verb string, idle bool) {
	verb, _, _ = strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	switch verb {
	case "EHLO", "HELO", "LHLO", "STARTTLS", "NOOP", "RSET", "QUIT":
		return verb, true
	case "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "VRFY", "EXPN", "HELP", "ETRN", "TURN":
		return verb, false
	}
	return "", false
}

// MITMForged is the reply injected after the 220 go-ahead: a complete
// answer to EHLO, the first command a client sends inside TLS, offering
// AUTH. A client that keeps it takes it for the answer to its EHLO and
// sends its next command before the real answer comes.
func MITMForged(string) []byte {
	return []byte("250-forged.invalid\r\n250 AUTH PLAIN LOGIN\r\n")
}
