package mysql

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// quitTimeout bounds the polite COM_QUIT of Client.Close.
const quitTimeout = 2 * time.Second

// ProbeUser is the user name ProbePlaintextLogin logs in as, with an empty
// password.
const ProbeUser = "starttls-probe"

// clientCaps are the capabilities this client asks for (before masking
// with the server's): 4.1 protocol and auth, plugin auth, no
// CLIENT_DEPRECATE_EOF, no CLIENT_LOCAL_FILES, no compression.
const clientCaps = ClientLongPassword | ClientLongFlag | ClientProtocol41 | ClientTransactions |
	ClientSecureConnection | ClientPluginAuth

// Client is a MySQL connection secured per the caller's mode. It is created
// by Upgrade or Dial, which have already done the TLS upgrade; it is not
// safe for concurrent use.
type Client struct {
	conn     net.Conn // the raw connection, or the *tls.Conn after the upgrade
	w        *wire
	opts     *starttls.ClientOptions
	res      *starttls.Result
	mode     starttls.Mode
	greeting *Greeting
	loggedIn bool
	closed   bool
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// defaults to the host part of addr; opts is copied, never modified. A nil
// opts means safe defaults (ModeAuto, which is ModeRequired for MySQL).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "mysql", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade runs the client side of the connection phase on conn: it reads
// the server's greeting, records its capabilities and, when CLIENT_SSL is
// set, sends the SSLRequest and does the TLS handshake.
//
// ModeAuto resolves to ModeRequired (MySQL has no implicit-TLS port).
// ModeRequired fails with ErrUpgradeNotOffered, having sent nothing, when
// the greeting lacks CLIENT_SSL; ModeOpportunistic then goes on in
// plaintext without an error. ModeImplicit does the handshake first and
// reads the greeting over TLS. ModePlain never upgrades.
//
// Bytes received after the greeting and before the handshake fail with
// ErrPlaintextAfterUpgrade (Result.PlaintextAfterUpgrade holds them). An ERR
// packet in answer to the SSLRequest fails with ErrUpgradeRefused in every
// mode, since the server closes the connection after it.
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "mysql", Mode: mode}
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
	}
	res.Transcript = o.Transcript
	c := &Client{conn: conn, opts: &o, res: res, mode: mode}
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	defer cancel()
	stop := textline.Watch(ctx, conn)
	err := c.dialog(ctx)
	stop()
	if err != nil {
		c.conn.Close()
		return nil, res, textline.CtxErr(ctx, err)
	}
	return c, res, nil
}

func (c *Client) dialog(ctx context.Context) error {
	switch c.mode {
	case starttls.ModePlain, starttls.ModeOpportunistic, starttls.ModeRequired:
		c.w = newWire(c.conn, c.res.Transcript, starttls.FromClient)
	case starttls.ModeImplicit:
		tc, err := starttls.Handshake(ctx, c.conn, c.opts)
		if err != nil {
			return errorf("implicit TLS: %w", err)
		}
		c.w = newWire(tc, c.res.Transcript, starttls.FromClient)
		c.tlsDone(tc)
	default:
		return errorf("unsupported mode %v", c.mode)
	}
	g, err := readGreeting(c.w)
	if err != nil {
		return err
	}
	c.greeting = g
	c.res.Greeting = g.String()
	if c.res.Upgraded { // implicit TLS: the greeting came over TLS
		c.res.CapsAfter = CapNames(g.Capabilities)
		c.res.CapsReread = true
		c.res.AuthAfter = []string{defaultPlugin(g)}
		return c.noBuffered()
	}
	c.res.CapsBefore = CapNames(g.Capabilities)
	c.res.Offered = g.Capabilities&ClientSSL != 0
	if c.mode == starttls.ModePlain || (!c.res.Offered && c.mode == starttls.ModeOpportunistic) {
		return c.noBuffered()
	}
	if !c.res.Offered {
		// BACKRONYM (CVE-2015-3152): nothing is sent, least of all a login.
		return errorf("the greeting lacks CLIENT_SSL: %w", starttls.ErrUpgradeNotOffered)
	}
	return c.startTLS(ctx)
}

