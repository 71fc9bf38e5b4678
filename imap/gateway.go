package imap

import (
	"net"
	"regexp"
	"strings"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// This file is the glue for the TLS gateway (package proxy, reached
// through dial.Gateways).

// SkipGreeting reads the untagged OK greeting of a plaintext backend (RFC
// 9051 §7.1) that a gateway must not show its client, who was greeted
// already, and returns any bytes that followed it. PREAUTH and BYE are
// refused: the client must log in over TLS. The caller sets the deadline.
func SkipGreeting(conn net.Conn, maxLine int) ([]byte, error) {
	return textline.SkipGreetingLine(conn, "imap", maxLine, func(l string) bool {
		return len(l) >= 4 && strings.EqualFold(l[:4], "* OK")
	})
}

// capabilityCode matches a CAPABILITY response code in a greeting.
var capabilityCode = regexp.MustCompile(`(?i)\[CAPABILITY [^\]]*\]\s*`)

// GatewayGreeting renders the upstream greeting recorded in res for a
// plaintext client of a gateway, without its CAPABILITY response code: the
// pre-TLS list (STARTTLS, LOGINDISABLED) is not what the client gets
// through the gateway, and it asks again anyway.
func GatewayGreeting(res *starttls.Result) []byte {
	g := "* OK IMAP4rev1 gateway ready"
	if res != nil && res.Greeting != "" {
		g = capabilityCode.ReplaceAllString(res.Greeting, "")
	}
	return []byte(textline.OneLine(g) + "\r\n")
}

// Unavailable renders the BYE that ends a session the gateway cannot
// serve (RFC 9051 §7.1.5).
func Unavailable(text string) []byte {
	return []byte("* BYE " + textline.OneLine(text) + "\r\n")
}
