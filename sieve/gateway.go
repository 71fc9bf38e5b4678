package sieve

import (
	"strings"

	"github.com/starttls/starttls/internal/textline"
)

// This file is the glue for the TLS gateway (package proxy, reached
// through dial.Gateways). After STARTTLS a ManageSieve server sends its
// capabilities again unasked (RFC 5804 §2.2): a plaintext backend's
// greeting is exactly that, so the gateway relays it rather than skip it.

// Unavailable renders the BYE that ends a session the gateway cannot
// serve (RFC 5804 §1.3), the text quoted.
func Unavailable(text string) []byte {
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(textline.OneLine(text))
	return []byte(`BYE (TRYLATER) "` + q + "\"\r\n")
}
