package irc

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

const (
	// quitTimeout bounds the polite QUIT of Client.Close.
	quitTimeout = 2 * time.Second
	// saslChunk is the AUTHENTICATE payload size (IRCv3 sasl-3.1).
	saslChunk = 400
	// maxNickRetries bounds the nicks tried after 433 ERR_NICKNAMEINUSE.
	maxNickRetries = 5
	// realName is the USER realname.
	realName = "starttls"
)

// Client is an IRC connection secured per the caller's mode. It is created
// by Upgrade or Dial, which have already done the TLS upgrade but not the
// registration: call Login (SASL PLAIN, then registration) or Register. It
// is not safe for concurrent use.
type Client struct {
	conn       net.Conn // the raw connection, or the *tls.Conn after the upgrade
	tc         *textline.Conn
	opts       *starttls.ClientOptions
	res        *starttls.Result
	mode       starttls.Mode
	caps       []string // the trusted capabilities: post-TLS ones after an upgrade
	capOK      bool     // whether the server answered the last CAP LS
	nick       string
	registered bool
	closed     bool
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// defaults to the host part of addr; opts is copied, never modified. A nil
// opts means safe defaults (ModeAuto: implicit TLS on port 6697,
// ModeRequired elsewhere).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "irc", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade runs the client dialog on conn: CAP LS 302 (IRCv3 capability
// negotiation) without registering, STARTTLS per the mode when the tls
// capability is listed (IRCv3 tls extension), the TLS handshake and CAP LS
// 302 again over TLS, trusting only the capabilities read over TLS.
//
// ModeAuto is resolved from the remote port. ModeImplicit does the
// handshake first. ModePlain never upgrades. ModeRequired fails with
// ErrUpgradeNotOffered when tls is not listed (or the server does not know
// CAP) and sends nothing more, and with ErrUpgradeRefused when STARTTLS is
// answered 691 or another error numeric. ModeOpportunistic goes on in
// plaintext in both cases, without an error.
//
// Bytes that arrive after 670 RPL_STARTTLS and before the handshake fail
// the upgrade with ErrPlaintextAfterUpgrade (response injection).
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "irc", Mode: mode}
	if opts != nil {
		res.Transcript = opts.Transcript
	}
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

// lineLimit is the caller's limit, or MaxLineLength: IRC lines with
// IRCv3 tags are longer than the shared default.
func (c *Client) lineLimit() int {
	if c.opts.MaxLineLength > 0 {
		return c.opts.MaxLineLength
	}
	return MaxLineLength
}