// noBuffered fails when the server sent more than its greeting before the
// client spoke.
func (c *Client) noBuffered() error {
	if n := c.w.r.Buffered(); n > 0 {
		return starttls.ProtocolError("mysql", "%d bytes of unsolicited data after the greeting", n)
	}
	return nil
}

// readGreeting reads and parses the Initial Handshake Packet.
func readGreeting(w *wire) (*Greeting, error) {
	p, err := w.readPacket(MaxHandshakePacket)
	if err != nil {
		return nil, fmt.Errorf("%w (waiting for the greeting)", err)
	}
	g, err := ParseGreeting(p)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			w.record(e.Error())
			return nil, errorf("server refused the connection: %w", e)
		}
		w.record(fmt.Sprintf("(malformed greeting, %d bytes)", len(p)))
		return nil, err
	}
	w.record(fmt.Sprintf("greeting: protocol %d, server %s, auth plugin %q, capabilities %s",
		g.ProtocolVersion, g.String(), starttls.Escape(g.AuthPlugin), strings.Join(CapNames(g.Capabilities), " ")))
	return g, nil
}

func defaultPlugin(g *Greeting) string {
	if g.AuthPlugin == "" {
		return PluginNativePassword
	}
	return starttls.Escape(g.AuthPlugin)
}

// startTLS sends the SSLRequest and does the handshake. MySQL has no
// go-ahead: the ClientHello follows the SSLRequest at once, and a server
// that refuses answers with an ERR packet where the ServerHello should be.
func (c *Client) startTLS(ctx context.Context) error {
	req := &handshakeResponse{
		Capabilities: (clientCaps & c.greeting.Capabilities) | ClientProtocol41 | ClientSSL,
		MaxPacket:    MaxResultPacket,
		Charset:      charsetUTF8MB4,
	}
	if err := c.w.writePacket(req.header(), "SSLRequest (CLIENT_SSL)"); err != nil {
		return err
	}
	// Upgrade rule 1: anything the server sent after its greeting and
	// before the handshake is response injection.
	if n := c.w.r.Buffered(); n > 0 {
		b := make([]byte, n)
		io.ReadFull(c.w.r, b)
		c.res.PlaintextAfterUpgrade = b
		c.w.note(fmt.Sprintf("%d bytes of plaintext after the greeting, before TLS: %q", n, clip(b, 80)))
		return fmt.Errorf("mysql: %d bytes received after the greeting, before TLS: %w", n, starttls.ErrPlaintextAfterUpgrade)
	}
	rc := &recordConn{Conn: c.conn}
	tc, err := starttls.Handshake(ctx, rc, c.opts)
	if err != nil {
		if e := refusal(rc.recorded(), c.w.seq); e != nil {
			c.res.UpgradeReply = fmt.Sprintf("ERR %d (%s) %s", e.Code, e.State, e.Message)
			c.w.record(c.res.UpgradeReply + " (instead of the TLS handshake)")
			return fmt.Errorf("mysql: SSLRequest: %w: %w", starttls.ErrUpgradeRefused, e)
		}
		return errorf("SSLRequest: %w", err)
	}
	rc.stop()
	c.tlsDone(tc)
	// Upgrade rule 3 as far as MySQL allows: there is nothing to read again
	// over TLS; the pre-TLS capabilities are only repeated.
	c.res.CapsAfter = CapNames(c.greeting.Capabilities)
	c.res.CapsReread = false
	c.res.AuthAfter = []string{defaultPlugin(c.greeting)}
	c.w.note("MySQL does not repeat its capabilities over TLS; those of the plaintext greeting stay in use")
	return nil
}

func (c *Client) tlsDone(tc *tls.Conn) {
	c.conn = tc
	st := tc.ConnectionState()
	c.res.TLS = &st
	c.res.Upgraded = true
	seq := c.w.seq
	c.w.reset(tc)
	c.w.seq = seq
	c.w.note(fmt.Sprintf("TLS handshake done: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)))
}

// recordConn keeps the first bytes read during the handshake, so that an
// ERR packet sent instead of a ServerHello can be reported as a refusal.
type recordConn struct {
	net.Conn
	mu   sync.Mutex
	buf  []byte
	done bool
}

const maxRecorded = 1024

func (r *recordConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	if !r.done && len(r.buf) < maxRecorded {
		r.buf = append(r.buf, p[:min(n, maxRecorded-len(r.buf))]...)
	}
	r.mu.Unlock()
	return n, err
}

func (r *recordConn) stop() {
	r.mu.Lock()
	r.done, r.buf = true, nil
	r.mu.Unlock()
}

func (r *recordConn) recorded() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf...)
}

