package pop3

import (
	"net"
	"strings"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// This file is the glue for the TLS gateway (package proxy, reached
// through dial.Gateways).

// SkipGreeting reads the +OK greeting of a plaintext backend (RFC 1939 §4)
// that a gateway must not show its client, who was greeted already, and
// returns any bytes that followed it. The caller sets the deadline.
func SkipGreeting(conn net.Conn, maxLine int) ([]byte, error) {
	return textline.SkipGreetingLine(conn, "pop3", maxLine, func(l string) bool {
		return strings.HasPrefix(l, "+OK")
	})
}

// GatewayGreeting renders the upstream greeting recorded in res for a
// plaintext client of a gateway. An APOP timestamp in it is kept: it is
// the upstream's, which checks the digest.
func GatewayGreeting(res *starttls.Result) []byte {
	g := "+OK POP3 gateway ready"
	if res != nil && strings.HasPrefix(res.Greeting, "+OK") {
		g = res.Greeting
	}
	return []byte(textline.OneLine(g) + "\r\n")
}

// Unavailable renders the -ERR that ends a session the gateway cannot
// serve (RFC 1939 §3).
func Unavailable(text string) []byte {
	return []byte("-ERR " + textline.OneLine(text) + "\r\n")
}