func (c *Client) lineOptions() textline.Options {
	return textline.Options{
		Proto:      "irc",
		Local:      starttls.FromClient,
		MaxLine:    c.lineLimit(),
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

	if err := c.capLS(true); err != nil {
		return err
	}
	if c.res.Upgraded { // implicit TLS
		c.afterTLSCaps()
		c.probeNotRun("implicit TLS: no upgrade command")
		return nil
	}
	c.res.CapsBefore = c.caps
	c.res.AuthBefore = authMechs(c.caps)
	// The sts capability is a policy for later connections, not an offer
	// of STARTTLS on this one.
	c.res.Offered = c.capOK && hasCap(c.caps, CapTLS)

	if c.mode == starttls.ModePlain {
		c.probeNotRun("plain mode: no upgrade")
		return nil
	}
	if !c.res.Offered {
		c.probeNotRun("upgrade not offered")
		if c.mode == starttls.ModeRequired {
			if !c.capOK {
				return errorf("the server does not support CAP, so no tls capability: %w", starttls.ErrUpgradeNotOffered)
			}
			return errorf("tls not in CAP LS: %w", starttls.ErrUpgradeNotOffered)
		}
		return nil
	}
	return c.startTLS(ctx)
}

// probeNotRun records why the injection probe could not run.
func (c *Client) probeNotRun(why string) {
	if c.opts.ProbeInjection && c.res.Injection == nil {
		c.res.Injection = &starttls.InjectionProbe{Err: why}
	}
}

// readMsg reads and parses one line.
func (c *Client) readMsg() (*Message, string, error) {
	line, err := c.tc.ReadLine()
	if err != nil {
		return nil, "", err
	}
	m, err := ParseMessage(line)
	if err != nil {
		return nil, line, err
	}
	return m, line, nil
}

// pong answers PING (RFC 2812 §3.7.2).
func (c *Client) pong(m *Message) error {
	return c.tc.WriteLine((&Message{Command: "PONG", Params: []string{m.Trailing()}}).String())
}

// capLS sends CAP LS 302 and reads the answer (IRCv3 capability
// negotiation: "CAP * LS * :…" continuation lines, then "CAP * LS :…").
// A 421 or 451 answer means the server does not know CAP: no error, no
// capabilities. With greeting, the lines before the answer become the
// Result's greeting.
func (c *Client) capLS(greeting bool) error {
	if err := c.tc.WriteLine("CAP LS 302"); err != nil {
		return err
	}
	return c.readCaps(greeting)
}

func (c *Client) readCaps(greeting bool) error {
	c.caps, c.capOK = nil, false
	var pre []string
	var caps []string
	var first string
	capLines := 0
	setGreeting := func() {
		if !greeting {
			return
		}
		if len(pre) > 0 {
			c.res.Greeting = strings.Join(pre, "\n")
		} else {
			c.res.Greeting = first
		}
	}
	for {
		m, line, err := c.readMsg()
		if err != nil {
			return err
		}
		if first == "" {
			first = line
		}
		switch {
		case m.Command == "PING":
			if err := c.pong(m); err != nil {
				return err
			}
		case m.Command == "CAP" && strings.EqualFold(m.Param(1), "LS"):
			if len(m.Params) < 3 {
				return protoErr("malformed CAP LS answer %q", clip(line, 80))
			}
			capLines++
			if capLines > c.opts.LinesLimit() {
				return protoErr("CAP LS answer longer than %d lines", c.opts.LinesLimit())
			}
			if len(m.Params) >= 4 && m.Params[2] == "*" {
				caps = splitCaps(caps, m.Params[3])
				continue
			}
			caps = splitCaps(caps, m.Trailing())
			c.caps, c.capOK = caps, true
			setGreeting()
			return nil
		case m.Command == "ERROR":
			setGreeting()
			return replyError(m)
		case m.Command == ErrUnknownCommand || m.Command == ErrNotRegistered:
			// The server does not know CAP (or wants registration first):
			// no capabilities, hence no tls.
			c.tc.Note("the server does not support CAP: " + starttls.Escape(line))
			setGreeting()
			return nil
		default:
			pre = append(pre, line)
			if len(pre) > maxPreamble {
				return protoErr("more than %d lines before the answer to CAP LS", maxPreamble)
			}
		}
	}
}

// probeCommand is the harmless command pipelined after STARTTLS by the
// injection probe: a vulnerable server answers it with CAP LS.
const probeCommand = "CAP LS 302"

// startTLS sends STARTTLS (IRCv3 tls extension), checks for response
// injection, does the handshake and asks for the capabilities again.
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
	var m *Message
	for n := 0; ; n++ {
		var line string
		m, line, err = c.readMsg()
		if err != nil {
			return fmt.Errorf("%w (waiting for the STARTTLS answer)", err)
		}
		if m.Command == RplStartTLS {
			c.res.UpgradeReply = line
			break
		}
		if m.Command == "ERROR" || isErrorNumeric(m.Command) {
			c.res.UpgradeReply = line
			return c.refused(ctx, m, probe)
		}
		// NOTICEs and the like may precede the answer. A PING is not
		// answered: the PONG would follow STARTTLS in plaintext.
		if n >= maxPreamble {
			return protoErr("no answer to STARTTLS after %d lines", maxPreamble)
		}
	}

	// Upgrade rules 1 and 2: nothing may follow the go-ahead in plaintext.
	tc, err := c.tc.StartTLS(ctx, c.conn, c.opts, c.res, probe, "STARTTLS", "670")
	if err != nil {
		return err
	}
	c.conn = tc
	// Upgrade rule 3: forget what the server said before.
	c.caps, c.capOK = nil, false

	if probe != nil {
		if err := c.runProbe(ctx, probe); err != nil {
			return err
		}
	}
	if err := c.capLS(false); err != nil {
		return err
	}
	c.afterTLSCaps()
	return nil
}

