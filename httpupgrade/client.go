package httpupgrade

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// Client is an HTTP/1.1 connection secured per the caller's mode. It is
// created by Upgrade or Dial, which have already done the TLS upgrade; it
// is not safe for concurrent use.
type Client struct {
	conn   net.Conn // the raw connection, or the *tls.Conn after the upgrade
	tc     *textline.Conn
	opts   *starttls.ClientOptions
	res    *starttls.Result
	mode   starttls.Mode
	host   string // the Host header
	auth   string // the Authorization header after Login, "" before
	broken bool   // the connection cannot carry another request
	closed bool
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// and the Host header default to the host part of addr; opts is copied,
// never modified. A nil opts means safe defaults (ModeAuto: implicit TLS on
// port 443, ModeRequired elsewhere).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "http", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade runs the client dialog on conn: the mandatory upgrade request of
// RFC 2817 §3.2 (OPTIONS * with "Upgrade: TLS/1.0"), "101 Switching
// Protocols", the TLS handshake, the answer to the OPTIONS request over
// TLS (§3.3) and "HEAD /" over TLS for the capabilities.
//
// ModeAuto is resolved from the remote port. ModeImplicit (https) does the
// handshake first and sends "HEAD /". ModePlain sends "HEAD /" in
// plaintext and never upgrades. ModeRequired fails with
// ErrUpgradeNotOffered when the answer is not 101 (and sends nothing
// more), and with ErrUpgradeRefused when it is 503 (temporary) or names
// TLS in its Upgrade header without switching. ModeOpportunistic goes on in
// plaintext in those cases, without an error.
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "http", Mode: mode}
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
		res.Transcript = opts.Transcript
	}
	c := &Client{conn: conn, opts: &o, res: res, mode: mode, host: hostHeader(&o, conn, mode)}
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

// hostHeader returns the Host header (RFC 9110 §7.2): the server name and
// the port unless it is the default of the scheme (80, or 443 for https).
func hostHeader(o *starttls.ClientOptions, conn net.Conn, mode starttls.Mode) string {
	name := starttls.ServerNameFor(o, conn)
	if strings.Contains(name, ":") {
		name = "[" + name + "]"
	}
	def := 80
	if mode == starttls.ModeImplicit {
		def = 443
	}
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok && a.Port != def && a.Port != 0 {
		return name + ":" + strconv.Itoa(a.Port)
	}
	return name
}

func (c *Client) lineOptions() textline.Options {
	return textline.Options{
		Proto:      "http",
		Local:      starttls.FromClient,
		MaxLine:    c.opts.LineLimit(),
		Transcript: c.res.Transcript,
	}
}

// tlsOptions returns the options for the handshake: ALPN "http/1.1"
// (RFC 7301) unless the caller's config names protocols.
func (c *Client) tlsOptions() *starttls.ClientOptions {
	o := *c.opts
	if o.TLSConfig == nil || len(o.TLSConfig.NextProtos) == 0 {
		var cfg *tls.Config
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		} else {
			cfg = &tls.Config{}
		}
		cfg.NextProtos = []string{"http/1.1"}
		o.TLSConfig = cfg
	}
	return &o
}

// request returns the lines of a request without a body, the empty line
// included.
func (c *Client) request(method, target string, extra ...string) []string {
	lines := []string{method + " " + target + " HTTP/1.1", "Host: " + c.host}
	lines = append(lines, extra...)
	return append(lines, "")
}

// upgradeRequest is the mandatory upgrade of RFC 2817 §3.2.
func (c *Client) upgradeRequest() []string {
	return c.request("OPTIONS", "*", "Upgrade: "+upgradeToken, "Connection: Upgrade")
}

// probeTarget is the request pipelined after the upgrade request by the
// injection probe: harmless, and without a body in its answer.
const probeTarget = "HEAD / HTTP/1.1"

