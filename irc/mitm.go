package irc

import (
	"strings"

	"github.com/starttls/starttls"
)

// This file is the IRC side of the stripping simulator (starttls strip).
// It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (SASL logins are seen through
// o.OnCredentials and then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMCommand names the command of a client line ("" when it is none) and
// reports whether it only discovers the server, asks for the upgrade or
// leaves (CAP, STARTTLS, PING, PONG, QUIT). Registration (NICK, USER,
// PASS) and everything after it is not idle.
func MITMCommand(line string) (verb string, idle bool) {
	if strings.HasPrefix(line, "@") || strings.HasPrefix(line, ":") {
		_, line, _ = strings.Cut(line, " ")
	}
	verb, rest, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	switch verb {
	case "CAP":
		sub, _, _ := strings.Cut(rest, " ")
		return verb, !strings.EqualFold(sub, "REQ") || !strings.Contains(strings.ToLower(rest), "sasl")
	case "STARTTLS", "PING", "PONG", "QUIT":
		return verb, true
	case "NICK", "USER", "PASS", "AUTHENTICATE", "JOIN", "PRIVMSG", "NOTICE", "MODE", "WHO",
		"WHOIS", "PART", "LIST", "NAMES", "TOPIC", "OPER", "MOTD", "LUSERS":
		return verb, false
	}
	return "", false
}

// MITMForgedNA says why response injection does not apply to IRC.
const MITMForgedNA = "IRC clients send NICK and USER inside TLS without waiting for an answer, so a held-back answer cannot show whether a forged reply was taken"
