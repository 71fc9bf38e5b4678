package dial

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sort"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/httpupgrade"
	"github.com/starttls/starttls/imap"
	"github.com/starttls/starttls/irc"
	"github.com/starttls/starttls/ldap"
	"github.com/starttls/starttls/nntp"
	"github.com/starttls/starttls/pop3"
	"github.com/starttls/starttls/postgres"
	"github.com/starttls/starttls/sieve"
	"github.com/starttls/starttls/smtp"
	"github.com/starttls/starttls/telnet"
	"github.com/starttls/starttls/xmpp"
)

// Handshaker is the server side of an upgrade: it serves the plaintext
// dialog on conn until the client upgrades and returns the TLS connection
// (every protocol package's Server.Handshake).
type Handshaker interface {
	Handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error)
}

// Gateway is what a TLS gateway (package proxy) needs to know about a
// protocol, so that the gateway itself never switches on protocols.
type Gateway struct {
	// Protocol is the name in the Protocol column of starttls.Schemes.
	Protocol string
	// NewServer returns the protocol's server with opts, whose Handshake
	// serves the pre-TLS dialog of a STARTTLS listener. nil when the
	// server side cannot be proxied; ServerUnsupported says why.
	NewServer         func(opts starttls.ServerOptions) Handshaker
	ServerUnsupported string
	// SkipGreeting reads what a plaintext backend says first when the
	// client, greeted by the gateway's own pre-TLS dialog, must not see it
	// again; it returns the bytes that followed. nil: nothing to skip (the
	// backend speaks second, or the client expects its first words again
	// after TLS).
	SkipGreeting func(conn net.Conn, maxLine int) ([]byte, error)
	// ClientGreeting renders the upstream's greeting, as the client dialog
	// recorded it, for a plaintext client of the gateway; it returns nil
	// for protocols where the server speaks second. The field is nil when
	// the client side cannot be proxied; ClientUnsupported says why.
	ClientGreeting    func(res *starttls.Result) []byte
	ClientUnsupported string
	// Unavailable renders the reply that closes a client the gateway
	// cannot serve (backend down, upstream TLS failed). nil: the protocol
	// has no such text reply and the connection is just closed.
	Unavailable func(text string) []byte
}

func noGreeting(*starttls.Result) []byte { return nil }

const (
	dataChannels  = "FTP data connections are not relayed"
	streamRestart = "the client dialog restarts the stream over TLS, which a plaintext client would open a second time"
)

// gateways maps the Protocol column of starttls.Schemes to its gateway
// glue. A protocol added to the scheme table is added here too.
var gateways = map[string]*Gateway{
	"smtp": {
		NewServer:      func(o starttls.ServerOptions) Handshaker { return &smtp.Server{ServerOptions: o} },
		SkipGreeting:   smtp.SkipGreeting,
		ClientGreeting: smtp.GatewayGreeting,
		Unavailable:    smtp.Unavailable,
	},
	"lmtp": {
		NewServer:      func(o starttls.ServerOptions) Handshaker { return &smtp.Server{ServerOptions: o, LMTP: true} },
		SkipGreeting:   smtp.SkipGreeting,
		ClientGreeting: smtp.GatewayGreeting,
		Unavailable:    smtp.Unavailable,
	},
	"imap": {
		NewServer:      func(o starttls.ServerOptions) Handshaker { return &imap.Server{ServerOptions: o} },
		SkipGreeting:   imap.SkipGreeting,
		ClientGreeting: imap.GatewayGreeting,
		Unavailable:    imap.Unavailable,
	},
	"pop3": {
		NewServer:      func(o starttls.ServerOptions) Handshaker { return &pop3.Server{ServerOptions: o} },
		SkipGreeting:   pop3.SkipGreeting,
		ClientGreeting: pop3.GatewayGreeting,
		Unavailable:    pop3.Unavailable,
	},
	"nntp": {
		NewServer:      func(o starttls.ServerOptions) Handshaker { return &nntp.Server{ServerOptions: o} },
		SkipGreeting:   nntp.SkipGreeting,
		ClientGreeting: nntp.GatewayGreeting,
		Unavailable:    nntp.Unavailable,
	},
	"sieve": {
		NewServer:         func(o starttls.ServerOptions) Handshaker { return &sieve.Server{ServerOptions: o} },
		ClientUnsupported: "the client dialog's capabilities after TLS cannot be replayed as the greeting a plaintext client expects",
		Unavailable:       sieve.Unavailable,
	},
	"irc": {
		NewServer:         func(o starttls.ServerOptions) Handshaker { return &irc.Server{ServerOptions: o} },
		ClientUnsupported: "the client dialog negotiates capabilities over TLS that the plaintext client would negotiate again",
		Unavailable:       irc.Unavailable,
	},
	"xmpp": {
		NewServer:         func(o starttls.ServerOptions) Handshaker { return &xmpp.Server{ServerOptions: o} },
		ClientUnsupported: streamRestart,
	},
	"xmpp-server": {
		NewServer:         func(o starttls.ServerOptions) Handshaker { return &xmpp.Server{ServerOptions: o, ServerToServer: true} },
		ClientUnsupported: streamRestart,
	},
	"ldap": {
		NewServer:      func(o starttls.ServerOptions) Handshaker { return &ldap.Server{ServerOptions: o} },
		ClientGreeting: noGreeting,
	},
	"postgres": {
		NewServer:      func(o starttls.ServerOptions) Handshaker { return &postgres.Server{ServerOptions: o} },
		ClientGreeting: noGreeting,
	},
	"telnet": {
		NewServer:         func(o starttls.ServerOptions) Handshaker { return &telnet.Server{ServerOptions: o} },
		ClientUnsupported: "the Telnet option negotiation of the client dialog cannot be replayed to a plaintext client",
	},
	"http": {
		ServerUnsupported: "the request that asks for Upgrade: TLS/1.0 is answered over TLS (RFC 2817 §3.3) and the server dialog does not hand it over",
		ClientUnsupported: "the client dialog's upgrade request is not the plaintext client's request",
		Unavailable:       httpupgrade.Unavailable,
	},
	"ftp": {
		ServerUnsupported: dataChannels,
		ClientUnsupported: dataChannels,
	},
	"mysql": {
		ServerUnsupported: "the server greeting carries the authentication scramble, which only the backend can issue",
		ClientUnsupported: "the client dialog answers the upstream's greeting before TLS, which the plaintext client would answer again",
	},
}

// Gateways returns the gateway glue of a protocol, or an error naming the
// protocols there are.
func Gateways(protocol string) (*Gateway, error) {
	g, ok := gateways[protocol]
	if !ok {
		names := make([]string, 0, len(gateways))
		for n := range gateways {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("dial: unknown protocol %q (known: %v)", protocol, names)
	}
	c := *g
	c.Protocol = protocol
	return &c, nil
}