// refused handles an error reply to STARTTLS: 691 ERR_STARTTLS, or 421 /
// 451 from a server that does not take it now.
func (c *Client) refused(ctx context.Context, m *Message, probe *starttls.InjectionProbe) error {
	if probe != nil {
		probe.Err = "upgrade refused"
	}
	if c.mode == starttls.ModeRequired {
		return fmt.Errorf("irc: STARTTLS: %w: %w", starttls.ErrUpgradeRefused, replyError(m))
	}
	if m.Command == "ERROR" {
		return replyError(m)
	}
	if probe != nil {
		// The pipelined CAP LS is answered in plaintext; read it so that
		// the opportunistic session stays in step.
		c.conn.SetReadDeadline(time.Now().Add(c.opts.Wait()))
		err := c.readCaps(false)
		restoreDeadline(ctx, c.conn)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil) {
			return err
		}
	}
	return nil
}

func restoreDeadline(ctx context.Context, conn net.Conn) {
	if d, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(d)
	} else {
		conn.SetReadDeadline(time.Time{})
	}
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
	c.res.CapsReread = c.capOK
	c.res.OfferedAfterTLS = hasCap(c.caps, CapTLS)
}

// runProbe waits opts.Wait() for messages the client did not ask for: a
// server that executed the pipelined CAP LS inside TLS answers it now
// (CVE-2011-0411).
func (c *Client) runProbe(ctx context.Context, probe *starttls.InjectionProbe) error {
	return c.tc.AwaitProbeAnswer(ctx, c.conn, c.opts.Wait(), probe, nil, func() error {
		var reply []string
		var err error
		for len(reply) < c.opts.LinesLimit() {
			var line string
			line, err = c.tc.ReadLine()
			if err != nil {
				break
			}
			reply = append(reply, line)
			m, perr := ParseMessage(line)
			if perr == nil && m.Command == "CAP" && strings.EqualFold(m.Param(1), "LS") &&
				!(len(m.Params) >= 4 && m.Params[2] == "*") {
				break // the whole answer to the probe
			}
		}
		if len(reply) > 0 {
			probe.Vulnerable = true
			probe.Reply = strings.Join(reply, "\n")
			c.tc.Note("injection probe: the server answered the pipelined " + probeCommand + " inside TLS (CVE-2011-0411)")
			return nil
		}
		return err
	})
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// Caps returns the capabilities in force: those read over TLS after an
// upgrade.
func (c *Client) Caps() []string { return append([]string(nil), c.caps...) }

// Nick returns the nick the server accepted, "" before registration.
func (c *Client) Nick() string {
	if !c.registered {
		return ""
	}
	return c.nick
}

// NetConn returns the connection (a *tls.Conn after an upgrade) with any
// bytes already buffered readable first, for interactive use. The Client
// should not be used for commands afterwards.
func (c *Client) NetConn() net.Conn { return c.tc.NetConn() }

// begin applies ctx to one exchange.
func (c *Client) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	stop := textline.Watch(ctx, c.conn)
	return ctx, func() { stop(); cancel() }
}

// Login authenticates with SASL PLAIN (IRCv3 sasl-3.1: CAP REQ :sasl,
// AUTHENTICATE PLAIN, the base64 payload in 400-byte chunks, 903) and then
// registers as Register does, with a nick made from username. After an
// upgrade only the capabilities read over TLS count.
//
// Login refuses, with an error wrapping starttls.ErrFallbackForbidden, to
// send credentials on a connection without TLS unless the mode is
// ModePlain. The transcript shows the payload as "****".
func (c *Client) Login(ctx context.Context, username, password string) error {
	if !c.res.Upgraded && c.mode != starttls.ModePlain {
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	}
	if strings.ContainsAny(username, "\r\n\x00") || strings.ContainsAny(password, "\r\n\x00") {
		return errorf("username or password contains CR, LF or NUL")
	}
	if c.registered {
		return errorf("already registered: SASL must come before registration")
	}
	mechs := authMechs(c.caps)
	if len(mechs) == 0 {
		return errorf("the server offers no SASL (no sasl capability)")
	}
	if mechs[0] != "SASL" && !slices.Contains(mechs, "PLAIN") {
		return errorf("the server offers SASL %s, not PLAIN", strings.Join(mechs, ","))
	}
	ctx, done := c.begin(ctx)
	defer done()
	err := c.saslPlain(username, password)
	if err == nil {
		err = c.register(nickFrom(username))
	}
	return textline.CtxErr(ctx, err)
}

