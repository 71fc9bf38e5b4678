package imap

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

const (
	// MaxMailboxes bounds the LIST responses Client.List accepts.
	MaxMailboxes = 10000
	// MaxListBytes bounds the octets of all the responses to one LIST
	// (16 MiB): each response is bounded on its own, their sum here.
	MaxListBytes = 16 << 20
	// logoutTimeout bounds the polite LOGOUT of Client.Close.
	logoutTimeout = 2 * time.Second
)

// Client is an IMAP session secured per the caller's mode. It is created by
// Upgrade or Dial, which have already done the TLS upgrade; it is not safe
// for concurrent use.
type Client struct {
	conn    net.Conn // the raw connection, or the *tls.Conn after the upgrade
	tc      *textline.Conn
	opts    *starttls.ClientOptions
	res     *starttls.Result
	mode    starttls.Mode
	caps    []string // the trusted capabilities: post-TLS ones after an upgrade
	capsOK  bool     // whether caps came from the server (greeting or CAPABILITY)
	tagN    int
	preauth bool // PREAUTH greeting: already authenticated (RFC 3501 §7.1.4)
	authed  bool
	bye     *response // an untagged BYE, explaining a following close
	closed  bool
}

// errorf returns an error prefixed with "imap: ".
func errorf(format string, args ...any) error {
	return fmt.Errorf("imap: "+format, args...)
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// defaults to the host part of addr; opts is copied, never modified. A nil
// opts means safe defaults (ModeAuto: implicit TLS on port 993, ModeRequired
// elsewhere).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "imap", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade runs the client dialog on conn: the greeting (RFC 3501 §7.1),
// the capabilities (§6.1.1), STARTTLS per the mode (§6.2.1, RFC 2595 §3.1),
// the TLS handshake and CAPABILITY again over TLS, trusting only what it
// read over TLS.
//
// ModeAuto is resolved from the remote port. ModeImplicit does the
// handshake first (RFC 8314 §3). ModePlain never upgrades. ModeRequired
// fails with ErrUpgradeNotOffered when the capabilities lack STARTTLS or
// the greeting is PREAUTH (and sends nothing more), and with
// ErrUpgradeRefused when STARTTLS is refused. When CAPABILITY itself is
// refused, STARTTLS is still tried; Offered stays false. ModeOpportunistic
// goes on in plaintext in these cases, without an error.
//
// Bytes that arrive after the tagged OK to STARTTLS and before the
// handshake fail the upgrade with ErrPlaintextAfterUpgrade (response
// injection).
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "imap", Mode: mode}
	if opts != nil {
		res.Transcript = opts.Transcript
	}
	// The options are copied: a caller changing them later does not change
	// a running session.
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
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
		Proto:      "imap",
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

	if err := c.greeting(); err != nil {
		return err
	}
	if c.res.Upgraded { // implicit TLS
		c.afterTLSCaps()
		c.probeNotRun("implicit TLS: no upgrade command")
		return nil
	}
	c.res.CapsBefore = c.caps
	c.res.AuthBefore = authMechs(c.caps)
	c.res.Offered = hasCap(c.caps, CapSTARTTLS)

	switch {
	case c.mode == starttls.ModePlain:
		c.probeNotRun("plain mode: no upgrade")
		return nil
	case c.preauth:
		// CL-04: in the authenticated state STARTTLS is not allowed (RFC
		// 3501 §6.2.1); a man in the middle can send PREAUTH to keep the
		// session in plaintext.
		c.probeNotRun("PREAUTH greeting: STARTTLS impossible")
		if c.mode == starttls.ModeRequired {
			return errorf("PREAUTH greeting: the session is already authenticated, STARTTLS is not allowed: %w", starttls.ErrUpgradeNotOffered)
		}
		return nil
	case c.capsOK && !c.res.Offered:
		c.probeNotRun("upgrade not offered")
		if c.mode == starttls.ModeRequired {
			// CL-01/CL-05: nothing else is sent.
			return errorf("STARTTLS not in the capabilities: %w", starttls.ErrUpgradeNotOffered)
		}
		return nil
	}
	return c.startTLS(ctx)
}

