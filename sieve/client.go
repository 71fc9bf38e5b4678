package sieve

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// logoutTimeout bounds the polite LOGOUT of Client.Close.
const logoutTimeout = 2 * time.Second

// Client is a ManageSieve session secured per the caller's mode. It is
// created by Upgrade or Dial, which have already done the TLS upgrade; it is
// not safe for concurrent use.
type Client struct {
	conn   net.Conn
	tc     *textline.Conn
	opts   *starttls.ClientOptions
	res    *starttls.Result
	mode   starttls.Mode
	caps   []string // the trusted capabilities: post-TLS ones after an upgrade
	closed bool
}

// Script is one entry of LISTSCRIPTS.
type Script struct {
	Name   string
	Active bool
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// defaults to the host part of addr; opts is copied, never modified. A nil
// opts means safe defaults (ModeRequired: ManageSieve has no implicit-TLS
// port).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "sieve", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade runs the client dialog on conn: the greeting, which is the
// capability list (RFC 5804 §1.7), STARTTLS per the mode (§2.2), the TLS
// handshake and the capabilities the server sends again, unasked, over TLS
// (§2.2); the client sends CAPABILITY itself only when they do not come
// within opts.Wait(). Only what is read over TLS is trusted.
//
// ModeAuto resolves to ModeRequired (no implicit port); ModeImplicit does
// the handshake first. ModeRequired fails with ErrUpgradeNotOffered when
// the greeting lacks STARTTLS (and sends nothing more), and with
// ErrUpgradeRefused on NO or BYE. ModeOpportunistic goes on in plaintext.
// Bytes after the OK to STARTTLS, before the handshake, fail the upgrade
// with ErrPlaintextAfterUpgrade.
//
// The injection probe sends "STARTTLS\r\nCAPABILITY\r\n" in one write. A
// correct server sends one capability list over TLS (its own, §2.2); a
// server that executed the pipelined CAPABILITY inside TLS sends a second
// one before the client speaks: the probe counts the OK completions
// received over TLS before the client's first command, and two mean
// vulnerable. (A vulnerable server that also omits the §2.2 capabilities
// sends only one list and is not detected.)
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "sieve", Mode: mode}
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
		res.Transcript = opts.Transcript
	}
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

func (c *Client) lineOptions() textline.Options {
	return textline.Options{
		Proto:      "sieve",
		Local:      starttls.FromClient,
		MaxLine:    c.opts.LineLimit(),
		Transcript: c.res.Transcript,
	}
}

func (c *Client) dialog(ctx context.Context) error {
	switch c.mode {
	case starttls.ModePlain, starttls.ModeOpportunistic, starttls.ModeRequired:
		c.tc = textline.New(c.conn, c.lineOptions())
	case starttls.ModeImplicit:
		tc, err := starttls.Handshake(ctx, c.conn, c.opts)
		if err != nil {
			return errorf("implicit TLS: %w", err)
		}
		c.tc = textline.New(tc, c.lineOptions())
		c.tlsDone(tc)
	default:
		return errorf("unsupported mode %v", c.mode)
	}

	caps, lines, err := c.readCaps()
	c.res.Greeting = strings.Join(lines, "\n")
	if err != nil {
		return fmt.Errorf("%w (reading the greeting)", err)
	}
	if n := c.tc.Buffered(); n > 0 {
		return starttls.ProtocolError("sieve", "%d bytes of unsolicited data after the greeting", n)
	}
	c.caps = caps
	if c.res.Upgraded { // implicit TLS
		c.afterTLSCaps(true)
		c.probeNotRun("implicit TLS: no upgrade command")
		return nil
	}
	c.res.CapsBefore = caps
	c.res.AuthBefore = authMechs(caps)
	c.res.Offered = hasCap(caps, CapSTARTTLS)

	if c.mode == starttls.ModePlain {
		c.probeNotRun("plain mode: no upgrade")
		return nil
	}
	if !c.res.Offered {
		c.probeNotRun("upgrade not offered")
		if c.mode == starttls.ModeRequired {
			return errorf("STARTTLS not in the capabilities: %w", starttls.ErrUpgradeNotOffered)
		}
		return nil
	}
	return c.startTLS(ctx)
}

func (c *Client) probeNotRun(why string) {
	if c.opts.ProbeInjection && c.res.Injection == nil {
		c.res.Injection = &starttls.InjectionProbe{Err: why}
	}
}

// probeCommand is pipelined after STARTTLS by the injection probe.
const probeCommand = "CAPABILITY"

