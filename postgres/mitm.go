package postgres

import "github.com/starttls/starttls"

// This file is the PostgreSQL side of the stripping simulator (starttls strip).
// It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMForged is the message injected after the 'S' that accepts the
// SSLRequest: AuthenticationCleartextPassword, the answer a client waits
// for after its StartupMessage. A client with the buffered-'S' bug
// (CVE-2021-23222) takes it for the server's and sends its password
// before the real answer comes.
func MITMForged(string) []byte { return []byte{'R', 0, 0, 0, 8, 0, 0, 0, 3} }