// greeting reads the server greeting (RFC 3501 §7.1) and the capabilities.
func (c *Client) greeting() error {
	r, err := c.readResp()
	if err != nil {
		if errors.Is(err, starttls.ErrProtocol) {
			return fmt.Errorf("%w (in the greeting)", err)
		}
		return fmt.Errorf("%w (waiting for the greeting)", err)
	}
	c.res.Greeting = r.raw
	// PR-10, CL-27: the first response must be untagged OK, PREAUTH or BYE.
	if r.Tag != "*" || r.HasNum {
		return starttls.ProtocolError("imap", "greeting %q is not an untagged status response", starttls.Escape(clip(r.raw, 80)))
	}
	switch r.Type {
	case "OK":
	case "PREAUTH":
		c.preauth, c.authed = true, true
	case "BYE":
		return errorf("server refused the session: %w", r.err())
	default:
		return starttls.ProtocolError("imap", "greeting %q is not OK, PREAUTH or BYE", starttls.Escape(clip(r.raw, 80)))
	}
	c.untagged(r)
	if r.Code == "CAPABILITY" {
		return c.setCaps(r.CodeArg)
	}
	return c.capability()
}

// probeNotRun records why the injection probe could not run.
func (c *Client) probeNotRun(why string) {
	if c.opts != nil && c.opts.ProbeInjection && c.res.Injection == nil {
		c.res.Injection = &starttls.InjectionProbe{Err: why}
	}
}

// startTLS sends STARTTLS (RFC 3501 §6.2.1), checks for response
// injection, does the handshake and asks for the capabilities again.
func (c *Client) startTLS(ctx context.Context) error {
	tag := c.nextTag()
	var probe *starttls.InjectionProbe
	var probeTag string
	var err error
	if c.opts != nil && c.opts.ProbeInjection {
		// Venema's test: the harmless NOOP travels in the same segment as
		// STARTTLS. A safe server never answers it inside TLS.
		probeTag = c.nextTag()
		probe = &starttls.InjectionProbe{Sent: probeTag + " NOOP"}
		c.res.Injection = probe
		err = c.tc.WriteLines(tag+" STARTTLS", probe.Sent)
	} else {
		err = c.tc.WriteLine(tag + " STARTTLS")
	}
	if err != nil {
		return err
	}
	r, err := c.waitTagged(tag, c.opts.LinesLimit(), nil)
	if err != nil {
		return fmt.Errorf("%w (waiting for the STARTTLS answer)", err)
	}
	c.res.UpgradeReply = r.raw
	if r.Type != "OK" {
		if probe != nil {
			probe.Err = "upgrade refused"
			// The pipelined NOOP is answered in plaintext; read it so that
			// an opportunistic session stays in step.
			if _, err := c.waitTagged(probeTag, c.opts.LinesLimit(), nil); err != nil {
				return err
			}
		}
		if c.mode == starttls.ModeRequired {
			return fmt.Errorf("imap: STARTTLS: %w: %w", starttls.ErrUpgradeRefused, r.err())
		}
		return nil
	}

	// Upgrade rules 1 and 2 (RFC 2595 §3.1: TLS begins right after the CRLF
	// of the tagged OK): nothing may follow in plaintext.
	tc, err := c.tc.StartTLS(ctx, c.conn, c.opts, c.res, probe, "STARTTLS", "STARTTLS")
	if err != nil {
		return err
	}
	c.conn = tc
	// Upgrade rule 3 (RFC 3501 §6.2.1, CL-13, CL-17): forget everything the
	// server said before, including capabilities in the tagged OK.
	c.caps, c.capsOK, c.bye = nil, false, nil

	if probe != nil {
		if err := c.runProbe(ctx, probe, probeTag); err != nil {
			return err
		}
	}
	if err := c.capability(); err != nil {
		return err
	}
	c.afterTLSCaps()
	return nil
}

func (c *Client) tlsDone(tc *tls.Conn) {
	c.conn = tc
	st := tc.ConnectionState()
	c.res.TLS = &st
	c.res.Upgraded = true
}