// readCaps reads capability lines up to the completing response: the
// greeting and the answer to CAPABILITY (RFC 5804 §2.4). NO or BYE is an
// error. It also returns the lines as received, for the Result.
func (c *Client) readCaps() (caps, raw []string, err error) {
	for n := 0; ; n++ {
		if n > c.opts.LinesLimit() {
			return nil, raw, starttls.ProtocolError("sieve", "capability list longer than %d lines", c.opts.LinesLimit())
		}
		toks, err := readTokens(c.tc, maxQuoted, anyLiteral)
		if err != nil {
			return nil, raw, err
		}
		raw = append(raw, render(toks))
		if isResponse(toks) {
			r, err := parseResponse(toks)
			if err != nil {
				return nil, raw, err
			}
			if e := r.err(); e != nil {
				return nil, raw, e
			}
			return caps, raw, nil
		}
		cp, err := parseCapLine(toks)
		if err != nil {
			return nil, raw, err
		}
		caps = append(caps, cp)
	}
}

// startTLS sends STARTTLS (RFC 5804 §2.2), checks for response injection,
// does the handshake and reads the capabilities again.
func (c *Client) startTLS(ctx context.Context) error {
	var probe *starttls.InjectionProbe
	var err error
	if c.opts.ProbeInjection {
		probe = &starttls.InjectionProbe{Sent: probeCommand}
		c.res.Injection = probe
		err = c.tc.WriteLines("STARTTLS", probeCommand)
	} else {
		err = c.tc.WriteLine("STARTTLS")
	}
	if err != nil {
		return err
	}
	toks, err := readTokens(c.tc, maxQuoted, anyLiteral)
	if err != nil {
		return fmt.Errorf("%w (waiting for the STARTTLS answer)", err)
	}
	c.res.UpgradeReply = render(toks)
	r, err := parseResponse(toks)
	if err != nil {
		return err
	}
	c.res.UpgradeReply = r.String()
	if r.Kind != "OK" {
		if probe != nil {
			probe.Err = "upgrade refused"
		}
		if c.mode == starttls.ModeRequired || r.Kind == "BYE" {
			return fmt.Errorf("sieve: STARTTLS: %w: %w", starttls.ErrUpgradeRefused, r.err())
		}
		if probe != nil {
			// The pipelined CAPABILITY is answered in plaintext: skip it.
			c.conn.SetReadDeadline(time.Now().Add(c.opts.Wait()))
			_, _, err := c.readCaps()
			c.restoreDeadline(ctx)
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil) {
				return err
			}
		}
		return nil
	}

	// Upgrade rules 1 and 2: nothing may follow the go-ahead in plaintext.
	tc, err := c.tc.StartTLS(ctx, c.conn, c.opts, c.res, probe, "STARTTLS", "STARTTLS")
	if err != nil {
		return err
	}
	c.conn = tc
	c.caps = nil // RFC 5804 §2.2: forget what was said before TLS

	// RFC 5804 §2.2: the server sends its capabilities now, unasked.
	caps, got, err := c.waitCaps(ctx)
	if err != nil {
		if probe != nil && textline.IsClosed(err) {
			probe.Closed = true
		}
		return err
	}
	if probe != nil {
		if err := c.runProbe(ctx, probe, got); err != nil {
			return err
		}
	}
	if !got {
		// An older server that waits to be asked.
		if err := c.tc.WriteLine("CAPABILITY"); err != nil {
			return err
		}
		if caps, _, err = c.readCaps(); err != nil {
			return err
		}
	}
	c.caps = caps
	c.afterTLSCaps(true)
	return nil
}

