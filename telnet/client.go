package telnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
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

// Client is a Telnet session secured per the caller's mode. It is created
// by Upgrade or Dial, which have already done the TLS upgrade; it is not
// safe for concurrent use.
type Client struct {
	conn     net.Conn // the raw connection, or the *tls.Conn after the upgrade
	r        *bufio.Reader
	dec      decoder
	opts     *starttls.ClientOptions
	res      *starttls.Result
	mode     starttls.Mode
	tls      bool
	text     string          // text received and not consumed by a prompt yet
	replies  map[[2]byte]int // refusals sent per verb and option (loop guard)
	loggedIn bool
	closed   bool
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// defaults to the host part of addr; opts is copied, never modified. A nil
// opts means safe defaults (ModeAuto: implicit TLS on port 992, ModeRequired
// elsewhere).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "telnet", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade runs the client dialog on conn (see the package documentation):
// the server's first words, WILL START_TLS when offered (or when the
// server is silent), the FOLLOWS exchange, the TLS handshake and the banner
// again over TLS.
//
// ModeAuto is resolved from the remote port. ModeImplicit does the
// handshake first. ModePlain answers DO START_TLS with WONT and never
// upgrades. ModeRequired fails with ErrUpgradeNotOffered when the server
// spoke without DO START_TLS (and sends nothing more), and with
// ErrUpgradeRefused when it answers DONT or WONT START_TLS.
// ModeOpportunistic goes on in plaintext in both cases, without an error.
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "telnet", Mode: mode}
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
		res.Transcript = opts.Transcript
	}
	c := &Client{opts: &o, res: res, mode: mode}
	c.setConn(conn)
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

// setConn starts reading from conn with a fresh decoder and negotiation
// state (draft-altman-telnet-starttls §3: the session restarts over TLS).
func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	c.r = bufio.NewReaderSize(conn, 4096)
	c.dec = decoder{}
	c.replies = map[[2]byte]int{}
	c.text = ""
}

func (c *Client) note(s string) { c.res.Transcript.Add(starttls.Note, c.tls, s) }

// send writes b in one write, recording shown.
func (c *Client) send(b []byte, shown string) error {
	c.res.Transcript.Add(starttls.FromClient, c.tls, shown)
	if _, err := c.conn.Write(b); err != nil {
		return errorf("%w", err)
	}
	return nil
}

// collected is what one read gathered.
type collected struct {
	text     string
	events   []event // negotiations, subnegotiations and commands
	received bool
}

// has reports whether the server sent verb opt.
func (g collected) has(verb, opt byte) bool {
	for _, e := range g.events {
		if e.kind == evNeg && e.b == verb && e.opt == opt {
			return true
		}
	}
	return false
}

// negs returns the negotiations as "DO START_TLS" strings.
func (g collected) negs() []string {
	var out []string
	for _, e := range g.events {
		if e.kind == evNeg {
			s := verbName(e.b) + " " + optName(e.opt)
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// collect reads the Telnet stream. It waits at most first for the first
// byte, and again after each refusal it sent (the server owes an answer);
// otherwise, once bytes arrive, it ends after quiet without more (quiet 0:
// only stop or the context ends it). stop, if not nil, ends it right after an
// event for which it returns true; it sees only the tail of the text (the
// last promptTail bytes, enough to find a prompt at the end), so that
// calling it on every byte stays linear. Negotiations of options other than
// START_TLS are refused on the way. A silent server is not an error (the
// caller checks received).
func (c *Client) collect(ctx context.Context, first, quiet time.Duration, stop func(ev event, text string) bool) (g collected, err error) {
	var text strings.Builder
	maxText := 4 * c.opts.LineLimit()
	defer func() {
		if d, ok := ctx.Deadline(); ok {
			c.conn.SetReadDeadline(d)
		} else {
			c.conn.SetReadDeadline(time.Time{})
		}
	}()
	flush := func() {
		if text.Len() > len(g.text) {
			c.res.Transcript.Add(starttls.FromServer, c.tls, text.String()[len(g.text):])
			g.text = text.String()
		}
	}
	defer flush()
	replied := false // the server owes an answer to our refusal: wait longer
	for {
		if c.r.Buffered() == 0 {
			wait := first
			if g.received && !replied {
				wait = quiet
			}
			replied = false
			if wait > 0 {
				deadline := time.Now().Add(wait)
				if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
					deadline = d
				}
				c.conn.SetReadDeadline(deadline)
			}
		}
		b, err := c.r.ReadByte()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil && (first > 0 && !g.received || quiet > 0 && g.received) {
				return g, nil
			}
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("connection closed by the peer: %w", err)
			}
			return g, errorf("%w", err)
		}
		g.received = true
		ev, ok, err := c.dec.feed(b)
		if err != nil {
			flush()
			return g, err
		}
		if !ok {
			continue
		}
		if ev.kind == evData {
			if ev.b == 0 {
				continue // CR NUL, or padding (RFC 854)
			}
			if text.Len() >= maxText {
				flush()
				return g, errorf("more than %d bytes of text without a pause: %w", maxText, starttls.ErrLineTooLong)
			}
			text.WriteByte(ev.b)
			if stop != nil && stop(ev, tail(text.String())) {
				return g, nil
			}
			continue
		}
		flush()
		c.res.Transcript.Add(starttls.FromServer, c.tls, ev.String())
		if len(g.events) >= c.opts.LinesLimit() {
			return g, starttls.ProtocolError("telnet", "more than %d Telnet commands in a row", c.opts.LinesLimit())
		}
		g.events = append(g.events, ev)
		sent, err := c.autoReply(ev)
		if err != nil {
			return g, err
		}
		replied = replied || sent
		if stop != nil && stop(ev, tail(text.String())) {
			return g, nil
		}
	}
}