// next reads the next message that is not a PING (answered) or a NOTICE,
// at most LinesLimit of them.
func (c *Client) next(what string) (*Message, error) {
	for n := 0; n < c.opts.LinesLimit(); n++ {
		m, _, err := c.readMsg()
		if err != nil {
			return nil, fmt.Errorf("%w (waiting for %s)", err, what)
		}
		switch m.Command {
		case "PING":
			if err := c.pong(m); err != nil {
				return nil, err
			}
		case "NOTICE":
		case "ERROR":
			return nil, replyError(m)
		default:
			return m, nil
		}
	}
	return nil, protoErr("no answer to %s after %d lines", what, c.opts.LinesLimit())
}

func (c *Client) saslPlain(username, password string) error {
	if err := c.tc.WriteLine("CAP REQ :sasl"); err != nil {
		return err
	}
	for n := 0; ; n++ {
		if n >= c.opts.LinesLimit() {
			return protoErr("no CAP ACK after %d messages", n)
		}
		m, err := c.next("CAP ACK")
		if err != nil {
			return err
		}
		if m.Command == "CAP" && strings.EqualFold(m.Param(1), "ACK") {
			break
		}
		if m.Command == "CAP" && strings.EqualFold(m.Param(1), "NAK") {
			return errorf("the server refused the sasl capability: %w", replyError(m))
		}
		if isErrorNumeric(m.Command) {
			return replyError(m)
		}
	}
	if err := c.tc.WriteLine("AUTHENTICATE PLAIN"); err != nil {
		return err
	}
	for n := 0; ; n++ {
		if n >= c.opts.LinesLimit() {
			return protoErr("no AUTHENTICATE + after %d messages", n)
		}
		m, err := c.next("AUTHENTICATE +")
		if err != nil {
			return err
		}
		if m.Command == "AUTHENTICATE" && m.Param(0) == "+" {
			break
		}
		if isErrorNumeric(m.Command) {
			return replyError(m)
		}
	}
	payload := base64.StdEncoding.EncodeToString([]byte("\x00" + username + "\x00" + password))
	for len(payload) > 0 {
		n := min(len(payload), saslChunk)
		if err := c.tc.WriteLineMasked("AUTHENTICATE "+payload[:n], "AUTHENTICATE ****"); err != nil {
			return err
		}
		payload = payload[n:]
		if n == saslChunk && len(payload) == 0 {
			if err := c.tc.WriteLine("AUTHENTICATE +"); err != nil {
				return err
			}
		}
	}
	for n := 0; ; n++ {
		if n >= c.opts.LinesLimit() {
			return protoErr("no SASL result after %d messages", n)
		}
		m, err := c.next("the SASL result")
		if err != nil {
			return err
		}
		switch {
		case m.Command == RplSASLSuccess:
			return nil
		case m.Command == RplLoggedIn, m.Command == RplSASLMechs:
		case isErrorNumeric(m.Command):
			return replyError(m)
		}
	}
}

// Register ends capability negotiation (CAP END) and registers with NICK
// and USER (RFC 2812 §3.1), waiting for 001 RPL_WELCOME. When the nick is
// taken (433) it retries a few times with a digit appended. Register sends
// no credentials, so it works in any mode.
func (c *Client) Register(ctx context.Context, nick string) error {
	if !validNick(nick) {
		return errorf("invalid nick %q", starttls.Escape(nick))
	}
	if c.registered {
		return errorf("already registered as %s", c.nick)
	}
	ctx, done := c.begin(ctx)
	defer done()
	return textline.CtxErr(ctx, c.register(nick))
}

