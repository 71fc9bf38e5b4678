package ldap

import "github.com/starttls/starttls"

// This file is the LDAP side of the stripping simulator (starttls strip).
// It holds no attack logic.

// MITMServer returns the server the simulator shows a client: o as the
// attack sets it, no Backend (logins are seen through o.OnCredentials and
// then refused).
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMForgedNA says why response injection does not apply to LDAP.
const MITMForgedNA = "LDAP is BER-encoded and clients may have several operations in flight: a held-back answer cannot show whether a forged response was taken"
