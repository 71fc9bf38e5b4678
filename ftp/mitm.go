package ftp

import (
	"strings"

	"github.com/starttls/starttls"
)

// This file is the FTP side of the stripping simulator (starttls strip).
// It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMCommand names the command of a client line ("" when it is none) and
// reports whether it only discovers the server, asks for the upgrade or
// leaves (FEAT, AUTH TLS, SYST, HELP, NOOP, QUIT). USER alone already
// leaks the account name, so it is not idle.
func MITMCommand(line string) (verb string, idle bool) {
	verb, _, _ = strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	switch verb {
	case "FEAT", "AUTH", "SYST", "HELP", "NOOP", "QUIT", "OPTS":
		return verb, true
	case "USER", "PASS", "ACCT", "CWD", "CDUP", "PWD", "LIST", "NLST", "MLSD", "MLST", "RETR", "STOR",
		"APPE", "DELE", "MKD", "RMD", "RNFR", "RNTO", "PASV", "EPSV", "PORT", "EPRT", "TYPE", "MODE",
		"STRU", "SIZE", "MDTM", "REST", "ABOR", "STAT", "PBSZ", "PROT", "CCC", "SITE":
		return verb, false
	}
	return "", false
}

// MITMForged is the reply injected after the 234 go-ahead: a positive
// completion such as the answer to PBSZ or PROT, the usual first commands
// inside TLS. A client that keeps it sends its next command before the
// real answer comes.
func MITMForged(string) []byte { return []byte("200 forged\r\n") }
