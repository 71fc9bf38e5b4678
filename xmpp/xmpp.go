// Package xmpp implements both sides of XMPP secured with TLS: a client that
// upgrades a client-to-server (c2s) or server-to-server (s2s) stream per a
// starttls.Mode, and a small server for both.
//
// Implemented:
//
//   - RFC 6120 §4, XML streams: the stream header in the jabber:client or
//     jabber:server namespace, stream restarts (§4.3.3), stream errors
//     (§4.9) with the condition and, for see-other-host, the new host
//     (StreamError); the closing </stream:stream> (§4.4).
//   - RFC 6120 §5, STARTTLS: <starttls/> in the stream features, with
//     <required/> (§5.3.1), <proceed/> or <failure/> (§5.4.2), TLS from
//     the byte after the '>' of <proceed/> (§5.4.3.3), a new stream over TLS
//     whose features are the only ones trusted (§5.4.3.3 rule 5), STARTTLS
//     not offered again (§5.4.3.3).
//   - RFC 6120 §6, SASL with the PLAIN mechanism (RFC 4616), authzid empty,
//     then the stream restart (§6.4.6); §7, resource binding; XEP-0199 ping
//     (server).
//   - RFC 6120 §11.1, restricted XML: no comments, no processing
//     instructions other than the XML declaration, no DTD and no entity
//     declarations; entity references other than the five predefined ones
//     are errors, so nothing is ever expanded.
//   - XEP-0368, direct TLS on port 5223 with the ALPN protocol
//     "xmpp-client" ("xmpp-server" for s2s) when the caller's TLS config
//     names none.
//   - RFC 7590 and RFC 6125, the certificate is checked against the domain
//     the caller asked for (ClientOptions.ServerName), which is also the
//     stream's 'to'.
//
// # Parsing
//
// Every top-level element is read on its own with encoding/xml (Strict)
// over a byte reader that stops at MaxStanzaSize bytes (the error wraps
// starttls.ErrLineTooLong), elements nest at most MaxDepth deep and carry at
// most MaxAttrs attributes. encoding/xml reads byte by byte from a buffer
// the package owns and never reads past the '>' that ends an element, so
// what is left in that buffer after <proceed/> is exactly what the peer
// sent after it.
//
// # Client
//
// Upgrade and UpgradeServer open the stream, read the server's header
// (Result.Greeting) and features (CapsBefore: the feature element names;
// AuthBefore: the SASL mechanisms, plus "iq-auth" for XEP-0078),
// Result.UpgradeRequired when <starttls/> holds <required/>. ModeRequired
// fails with starttls.ErrUpgradeNotOffered without sending anything more;
// <failure/> fails with starttls.ErrUpgradeRefused in every mode, since the
// server closes the stream (RFC 6120 §5.4.2.2). Bytes after <proceed/>
// fail with starttls.ErrPlaintextAfterUpgrade. Login runs SASL PLAIN, the
// stream restart and resource binding; it refuses to send credentials
// without TLS unless the mode is ModePlain and masks them in the transcript.
//
// The injection probe sends <starttls/> and a complete new stream header
// in one write: a server that answers the header inside TLS before the
// client speaks processed plaintext as if it came over TLS (CVE-2011-0411
// class).
//
// # Server
//
// Server answers any 'to' unless Domains is set (then other names get the
// host-unknown stream error); its 'from' is the Hostname. The features
// before TLS offer <starttls/> with <required/>, the way Prosody's
// c2s_require_encryption does, unless AllowPlaintextLogin is set, which
// also offers SASL PLAIN before TLS. Over TLS: SASL PLAIN via
// Backend.Login, then resource binding and XEP-0199 ping. Bytes pipelined
// after <starttls/> are discarded and the connection closed after
// <proceed/> (the client's handshake then fails); InsecureKeepPipelined
// instead feeds them into the TLS session, reproducing the bug for the lab.
// With ServerToServer the server speaks jabber:server, offers <starttls/>
// (required) and, over TLS, empty features: it authenticates no peer (no
// SASL EXTERNAL, no dialback), which is enough to test the TLS upgrade.
package xmpp

import (
	"fmt"
	"strings"
)

// Namespaces (RFC 6120 §4.8, §5.4.1, §6.4.1, §7.2, §4.9.3; XEP-0199).
const (
	NSStreams    = "http://etherx.jabber.org/streams"
	NSClient     = "jabber:client"
	NSServer     = "jabber:server"
	NSDialback   = "jabber:server:dialback"
	NSTLS        = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL       = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind       = "urn:ietf:params:xml:ns:xmpp-bind"
	NSStreamErr  = "urn:ietf:params:xml:ns:xmpp-streams"
	NSStanzaErr  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSPing       = "urn:xmpp:ping"
	NSSession    = "urn:ietf:params:xml:ns:xmpp-session"
	NSIQAuthFeat = "http://jabber.org/features/iq-auth"
)

// Limits of the parser.
const (
	// MaxStanzaSize bounds one top-level element (a stream header, the
	// features, a stanza), whitespace before it included.
	MaxStanzaSize = 64 << 10
	// MaxDepth bounds the nesting of elements inside a top-level element.
	MaxDepth = 16
	// MaxAttrs bounds the attributes of one element.
	MaxAttrs = 32
)

// ALPN protocol names of XEP-0368.
const (
	ALPNClient = "xmpp-client"
	ALPNServer = "xmpp-server"
)

// StreamError is a stream error sent by the peer (RFC 6120 §4.9): the
// stream is closed.
type StreamError struct {
	// Condition is the defined condition, such as "host-unknown" or
	// "see-other-host".
	Condition string
	// Text is the optional human-readable text.
	Text string
	// Other is the condition element's text: for see-other-host the host
	// (and port) to connect to instead (RFC 6120 §4.9.3.19).
	Other string
}

func (e *StreamError) Error() string {
	s := "xmpp: stream error " + e.Condition
	if e.Other != "" {
		s += " (" + e.Other + ")"
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Temporary reports whether the condition says the server may accept the
// stream later (system-shutdown, resource-constraint).
func (e *StreamError) Temporary() bool {
	return e.Condition == "system-shutdown" || e.Condition == "resource-constraint"
}

// SASLError is a SASL <failure/> (RFC 6120 §6.5).
type SASLError struct {
	Condition string // "not-authorized", "invalid-mechanism", …
	Text      string
}

func (e *SASLError) Error() string {
	s := "xmpp: authentication failed: " + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("xmpp: "+format, args...)
}

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '\'':
			b.WriteString("&apos;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
