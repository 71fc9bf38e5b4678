package dial

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sort"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/ftp"
	"github.com/starttls/starttls/httpupgrade"
	"github.com/starttls/starttls/imap"
	"github.com/starttls/starttls/irc"
	"github.com/starttls/starttls/ldap"
	"github.com/starttls/starttls/mysql"
	"github.com/starttls/starttls/nntp"
	"github.com/starttls/starttls/pop3"
	"github.com/starttls/starttls/postgres"
	"github.com/starttls/starttls/sieve"
	"github.com/starttls/starttls/smtp"
	"github.com/starttls/starttls/telnet"
	"github.com/starttls/starttls/xmpp"
)

// MITMServer is the server side the stripping simulator (package strip)
// shows a client under test: every protocol package's Server has it.
type MITMServer interface {
	// ServeConn serves a whole session (the attacker plays the server).
	ServeConn(ctx context.Context, conn net.Conn) error
	// Handshake serves the dialog up to the upgrade and returns the TLS
	// connection (the attacker relays from there).
	Handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error)
}

// MITM is what the stripping simulator needs to know of a protocol, so
// that it never switches on protocols itself. A protocol added here is
// simulated without any change to package strip.
type MITM struct {
	// Server makes the protocol's server with the options an attack sets.
	Server func(o starttls.ServerOptions) MITMServer
	// Command names the command of a client line ("" if none: transcripts
	// show only that much of what a client sent, never arguments that may
	// be secrets) and reports whether it only discovers the server, asks
	// for the upgrade or leaves; anything else sent before TLS is
	// continuing in plaintext. nil means a binary protocol: every byte
	// after a refused upgrade counts.
	Command func(line string) (verb string, idle bool)
	// Forged returns the replies injected after the go-ahead to the
	// client's upgrade command (response injection). With it, the first
	// command a client sends inside TLS is answered by the protocol's
	// server only after a delay: a client that sends a second command in
	// the meantime acted on the forged answer. Commands are lines, or, for
	// a protocol without Command, the client's writes (TLS records). nil:
	// ForgedNA says why the attack does not apply.
	Forged   func(command string) []byte
	ForgedNA string
	// ServerFirst is true when the server speaks first once TLS is up
	// (ManageSieve sends its capabilities): a client that keeps a forged
	// reply then sends one command before the real answer, not two.
	ServerFirst bool
	// Credentials is true when the protocol's server reports logins
	// through ServerOptions.OnCredentials.
	Credentials bool
}

// mitms maps the Protocol column of starttls.Schemes to its simulator
// knowledge. Protocols missing here are refused by the simulator.
var mitms = map[string]MITM{
	"smtp": {
		Server:  func(o starttls.ServerOptions) MITMServer { return smtp.MITMServer(o) },
		Command: smtp.MITMCommand, Forged: smtp.MITMForged, Credentials: true,
	},
	"lmtp": {
		Server:  func(o starttls.ServerOptions) MITMServer { return smtp.MITMServerLMTP(o) },
		Command: smtp.MITMCommand, Forged: smtp.MITMForged, Credentials: true,
	},
	"imap": {
		Server:  func(o starttls.ServerOptions) MITMServer { return imap.MITMServer(o) },
		Command: imap.MITMCommand, Forged: imap.MITMForged, Credentials: true,
	},
	"pop3": {
		Server:  func(o starttls.ServerOptions) MITMServer { return pop3.MITMServer(o) },
		Command: pop3.MITMCommand, Forged: pop3.MITMForged, Credentials: true,
	},
	"nntp": {
		Server:  func(o starttls.ServerOptions) MITMServer { return nntp.MITMServer(o) },
		Command: nntp.MITMCommand, Forged: nntp.MITMForged, Credentials: true,
	},
	"sieve": {
		Server:  func(o starttls.ServerOptions) MITMServer { return sieve.MITMServer(o) },
		Command: sieve.MITMCommand, Forged: sieve.MITMForged, Credentials: true, ServerFirst: true,
	},
	"ftp": {
		Server:  func(o starttls.ServerOptions) MITMServer { return ftp.MITMServer(o) },
		Command: ftp.MITMCommand, Forged: ftp.MITMForged, Credentials: true,
	},
	"irc": {
		Server:  func(o starttls.ServerOptions) MITMServer { return irc.MITMServer(o) },
		Command: irc.MITMCommand, ForgedNA: irc.MITMForgedNA, Credentials: true,
	},
	"xmpp": {
		Server:   func(o starttls.ServerOptions) MITMServer { return xmpp.MITMServer(o) },
		ForgedNA: xmpp.MITMForgedNA, Credentials: true,
	},
	"xmpp-server": {
		Server:   func(o starttls.ServerOptions) MITMServer { return xmpp.MITMServerS2S(o) },
		ForgedNA: xmpp.MITMForgedNA,
	},
	"ldap": {
		Server:   func(o starttls.ServerOptions) MITMServer { return ldap.MITMServer(o) },
		ForgedNA: ldap.MITMForgedNA, Credentials: true,
	},
	"postgres": {
		Server: func(o starttls.ServerOptions) MITMServer { return postgres.MITMServer(o) },
		Forged: postgres.MITMForged, Credentials: true,
	},
	"mysql": {
		Server:   func(o starttls.ServerOptions) MITMServer { return mysql.MITMServer(o) },
		ForgedNA: mysql.MITMForgedNA, Credentials: true,
	},
	"http": {
		Server:  func(o starttls.ServerOptions) MITMServer { return httpupgrade.MITMServer(o) },
		Command: httpupgrade.MITMCommand, Forged: httpupgrade.MITMForged, Credentials: true, ServerFirst: true,
	},
	"telnet": {
		Server:   func(o starttls.ServerOptions) MITMServer { return telnet.MITMServer(o) },
		ForgedNA: telnet.MITMForgedNA, Credentials: true,
	},
}

// MITMFor returns the simulator knowledge of a protocol.
func MITMFor(protocol string) (MITM, error) {
	m, ok := mitms[protocol]
	if !ok {
		return MITM{}, fmt.Errorf("dial: protocol %q cannot be simulated by strip (have: %v)", protocol, MITMProtocols())
	}
	return m, nil
}

// MITMProtocols returns the protocols the simulator knows.
func MITMProtocols() []string {
	names := make([]string, 0, len(mitms))
	for n := range mitms {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
