package pop3

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

const (
	// MaxMessageSize bounds a message fetched with Client.Retr, dot-stuffing
	// removed and CRLF line endings included.
	MaxMessageSize = 64 << 20
	// quitTimeout bounds the polite QUIT of Client.Close.
	quitTimeout = 2 * time.Second
	// maxAuthLine is the longest AUTH command with an initial response
	// (RFC 5034 §4: 255 octets including CRLF); longer responses go in a
	// continuation.
	maxAuthLine = 255 - 2
)

// Client is a POP3 session secured per the caller's mode. It is created by
// Upgrade or Dial, which have already done the TLS upgrade; it is not safe
// for concurrent use.
type Client struct {
	conn   net.Conn // the raw connection, or the *tls.Conn after the upgrade
	tc     *textline.Conn
	opts   *starttls.ClientOptions
	res    *starttls.Result
	mode   starttls.Mode
	caps   []string // the trusted capabilities: post-TLS ones after an upgrade
	capaOK bool     // whether the last CAPA was answered +OK
	closed bool
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// defaults to the host part of addr; opts is copied, never modified. A nil
// opts means safe defaults (ModeAuto: implicit TLS on port 995, ModeRequired
// elsewhere).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "pop3", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade runs the client dialog on conn: the greeting (RFC 1939 §4), CAPA
// (RFC 2449 §5), STLS per the mode (RFC 2595 §4), the TLS handshake and CAPA
// again over TLS, trusting only the capabilities read over TLS.
//
// ModeAuto is resolved from the remote port. ModeImplicit does the
// handshake first (RFC 8314 §3). ModePlain never upgrades. ModeRequired
// fails with ErrUpgradeNotOffered when CAPA succeeded without STLS (and
// sends nothing more), and with ErrUpgradeRefused when STLS is refused.
// When CAPA itself fails, STLS is still tried, for old servers; Offered
// stays false. ModeOpportunistic goes on in plaintext in both cases, without
// an error.
//
// Bytes that arrive after the STLS go-ahead and before the handshake fail
// the upgrade with ErrPlaintextAfterUpgrade (response injection); bytes
// that arrive with the greeting before the client spoke fail it with
// ErrProtocol.
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "pop3", Mode: mode}
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
		Proto:      "pop3",
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

	// RFC 1939 §4: the greeting is a positive response; an APOP timestamp
	// in its text is allowed and ignored.
	line, err := c.tc.ReadLine()
	if err != nil {
		return fmt.Errorf("%w (waiting for the greeting)", err)
	}
	c.res.Greeting = line
	st, err := parseStatus(line)
	if err != nil {
		return err
	}
	if !st.OK {
		return errorf("server refused the session: %w", st.err())
	}
	// PR-11: the server may not say anything more before the client
	// speaks; unsolicited lines would otherwise be taken for the answer to
	// our first command.
	if n := c.tc.Buffered(); n > 0 {
		return starttls.ProtocolError("pop3", "%d bytes of unsolicited data after the greeting", n)
	}

	if err := c.capa(); err != nil {
		return err
	}
	if c.res.Upgraded { // implicit TLS
		c.afterTLSCaps()
		c.probeNotRun("implicit TLS: no upgrade command")
		return nil
	}
	c.res.CapsBefore = c.caps
	c.res.AuthBefore = authMechs(c.caps)
	c.res.Offered = hasCap(c.caps, CapSTLS)

	if c.mode == starttls.ModePlain {
		c.probeNotRun("plain mode: no upgrade")
		return nil
	}
	if c.capaOK && !c.res.Offered {
		c.probeNotRun("upgrade not offered")
		if c.mode == starttls.ModeRequired {
			// CL-07: nothing else is sent.
			return errorf("STLS not in CAPA: %w", starttls.ErrUpgradeNotOffered)
		}
		return nil
	}
	return c.startTLS(ctx)
}