func (c *Client) afterTLSCaps() {
	c.res.CapsAfter = c.caps
	c.res.AuthAfter = authMechs(c.caps)
	c.res.CapsReread = c.capsOK
	c.res.OfferedAfterTLS = hasCap(c.caps, CapSTARTTLS)
}

// runProbe waits opts.Wait() for a response the client did not ask for: a
// server that executed the pipelined NOOP inside TLS answers it now
// (CVE-2011-0411).
func (c *Client) runProbe(ctx context.Context, probe *starttls.InjectionProbe, probeTag string) error {
	deadline := time.Now().Add(c.opts.Wait())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.conn.SetReadDeadline(deadline)
	r, err := c.readResp()
	// Give the rest of the dialog the context's deadline back.
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(d)
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
	if err == nil {
		probe.Vulnerable = true
		reply := []string{r.raw}
		if r.Tag != probeTag {
			// Read up to the tagged answer so that the dialog stays in step.
			var last *response
			last, err = c.waitTagged(probeTag, c.opts.LinesLimit(), func(u *response) error {
				reply = append(reply, u.raw)
				return nil
			})
			if last != nil {
				reply = append(reply, last.raw)
			}
		}
		probe.Reply = strings.Join(reply, "\n")
		c.tc.Note("injection probe: the server answered the pipelined NOOP inside TLS (CVE-2011-0411)")
		if err != nil {
			return err
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ne) && ne.Timeout():
		return nil // silence: not vulnerable
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		probe.Closed = true
		return errorf("server closed the connection after the TLS handshake (injection probe): %w", err)
	default:
		probe.Err = err.Error()
		return err
	}
}

// capability sends CAPABILITY (RFC 3501 §6.1.1) and stores the answer. A
// NO or BAD answer is not an error: the capabilities stay unknown (CL-05:
// nothing is assumed).
func (c *Client) capability() error {
	tag, err := c.send("CAPABILITY", "")
	if err != nil {
		return err
	}
	var list string
	got := false
	r, err := c.waitTagged(tag, c.opts.LinesLimit(), func(u *response) error {
		if u.Type == "CAPABILITY" {
			list, got = u.Data, true
		}
		return nil
	})
	c.caps, c.capsOK = nil, false
	if err != nil {
		return err
	}
	if r.Type != "OK" || !got {
		return nil
	}
	return c.setCaps(list)
}

func (c *Client) setCaps(list string) error {
	caps, ok := parseCaps(list, c.opts.LinesLimit())
	if !ok {
		return starttls.ProtocolError("imap", "more than %d capabilities", c.opts.LinesLimit())
	}
	c.caps, c.capsOK = caps, true
	return nil
}

func (c *Client) nextTag() string {
	c.tagN++
	return "a" + strconv.Itoa(c.tagN)
}

// send writes one command with a new tag; shown, when not empty, replaces
// the command in the transcript.
func (c *Client) send(cmd, shown string) (string, error) {
	tag := c.nextTag()
	if shown == "" {
		shown = cmd
	}
	return tag, c.tc.WriteLineMasked(tag+" "+cmd, tag+" "+shown)
}

// readResp reads and parses one response.
func (c *Client) readResp() (*response, error) {
	s, err := readResponse(c.tc, MaxLiteral, maxResponse)
	if err != nil {
		if c.bye != nil && !errors.Is(err, starttls.ErrProtocol) {
			return nil, fmt.Errorf("%w: %w", c.bye.err(), err)
		}
		return nil, err
	}
	r, err := parseResponse(s)
	if err != nil {
		return nil, starttls.ProtocolError("imap", "%v", err)
	}
	return r, nil
}

// untagged handles what matters in any untagged response: a BYE announces
// a close; an [ALERT] is shown, marked untrusted before TLS (CL-15).
func (c *Client) untagged(r *response) {
	if r.Type == "BYE" {
		c.bye = r
	}
	if r.Code == "ALERT" {
		if c.tc.TLS() {
			c.tc.Note("server alert: " + r.Text)
		} else {
			c.tc.Note("untrusted alert, received before TLS (could be injected): " + r.Text)
		}
	}
}