// waitCaps waits opts.Wait() for the capabilities a server sends after the
// handshake; got is false when nothing came in that time.
func (c *Client) waitCaps(ctx context.Context) (caps []string, got bool, err error) {
	c.setProbeDeadline(ctx)
	caps, raw, err := c.readCaps()
	c.restoreDeadline(ctx)
	if err != nil && len(raw) == 0 && isTimeout(err) && ctx.Err() == nil {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return caps, true, nil
}

func (c *Client) setProbeDeadline(ctx context.Context) {
	deadline := time.Now().Add(c.opts.Wait())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.conn.SetReadDeadline(deadline)
}

func (c *Client) restoreDeadline(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(d)
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
}

// runProbe decides the injection probe after the handshake. The server
// sent its own capability list (gotFirst) or nothing; any further data
// before the client speaks is the answer to the pipelined CAPABILITY,
// executed inside TLS (CVE-2011-0411).
func (c *Client) runProbe(ctx context.Context, probe *starttls.InjectionProbe, gotFirst bool) error {
	if !gotFirst {
		// Nothing at all within the wait: neither the §2.2 list nor an
		// answer to the probe.
		return nil
	}
	c.setProbeDeadline(ctx)
	_, raw, err := c.readCaps()
	c.restoreDeadline(ctx)
	if err == nil || len(raw) > 0 {
		probe.Vulnerable = true
		probe.Reply = strings.Join(raw, "\n")
		c.tc.Note("injection probe: a second capability list before the client spoke: the pipelined " + probeCommand + " was executed inside TLS (CVE-2011-0411)")
		if err != nil && !isTimeout(err) {
			return err
		}
		return ctx.Err()
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	switch {
	case isTimeout(err):
		return nil
	case textline.IsClosed(err):
		probe.Closed = true
		return errorf("server closed the connection after the TLS handshake (injection probe): %w", err)
	default:
		probe.Err = err.Error()
		return err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Client) tlsDone(tc *tls.Conn) {
	c.conn = tc
	st := tc.ConnectionState()
	c.res.TLS = &st
	c.res.Upgraded = true
}

func (c *Client) afterTLSCaps(reread bool) {
	c.res.CapsAfter = c.caps
	c.res.AuthAfter = authMechs(c.caps)
	c.res.CapsReread = reread
	c.res.OfferedAfterTLS = hasCap(c.caps, CapSTARTTLS)
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// Capabilities returns the capabilities in force ("NAME value").
func (c *Client) Capabilities() []string { return append([]string(nil), c.caps...) }

// NetConn returns the connection (a *tls.Conn after an upgrade) with any
// bytes already buffered readable first, for interactive use.
func (c *Client) NetConn() net.Conn { return c.tc.NetConn() }

func (c *Client) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	stop := textline.Watch(ctx, c.conn)
	return ctx, func() { stop(); cancel() }
}

// simple sends one command line and reads the data lines (collected by fn,
// may be nil) up to the completing response; NO and BYE are *Error.
func (c *Client) simple(line, shown string, fn func(toks []token) error) (response, error) {
	if err := c.tc.WriteLineMasked(line, shown); err != nil {
		return response{}, err
	}
	return c.complete(fn)
}

// maxAnswer bounds the octets of one answer, lines and literals together:
// one script at most, plus room for the lines around it.
const maxAnswer = MaxScriptSize + 64<<10

// budgetReader counts the octets read through it against a budget and
// fails with starttls.ErrLineTooLong past it.
type budgetReader struct {
	r    wireReader
	left int
}

func (b *budgetReader) spend(n int) error {
	b.left -= n
	if b.left < 0 {
		return fmt.Errorf("sieve: answer longer than %d octets: %w", maxAnswer, starttls.ErrLineTooLong)
	}
	return nil
}

func (b *budgetReader) ReadLine() (string, error) {
	line, err := b.r.ReadLine()
	if err != nil {
		return line, err
	}
	return line, b.spend(len(line) + 2)
}

func (b *budgetReader) ReadFull(n int) ([]byte, error) {
	if err := b.spend(n); err != nil {
		return nil, err
	}
	return b.r.ReadFull(n)
}

// complete reads data lines up to the completing OK, NO or BYE, at most
// LinesLimit lines and maxAnswer octets.
func (c *Client) complete(fn func(toks []token) error) (response, error) {
	br := &budgetReader{r: c.tc, left: maxAnswer}
	for n := 0; ; n++ {
		if n > c.opts.LinesLimit() {
			return response{}, starttls.ProtocolError("sieve", "answer longer than %d lines", c.opts.LinesLimit())
		}
		toks, err := readTokens(br, MaxScriptSize, anyLiteral)
		if err != nil {
			return response{}, err
		}
		if isResponse(toks) {
			r, err := parseResponse(toks)
			if err != nil {
				return r, err
			}
			return r, r.err()
		}
		if fn == nil {
			return response{}, starttls.ProtocolError("sieve", "unexpected data %s", describe(toks))
		}
		if err := fn(toks); err != nil {
			return response{}, err
		}
	}
}

// Login authenticates with AUTHENTICATE "PLAIN" and the initial response
// as a string (RFC 5804 §2.1, RFC 4616). It refuses, with an error wrapping
// starttls.ErrFallbackForbidden, to send credentials without TLS unless the
// mode is ModePlain; the transcript masks them.
func (c *Client) Login(ctx context.Context, username, password string) error {
	if !c.res.Upgraded && c.mode != starttls.ModePlain {
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	}
	if strings.ContainsAny(username, "\x00") || strings.ContainsAny(password, "\x00") {
		return errorf("username or password contains NUL")
	}
	if !hasMech(c.caps, "PLAIN") {
		return errorf("SASL PLAIN not offered (SASL: %q)", authMechs(c.caps))
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + username + "\x00" + password))
	if len(ir) > maxQuoted {
		return errorf("credentials too long")
	}
	ctx, done := c.begin(ctx)
	defer done()
	_, err := c.simple(`AUTHENTICATE "PLAIN" "`+ir+`"`, `AUTHENTICATE "PLAIN" "****"`, nil)
	return textline.CtxErr(ctx, err)
}

// ListScripts lists the user's scripts (RFC 5804 §2.7).
func (c *Client) ListScripts(ctx context.Context) ([]Script, error) {
	ctx, done := c.begin(ctx)
	defer done()
	var out []Script
	_, err := c.simple("LISTSCRIPTS", "LISTSCRIPTS", func(toks []token) error {
		if len(toks) == 0 || len(toks) > 2 || toks[0].kind != tokString || (len(toks) == 2 && (toks[1].kind != tokAtom || !strings.EqualFold(toks[1].s, "ACTIVE"))) {
			return starttls.ProtocolError("sieve", "malformed LISTSCRIPTS line %s", describe(toks))
		}
		out = append(out, Script{Name: toks[0].s, Active: len(toks) == 2})
		return nil
	})
	return out, textline.CtxErr(ctx, err)
}

// GetScript fetches a script (RFC 5804 §2.9), at most MaxScriptSize octets.
func (c *Client) GetScript(ctx context.Context, name string) ([]byte, error) {
	q, err := quote(name)
	if err != nil {
		return nil, err
	}
	ctx, done := c.begin(ctx)
	defer done()
	var script []byte
	seen := false
	_, err = c.simple("GETSCRIPT "+q, "GETSCRIPT "+q, func(toks []token) error {
		if seen || len(toks) != 1 || toks[0].kind != tokString {
			return starttls.ProtocolError("sieve", "malformed GETSCRIPT answer %s", describe(toks))
		}
		seen, script = true, []byte(toks[0].s)
		return nil
	})
	if err == nil && !seen {
		err = starttls.ProtocolError("sieve", "GETSCRIPT answered OK without the script")
	}
	return script, textline.CtxErr(ctx, err)
}

// PutScript stores a script (RFC 5804 §2.6), sent as a non-synchronizing
// literal; scripts larger than MaxScriptSize are refused before sending.
func (c *Client) PutScript(ctx context.Context, name string, script []byte) error {
	q, err := quote(name)
	if err != nil {
		return err
	}
	if len(script) > MaxScriptSize {
		return errorf("script of %d octets exceeds %d", len(script), MaxScriptSize)
	}
	ctx, done := c.begin(ctx)
	defer done()
	head := "PUTSCRIPT " + q + " {" + strconv.Itoa(len(script)) + "+}"
	if err := c.tc.WriteLine(head); err != nil {
		return textline.CtxErr(ctx, err)
	}
	if err := c.tc.WriteRaw(append(append([]byte(nil), script...), '\r', '\n')); err != nil {
		return textline.CtxErr(ctx, err)
	}
	_, err = c.complete(nil)
	return textline.CtxErr(ctx, err)
}

// SetActive makes a script the active one (RFC 5804 §2.8); "" deactivates.
func (c *Client) SetActive(ctx context.Context, name string) error {
	q, err := quote(name)
	if err != nil {
		return err
	}
	ctx, done := c.begin(ctx)
	defer done()
	_, err = c.simple("SETACTIVE "+q, "SETACTIVE "+q, nil)
	return textline.CtxErr(ctx, err)
}

// DeleteScript removes a script (RFC 5804 §2.10).
func (c *Client) DeleteScript(ctx context.Context, name string) error {
	q, err := quote(name)
	if err != nil {
		return err
	}
	ctx, done := c.begin(ctx)
	defer done()
	_, err = c.simple("DELETESCRIPT "+q, "DELETESCRIPT "+q, nil)
	return textline.CtxErr(ctx, err)
}

// Close sends LOGOUT (RFC 5804 §2.3), waits at most two seconds for the
// answer and closes the connection.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(logoutTimeout))
	if c.tc.WriteLine("LOGOUT") == nil {
		c.tc.ReadLine()
	}
	return c.conn.Close()
}