func (c *Client) dialog(ctx context.Context) error {
	switch c.mode {
	case starttls.ModePlain, starttls.ModeOpportunistic, starttls.ModeRequired:
		c.tc = textline.New(c.conn, c.lineOptions())
	case starttls.ModeImplicit:
		tc, err := starttls.Handshake(ctx, c.conn, c.tlsOptions())
		if err != nil {
			return errorf("implicit TLS: %w", err)
		}
		c.tc = textline.New(tc, c.lineOptions())
		c.tlsDone(tc)
		c.probeNotRun("implicit TLS: no upgrade request")
		resp, err := c.do("HEAD", "/")
		if err != nil {
			return err
		}
		c.res.Greeting = resp.line
		c.afterTLS(resp)
		return nil
	default:
		return errorf("unsupported mode %v", c.mode)
	}

	if c.mode == starttls.ModePlain {
		c.probeNotRun("plain mode: no upgrade")
		resp, err := c.do("HEAD", "/")
		if err != nil {
			return err
		}
		c.res.Greeting = resp.line
		c.res.CapsBefore = caps(resp.h)
		c.res.AuthBefore = authSchemes(resp.h)
		c.res.Offered = resp.h.offersTLS()
		return nil
	}

	var probe *starttls.InjectionProbe
	lines := c.upgradeRequest()
	if c.opts.ProbeInjection {
		probe = &starttls.InjectionProbe{Sent: probeTarget}
		c.res.Injection = probe
		lines = append(lines, c.request("HEAD", "/")...)
	}
	if err := c.tc.WriteLines(lines...); err != nil {
		return err
	}
	resp, err := readResponse(c.tc, c.opts.LinesLimit())
	if err != nil {
		return fmt.Errorf("%w (waiting for the answer to the upgrade request)", err)
	}
	c.res.Greeting = resp.line
	c.res.UpgradeReply = resp.line
	c.res.CapsBefore = caps(resp.h)
	c.res.AuthBefore = authSchemes(resp.h)
	c.res.Offered = resp.code == 101 || resp.h.offersTLS()
	if resp.code == 426 && resp.h.offersTLS() {
		c.res.UpgradeRequired = true
	}
	if resp.code != 101 {
		return c.notUpgraded(ctx, resp, probe)
	}
	// RFC 2817 §3.3: the 101 names the protocol switched to.
	if !resp.h.offersTLS() {
		return starttls.ProtocolError("http", "101 Switching Protocols without \"Upgrade: TLS/1.0\" (Upgrade: %q)", resp.h.get("Upgrade"))
	}

	// Upgrade rules 1 and 2: nothing may follow the 101 in plaintext.
	tc, err := c.tc.StartTLS(ctx, c.conn, c.tlsOptions(), c.res, probe, "upgrade", "the 101")
	if err != nil {
		return err
	}
	c.conn = tc

	// RFC 2817 §3.3: the server now answers the OPTIONS request over TLS.
	opt, err := readResponse(c.tc, c.opts.LinesLimit())
	if err != nil {
		if probe != nil && textline.IsClosed(err) {
			probe.Closed = true
		}
		return fmt.Errorf("%w (waiting for the answer to OPTIONS over TLS)", err)
	}
	if err := c.skipBody("OPTIONS", opt); err != nil {
		return err
	}
	if probe != nil {
		if err := c.runProbe(ctx, probe); err != nil {
			return err
		}
	}
	resp, err = c.do("HEAD", "/")
	if err != nil {
		return err
	}
	c.afterTLS(resp)
	// The Allow header of the OPTIONS answer is a capability, too.
	for _, cp := range caps(opt.h) {
		if !slices.Contains(c.res.CapsAfter, cp) {
			c.res.CapsAfter = append(c.res.CapsAfter, cp)
		}
	}
	return nil
}

// notUpgraded handles an answer other than 101 to the upgrade request.
func (c *Client) notUpgraded(ctx context.Context, resp response, probe *starttls.InjectionProbe) error {
	var err error
	switch {
	case resp.code == 503 || resp.code == 429:
		err = fmt.Errorf("http: upgrade: %w: %w", starttls.ErrUpgradeRefused, resp.err())
	case resp.h.offersTLS():
		// The server knows TLS (it names it) but did not switch.
		err = fmt.Errorf("http: upgrade: %w: %w", starttls.ErrUpgradeRefused, resp.err())
	default:
		err = fmt.Errorf("http: upgrade: %q: %w", resp.line, starttls.ErrUpgradeNotOffered)
	}
	if probe != nil {
		probe.Err = "upgrade not done: " + resp.line
	}
	if c.mode == starttls.ModeRequired {
		return err // CL-36: nothing else is sent.
	}
	if err := c.skipBody("OPTIONS", resp); err != nil {
		return err
	}
	if probe != nil && !c.broken {
		// The pipelined HEAD is answered in plaintext; read the answer so
		// that the session stays in step.
		// The short wait must not extend a context that ends sooner.
		deadline := time.Now().Add(c.opts.Wait())
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		c.conn.SetReadDeadline(deadline)
		r, err := readResponse(c.tc, c.opts.LinesLimit())
		c.restoreDeadline(ctx)
		var ne net.Error
		switch {
		case err == nil:
			return c.skipBody("HEAD", r)
		case errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil:
			c.broken = true // the answer may still come
		default:
			return err
		}
	}
	return nil
}

func (c *Client) restoreDeadline(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(d)
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
}

// runProbe waits opts.Wait() for an answer the client did not ask for: a
// server that served the pipelined HEAD inside TLS answers it now.
func (c *Client) runProbe(ctx context.Context, probe *starttls.InjectionProbe) error {
	return c.tc.AwaitProbeAnswer(ctx, c.conn, c.opts.Wait(), probe, nil, func() error {
		resp, err := readResponse(c.tc, c.opts.LinesLimit())
		if err == nil {
			probe.Vulnerable = true
			probe.Reply = resp.line
			c.tc.Note("injection probe: the server answered the pipelined " + probeTarget + " inside TLS (CVE-2011-0411 class)")
		}
		return err
	})
}

// probeNotRun records why the injection probe could not run.
func (c *Client) probeNotRun(why string) {
	if c.opts.ProbeInjection && c.res.Injection == nil {
		c.res.Injection = &starttls.InjectionProbe{Err: why}
	}
}

