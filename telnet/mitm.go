package telnet

import "github.com/starttls/starttls"

// This file is the Telnet side of the stripping simulator (starttls strip).
// It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMForgedNA says why response injection does not apply to Telnet.
const MITMForgedNA = "Telnet has no command/reply structure inside TLS to count: the server prompts and the client types"
