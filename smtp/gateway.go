package smtp

import (
	"net"
	"strings"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// This file is the glue for the TLS gateway (package proxy, reached
// through dial.Gateways): it knows SMTP's opening and closing words, so
// that the proxy never does.

// SkipGreeting reads the 220 greeting of a plaintext backend (RFC 5321
// §4.2, one or more lines, each at most maxLine bytes) that a gateway must
// not show its client, who was greeted already, and returns any bytes that
// followed it. The caller sets the read deadline.
func SkipGreeting(conn net.Conn, maxLine int) ([]byte, error) {
	tc := textline.New(conn, textline.Options{Proto: "smtp", Local: starttls.FromClient, MaxLine: maxLine})
	r, err := textline.ReadReply(tc, starttls.DefaultMaxLines)
	if err != nil {
		return nil, err
	}
	if r.Code != 220 {
		return nil, starttls.ProtocolError("smtp", "backend greeting is %s, not 220", starttls.Escape(r.String()))
	}
	return tc.TakeBuffered(), nil
}

// GatewayGreeting renders the greeting recorded in res (Result.Greeting,
// "220-…" lines joined by "\n") for a plaintext client of a gateway that
// speaks to the real server over TLS.
func GatewayGreeting(res *starttls.Result) []byte {
	if res == nil || res.Greeting == "" {
		return []byte("220 " + starttls.LocalName() + " ESMTP\r\n")
	}
	return []byte(strings.ReplaceAll(res.Greeting, "\n", "\r\n") + "\r\n")
}

// Unavailable renders the reply that ends a session the gateway cannot
// serve: 421, service not available (RFC 5321 §3.8, §4.2.3), with text
// stripped of line breaks.
func Unavailable(text string) []byte {
	return []byte("421 4.3.0 " + textline.OneLine(text) + "\r\n")
}
