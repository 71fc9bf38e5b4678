// Package dial connects to any target in the protocol table: it is the one
// place that maps a protocol name to its package, so that the command line,
// the checker, the proxy and the stripping simulator never switch on
// protocols themselves.
package dial

import (
	"context"
	"fmt"
	"net"
	"sort"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/ftp"
	"github.com/starttls/starttls/httpupgrade"
	"github.com/starttls/starttls/imap"
	"github.com/starttls/starttls/internal/textline"
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

// Session is a client connection after the upgrade dialog, whatever the
// protocol.
type Session interface {
	// Result is the record of the dialog.
	Result() *starttls.Result
	// NetConn is the connection for raw use after the dialog.
	NetConn() net.Conn
	// Login authenticates; it refuses to send credentials before TLS unless
	// the mode is ModePlain.
	Login(ctx context.Context, username, password string) error
	// Close ends the session politely and closes the connection.
	Close() error
}

// UpgradeFunc runs a protocol's client dialog on an open connection.
type UpgradeFunc func(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (Session, *starttls.Result, error)

// adapt turns a protocol package's Upgrade into an UpgradeFunc, taking care
// that a nil *Client becomes a nil Session rather than a non-nil interface
// holding a nil pointer.
func adapt[C Session](f func(context.Context, net.Conn, *starttls.ClientOptions) (C, *starttls.Result, error)) UpgradeFunc {
	return func(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (Session, *starttls.Result, error) {
		c, res, err := f(ctx, conn, opts)
		if err != nil {
			return nil, res, err
		}
		return c, res, nil
	}
}

// clients maps the Protocol column of starttls.Schemes to its
// implementation. A protocol added to the scheme table is added here too.
var clients = map[string]UpgradeFunc{
	"smtp":        adapt(smtp.Upgrade),
	"lmtp":        adapt(smtp.UpgradeLMTP),
	"imap":        adapt(imap.Upgrade),
	"pop3":        adapt(pop3.Upgrade),
	"http":        adapt(httpupgrade.Upgrade),
	"telnet":      adapt(telnet.Upgrade),
	"postgres":    adapt(postgres.Upgrade),
	"nntp":        adapt(nntp.Upgrade),
	"sieve":       adapt(sieve.Upgrade),
	"irc":         adapt(irc.Upgrade),
	"xmpp":        adapt(xmpp.Upgrade),
	"xmpp-server": adapt(xmpp.UpgradeServer),
	"ftp":         adapt(ftp.Upgrade),
	"ldap":        adapt(ldap.Upgrade),
	"mysql":       adapt(mysql.Upgrade),
}

// PlaintextAuthFunc asks a server, over conn without TLS and without
// sending a real credential, which login methods it would accept in
// plaintext. It is for protocols whose pre-TLS dialog does not tell:
// PostgreSQL and MySQL clients choose TLS before the server says anything
// about login, and an LDAP server only answers a bind attempt. The probe
// must not close conn; the caller does.
type PlaintextAuthFunc func(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) ([]string, error)

// plaintextAuth maps a protocol name to its plaintext-login probe.
var plaintextAuth = map[string]PlaintextAuthFunc{
	"ldap":     ldap.ProbePlaintextLogin,
	"postgres": postgres.ProbePlaintextAuth,
	"ftp":      ftp.ProbePlaintextLogin,
	"mysql":    mysql.ProbePlaintextLogin,
}

// Protocols returns the names of the protocols this package can dial.
func Protocols() []string {
	names := make([]string, 0, len(clients))
	for n := range clients {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Upgrader returns the client dialog of a protocol.
func Upgrader(protocol string) (UpgradeFunc, error) {
	f, ok := clients[protocol]
	if !ok {
		return nil, fmt.Errorf("dial: protocol %q has no client", protocol)
	}
	return f, nil
}

// Options are the knobs of Dial beyond the protocol's ClientOptions.
type Options struct {
	// Client is copied; Mode defaults to the target's, ServerName to the
	// target's host.
	Client starttls.ClientOptions
	// Source is the local address to dial from (an IP address), e.g.
	// 127.0.0.2. Empty lets the system choose.
	Source string
}

// Dial connects to t and runs its protocol's client dialog.
func Dial(ctx context.Context, t *starttls.Target, o *Options) (Session, *starttls.Result, error) {
	up, err := Upgrader(t.Scheme.Protocol)
	if err != nil {
		return nil, &starttls.Result{Protocol: t.Scheme.Protocol}, err
	}
	opts, d, err := o.prepare(t)
	if err != nil {
		return nil, &starttls.Result{Protocol: t.Scheme.Protocol}, err
	}
	if opts.Mode == starttls.ModeAuto {
		opts.Mode = t.EffectiveMode()
	}
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", t.Addr())
	if err != nil {
		return nil, &starttls.Result{Protocol: t.Scheme.Protocol, Mode: opts.Mode, Transcript: opts.Transcript}, fmt.Errorf("dial: %w", err)
	}
	return up(ctx, conn, &opts)
}

// prepare copies the client options (ServerName defaulting to the
// target's host) and makes the dialer, bound to Source when set.
func (o *Options) prepare(t *starttls.Target) (starttls.ClientOptions, *net.Dialer, error) {
	var opts starttls.ClientOptions
	d := &net.Dialer{}
	if o != nil {
		opts = o.Client
		if o.Source != "" {
			ip := net.ParseIP(o.Source)
			if ip == nil {
				return opts, nil, fmt.Errorf("dial: source %q is not an IP address", o.Source)
			}
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	if opts.ServerName == "" {
		opts.ServerName = t.Host
	}
	return opts, d, nil
}

// HasPlaintextAuthProbe reports whether the protocol has a plaintext-login
// probe (see PlaintextAuthFunc).
func HasPlaintextAuthProbe(protocol string) bool { return plaintextAuth[protocol] != nil }

// ProbePlaintextAuth connects to t without TLS and runs the protocol's
// plaintext-login probe: the login methods the server accepts before TLS.
// It fails for a protocol without one (see HasPlaintextAuthProbe).
func ProbePlaintextAuth(ctx context.Context, t *starttls.Target, o *Options) ([]string, error) {
	probe := plaintextAuth[t.Scheme.Protocol]
	if probe == nil {
		return nil, fmt.Errorf("dial: protocol %q has no plaintext-login probe", t.Scheme.Protocol)
	}
	opts, d, err := o.prepare(t)
	if err != nil {
		return nil, err
	}
	opts.Mode = starttls.ModePlain
	opts.Transcript = nil
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", t.Addr())
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	return probe(ctx, conn, &opts)
}