func (c *Client) tlsDone(tc *tls.Conn) {
	c.conn = tc
	st := tc.ConnectionState()
	c.res.TLS = &st
	c.res.Upgraded = true
}

// afterTLS records the capabilities read over TLS; nothing from before
// TLS is kept (upgrade rule 3).
func (c *Client) afterTLS(resp response) {
	c.res.CapsAfter = caps(resp.h)
	c.res.AuthAfter = authSchemes(resp.h)
	c.res.CapsReread = true
	c.res.OfferedAfterTLS = resp.h.offersTLS()
}

// do sends a request without a body and reads the answer, discarding its
// body (bounded by MaxBody).
func (c *Client) do(method, target string, extra ...string) (response, error) {
	resp, _, err := c.roundTrip(method, target, extra, nil)
	return resp, err
}

// roundTrip sends a request (the lines in shown go to the transcript
// instead of the real ones when not nil) and reads the answer and its body.
func (c *Client) roundTrip(method, target string, extra, shown []string) (response, []byte, error) {
	if c.broken {
		return response{}, nil, errorf("the connection cannot carry another request (the server closes it or sent a body without length)")
	}
	if strings.ContainsAny(target, " \r\n") || target == "" {
		return response{}, nil, errorf("invalid request target %q", target)
	}
	lines := c.request(method, target, extra...)
	if shown == nil {
		if err := c.tc.WriteLines(lines...); err != nil {
			return response{}, nil, err
		}
	} else {
		show := c.request(method, target, shown...)
		for i := range lines {
			if err := c.tc.WriteLineMasked(lines[i], show[i]); err != nil {
				return response{}, nil, err
			}
		}
	}
	resp, err := readResponse(c.tc, c.opts.LinesLimit())
	if err != nil {
		return resp, nil, err
	}
	if resp.code == 426 && resp.h.offersTLS() {
		c.res.UpgradeRequired = true
	}
	body, err := c.body(method, resp)
	return resp, body, err
}

// skipBody reads and drops the body of an answer.
func (c *Client) skipBody(method string, resp response) error {
	_, err := c.body(method, resp)
	return err
}

// body reads the body of an answer to method (RFC 9112 §6.3), at most
// MaxBody bytes. A body delimited by the end of the connection marks the
// connection as unusable and is not read.
func (c *Client) body(method string, resp response) ([]byte, error) {
	if resp.h.hasToken("Connection", "close") {
		c.broken = true
	}
	if method == "HEAD" || resp.code == 204 || resp.code == 304 || resp.code < 200 {
		return nil, nil
	}
	n, chunked, err := bodyLength(resp.h)
	if err != nil {
		return nil, err
	}
	if n < 0 && !chunked {
		c.broken = true
		return nil, nil
	}
	return readBody(c.tc, n, chunked, MaxBody, c.opts.LinesLimit())
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// NetConn returns the connection (a *tls.Conn after an upgrade) with any
// bytes already buffered readable first, for interactive use. The Client
// should not be used for requests afterwards.
func (c *Client) NetConn() net.Conn { return c.tc.NetConn() }

// begin applies ctx to one exchange.
func (c *Client) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	stop := textline.Watch(ctx, c.conn)
	return ctx, func() { stop(); cancel() }
}

// Login checks a user name and password with HTTP Basic authentication
// (RFC 7617) on "HEAD /", and keeps them for the later requests of Get. A
// 401 or 403 answer fails with *Error.
//
// Login refuses, with an error wrapping starttls.ErrFallbackForbidden, to
// send credentials on a connection without TLS unless the mode is
// ModePlain. The transcript shows the credentials as "****".
func (c *Client) Login(ctx context.Context, username, password string) error {
	if !c.res.Upgraded && c.mode != starttls.ModePlain {
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	}
	if strings.ContainsAny(username, ":\r\n\x00") || strings.ContainsAny(password, "\r\n\x00") {
		return errorf("user name contains a colon, or user name or password contains CR, LF or NUL")
	}
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(username+":"+password))
	ctx, done := c.begin(ctx)
	defer done()
	resp, _, err := c.roundTrip("HEAD", "/", []string{auth}, []string{"Authorization: Basic ****"})
	if err != nil {
		return textline.CtxErr(ctx, err)
	}
	if resp.code >= 400 {
		return errorf("login: %w", resp.err())
	}
	c.auth = auth
	return nil
}

// Get fetches path with GET (with the credentials of Login, if any) and
// returns the status code and the body, at most MaxBody bytes.
func (c *Client) Get(ctx context.Context, path string) (int, []byte, error) {
	if !strings.HasPrefix(path, "/") {
		return 0, nil, errorf("path %q does not start with /", path)
	}
	ctx, done := c.begin(ctx)
	defer done()
	var extra, shown []string
	if c.auth != "" {
		extra, shown = []string{c.auth}, []string{"Authorization: Basic ****"}
	}
	resp, body, err := c.roundTrip("GET", path, extra, shown)
	if err != nil {
		return 0, nil, textline.CtxErr(ctx, err)
	}
	return resp.code, body, nil
}

// Close closes the connection (with a TLS close_notify, bounded by two
// seconds): HTTP has no goodbye command.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(closeTimeout))
	return c.conn.Close()
}