// refusal parses b as an ERR packet with sequence id seq, as a server sends
// it instead of the ServerHello; nil when b is something else.
func refusal(b []byte, seq byte) *Error {
	if len(b) < 7 || b[3] != seq || b[4] != 0xff {
		return nil
	}
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	if n < 3 || n > MaxHandshakePacket {
		return nil
	}
	p := b[4:]
	if len(p) > n {
		p = p[:n]
	}
	return parseErr(p)
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n])
	}
	return string(b)
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// Greeting returns the server's greeting.
func (c *Client) Greeting() *Greeting { return c.greeting }

// NetConn returns the connection (a *tls.Conn after an upgrade) with any
// bytes already buffered readable first, for interactive use. The Client
// should not be used afterwards.
func (c *Client) NetConn() net.Conn { return &bufferedConn{Conn: c.w.conn, r: c.w.r} }

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// begin applies ctx to one exchange.
func (c *Client) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	stop := textline.Watch(ctx, c.conn)
	return ctx, func() { stop(); cancel() }
}

// Login authenticates with a HandshakeResponse41 (inside TLS after an
// upgrade: sequence id 2) answering the greeting's auth plugin
// (mysql_native_password or caching_sha2_password; any other plugin is
// answered with mysql_native_password), then follows AuthSwitchRequest and
// AuthMoreData packets: caching_sha2_password's full authentication and
// mysql_clear_password send the password in clear, which Login does only
// inside TLS. Result.AuthAfter is set to the plugin that succeeded.
//
// Login refuses, with an error wrapping starttls.ErrFallbackForbidden, to
// send credentials without TLS unless the mode is ModePlain. The
// transcript never shows the auth data. A refused login is an *Error (1045
// Access denied); the server closes the connection after it.
func (c *Client) Login(ctx context.Context, username, password string) error {
	tlsOn := c.res.Upgraded
	if !tlsOn && c.mode != starttls.ModePlain {
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	}
	if c.loggedIn {
		return errorf("already logged in")
	}
	if strings.ContainsRune(username, 0) || strings.ContainsRune(password, 0) {
		return errorf("username or password contains a NUL byte")
	}
	g := c.greeting
	if g.Capabilities&ClientProtocol41 == 0 || g.Capabilities&ClientSecureConnection == 0 {
		return errorf("server %q predates MySQL 4.1 authentication: %w", g.ServerVersion, starttls.ErrProtocol)
	}
	ctx, done := c.begin(ctx)
	defer done()
	plugin := g.AuthPlugin
	if plugin != PluginNativePassword && plugin != PluginCachingSHA2 {
		plugin = PluginNativePassword
	}
	auth, _ := authResponse(plugin, g.Scramble, password, tlsOn)
	caps := (clientCaps & g.Capabilities) | ClientProtocol41 | ClientSecureConnection
	if tlsOn {
		caps |= ClientSSL
	}
	h := &handshakeResponse{Capabilities: caps, MaxPacket: MaxResultPacket, Charset: charsetUTF8MB4,
		User: username, AuthResponse: auth, AuthPlugin: plugin}
	if g.Capabilities&ClientPluginAuth == 0 {
		h.Capabilities &^= ClientPluginAuth
	}
	shown := fmt.Sprintf("HandshakeResponse41 user %q, %s response ****", starttls.Escape(username), plugin)
	if err := c.w.writePacket(h.marshal(), shown); err != nil {
		return textline.CtxErr(ctx, err)
	}
	err := c.authExchange(plugin, password, tlsOn)
	return textline.CtxErr(ctx, err)
}

// maxAuthRounds bounds auth switches and more-data exchanges.
const maxAuthRounds = 4

