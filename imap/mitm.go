package imap

import (
	"strings"

	"github.com/starttls/starttls"
)

// This file is the IMAP side of the stripping simulator (starttls strip):
// the server it puts in front of a client under test and what it needs to
// read that client's commands. It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMCommand names the command of a client line, after its tag ("" when
// it is no IMAP command: a SASL response, a literal), and reports whether
// it only discovers the server, asks for the upgrade or leaves
// (CAPABILITY, STARTTLS, NOOP, LOGOUT, ID).
func MITMCommand(line string) (verb string, idle bool) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return "", false
	}
	verb = strings.ToUpper(f[1])
	switch verb {
	case "CAPABILITY", "STARTTLS", "NOOP", "LOGOUT", "ID":
		return verb, true
	case "LOGIN", "AUTHENTICATE", "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME",
		"SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "STATUS", "APPEND", "CHECK", "CLOSE",
		"EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "UID", "ENABLE", "IDLE", "NAMESPACE":
		return verb, false
	}
	return "", false
}

// MITMForged is the reply injected after the tagged OK to "TAG STARTTLS":
// a capability list offering AUTH=PLAIN and a tagged OK for the tag the
// client will most likely use next (the STARTTLS tag with its number
// incremented, as clients number their commands). A client that keeps it
// takes it for the answer to its first command inside TLS and sends the
// next one before the real answer comes. With no number to increment only
// the untagged capability list is forged.
func MITMForged(command string) []byte {
	tag, _, _ := strings.Cut(command, " ")
	out := "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"
	if next := nextTag(tag); next != "" {
		out += next + " OK CAPABILITY completed\r\n"
	}
	return []byte(out)
}

// nextTag increments the decimal number that ends tag, keeping its width
// ("A001" → "A002", "a9" → "a10"); "" when tag ends in no digit.
func nextTag(tag string) string {
	i := len(tag)
	for i > 0 && tag[i-1] >= '0' && tag[i-1] <= '9' {
		i--
	}
	if i == len(tag) || len(tag)-i > 9 {
		return ""
	}
	digits := []byte(tag[i:])
	j := len(digits) - 1
	for ; j >= 0; j-- {
		if digits[j] < '9' {
			digits[j]++
			break
		}
		digits[j] = '0'
	}
	if j < 0 {
		digits = append([]byte{'1'}, digits...)
	}
	return tag[:i] + string(digits)
}
