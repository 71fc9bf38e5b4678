package nntp

import (
	"net"
	"strings"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// This file is the glue for the TLS gateway (package proxy, reached
// through dial.Gateways).

// SkipGreeting reads the 200/201 greeting of a plaintext backend (RFC 3977
// §5.1) that a gateway must not show its client, who was greeted already,
// and returns any bytes that followed it. The caller sets the deadline.
func SkipGreeting(conn net.Conn, maxLine int) ([]byte, error) {
	return textline.SkipGreetingLine(conn, "nntp", maxLine, func(l string) bool {
		return strings.HasPrefix(l, "200") || strings.HasPrefix(l, "201")
	})
}

// GatewayGreeting renders the upstream greeting recorded in res for a
// plaintext client of a gateway.
func GatewayGreeting(res *starttls.Result) []byte {
	g := "200 NNTP gateway ready"
	if res != nil && (strings.HasPrefix(res.Greeting, "200") || strings.HasPrefix(res.Greeting, "201")) {
		g = res.Greeting
	}
	return []byte(textline.OneLine(g) + "\r\n")
}

// Unavailable renders the 400 that ends a session the gateway cannot
// serve (RFC 3977 §5.1.1: service temporarily unavailable).
func Unavailable(text string) []byte {
	return []byte("400 " + textline.OneLine(text) + "\r\n")
}