// probeNotRun records why the injection probe could not run.
func (c *Client) probeNotRun(why string) {
	if c.opts != nil && c.opts.ProbeInjection && c.res.Injection == nil {
		c.res.Injection = &starttls.InjectionProbe{Err: why}
	}
}

// probeCommand is the harmless command pipelined after STLS by the
// injection probe. CAPA is valid in every state, so a vulnerable server
// answers it with +OK.
const probeCommand = "CAPA"

// startTLS sends STLS (RFC 2595 §4), checks for response injection, does
// the handshake and asks for the capabilities again.
func (c *Client) startTLS(ctx context.Context) error {
	var probe *starttls.InjectionProbe
	var err error
	if c.opts != nil && c.opts.ProbeInjection {
		probe = &starttls.InjectionProbe{Sent: probeCommand}
		c.res.Injection = probe
		err = c.tc.WriteLines("STLS", probeCommand)
	} else {
		err = c.tc.WriteLine("STLS")
	}
	if err != nil {
		return err
	}
	line, err := c.tc.ReadLine()
	if err != nil {
		return fmt.Errorf("%w (waiting for the STLS answer)", err)
	}
	c.res.UpgradeReply = line
	st, err := parseStatus(line)
	if err != nil {
		return err
	}
	if !st.OK {
		if probe != nil {
			probe.Err = "upgrade refused"
		}
		if c.mode == starttls.ModeRequired {
			return fmt.Errorf("pop3: STLS: %w: %w", starttls.ErrUpgradeRefused, st.err())
		}
		if probe != nil {
			// The pipelined command is answered in plaintext; consume the
			// answer so that the opportunistic session stays in step.
			return c.skipResponse(ctx)
		}
		return nil
	}

	// Upgrade rules 1 and 2: nothing may follow the go-ahead in plaintext.
	tc, err := c.tc.StartTLS(ctx, c.conn, c.opts, c.res, probe, "STLS", "STLS")
	if err != nil {
		return err
	}
	c.conn = tc
	// Upgrade rule 3 (RFC 2595 §4): forget what the server said before.
	c.caps, c.capaOK = nil, false

	if probe != nil {
		if err := c.runProbe(ctx, probe); err != nil {
			return err
		}
	}
	if err := c.capa(); err != nil {
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
	c.res.CapsReread = c.capaOK
	c.res.OfferedAfterTLS = hasCap(c.caps, CapSTLS)
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
		// Read the rest of the answer so that the dialog stays in step.
		if st, perr := parseStatus(line); perr == nil && st.OK {
			err = readMulti(c.tc, c.opts.LinesLimit(), 0, func(l string) { reply = append(reply, l) })
		}
		probe.Reply = strings.Join(reply, "\n")
		c.tc.Note("injection probe: the server answered the pipelined " + probeCommand + " inside TLS (CVE-2011-0411)")
		return err
	})
}

// skipResponse reads and drops the answer to the probe command pipelined
// after a refused STLS, waiting at most opts.Wait() for it to start.
func (c *Client) skipResponse(ctx context.Context) error {
	c.conn.SetReadDeadline(time.Now().Add(c.opts.Wait()))
	line, err := c.tc.ReadLine()
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(d)
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
		return nil // not answered: nothing to skip
	}
	if err != nil {
		return err
	}
	st, err := parseStatus(line)
	if err != nil || !st.OK {
		return err
	}
	return readMulti(c.tc, c.opts.LinesLimit(), 0, func(string) {})
}

// capa sends CAPA (RFC 2449 §5) and stores the answer. A -ERR answer is not
// an error: the server predates RFC 2449.
func (c *Client) capa() error {
	_, err := c.cmd("CAPA", "CAPA")
	c.caps, c.capaOK = nil, false
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return nil
		}
		return err
	}
	var lines []string
	if err := readMulti(c.tc, c.opts.LinesLimit(), 0, func(l string) { lines = append(lines, l) }); err != nil {
		return err
	}
	c.caps, c.capaOK = parseCaps(lines), true
	return nil
}

