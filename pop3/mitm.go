package pop3

import (
	"strings"

	"github.com/starttls/starttls"
)

// This file is the POP3 side of the stripping simulator (starttls strip):
// the server it puts in front of a client under test and what it needs to
// read that client's commands. It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMCommand names the command of a client line ("" when it is no POP3
// command: a SASL response) and reports whether it only discovers the
// server, asks for the upgrade or leaves (CAPA, STLS, NOOP, QUIT).
func MITMCommand(line string) (verb string, idle bool) {
	verb, _, _ = strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	switch verb {
	case "CAPA", "STLS", "NOOP", "QUIT":
		return verb, true
	case "USER", "PASS", "APOP", "AUTH", "STAT", "LIST", "RETR", "DELE", "RSET", "TOP", "UIDL":
		return verb, false
	}
	return "", false
}

// MITMForged is the reply injected after the +OK go-ahead: "+OK" and a
// lone "." make a complete answer to CAPA (multi-line) as well as to USER
// (one line), the usual first commands inside TLS. A client that keeps it
// sends its next command before the real answer comes.
func MITMForged(string) []byte { return []byte("+OK forged\r\n.\r\n") }
