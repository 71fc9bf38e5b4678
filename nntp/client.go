package nntp

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

const (
	// MaxArticleSize bounds an article (or its head or body) fetched with
	// Client.Article, Head or Body, dot-stuffing removed and CRLF line
	// endings included.
	MaxArticleSize = 16 << 20
	// quitTimeout bounds the polite QUIT of Client.Close.
	quitTimeout = 2 * time.Second
	// maxCommand is the longest command line, CRLF included (RFC 3977
	// §3.1, RFC 4643 §2.4.2 for AUTHINFO SASL).
	maxCommand = 512
)

// Client is an NNTP session secured per the caller's mode. It is created
// by Upgrade or Dial, which have already done the TLS upgrade; it is not
// safe for concurrent use.
type Client struct {
	conn   net.Conn // the raw connection, or the *tls.Conn after the upgrade
	tc     *textline.Conn
	opts   *starttls.ClientOptions
	res    *starttls.Result
	mode   starttls.Mode
	caps   []string // the trusted capabilities: post-TLS ones after an upgrade
	capsOK bool     // whether the last CAPABILITIES was answered 101
	closed bool
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// defaults to the host part of addr; opts is copied, never modified. A nil
// opts means safe defaults (ModeAuto: implicit TLS on port 563, ModeRequired
// elsewhere).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "nntp", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade runs the client dialog on conn: the greeting (RFC 3977 §5.1),
// CAPABILITIES (§5.2), STARTTLS per the mode (RFC 4642), the TLS handshake
// and CAPABILITIES again over TLS, trusting only what is read over TLS.
//
// ModeAuto is resolved from the remote port. ModeImplicit does the
// handshake first. ModePlain never upgrades. ModeRequired fails with
// ErrUpgradeNotOffered when CAPABILITIES succeeded without STARTTLS (and
// sends nothing more), and with ErrUpgradeRefused when STARTTLS is refused
// (580, 502, …). When CAPABILITIES itself fails, STARTTLS is still tried;
// Offered stays false. ModeOpportunistic goes on in plaintext in both
// cases, without an error.
//
// Bytes that arrive after the 382 go-ahead and before the handshake fail the
// upgrade with ErrPlaintextAfterUpgrade (response injection); bytes that
// arrive with the greeting before the client spoke fail it with
// ErrProtocol.
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "nntp", Mode: mode}
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
		Proto:      "nntp",
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

	// RFC 3977 §5.1: 200 or 201; 400 and 502 mean no service.
	line, err := c.tc.ReadLine()
	if err != nil {
		return fmt.Errorf("%w (waiting for the greeting)", err)
	}
	c.res.Greeting = line
	r, err := parseReply(line)
	if err != nil {
		return err
	}
	if r.Code != CodePostingAllowed && r.Code != CodeNoPosting {
		if e := r.err(); e != nil {
			return errorf("server refused the session: %w", e)
		}
		return starttls.ProtocolError("nntp", "unexpected greeting %q", starttls.Escape(clip(line, 80)))
	}
	// The server may not say anything more before the client speaks.
	if n := c.tc.Buffered(); n > 0 {
		return starttls.ProtocolError("nntp", "%d bytes of unsolicited data after the greeting", n)
	}

	if err := c.capabilities(); err != nil {
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

	if c.mode == starttls.ModePlain {
		c.probeNotRun("plain mode: no upgrade")
		return nil
	}
	if c.capsOK && !c.res.Offered {
		c.probeNotRun("upgrade not offered")
		if c.mode == starttls.ModeRequired {
			return errorf("STARTTLS not in CAPABILITIES: %w", starttls.ErrUpgradeNotOffered)
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

// probeCommand is the harmless command pipelined after STARTTLS by the
// injection probe; a vulnerable server answers it with 101.
const probeCommand = "CAPABILITIES"

// startTLS sends STARTTLS (RFC 4642 §2.2), checks for response injection,
// does the handshake and asks for the capabilities again.
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
	line, err := c.tc.ReadLine()
	if err != nil {
		return fmt.Errorf("%w (waiting for the STARTTLS answer)", err)
	}
	c.res.UpgradeReply = line
	r, err := parseReply(line)
	if err != nil {
		return err
	}
	if r.Code != CodeContinueTLS {
		if probe != nil {
			probe.Err = "upgrade refused"
		}
		rerr := r.err()
		if rerr == nil {
			rerr = starttls.ProtocolError("nntp", "unexpected STARTTLS answer %q", starttls.Escape(clip(line, 80)))
		}
		if c.mode == starttls.ModeRequired {
			return fmt.Errorf("nntp: STARTTLS: %w: %w", starttls.ErrUpgradeRefused, rerr)
		}
		if probe != nil {
			return c.skipResponse(ctx)
		}
		return nil
	}

	// Upgrade rules 1 and 2: nothing may follow the go-ahead in plaintext.
	tc, err := c.tc.StartTLS(ctx, c.conn, c.opts, c.res, probe, "STARTTLS", "STARTTLS")
	if err != nil {
		return err
	}
	c.conn = tc
	// RFC 4642 §2.2.2: discard what the server said before.
	c.caps, c.capsOK = nil, false

	if probe != nil {
		if err := c.runProbe(ctx, probe); err != nil {
			return err
		}
	}
	if err := c.capabilities(); err != nil {
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

// restoreDeadline gives the dialog the context's deadline back.
func (c *Client) restoreDeadline(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(d)
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
}

// runProbe waits opts.Wait() for application data the client did not ask
// for: a server that executed the pipelined command inside TLS answers it
// now (CVE-2011-0411).
func (c *Client) runProbe(ctx context.Context, probe *starttls.InjectionProbe) error {
	return c.tc.AwaitProbeAnswer(ctx, c.conn, c.opts.Wait(), probe, nil, func() error {
		line, err := c.tc.ReadLine()
		if err != nil {
			return err
		}
		probe.Vulnerable = true
		reply := []string{line}
		if r, perr := parseReply(line); perr == nil && r.Code == CodeCapabilities {
			err = readMulti(c.tc, c.opts.LinesLimit(), 0, func(l string) { reply = append(reply, l) })
		}
		probe.Reply = strings.Join(reply, "\n")
		c.tc.Note("injection probe: the server answered the pipelined " + probeCommand + " inside TLS (CVE-2011-0411)")
		return err
	})
}

// skipResponse reads and drops the answer to the probe command pipelined
// after a refused STARTTLS, waiting at most opts.Wait() for it to start.
func (c *Client) skipResponse(ctx context.Context) error {
	c.conn.SetReadDeadline(time.Now().Add(c.opts.Wait()))
	line, err := c.tc.ReadLine()
	c.restoreDeadline(ctx)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
		return nil
	}
	if err != nil {
		return err
	}
	r, err := parseReply(line)
	if err != nil || r.Code != CodeCapabilities {
		return err
	}
	return readMulti(c.tc, c.opts.LinesLimit(), 0, func(string) {})
}

// capabilities sends CAPABILITIES (RFC 3977 §5.2) and stores the answer. A
// 4xx or 5xx answer is not an error: the server predates RFC 3977.
func (c *Client) capabilities() error {
	r, err := c.cmd("CAPABILITIES", "CAPABILITIES")
	c.caps, c.capsOK = nil, false
	if err != nil {
		var ne *Error
		if errors.As(err, &ne) {
			return nil
		}
		return err
	}
	if r.Code != CodeCapabilities {
		return starttls.ProtocolError("nntp", "unexpected CAPABILITIES answer %d", r.Code)
	}
	var lines []string
	if err := readMulti(c.tc, c.opts.LinesLimit(), 0, func(l string) { lines = append(lines, l) }); err != nil {
		return err
	}
	c.caps, c.capsOK = parseCaps(lines), true
	return nil
}

// cmd sends one command line (shown in the transcript as shown) and reads
// the reply. A 4xx or 5xx reply is returned as *Error.
func (c *Client) cmd(line, shown string) (reply, error) {
	if len(line)+2 > maxCommand {
		return reply{}, errorf("command longer than %d octets", maxCommand)
	}
	if err := c.tc.WriteLineMasked(line, shown); err != nil {
		return reply{}, err
	}
	resp, err := c.tc.ReadLine()
	if err != nil {
		return reply{}, err
	}
	r, err := parseReply(resp)
	if err != nil {
		return r, err
	}
	return r, r.err()
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// Capabilities returns the capabilities in force: those read over TLS after
// an upgrade.
func (c *Client) Capabilities() []string { return append([]string(nil), c.caps...) }

// NetConn returns the connection (a *tls.Conn after an upgrade) with any
// bytes already buffered readable first, for interactive use. The Client
// should not be used for commands afterwards.
func (c *Client) NetConn() net.Conn { return c.tc.NetConn() }

func (c *Client) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	stop := textline.Watch(ctx, c.conn)
	return ctx, func() { stop(); cancel() }
}

// Login authenticates with AUTHINFO USER/PASS (RFC 4643 §2.3) when AUTHINFO
// lists USER or the capabilities are unknown, else with AUTHINFO SASL PLAIN
// (RFC 4643 §2.4, RFC 4616) when SASL lists PLAIN. After an upgrade only
// the capabilities read over TLS count; they are read again after a
// successful login (RFC 4643 §2.3.1).
//
// Login refuses, with an error wrapping starttls.ErrFallbackForbidden, to
// send credentials on a connection without TLS unless the mode is
// ModePlain. The transcript shows the password as "****".
func (c *Client) Login(ctx context.Context, username, password string) error {
	if !c.res.Upgraded && c.mode != starttls.ModePlain {
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	}
	if strings.ContainsAny(username, "\r\n\x00 \t") || strings.ContainsAny(password, "\r\n\x00") {
		return errorf("username contains white space, CR, LF or NUL, or password contains CR, LF or NUL")
	}
	ctx, done := c.begin(ctx)
	defer done()
	var err error
	switch {
	case hasArg(c.caps, CapAuthInfo, "USER") || !c.capsOK:
		err = c.authUser(username, password)
	case hasArg(c.caps, CapAuthInfo, "SASL") && hasArg(c.caps, CapSASL, "PLAIN"):
		err = c.authPlain(username, password)
	default:
		return errorf("no login mechanism offered (AUTHINFO lists neither USER nor SASL with PLAIN)")
	}
	if err != nil {
		return textline.CtxErr(ctx, err)
	}
	if c.capsOK {
		return textline.CtxErr(ctx, c.capabilities())
	}
	return nil
}

// authUser runs AUTHINFO USER and, on 381, AUTHINFO PASS.
func (c *Client) authUser(username, password string) error {
	r, err := c.cmd("AUTHINFO USER "+username, "AUTHINFO USER "+username)
	if err != nil {
		return err
	}
	switch r.Code {
	case CodeAuthAccepted:
		return nil
	case CodePasswordRequired:
	default:
		return starttls.ProtocolError("nntp", "unexpected AUTHINFO USER answer %d", r.Code)
	}
	r, err = c.cmd("AUTHINFO PASS "+password, "AUTHINFO PASS ****")
	if err != nil {
		return err
	}
	if r.Code != CodeAuthAccepted {
		return starttls.ProtocolError("nntp", "unexpected AUTHINFO PASS answer %d", r.Code)
	}
	return nil
}

// authPlain runs AUTHINFO SASL PLAIN with an initial response when it fits
// in the command line (RFC 4643 §2.4.2), else in a 383 continuation.
func (c *Client) authPlain(username, password string) error {
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + username + "\x00" + password))
	var r reply
	var err error
	if len("AUTHINFO SASL PLAIN "+ir)+2 <= maxCommand {
		r, err = c.cmd("AUTHINFO SASL PLAIN "+ir, "AUTHINFO SASL PLAIN ****")
	} else {
		r, err = c.cmd("AUTHINFO SASL PLAIN", "AUTHINFO SASL PLAIN")
		if err == nil && r.Code == CodeSASLContinue {
			if len(ir)+2 > c.opts.LineLimit() {
				return errorf("credentials too long")
			}
			if err = c.tc.WriteLineMasked(ir, "****"); err == nil {
				var line string
				if line, err = c.tc.ReadLine(); err == nil {
					if r, err = parseReply(line); err == nil {
						err = r.err()
					}
				}
			}
		}
	}
	if err != nil {
		return err
	}
	if r.Code != CodeAuthAccepted {
		return starttls.ProtocolError("nntp", "unexpected AUTHINFO SASL answer %d", r.Code)
	}
	return nil
}

// ModeReader sends MODE READER (RFC 3977 §5.3) to a mode-switching server
// and reads the capabilities again, as they may change.
func (c *Client) ModeReader(ctx context.Context) error {
	ctx, done := c.begin(ctx)
	defer done()
	if _, err := c.cmd("MODE READER", "MODE READER"); err != nil {
		return textline.CtxErr(ctx, err)
	}
	return textline.CtxErr(ctx, c.capabilities())
}

// Group selects a newsgroup (RFC 3977 §6.1.1).
func (c *Client) Group(ctx context.Context, name string) (GroupInfo, error) {
	if name == "" || strings.ContainsAny(name, " \t\r\n\x00") {
		return GroupInfo{}, errorf("invalid group name %q", name)
	}
	ctx, done := c.begin(ctx)
	defer done()
	r, err := c.cmd("GROUP "+name, "GROUP "+name)
	if err != nil {
		return GroupInfo{}, textline.CtxErr(ctx, err)
	}
	if r.Code != CodeGroupSelected {
		return GroupInfo{}, starttls.ProtocolError("nntp", "unexpected GROUP answer %d", r.Code)
	}
	return parseGroup(r.Text)
}

// Article fetches an article (RFC 3977 §6.2.1): spec is an article number
// in the selected group, a message-id "<…>", or "" for the current
// article. The article comes back with CRLF line endings and the
// dot-stuffing removed; articles larger than MaxArticleSize fail.
func (c *Client) Article(ctx context.Context, spec string) ([]byte, error) {
	return c.fetch(ctx, "ARTICLE", spec, CodeArticle)
}

// Head fetches the header of an article (RFC 3977 §6.2.2), like Article.
func (c *Client) Head(ctx context.Context, spec string) ([]byte, error) {
	return c.fetch(ctx, "HEAD", spec, CodeHead)
}

// Body fetches the body of an article (RFC 3977 §6.2.3), like Article.
func (c *Client) Body(ctx context.Context, spec string) ([]byte, error) {
	return c.fetch(ctx, "BODY", spec, CodeBody)
}

func (c *Client) fetch(ctx context.Context, verb, spec string, want int) ([]byte, error) {
	if strings.ContainsAny(spec, " \t\r\n\x00") {
		return nil, errorf("%s: invalid article %q", verb, spec)
	}
	line := verb
	if spec != "" {
		line += " " + spec
	}
	ctx, done := c.begin(ctx)
	defer done()
	r, err := c.cmd(line, line)
	if err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	if r.Code != want {
		return nil, starttls.ProtocolError("nntp", "unexpected %s answer %d", verb, r.Code)
	}
	var b []byte
	err = readMulti(c.tc, 0, MaxArticleSize, func(l string) {
		b = append(b, l...)
		b = append(b, '\r', '\n')
	})
	if err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	return b, nil
}

// Close sends QUIT (RFC 3977 §5.4), waits at most two seconds for the 205
// and closes the connection.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(quitTimeout))
	if c.tc.WriteLine("QUIT") == nil {
		c.tc.ReadLine()
	}
	return c.conn.Close()
}
