package xmpp

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

const (
	// closeTimeout bounds the polite </stream:stream> of Client.Close.
	closeTimeout = 2 * time.Second
	// maxSkipped bounds the stanzas skipped while waiting for an answer.
	maxSkipped = 64
	// bindResource is the resource the client asks for.
	bindResource = "starttls"
)

// starttlsCmd is the STARTTLS command (RFC 6120 §5.4.2.1).
const starttlsCmd = "<starttls xmlns='" + NSTLS + "'/>"

// Client is an XMPP stream secured per the caller's mode. It is created by
// Upgrade, UpgradeServer, Dial or DialServer, which have already done the
// TLS upgrade; it is not safe for concurrent use.
type Client struct {
	conn   net.Conn // the raw connection, or the *tls.Conn after the upgrade
	br     *bufio.Reader
	st     *stream
	opts   *starttls.ClientOptions
	res    *starttls.Result
	mode   starttls.Mode
	s2s    bool
	proto  string
	name   string // the server's domain: the stream's 'to'
	feats  features
	jid    string
	closed bool
	// lastHeader is the summary of the server's last stream header.
	lastHeader string
}

// Dial connects to addr ("host:port") and runs Upgrade (client-to-server).
// The server name defaults to the host part of addr; opts is copied, never
// modified. A nil opts means safe defaults (ModeAuto: direct TLS on port
// 5223, ModeRequired elsewhere).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "xmpp", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// DialServer connects to addr and runs UpgradeServer (server-to-server).
func DialServer(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "xmpp-server", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return UpgradeServer(ctx, conn, o)
}

// Upgrade runs the client-to-server dialog on conn (RFC 6120 §4–5): the
// stream header to opts.ServerName, the server's header and features,
// <starttls/> per the mode, the TLS handshake and a new stream over TLS,
// trusting only the features read over TLS.
//
// ModeAuto is resolved from the remote port. ModeImplicit does the
// handshake first (XEP-0368, ALPN "xmpp-client" unless the TLS config
// names protocols). ModePlain never upgrades. ModeRequired fails with
// starttls.ErrUpgradeNotOffered when the features lack <starttls/> and
// sends nothing more; <failure/> fails with starttls.ErrUpgradeRefused in
// every mode, as the server then closes the stream. ModeOpportunistic goes
// on in plaintext when the upgrade is not offered.
//
// Bytes after <proceed/> and before the handshake fail the upgrade with
// starttls.ErrPlaintextAfterUpgrade (response injection). A stream error
// fails with *StreamError.
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	return upgrade(ctx, conn, opts, false)
}

// UpgradeServer is Upgrade for a server-to-server stream (RFC 6120 §4.8.2,
// jabber:server): the stream header carries from=opts.LocalName when set
// and declares the dialback namespace; direct TLS uses ALPN "xmpp-server".
// Login is not available on such a stream.
func UpgradeServer(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	return upgrade(ctx, conn, opts, true)
}

func upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions, s2s bool) (*Client, *starttls.Result, error) {
	proto := "xmpp"
	if s2s {
		proto = "xmpp-server"
	}
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: proto, Mode: mode}
	if opts != nil {
		res.Transcript = opts.Transcript
	}
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
	}
	c := &Client{conn: conn, opts: &o, res: res, mode: mode, s2s: s2s, proto: proto}
	c.name = starttls.ServerNameFor(&o, conn)
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

// limit is the size bound of one element.
func (c *Client) limit() int {
	if c.opts.MaxLineLength > 0 {
		return c.opts.MaxLineLength
	}
	return MaxStanzaSize
}

// reset reads from conn with a new buffer and a new stream.
func (c *Client) reset(conn net.Conn, tlsOn bool) {
	c.conn = conn
	c.br = bufio.NewReaderSize(conn, 4096)
	c.st = newStream(c.br, c.limit(), c.res.Transcript, starttls.FromServer, tlsOn)
}

// restart begins a new stream on the same connection (RFC 6120 §4.3.3).
func (c *Client) restart() {
	c.st = newStream(c.br, c.limit(), c.res.Transcript, starttls.FromServer, c.res.Upgraded)
}

// write sends s in one write, shown in the transcript as shown.
func (c *Client) write(s, shown string) error {
	c.res.Transcript.Add(starttls.FromClient, c.res.Upgraded, shown)
	if _, err := io.WriteString(c.conn, s); err != nil {
		return wrapIO(err)
	}
	return nil
}

func (c *Client) note(s string) { c.res.Transcript.Add(starttls.Note, c.res.Upgraded, s) }