// waitTagged reads responses until the tagged completion of tag, passing
// at most limit untagged responses to onUntagged (nil ignores them).
func (c *Client) waitTagged(tag string, limit int, onUntagged func(*response) error) (*response, error) {
	for n := 0; ; n++ {
		r, err := c.readResp()
		if err != nil {
			return nil, err
		}
		switch r.Tag {
		case tag:
			if !r.isStatus() {
				return nil, starttls.ProtocolError("imap", "tagged response %q is not OK, NO or BAD", starttls.Escape(clip(r.raw, 80)))
			}
			return r, nil
		case "*":
			if n >= limit {
				return nil, starttls.ProtocolError("imap", "more than %d untagged responses to one command", limit)
			}
			c.untagged(r)
			if onUntagged != nil {
				if err := onUntagged(r); err != nil {
					return nil, err
				}
			}
		case "+":
			return nil, starttls.ProtocolError("imap", "unexpected continuation request %q", starttls.Escape(clip(r.raw, 80)))
		default:
			return nil, starttls.ProtocolError("imap", "response %q has an unknown tag (waiting for %s)", starttls.Escape(clip(r.raw, 80)), tag)
		}
	}
}

// waitContinuation reads up to a "+" continuation request; a tagged
// completion instead is returned as the error it carries.
func (c *Client) waitContinuation(tag string) error {
	for n := 0; ; n++ {
		r, err := c.readResp()
		if err != nil {
			return err
		}
		switch r.Tag {
		case "+":
			return nil
		case tag:
			if err := r.err(); err != nil {
				return err
			}
			return starttls.ProtocolError("imap", "command completed without the continuation it needed")
		case "*":
			if n >= c.opts.LinesLimit() {
				return starttls.ProtocolError("imap", "more than %d untagged responses to one command", n)
			}
			c.untagged(r)
		default:
			return starttls.ProtocolError("imap", "response %q has an unknown tag (waiting for %s)", starttls.Escape(clip(r.raw, 80)), tag)
		}
	}
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// NetConn returns the connection (a *tls.Conn after an upgrade) with any
// bytes already buffered readable first, for interactive use. The Client
// should not be used for commands afterwards.
func (c *Client) NetConn() net.Conn { return c.tc.NetConn() }

// begin applies ctx to one command exchange.
func (c *Client) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	stop := textline.Watch(ctx, c.conn)
	return ctx, func() { stop(); cancel() }
}

// arg is one argument of a command built by sendArgs.
type arg struct {
	s      string
	secret bool // shown as **** in the transcript
}

// sendArgs writes "tag cmd arg…" with each argument as an atom, a quoted
// string or, for 8-bit text, a synchronising literal (RFC 3501 §4.3,
// waiting for the "+" continuation).
func (c *Client) sendArgs(cmd string, args ...arg) (string, error) {
	tag := c.nextTag()
	line, shown := tag+" "+cmd, tag+" "+cmd
	for _, a := range args {
		q := quote(a.s, !a.secret)
		if !strings.HasPrefix(q, "{") {
			line += " " + q
			if a.secret {
				shown += " ****"
			} else {
				shown += " " + q
			}
			continue
		}
		hdr := "{" + strconv.Itoa(len(a.s)) + "}"
		line += " " + hdr
		if a.secret {
			shown += " ****"
		} else {
			shown += " " + hdr
		}
		if err := c.tc.WriteLineMasked(line, shown); err != nil {
			return tag, err
		}
		if err := c.waitContinuation(tag); err != nil {
			return tag, err
		}
		// The literal bypasses the transcript: it may be a password. The
		// line writer is flushed, so the order on the wire is kept.
		if _, err := io.WriteString(c.conn, a.s); err != nil {
			return tag, errorf("%w", err)
		}
		if a.secret {
			c.tc.Note("(literal, masked)")
		} else {
			c.tc.Note("(literal) " + a.s)
		}
		line, shown = "", ""
	}
	return tag, c.tc.WriteLineMasked(line, shown)
}