func (c *Client) authExchange(plugin, password string, tlsOn bool) error {
	for range maxAuthRounds {
		p, err := c.w.readPacket(MaxHandshakePacket)
		if err != nil {
			return err
		}
		if len(p) == 0 {
			c.w.record("(empty packet)")
			return starttls.ProtocolError("mysql", "empty packet in the auth exchange")
		}
		switch p[0] {
		case 0x00:
			c.w.record("OK (logged in with " + plugin + ")")
			c.loggedIn = true
			c.res.AuthAfter = []string{plugin}
			return nil
		case 0xff:
			e := parseErr(p)
			c.w.record(e.Error())
			return e
		case 0xfe:
			if len(p) == 1 {
				c.w.record("old auth switch request")
				return errorf("server asked for the pre-4.1 password hash, refused: %w", starttls.ErrProtocol)
			}
			d := &decoder{b: p[1:]}
			name := d.nulString("auth switch request")
			if d.err != nil {
				return d.err
			}
			data := d.b
			plugin = starttls.Escape(name)
			c.w.record("AuthSwitchRequest to " + plugin)
			auth, err := authResponse(name, data, password, tlsOn)
			if err != nil {
				return err
			}
			if err := c.w.writePacket(auth, "auth response ("+plugin+") ****"); err != nil {
				return err
			}
		case 0x01:
			if plugin != PluginCachingSHA2 || len(p) != 2 {
				c.w.record(fmt.Sprintf("AuthMoreData (%d bytes)", len(p)))
				return starttls.ProtocolError("mysql", "unexpected AuthMoreData for %s", plugin)
			}
			switch p[1] {
			case 3:
				c.w.record("AuthMoreData: fast authentication succeeded")
			case 4:
				c.w.record("AuthMoreData: full authentication required")
				if !tlsOn {
					return errorf("caching_sha2_password full authentication needs TLS (RSA key exchange is not supported): %w", starttls.ErrFallbackForbidden)
				}
				if err := c.w.writePacket(append([]byte(password), 0), "password (in clear, inside TLS) ****"); err != nil {
					return err
				}
			default:
				return starttls.ProtocolError("mysql", "AuthMoreData %d", p[1])
			}
		default:
			c.w.record(fmt.Sprintf("(unexpected packet 0x%02x, %d bytes)", p[0], len(p)))
			return starttls.ProtocolError("mysql", "unexpected packet 0x%02x in the auth exchange", p[0])
		}
	}
	return starttls.ProtocolError("mysql", "more than %d auth exchanges", maxAuthRounds)
}

// authResponse computes the auth data for plugin.
func authResponse(plugin string, scramble []byte, password string, tlsOn bool) ([]byte, error) {
	switch plugin {
	case PluginNativePassword:
		return nativePassword(scramble, password), nil
	case PluginCachingSHA2:
		return cachingSHA2Password(scramble, password), nil
	case PluginClearPassword:
		if !tlsOn {
			return nil, errorf("server asked for the password in clear without TLS, refused: %w", starttls.ErrFallbackForbidden)
		}
		return append([]byte(password), 0), nil
	}
	return nil, errorf("unsupported auth plugin %q", starttls.Escape(plugin))
}

// Query runs one statement with COM_QUERY and returns its text result set
// (or, for a statement without one, the affected rows). Results are
// bounded: ClientOptions.MaxLines rows, MaxResultPacket per packet,
// MaxResultBytes in all. A LOCAL INFILE request is refused and ends the
// session.
func (c *Client) Query(ctx context.Context, query string) (*Rows, error) {
	if !c.loggedIn {
		return nil, errorf("Query before Login")
	}
	ctx, done := c.begin(ctx)
	defer done()
	c.w.seq = 0
	if err := c.w.writePacket(append([]byte{0x03}, query...), "COM_QUERY "+starttls.Escape(query)); err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	rs, err := c.w.readResult(c.opts.LinesLimit())
	return rs, textline.CtxErr(ctx, err)
}

// Ping sends COM_PING and waits for the OK.
func (c *Client) Ping(ctx context.Context) error {
	if !c.loggedIn {
		return errorf("Ping before Login")
	}
	ctx, done := c.begin(ctx)
	defer done()
	c.w.seq = 0
	if err := c.w.writePacket([]byte{0x0e}, "COM_PING"); err != nil {
		return textline.CtxErr(ctx, err)
	}
	rs, err := c.w.readResult(0)
	if err == nil && rs.Columns != nil {
		err = starttls.ProtocolError("mysql", "result set in answer to COM_PING")
	}
	return textline.CtxErr(ctx, err)
}