// header is the stream header the client opens every stream with (RFC
// 6120 §4.7).
func (c *Client) header() string {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?><stream:stream to='" + esc(c.name) + "'")
	if c.s2s && c.opts.LocalName != "" {
		b.WriteString(" from='" + esc(c.opts.LocalName) + "'")
	}
	b.WriteString(" version='1.0'")
	if c.s2s {
		b.WriteString(" xmlns='" + NSServer + "' xmlns:db='" + NSDialback + "'")
	} else {
		b.WriteString(" xmlns='" + NSClient + "'")
	}
	b.WriteString(" xmlns:stream='" + NSStreams + "'>")
	return b.String()
}

func (c *Client) tlsConfigOpts() *starttls.ClientOptions {
	o := *c.opts
	if c.mode == starttls.ModeImplicit && (o.TLSConfig == nil || len(o.TLSConfig.NextProtos) == 0) {
		var cfg *tls.Config
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		} else {
			cfg = &tls.Config{}
		}
		alpn := ALPNClient
		if c.s2s {
			alpn = ALPNServer
		}
		cfg.NextProtos = []string{alpn}
		o.TLSConfig = cfg
	}
	return &o
}

func (c *Client) dialog(ctx context.Context) error {
	switch c.mode {
	case starttls.ModePlain, starttls.ModeOpportunistic, starttls.ModeRequired:
		c.reset(c.conn, false)
	case starttls.ModeImplicit:
		tc, err := starttls.Handshake(ctx, c.conn, c.tlsConfigOpts())
		if err != nil {
			return errorf("direct TLS: %w", err)
		}
		c.tlsDone(tc)
		c.reset(tc, true)
	default:
		return errorf("unsupported mode %v", c.mode)
	}
	if err := c.open(); err != nil {
		return err
	}
	if c.res.Upgraded { // direct TLS
		c.afterTLS()
		c.probeNotRun("direct TLS: no upgrade command")
		return nil
	}
	c.res.CapsBefore = c.feats.Names
	c.res.AuthBefore = c.feats.auth()
	c.res.Offered = c.feats.StartTLS
	c.res.UpgradeRequired = c.feats.Required
	if c.mode == starttls.ModePlain {
		c.probeNotRun("plain mode: no upgrade")
		return nil
	}
	if !c.res.Offered {
		c.probeNotRun("upgrade not offered")
		if c.mode == starttls.ModeRequired {
			// CL-07: nothing else is sent.
			return errorf("no <starttls/> in the stream features: %w", starttls.ErrUpgradeNotOffered)
		}
		return nil
	}
	return c.startTLS(ctx)
}

// open sends a stream header and reads the answer.
func (c *Client) open() error {
	h := c.header()
	if err := c.write(h, h); err != nil {
		return err
	}
	return c.readOpen()
}

// readOpen reads the server's stream header and, for version 1.0, its
// features (RFC 6120 §4.3.2).
func (c *Client) readOpen() error {
	h, err := c.st.header()
	if err != nil {
		return fmt.Errorf("%w (waiting for the stream header)", err)
	}
	if !h.is(NSStreams, "stream") {
		return starttls.ProtocolError(c.proto, "the server answered with <%s xmlns='%s'>, not a stream header", clip(h.Name.Local, 40), clip(h.Name.Space, 60))
	}
	want := NSClient
	if c.s2s {
		want = NSServer
	}
	if ns := h.attr("xmlns"); ns != want {
		return starttls.ProtocolError(c.proto, "stream namespace %q, want %q", clip(ns, 60), want)
	}
	c.lastHeader = summary(h)
	if c.res.Greeting == "" {
		c.res.Greeting = c.lastHeader
	}
	c.feats = features{}
	if v := h.attr("version"); !strings.HasPrefix(v, "1.") {
		// RFC 6120 §4.7.5: a server without version 1.0 sends no features.
		c.note("stream version " + clip(v, 10) + ": no stream features")
		return nil
	}
	el, err := c.next()
	if err != nil {
		return fmt.Errorf("%w (waiting for the stream features)", err)
	}
	if !el.is(NSStreams, "features") {
		return starttls.ProtocolError(c.proto, "expected <stream:features>, got <%s>", clip(el.Name.Local, 40))
	}
	c.feats = parseFeatures(el)
	c.res.CapsReread = c.res.Upgraded
	return nil
}

// next reads one element; a stream error or the end of the stream is an
// error.
func (c *Client) next() (*element, error) {
	el, err := c.st.next()
	if errors.Is(err, errStreamClosed) {
		return nil, errorf("the server closed the stream")
	}
	if err != nil {
		return nil, err
	}
	if serr := streamError(el); serr != nil {
		return nil, serr
	}
	return el, nil
}

// probeNotRun records why the injection probe could not run.
func (c *Client) probeNotRun(why string) {
	if c.opts.ProbeInjection && c.res.Injection == nil {
		c.res.Injection = &starttls.InjectionProbe{Err: why}
	}
}

