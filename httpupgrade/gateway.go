package httpupgrade

import (
	"strconv"

	"github.com/starttls/starttls/internal/textline"
)

// This file is the glue for the TLS gateway (package proxy, reached
// through dial.Gateways).

// Unavailable renders the 503 that ends a request the gateway cannot
// serve (RFC 9110 §15.6.4).
func Unavailable(text string) []byte {
	body := textline.OneLine(text) + "\r\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}
