package httpupgrade

import (
	"strings"

	"github.com/starttls/starttls"
)

// This file is the HTTP side (RFC 2817 upgrade) of the stripping
// simulator (starttls strip). It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (Basic credentials are seen through
// o.OnCredentials and then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMCommand names the method of a request line, or the field of a
// header line, and reports whether the line only asks for the upgrade:
// the OPTIONS request of RFC 2817 §3.2 and its ordinary header fields.
// Any other request, and credentials or cookies sent in plaintext, are a
// client going on in plaintext. Lines it cannot place (header fields it
// does not know, bodies) come back unnamed so that they are not shown.
func MITMCommand(line string) (verb string, idle bool) {
	method, rest, _ := strings.Cut(line, " ")
	if strings.HasSuffix(rest, " HTTP/1.1") || strings.HasSuffix(rest, " HTTP/1.0") {
		m := strings.ToUpper(method)
		switch m {
		case "OPTIONS":
			return m, true
		case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "CONNECT", "TRACE":
			return m, false
		}
		return "", false
	}
	name, _, ok := strings.Cut(line, ":")
	if !ok {
		return "", true
	}
	switch strings.ToLower(name) {
	case "authorization", "proxy-authorization", "cookie":
		return name, false
	case "host", "upgrade", "connection", "user-agent", "accept", "accept-encoding", "content-length", "content-type", "te":
		return name, true
	}
	return "", true
}

// MITMForged is the response injected after 101: a complete answer to
// the request the upgrade was asked on, which the server owes over TLS
// (RFC 2817 §3.3). A client that keeps it sends its next request before
// the real answer comes.
func MITMForged(string) []byte {
	return []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
}