// cmd sends one command line (shown in the transcript as shown) and reads
// the status line. A -ERR answer is returned as *Error.
func (c *Client) cmd(line, shown string) (status, error) {
	if err := c.tc.WriteLineMasked(line, shown); err != nil {
		return status{}, err
	}
	return c.readStatus()
}

func (c *Client) readStatus() (status, error) {
	resp, err := c.tc.ReadLine()
	if err != nil {
		return status{}, err
	}
	st, err := parseStatus(resp)
	if err != nil {
		return st, err
	}
	return st, st.err()
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

// Login authenticates with USER/PASS (RFC 1939 §7) when the capabilities
// list USER or CAPA was refused, else with AUTH PLAIN (RFC 5034, RFC 4616)
// when SASL PLAIN is offered. After an upgrade only the capabilities read
// over TLS count.
//
// Login refuses, with an error wrapping starttls.ErrFallbackForbidden, to
// send credentials on a connection without TLS unless the mode is
// ModePlain. The transcript shows the password as "****".
func (c *Client) Login(ctx context.Context, username, password string) error {
	if !c.res.Upgraded && c.mode != starttls.ModePlain {
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	}
	if strings.ContainsAny(username, "\r\n\x00") || strings.ContainsAny(password, "\r\n\x00") {
		return errorf("username or password contains CR, LF or NUL")
	}
	ctx, done := c.begin(ctx)
	defer done()
	var err error
	switch {
	case hasCap(c.caps, CapUSER) || !c.capaOK:
		if _, err = c.cmd("USER "+username, "USER "+username); err == nil {
			_, err = c.cmd("PASS "+password, "PASS ****")
		}
	case hasSASL(c.caps, "PLAIN"):
		err = c.authPlain(username, password)
	default:
		return errorf("no login mechanism offered (CAPA lists neither USER nor SASL PLAIN)")
	}
	return textline.CtxErr(ctx, err)
}

// authPlain runs AUTH PLAIN (RFC 5034 §4) with an initial response when it
// fits in the command line, else in a continuation.
func (c *Client) authPlain(username, password string) error {
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + username + "\x00" + password))
	if len("AUTH PLAIN "+ir) <= maxAuthLine {
		_, err := c.cmd("AUTH PLAIN "+ir, "AUTH PLAIN ****")
		return err
	}
	if err := c.tc.WriteLine("AUTH PLAIN"); err != nil {
		return err
	}
	line, err := c.tc.ReadLine()
	if err != nil {
		return err
	}
	if line != "+" && !strings.HasPrefix(line, "+ ") {
		st, err := parseStatus(line)
		if err != nil {
			return err
		}
		if st.OK {
			return starttls.ProtocolError("pop3", "AUTH PLAIN accepted without credentials")
		}
		return st.err()
	}
	_, err = c.cmd(ir, "****")
	return err
}

// Stat returns the number of messages in the maildrop and their total size
// in octets (RFC 1939 §5 STAT).
func (c *Client) Stat(ctx context.Context) (count int, size int64, err error) {
	ctx, done := c.begin(ctx)
	defer done()
	st, err := c.cmd("STAT", "STAT")
	if err != nil {
		return 0, 0, textline.CtxErr(ctx, err)
	}
	return parseStat(st.Text)
}

// Retr fetches message n (1-based, RFC 1939 §5 RETR) with CRLF line endings
// and the byte-stuffing removed. Messages larger than MaxMessageSize fail.
func (c *Client) Retr(ctx context.Context, n int) ([]byte, error) {
	if n < 1 {
		return nil, errorf("RETR: message number %d out of range", n)
	}
	ctx, done := c.begin(ctx)
	defer done()
	if _, err := c.cmd("RETR "+strconv.Itoa(n), "RETR "+strconv.Itoa(n)); err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	var b []byte
	err := readMulti(c.tc, 0, MaxMessageSize, func(l string) {
		b = append(b, l...)
		b = append(b, '\r', '\n')
	})
	if err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	return b, nil
}

// Close sends QUIT (RFC 1939 §6), waits at most two seconds for the answer
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