// autoReply refuses options the client does not implement (RFC 854: DO →
// WONT, WILL → DONT), at most twice per option so that a confused server
// cannot make negotiation loop. START_TLS before TLS is the dialog's.
func (c *Client) autoReply(ev event) (sent bool, err error) {
	if ev.kind != evNeg || (ev.opt == OptStartTLS && !c.tls) {
		return false, nil
	}
	var verb byte
	switch ev.b {
	case cmdDO:
		verb = cmdWONT
	case cmdWILL:
		verb = cmdDONT
	default:
		return false, nil // DONT and WONT need no answer: the option is off
	}
	if ev.opt == OptStartTLS {
		c.res.OfferedAfterTLS = true
	}
	k := [2]byte{verb, ev.opt}
	if c.replies[k] >= 2 {
		return false, nil
	}
	c.replies[k]++
	return true, c.send(neg(verb, ev.opt), "IAC "+verbName(verb)+" "+optName(ev.opt))
}

func (c *Client) dialog(ctx context.Context) error {
	switch c.mode {
	case starttls.ModePlain, starttls.ModeOpportunistic, starttls.ModeRequired:
	case starttls.ModeImplicit:
		tc, err := starttls.Handshake(ctx, c.conn, c.opts)
		if err != nil {
			return errorf("implicit TLS: %w", err)
		}
		c.tlsDone(tc)
		c.probeNotRun("implicit TLS: no upgrade")
		g, err := c.collect(ctx, c.opts.Wait(), QuietPeriod, nil)
		if err != nil {
			return err
		}
		c.res.Greeting = greeting(g)
		c.afterTLS(g)
		return nil
	default:
		return errorf("unsupported mode %v", c.mode)
	}

	g, err := c.collect(ctx, c.opts.Wait(), QuietPeriod, nil)
	if err != nil {
		return fmt.Errorf("%w (reading the server's first words)", err)
	}
	c.text = g.text
	c.res.Greeting = greeting(g)
	c.res.CapsBefore = g.negs()
	if isLoginPrompt(g.text) {
		c.res.AuthBefore = []string{"LOGIN"}
	}
	c.res.Offered = g.has(cmdDO, OptStartTLS)
	if c.mode == starttls.ModePlain {
		c.probeNotRun("plain mode: no upgrade")
		if c.res.Offered {
			return c.send(neg(cmdWONT, OptStartTLS), "IAC WONT START_TLS")
		}
		return nil
	}
	if !c.res.Offered && g.received {
		c.probeNotRun("upgrade not offered")
		if c.mode == starttls.ModeRequired {
			return errorf("no IAC DO START_TLS from the server: %w", starttls.ErrUpgradeNotOffered)
		}
		return nil
	}
	if !g.received {
		c.note("the server said nothing: asking for START_TLS ourselves")
	}
	if err := c.send(neg(cmdWILL, OptStartTLS), "IAC WILL START_TLS"); err != nil {
		return err
	}
	// The answer: FOLLOWS (go-ahead), DONT/WONT START_TLS (refusal); a DO
	// START_TLS answers our unsolicited WILL and is not the go-ahead yet.
	isFollows := func(ev event) bool {
		return ev.kind == evSB && ev.opt == OptStartTLS && len(ev.data) == 1 && ev.data[0] == follows
	}
	ans, err := c.collect(ctx, 0, 0, func(ev event, _ string) bool {
		return isFollows(ev) || ev.kind == evNeg && ev.opt == OptStartTLS && (ev.b == cmdDONT || ev.b == cmdWONT)
	})
	if err != nil {
		return fmt.Errorf("%w (waiting for the answer to WILL START_TLS)", err)
	}
	c.text += ans.text
	last := ans.events[len(ans.events)-1]
	c.res.UpgradeReply = last.String()
	if ans.has(cmdDO, OptStartTLS) {
		c.res.Offered = true
	}
	if !isFollows(last) {
		c.probeNotRun("upgrade refused")
		err := fmt.Errorf("telnet: %s: %w", last, starttls.ErrUpgradeRefused)
		if !c.res.Offered {
			err = fmt.Errorf("telnet: %s: %w", last, starttls.ErrUpgradeNotOffered)
		}
		if c.mode == starttls.ModeRequired {
			return err
		}
		return nil
	}
	c.res.Offered = true

	// Upgrade rule 1: nothing may follow the server's FOLLOWS.
	if n := c.r.Buffered(); n > 0 {
		b, _ := c.r.Peek(n)
		c.res.PlaintextAfterUpgrade = append([]byte(nil), b...)
		c.note(fmt.Sprintf("%d bytes of plaintext after FOLLOWS: %q", n, b))
		return errorf("%d bytes received after FOLLOWS, before TLS: %w", n, starttls.ErrPlaintextAfterUpgrade)
	}
	var probe *starttls.InjectionProbe
	msg, shown := startTLSFollows, "IAC SB START_TLS FOLLOWS IAC SE"
	if c.opts.ProbeInjection {
		probe = &starttls.InjectionProbe{Sent: "IAC DO TIMING-MARK"}
		c.res.Injection = probe
		msg = append(append([]byte(nil), msg...), neg(cmdDO, optTimingMark)...)
		shown += " IAC DO TIMING-MARK"
	}
	if err := c.send(msg, shown); err != nil {
		return err
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
		return errorf("START_TLS: %w", err)
	}
	c.tlsDone(tc)
	g, err = c.collect(ctx, c.opts.Wait(), QuietPeriod, nil)
	if probe != nil {
		switch {
		case g.has(cmdWILL, optTimingMark) || g.has(cmdWONT, optTimingMark):
			probe.Vulnerable = true
			probe.Reply = "IAC WONT TIMING-MARK"
			if g.has(cmdWILL, optTimingMark) {
				probe.Reply = "IAC WILL TIMING-MARK"
			}
			c.note("injection probe: the server answered the pipelined IAC DO TIMING-MARK inside TLS (CVE-2011-0411 class)")
		case err != nil && textline.IsClosed(err) && !g.received:
			probe.Closed = true
		}
	}
	if err != nil {
		return fmt.Errorf("%w (reading the banner over TLS)", err)
	}
	c.afterTLS(g)
	return nil
}