// Close sends COM_QUIT after a login (before it the server expects a
// handshake response, not a command) and closes the connection.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(quitTimeout))
	if c.loggedIn {
		c.w.seq = 0
		c.w.writePacket([]byte{0x01}, "COM_QUIT")
	}
	return c.conn.Close()
}

// ProbePlaintextLogin reads the greeting on conn, which must be a fresh
// plaintext connection, and sends a HandshakeResponse41 without TLS for
// the user ProbeUser with an empty password (never a real credential). It
// returns the login methods the server accepts in plaintext:
//
//   - OK: the server let the probe in without TLS and without a password →
//     the auth plugin used.
//   - AuthSwitchRequest to mysql_clear_password or dialog: the server asks
//     for the password in clear text without TLS → that plugin.
//   - ERR 3159 (ER_SECURE_TRANSPORT_REQUIRED) or an ERR that names secure
//     transport: logins need TLS → an empty list.
//   - ERR 1045 (Access denied) and other auth switches: an error, because
//     the answer does not tell. MySQL checks require_secure_transport only
//     after a correct password, and MariaDB (10.11) answers a plaintext
//     login under require_secure_transport with the same 1045 it gives a
//     wrong password, so a probe without a real credential cannot tell a
//     server that would accept the login from one that would not.
//
// It does not close conn (the caller does).
func ProbePlaintextLogin(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) ([]string, error) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	defer cancel()
	stop := textline.Watch(ctx, conn)
	defer stop()
	var tr *starttls.Transcript
	if opts != nil {
		tr = opts.Transcript
	}
	w := newWire(conn, tr, starttls.FromClient)
	mechs, err := probe(w)
	return mechs, textline.CtxErr(ctx, err)
}

func probe(w *wire) ([]string, error) {
	g, err := readGreeting(w)
	if err != nil {
		return nil, err
	}
	if g.Capabilities&ClientProtocol41 == 0 || g.Capabilities&ClientSecureConnection == 0 {
		return nil, errorf("server %q predates MySQL 4.1 authentication", starttls.Escape(g.ServerVersion))
	}
	plugin := g.AuthPlugin
	if plugin != PluginNativePassword && plugin != PluginCachingSHA2 {
		plugin = PluginNativePassword
	}
	h := &handshakeResponse{
		Capabilities: (clientCaps & g.Capabilities) | ClientProtocol41 | ClientSecureConnection,
		MaxPacket:    MaxHandshakePacket, Charset: charsetUTF8MB4, User: ProbeUser, AuthPlugin: plugin,
	}
	if err := w.writePacket(h.marshal(), fmt.Sprintf("HandshakeResponse41 user %q, empty %s response (plaintext-login probe)", ProbeUser, plugin)); err != nil {
		return nil, err
	}
	p, err := w.readPacket(MaxHandshakePacket)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, starttls.ProtocolError("mysql", "empty answer to the probe login")
	}
	switch p[0] {
	case 0x00:
		w.record("OK: logged in without TLS and without a password")
		w.seq = 0
		w.writePacket([]byte{0x01}, "COM_QUIT")
		return []string{plugin}, nil
	case 0xff:
		e := parseErr(p)
		w.record(e.Error())
		if e.insecureTransport() {
			return []string{}, nil
		}
		if e.Code == ErAccessDenied {
			return nil, errorf("the probe login was refused with %v, which MySQL and MariaDB also answer when only TLS logins are allowed: cannot tell without a real password", e)
		}
		return nil, errorf("probe login: %w", e)
	case 0xfe:
		d := &decoder{b: p[1:]}
		name := starttls.Escape(d.nulString("auth switch request"))
		w.record("AuthSwitchRequest to " + name)
		if name == PluginClearPassword || name == "dialog" {
			return []string{name}, nil
		}
		return nil, errorf("the server switched the probe login to %q: cannot tell without a real password", name)
	}
	w.record(fmt.Sprintf("(packet 0x%02x, %d bytes)", p[0], len(p)))
	return nil, errorf("the probe login got packet 0x%02x: cannot tell", p[0])
}