// startTLS sends <starttls/> (RFC 6120 §5.4.2), checks for response
// injection, shakes hands and opens a new stream over TLS.
func (c *Client) startTLS(ctx context.Context) error {
	var probe *starttls.InjectionProbe
	var err error
	if c.opts.ProbeInjection {
		h := c.header()
		probe = &starttls.InjectionProbe{Sent: h}
		c.res.Injection = probe
		err = c.write(starttlsCmd+h, starttlsCmd+h)
	} else {
		err = c.write(starttlsCmd, starttlsCmd)
	}
	if err != nil {
		return err
	}
	el, err := c.next()
	if err != nil {
		return fmt.Errorf("%w (waiting for the answer to <starttls/>)", err)
	}
	c.res.UpgradeReply = strings.TrimSpace(c.st.budget.copy.String())
	switch {
	case el.is(NSTLS, "proceed"):
	case el.is(NSTLS, "failure"):
		if probe != nil {
			probe.Err = "upgrade refused"
		}
		return errorf("<starttls/> answered <failure/>: %w", starttls.ErrUpgradeRefused)
	default:
		return starttls.ProtocolError(c.proto, "<starttls/> answered with <%s>", clip(el.Name.Local, 40))
	}

	// Upgrade rule 1 (RFC 6120 §5.4.3.3): TLS starts right after the '>'
	// of <proceed/>; the parser read nothing beyond it, so any byte in the
	// buffer came after it in plaintext.
	if n := c.br.Buffered(); n > 0 {
		b := make([]byte, n)
		io.ReadFull(c.br, b)
		if probe != nil {
			probe.Reply = fmt.Sprintf("(in plaintext, before TLS; discarded) %s", starttls.Escape(string(b)))
			c.note(fmt.Sprintf("%d bytes in plaintext after <proceed/> (answer to the probe?), discarded", n))
		} else {
			c.res.PlaintextAfterUpgrade = b
			c.note(fmt.Sprintf("%d bytes of plaintext after the upgrade: %q", n, clip(string(b), 80)))
			return errorf("%d bytes received after <proceed/>, before TLS: %w", n, starttls.ErrPlaintextAfterUpgrade)
		}
	}

	tc, err := starttls.Handshake(ctx, c.conn, c.opts)
	if err != nil {
		if probe != nil {
			if textline.IsClosed(err) {
				probe.Closed = true
			} else {
				probe.Err = err.Error()
			}
		}
		return errorf("STARTTLS: %w", err)
	}
	c.tlsDone(tc)
	c.reset(tc, true)
	st := tc.ConnectionState()
	c.note(fmt.Sprintf("TLS handshake done: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)))
	// Upgrade rule 3: forget the features read before TLS.
	c.feats = features{}

	if probe != nil {
		answered, err := c.runProbe(ctx, probe)
		if err != nil {
			return err
		}
		if answered {
			// The server answered the pipelined header: that is this
			// stream's header.
			if err := c.readOpen(); err != nil {
				return err
			}
			probe.Reply = c.lastHeader + " " + clip(strings.TrimSpace(c.st.budget.copy.String()), 300)
			c.afterTLS()
			return nil
		}
	}
	if err := c.open(); err != nil {
		return err
	}
	c.afterTLS()
	return nil
}

func (c *Client) tlsDone(tc *tls.Conn) {
	c.conn = tc
	st := tc.ConnectionState()
	c.res.TLS = &st
	c.res.Upgraded = true
}

func (c *Client) afterTLS() {
	c.res.CapsAfter = c.feats.Names
	c.res.AuthAfter = c.feats.auth()
	c.res.OfferedAfterTLS = c.feats.StartTLS
}

// runProbe waits opts.Wait() for data the client did not ask for: a server
// that processed the stream header pipelined after <starttls/> answers it
// now, inside TLS.
func (c *Client) runProbe(ctx context.Context, probe *starttls.InjectionProbe) (bool, error) {
	deadline := time.Now().Add(c.opts.Wait())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.conn.SetReadDeadline(deadline)
	_, err := c.br.Peek(1)
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(d)
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
	if cerr := ctx.Err(); cerr != nil {
		return false, cerr
	}
	var ne net.Error
	switch {
	case err == nil:
		probe.Vulnerable = true
		c.note("injection probe: the server answered the stream header pipelined after <starttls/> inside TLS (CVE-2011-0411 class)")
		return true, nil
	case errors.As(err, &ne) && ne.Timeout():
		return false, nil
	case textline.IsClosed(err):
		probe.Closed = true
		return false, errorf("server closed the connection after the TLS handshake (injection probe): %w", err)
	default:
		probe.Err = err.Error()
		return false, wrapIO(err)
	}
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// JID returns the address the server bound after Login, else "".
func (c *Client) JID() string { return c.jid }

// NetConn returns the connection (a *tls.Conn after an upgrade) with any
// bytes already buffered readable first, for interactive use. The Client
// should not be used afterwards.
func (c *Client) NetConn() net.Conn { return &bufferedConn{Conn: c.conn, r: c.br} }

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

// Login authenticates with SASL PLAIN (RFC 6120 §6, RFC 4616; the
// authorization identity is empty), restarts the stream and binds a
// resource (RFC 6120 §7); JID then returns the full address.
//
// Login refuses, with an error wrapping starttls.ErrFallbackForbidden, to
// send credentials on a connection without TLS unless the mode is
// ModePlain. The transcript shows the credentials as "****". It is not
// available on server-to-server streams.
func (c *Client) Login(ctx context.Context, username, password string) error {
	if c.s2s {
		return errorf("no login on a server-to-server stream (servers authenticate with SASL EXTERNAL or dialback)")
	}
	if !c.res.Upgraded && c.mode != starttls.ModePlain {
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	}
	if username == "" || strings.ContainsRune(username, 0) || strings.ContainsRune(password, 0) {
		return errorf("empty username, or NUL in the username or password")
	}
	if !slices.Contains(c.feats.Mechs, "PLAIN") {
		return errorf("SASL PLAIN not offered (mechanisms: %s)", strings.Join(c.feats.Mechs, ", "))
	}
	ctx, done := c.begin(ctx)
	defer done()
	return textline.CtxErr(ctx, c.login(username, password))
}

func (c *Client) login(username, password string) error {
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + username + "\x00" + password))
	const open = "<auth xmlns='" + NSSASL + "' mechanism='PLAIN'>"
	if err := c.write(open+ir+"</auth>", open+"****</auth>"); err != nil {
		return err
	}
	el, err := c.next()
	if err != nil {
		return err
	}
	switch {
	case el.is(NSSASL, "success"):
	case el.is(NSSASL, "failure"):
		return saslError(el)
	default:
		return starttls.ProtocolError(c.proto, "<auth/> answered with <%s>", clip(el.Name.Local, 40))
	}
	// RFC 6120 §6.4.6: a new stream, new features.
	c.restart()
	if err := c.open(); err != nil {
		return err
	}
	if !c.feats.Bind {
		return nil
	}
	return c.bind()
}

func saslError(el *element) error {
	se := &SASLError{Condition: "not-authorized"}
	for _, ch := range el.Children {
		if ch.Name.Space != NSSASL {
			continue
		}
		if ch.Name.Local == "text" {
			se.Text = clip(strings.TrimSpace(ch.Text), 200)
		} else {
			se.Condition = ch.Name.Local
		}
	}
	return se
}

// bind asks for a resource (RFC 6120 §7.5).
func (c *Client) bind() error {
	req := "<iq type='set' id='bind_1'><bind xmlns='" + NSBind + "'><resource>" + bindResource + "</resource></bind></iq>"
	if err := c.write(req, req); err != nil {
		return err
	}
	for range maxSkipped {
		el, err := c.next()
		if err != nil {
			return err
		}
		if el.Name.Local != "iq" || el.attr("id") != "bind_1" {
			continue
		}
		if el.attr("type") != "result" {
			return errorf("resource binding refused")
		}
		if j := el.child(NSBind, "bind").child(NSBind, "jid"); j != nil {
			c.jid = clip(strings.TrimSpace(j.Text), 3071)
		}
		return nil
	}
	return starttls.ProtocolError(c.proto, "no answer to the resource binding among %d stanzas", maxSkipped)
}

// Ping sends an XEP-0199 ping to the server and waits for the answer.
func (c *Client) Ping(ctx context.Context) error {
	ctx, done := c.begin(ctx)
	defer done()
	req := "<iq type='get' id='ping_1' to='" + esc(c.name) + "'><ping xmlns='" + NSPing + "'/></iq>"
	if err := c.write(req, req); err != nil {
		return textline.CtxErr(ctx, err)
	}
	for range maxSkipped {
		el, err := c.next()
		if err != nil {
			return textline.CtxErr(ctx, err)
		}
		if el.Name.Local != "iq" || el.attr("id") != "ping_1" {
			continue
		}
		if el.attr("type") != "result" {
			return errorf("ping answered with an error")
		}
		return nil
	}
	return starttls.ProtocolError(c.proto, "no answer to the ping among %d stanzas", maxSkipped)
}

// Close ends the stream with </stream:stream> (RFC 6120 §4.4), waits
// briefly for the server's, and closes the connection.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(closeTimeout))
	if c.write("</stream:stream>", "</stream:stream>") == nil {
		for range maxSkipped {
			if _, err := c.st.next(); err != nil {
				break
			}
		}
	}
	return c.conn.Close()
}
