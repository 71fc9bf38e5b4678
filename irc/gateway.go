package irc

import "github.com/starttls/starttls/internal/textline"

// This file is the glue for the TLS gateway (package proxy, reached
// through dial.Gateways). An IRC server says nothing until the client
// registers, so a plaintext backend has no greeting to skip.

// Unavailable renders the ERROR that ends a session the gateway cannot
// serve (RFC 2812 §3.7.4).
func Unavailable(text string) []byte {
	return []byte("ERROR :" + textline.OneLine(text) + "\r\n")
}
