package nntp

import (
	"strings"

	"github.com/starttls/starttls"
)

// This file is the NNTP side of the stripping simulator (starttls strip).
// It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMCommand names the command of a client line ("" when it is none) and
// reports whether it only discovers the server, asks for the upgrade or
// leaves (CAPABILITIES, MODE READER, STARTTLS, DATE, HELP, QUIT).
func MITMCommand(line string) (verb string, idle bool) {
	verb, _, _ = strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	switch verb {
	case "CAPABILITIES", "MODE", "STARTTLS", "DATE", "HELP", "QUIT":
		return verb, true
	case "AUTHINFO", "GROUP", "LISTGROUP", "ARTICLE", "HEAD", "BODY", "STAT", "NEXT", "LAST",
		"POST", "IHAVE", "LIST", "NEWGROUPS", "NEWNEWS", "OVER", "XOVER", "HDR", "XHDR":
		return verb, false
	}
	return "", false
}

// MITMForged is the reply injected after the 382 go-ahead: a complete
// answer to CAPABILITIES, the first command a client sends inside TLS
// (RFC 4642 §2.2.2), offering AUTHINFO USER.
func MITMForged(string) []byte {
	return []byte("101 Capability list:\r\nVERSION 2\r\nREADER\r\nAUTHINFO USER\r\n.\r\n")
}
