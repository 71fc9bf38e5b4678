package sieve

import (
	"strings"

	"github.com/starttls/starttls"
)

// This file is the ManageSieve side of the stripping simulator (starttls
// strip). It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMCommand names the command of a client line ("" when it is none: a
// SASL response, a literal) and reports whether it only discovers the
// server, asks for the upgrade or leaves (CAPABILITY, STARTTLS, NOOP,
// LOGOUT).
func MITMCommand(line string) (verb string, idle bool) {
	verb, _, _ = strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	switch verb {
	case "CAPABILITY", "STARTTLS", "NOOP", "LOGOUT":
		return verb, true
	case "AUTHENTICATE", "PUTSCRIPT", "LISTSCRIPTS", "SETACTIVE", "GETSCRIPT", "DELETESCRIPT",
		"RENAMESCRIPT", "CHECKSCRIPT", "HAVESPACE", "UNAUTHENTICATE":
		return verb, false
	}
	return "", false
}

// MITMForged is the reply injected after the OK go-ahead: the capability
// list a server sends unprompted once TLS is up (RFC 5804 §2.2), offering
// PLAIN. A client that keeps it sends its first command before the real
// capabilities come.
func MITMForged(string) []byte {
	return []byte("\"IMPLEMENTATION\" \"forged\"\r\n\"SASL\" \"PLAIN\"\r\n\"VERSION\" \"1.0\"\r\nOK\r\n")
}