// greeting is the text of the first words, or the commands when there is
// no text.
func greeting(g collected) string {
	if t := strings.TrimSpace(g.text); t != "" {
		return t
	}
	var s []string
	for _, e := range g.events {
		s = append(s, e.String())
	}
	return strings.Join(s, " ")
}

func (c *Client) probeNotRun(why string) {
	if c.opts.ProbeInjection && c.res.Injection == nil {
		c.res.Injection = &starttls.InjectionProbe{Err: why}
	}
}

func (c *Client) tlsDone(tc *tls.Conn) {
	c.setConn(tc)
	c.tls = true
	st := tc.ConnectionState()
	c.res.TLS = &st
	c.res.Upgraded = true
	c.note(fmt.Sprintf("TLS handshake done: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)))
}

// afterTLS records what the server said over TLS; nothing from before is
// kept (upgrade rule 3).
func (c *Client) afterTLS(g collected) {
	c.text = g.text
	c.res.CapsAfter = g.negs()
	c.res.CapsReread = strings.TrimSpace(g.text) != ""
	c.res.AuthAfter = nil
	if isLoginPrompt(g.text) {
		c.res.AuthAfter = []string{"LOGIN"}
	}
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// NetConn returns the connection (a *tls.Conn after an upgrade) for
// interactive use: its reads deliver first the text the dialog read and
// did not consume (Text: the banner and login prompt), then any buffered
// bytes, then the connection. The bytes are raw Telnet (IAC sequences
// included). The Client should not be used afterwards.
func (c *Client) NetConn() net.Conn {
	return &bufferedConn{Conn: c.conn, r: io.MultiReader(bytes.NewReader(escape(c.text)), c.r)}
}

type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// Text returns the text received and not yet consumed: the banner and
// prompt after Upgrade, the shell's greeting after Login.
func (c *Client) Text() string { return c.text }

// ErrLoginRefused is returned by Login when the server answers the
// password with a new login prompt or "Login incorrect".
var ErrLoginRefused = errors.New("telnet: login refused")

// Login answers the server's "login:" and "Password:" prompts and reports
// whether the shell accepted them: a new login prompt or "incorrect" in
// the answer fails with ErrLoginRefused. The text after a successful login
// is in Text.
//
// Login refuses, with an error wrapping starttls.ErrFallbackForbidden, to
// send credentials on a connection without TLS unless the mode is
// ModePlain. The transcript shows the password as "****".
func (c *Client) Login(ctx context.Context, username, password string) error {
	if !c.tls && c.mode != starttls.ModePlain {
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	}
	if strings.ContainsAny(username, "\r\n\x00") || strings.ContainsAny(password, "\r\n\x00") {
		return errorf("username or password contains CR, LF or NUL")
	}
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	defer cancel()
	stop := textline.Watch(ctx, c.conn)
	defer stop()
	if !isLoginPrompt(c.text) {
		g, err := c.collect(ctx, 0, 0, func(_ event, text string) bool { return isLoginPrompt(text) })
		if err != nil {
			return textline.CtxErr(ctx, fmt.Errorf("%w (waiting for the login prompt)", err))
		}
		c.text = g.text
	}
	if err := c.send(append(escape(username), '\r', '\n'), username); err != nil {
		return err
	}
	g, err := c.collect(ctx, 0, 0, func(_ event, text string) bool {
		return isPasswordPrompt(text) || isLoginPrompt(text)
	})
	if err != nil {
		return textline.CtxErr(ctx, fmt.Errorf("%w (waiting for the password prompt)", err))
	}
	if !isPasswordPrompt(g.text) {
		c.text = g.text
		return fmt.Errorf("%w: no password prompt (%q)", ErrLoginRefused, strings.TrimSpace(g.text))
	}
	if err := c.send(append(escape(password), '\r', '\n'), "****"); err != nil {
		return err
	}
	g, err = c.collect(ctx, c.opts.Wait(), QuietPeriod, nil)
	if err != nil {
		return textline.CtxErr(ctx, fmt.Errorf("%w (waiting for the answer to the password)", err))
	}
	// The space after "Password:" arrives after the prompt was seen.
	c.text = strings.TrimLeft(g.text, " ")
	if isLoginPrompt(g.text) || strings.Contains(strings.ToLower(g.text), "incorrect") || !g.received {
		return fmt.Errorf("%w: %q", ErrLoginRefused, strings.TrimSpace(g.text))
	}
	c.loggedIn = true
	return nil
}

// Command sends one line to the shell and returns the text of the answer,
// read until the server is quiet.
func (c *Client) Command(ctx context.Context, line string) (string, error) {
	if strings.ContainsAny(line, "\r\n\x00") {
		return "", errorf("command contains CR, LF or NUL")
	}
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	defer cancel()
	stop := textline.Watch(ctx, c.conn)
	defer stop()
	if err := c.send(append(escape(line), '\r', '\n'), line); err != nil {
		return "", err
	}
	g, err := c.collect(ctx, c.opts.Wait(), QuietPeriod, nil)
	c.text = g.text
	return g.text, textline.CtxErr(ctx, err)
}

// Close sends "logout" after a login, waits at most two seconds for the
// server to close, and closes the connection.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(closeTimeout))
	if c.loggedIn && c.send([]byte("logout\r\n"), "logout") == nil {
		io.Copy(io.Discard, io.LimitReader(c.r, 64<<10))
	}
	return c.conn.Close()
}