// Login authenticates with LOGIN (RFC 3501 §6.2.3) unless the server
// announces LOGINDISABLED, else with AUTHENTICATE PLAIN (RFC 3501 §6.2.2,
// RFC 4616), with an initial response when SASL-IR is announced (RFC
// 4959). After an upgrade only the capabilities read over TLS count.
//
// Login refuses, with an error wrapping starttls.ErrFallbackForbidden, to
// send credentials on a connection without TLS unless the mode is
// ModePlain; even then it never sends LOGIN when LOGINDISABLED is
// announced. The transcript shows the password as "****".
func (c *Client) Login(ctx context.Context, username, password string) error {
	if !c.res.Upgraded && c.mode != starttls.ModePlain {
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	}
	if c.authed {
		return errorf("already authenticated")
	}
	if strings.ContainsAny(username, "\r\n\x00") || strings.ContainsAny(password, "\r\n\x00") {
		return errorf("username or password contains CR, LF or NUL")
	}
	ctx, done := c.begin(ctx)
	defer done()
	var err error
	switch {
	case !hasCap(c.caps, CapLoginDisabled):
		var tag string
		tag, err = c.sendArgs("LOGIN", arg{s: username}, arg{s: password, secret: true})
		if err == nil {
			err = c.complete(tag)
		}
	case hasCap(c.caps, CapAuthPrefix+"PLAIN"):
		err = c.authPlain(username, password)
	default:
		return errorf("no login method: the server announces LOGINDISABLED and no AUTH=PLAIN")
	}
	if err == nil {
		c.authed = true
	}
	return textline.CtxErr(ctx, err)
}

// complete waits for the tagged completion of tag and returns its error.
func (c *Client) complete(tag string) error {
	r, err := c.waitTagged(tag, c.opts.LinesLimit(), nil)
	if err != nil {
		return err
	}
	return r.err()
}

// authPlain runs AUTHENTICATE PLAIN (RFC 3501 §6.2.2, RFC 4616).
func (c *Client) authPlain(username, password string) error {
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + username + "\x00" + password))
	if hasCap(c.caps, CapSASLIR) {
		tag, err := c.send("AUTHENTICATE PLAIN "+ir, "AUTHENTICATE PLAIN ****")
		if err != nil {
			return err
		}
		return c.complete(tag)
	}
	tag, err := c.send("AUTHENTICATE PLAIN", "")
	if err != nil {
		return err
	}
	if err := c.waitContinuation(tag); err != nil {
		return err
	}
	if err := c.tc.WriteLineMasked(ir, "****"); err != nil {
		return err
	}
	return c.complete(tag)
}

// List returns the names of all mailboxes (LIST "" "*", RFC 3501 §6.3.8),
// as the server spells them (modified UTF-7 is not decoded). At most
// MaxMailboxes responses and MaxListBytes octets are accepted; more fails
// with an error wrapping starttls.ErrLineTooLong or starttls.ErrProtocol.
func (c *Client) List(ctx context.Context) ([]string, error) {
	ctx, done := c.begin(ctx)
	defer done()
	tag, err := c.send(`LIST "" "*"`, "")
	if err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	var names []string
	total := 0
	r, err := c.waitTagged(tag, MaxMailboxes, func(u *response) error {
		if total += len(u.raw) + 2; total > MaxListBytes {
			return fmt.Errorf("imap: LIST answer longer than %d bytes: %w", MaxListBytes, starttls.ErrLineTooLong)
		}
		if u.Type != "LIST" {
			return nil
		}
		e, err := parseList(u.Data)
		if err != nil {
			return starttls.ProtocolError("imap", "%v", err)
		}
		names = append(names, e.Name)
		return nil
	})
	if err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	return names, nil
}

// Close sends LOGOUT (RFC 3501 §6.1.3), waits at most two seconds for the
// answer and closes the connection.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(logoutTimeout))
	if tag, err := c.send("LOGOUT", ""); err == nil {
		c.waitTagged(tag, c.opts.LinesLimit(), nil)
	}
	return c.conn.Close()
}