func (c *Client) register(nick string) error {
	if c.capOK {
		if err := c.tc.WriteLine("CAP END"); err != nil {
			return err
		}
	}
	base := nick
	if err := c.tc.WriteLine("NICK " + nick); err != nil {
		return err
	}
	user := (&Message{Command: "USER", Params: []string{identFrom(nick), "0", "*", realName}}).String()
	if err := c.tc.WriteLine(user); err != nil {
		return err
	}
	tries := 0
	for n := 0; ; n++ {
		if n >= c.opts.LinesLimit() {
			return protoErr("no 001 RPL_WELCOME after %d messages", n)
		}
		m, err := c.next("001 RPL_WELCOME")
		if err != nil {
			return err
		}
		switch m.Command {
		case RplWelcome:
			c.registered = true
			if n := m.Param(0); n != "" {
				nick = n
			}
			c.nick = nick
			return nil
		case ErrNicknameInUse, "436", "437":
			tries++
			if tries > maxNickRetries {
				return errorf("nick %s and %d others in use: %w", base, maxNickRetries, replyError(m))
			}
			nick = base[:min(len(base), 14)] + strconv.Itoa(tries)
			if err := c.tc.WriteLine("NICK " + nick); err != nil {
				return err
			}
		case ErrUnknownCommand, ErrNotRegistered:
			// CAP END on a server that does not know CAP.
		default:
			if isErrorNumeric(m.Command) {
				return replyError(m)
			}
		}
	}
}

// validNick: RFC 2812 §2.3.1 nickname, letters, digits and specials, not
// starting with a digit or '-', at most 30 octets here.
func validNick(n string) bool {
	if n == "" || len(n) > 30 {
		return false
	}
	for i := 0; i < len(n); i++ {
		ch := n[i]
		switch {
		case ch >= 'A' && ch <= 'Z', ch >= 'a' && ch <= 'z', strings.IndexByte("[]\\`_^{|}", ch) >= 0:
		case (ch >= '0' && ch <= '9' || ch == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// nickFrom makes a nick from a login name: the valid characters of its
// local part, or "starttls".
func nickFrom(user string) string {
	user, _, _ = strings.Cut(user, "@")
	var b strings.Builder
	for i := 0; i < len(user) && b.Len() < 16; i++ {
		if s := b.String() + string(user[i]); validNick(s) {
			b.WriteByte(user[i])
		}
	}
	if b.Len() == 0 {
		return "starttls"
	}
	return b.String()
}

// identFrom makes the USER name from a nick: letters and digits only.
func identFrom(nick string) string {
	var b strings.Builder
	for i := 0; i < len(nick) && b.Len() < 10; i++ {
		ch := nick[i]
		if ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' {
			b.WriteByte(ch)
		}
	}
	if b.Len() == 0 {
		return "starttls"
	}
	return b.String()
}

// Send writes one message with command and params; the last parameter is
// sent as trailing when it needs to be. Parameters must not contain CR, LF
// or NUL.
func (c *Client) Send(ctx context.Context, command string, params ...string) error {
	m := &Message{Command: command, Params: params}
	if err := m.validate(); err != nil {
		return err
	}
	ctx, done := c.begin(ctx)
	defer done()
	return textline.CtxErr(ctx, c.tc.WriteLine(m.String()))
}

// ReadMessage reads the next message. PING is answered with PONG and
// still returned.
func (c *Client) ReadMessage(ctx context.Context) (*Message, error) {
	ctx, done := c.begin(ctx)
	defer done()
	m, _, err := c.readMsg()
	if err == nil && m.Command == "PING" {
		err = c.pong(m)
	}
	if err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	return m, nil
}

// Close sends QUIT (RFC 2812 §3.1.7), waits at most two seconds for the
// server's ERROR or end of stream, and closes the connection.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(quitTimeout))
	if c.tc.WriteLine("QUIT") == nil {
		for i := 0; i < c.opts.LinesLimit(); i++ {
			line, err := c.tc.ReadLine()
			if err != nil || strings.HasPrefix(line, "ERROR") {
				break
			}
		}
	}
	return c.conn.Close()
}
