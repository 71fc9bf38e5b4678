package postgres

import "github.com/starttls/starttls"

// This file is the PostgreSQL side of the stripping simulator (starttls strip).
// It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMForgedNA says why response injection does not apply to PostgreSQL.
const MITMForgedNA = "PostgreSQL messages are binary and the simulator counts lines: the buffered-'S' bug (CVE-2021-23222) needs a message-aware check, not done here"
