package xmpp

import "github.com/starttls/starttls"

// This file is the XMPP side of the stripping simulator (starttls strip).
// It holds no attack logic. XMPP is XML, not lines: the simulator counts
// its bytes and learns of logins through OnCredentials (SASL PLAIN), so
// plaintext_continued is judged from credentials only.

// MITMServer returns the client-to-server endpoint the simulator shows a
// client: o as the attack sets it, no Backend (SASL logins are seen
// through o.OnCredentials and then refused). RefusePermanently makes no
// difference: RFC 6120 §5.4.2.2 has one refusal, <failure/> and the end
// of the stream.
func MITMServer(o starttls.ServerOptions) *Server { return &Server{ServerOptions: o} }

// MITMServerS2S is MITMServer for server-to-server streams (RFC 6120
// with jabber:server); it has no password login to report.
func MITMServerS2S(o starttls.ServerOptions) *Server {
	return &Server{ServerOptions: o, ServerToServer: true}
}

// MITMForgedNA says why response injection does not apply to XMPP.
const MITMForgedNA = "XMPP is a stream of XML elements, not lines: the simulator cannot count a client's commands before the held-back answer"
