package mysql

import "github.com/starttls/starttls"

// This file is the MySQL side of the stripping simulator (starttls strip).
// It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMForgedNA says why response injection does not apply to MySQL.
const MITMForgedNA = "MySQL starts TLS without a go-ahead from the server (the client sends SSLRequest and the handshake at once): there is no reply to forge"
