package smtp

import (
	"bytes"
	"context"
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

// probeCommand is the harmless command pipelined after STARTTLS by the
// injection probe (Venema's test for CVE-2011-0411 uses RSET; NOOP does not
// even reset a transaction).
const probeCommand = "NOOP"

// quitTimeout bounds the polite QUIT of Close.
const quitTimeout = 2 * time.Second

// Client is an SMTP or LMTP client session made by Upgrade, UpgradeLMTP,
// Dial or DialLMTP: the greeting has been read, the capabilities asked for
// and TLS negotiated as the mode demanded. A Client is not safe for
// concurrent use.
type Client struct {
	conn   net.Conn // the TCP connection: deadlines, Close
	tc     *textline.Conn
	opts   starttls.ClientOptions
	res    *starttls.Result
	lmtp   bool
	ext    *extensions // capabilities in force (the post-TLS ones after TLS)
	closed bool
}

// Upgrade runs the SMTP client dialog on conn: the 220 greeting, EHLO,
// STARTTLS as opts.Mode demands (ModeAuto resolved from the remote port),
// the TLS handshake and EHLO again over TLS (RFC 3207 §4.2). With
// ModeImplicit the handshake comes first (RFC 8314). With ModePlain nothing
// is upgraded.
//
// The *starttls.Result is never nil, also on error, so that a partial
// record can be reported. On error conn is closed and the *Client is nil.
// In ModeOpportunistic a server that does not offer STARTTLS, or refuses it
// with a reply other than 421, leaves an unprotected session and no error.
// In ModeRequired a missing, refused or failed upgrade is an error that
// wraps starttls.ErrUpgradeNotOffered, starttls.ErrUpgradeRefused (and the
// server's *ReplyError) or a *starttls.HandshakeError, and nothing else is
// sent. A 4xx greeting or reply yields an error for which
// starttls.IsTemporary is true.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	return upgrade(ctx, conn, opts, false)
}

// UpgradeLMTP is Upgrade for LMTP (RFC 2033): LHLO instead of EHLO, and
// Result.Protocol "lmtp".
func UpgradeLMTP(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	return upgrade(ctx, conn, opts, true)
}

// Dial connects to addr (host:port) and runs Upgrade. The certificate name
// defaults to the host part of addr; opts is copied, never modified.
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	return dial(ctx, addr, opts, false)
}

// DialLMTP connects to addr and runs UpgradeLMTP.
func DialLMTP(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	return dial(ctx, addr, opts, true)
}

func dial(ctx context.Context, addr string, opts *starttls.ClientOptions, lmtp bool) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, protoName(lmtp), addr, opts)
	if err != nil {
		return nil, res, err
	}
	return upgrade(ctx, conn, o, lmtp)
}

func protoName(lmtp bool) string {
	if lmtp {
		return "lmtp"
	}
	return "smtp"
}

func upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions, lmtp bool) (*Client, *starttls.Result, error) {
	c := &Client{conn: conn, lmtp: lmtp}
	if opts != nil {
		c.opts = *opts
	}
	mode := c.opts.ResolveMode(conn)
	c.res = &starttls.Result{Protocol: protoName(lmtp), Mode: mode, Transcript: c.opts.Transcript}

	ctx, cancel := textline.WithDefaultTimeout(ctx)
	defer cancel()
	stop := textline.Watch(ctx, conn)
	err := c.dialog(ctx, mode)
	stop()
	if err != nil {
		conn.Close()
		return nil, c.res, textline.CtxErr(ctx, err)
	}
	return c, c.res, nil
}

func (c *Client) newConn(conn net.Conn) *textline.Conn {
	return textline.New(conn, textline.Options{
		Proto:      protoName(c.lmtp),
		Local:      starttls.FromClient,
		MaxLine:    c.opts.LineLimit(),
		Transcript: c.opts.Transcript,
	})
}

func (c *Client) dialog(ctx context.Context, mode starttls.Mode) error {
	res := c.res
	if mode == starttls.ModeImplicit {
		tconn, err := starttls.Handshake(ctx, c.conn, &c.opts)
		if err != nil {
			return err
		}
		c.tc = c.newConn(tconn)
		c.tc.Note("implicit TLS: handshake done before the greeting")
		st := tconn.ConnectionState()
		res.TLS, res.Upgraded = &st, true
	} else {
		c.tc = c.newConn(c.conn)
	}
	if err := c.greeting(); err != nil {
		return err
	}
	ext, err := c.hello(mode)
	if err != nil {
		return err
	}
	c.ext = ext
	if mode == starttls.ModeImplicit {
		res.CapsAfter, res.AuthAfter = ext.list, ext.auth
		res.OfferedAfterTLS = ext.has("STARTTLS")
		res.CapsReread = true
		return nil
	}
	res.CapsBefore, res.AuthBefore = ext.list, ext.auth
	res.Offered = ext.has("STARTTLS")
	if mode == starttls.ModePlain {
		return nil
	}
	if !res.Offered {
		if c.opts.ProbeInjection {
			res.Injection = &starttls.InjectionProbe{Sent: probeCommand, Err: "STARTTLS not offered"}
		}
		if mode == starttls.ModeRequired {
			return fmt.Errorf("%s: STARTTLS not in the %s reply: %w", protoName(c.lmtp), c.helloVerb(), starttls.ErrUpgradeNotOffered)
		}
		c.tc.Note("STARTTLS not offered: going on in plaintext (opportunistic)")
		return nil
	}
	return c.startTLS(ctx, mode)
}

// greeting reads the 220 greeting (RFC 5321 §4.3.1, §3.1).
func (c *Client) greeting() error {
	r, err := c.readReply()
	if err != nil {
		return fmt.Errorf("%w (waiting for the greeting)", err)
	}
	c.res.Greeting = formatReply(r)
	switch {
	case r.Code == 220:
		return nil
	case r.Code >= 400:
		return fmt.Errorf("%w (greeting)", replyError(r))
	default:
		return starttls.ProtocolError(protoName(c.lmtp), "greeting %q is not a 220 reply", starttls.Escape(r.String()))
	}
}

func (c *Client) helloVerb() string {
	if c.lmtp {
		return "LHLO"
	}
	return "EHLO"
}

// hello sends EHLO (LHLO) and parses the extensions. A refused EHLO falls
// back to HELO only when that cannot cost the upgrade: over TLS, or in
// ModeOpportunistic and ModePlain. In ModeRequired a refused EHLO is the
// STRIPTLS ProtocolDowngradeStripExtendedMode attack: HELO cannot carry
// STARTTLS, so it is an error.
func (c *Client) hello(mode starttls.Mode) (*extensions, error) {
	r, err := c.cmd(c.helloVerb() + " " + c.opts.HeloFor(c.conn))
	if err != nil {
		return nil, err
	}
	if r.Code == 250 {
		return parseEHLO(r.Lines), nil
	}
	re := replyError(r)
	switch {
	case c.lmtp || r.Code == 421:
		return nil, fmt.Errorf("%w (%s)", re, c.helloVerb())
	case mode == starttls.ModeRequired && !c.tc.TLS():
		return nil, fmt.Errorf("%w: EHLO refused, STARTTLS impossible: %w", starttls.ErrUpgradeNotOffered, re)
	}
	c.tc.Note("EHLO refused: falling back to HELO (no extensions)")
	r, err = c.cmd("HELO " + c.opts.HeloFor(c.conn))
	if err != nil {
		return nil, err
	}
	if r.Code != 250 {
		return nil, fmt.Errorf("%w (HELO)", replyError(r))
	}
	x := parseEHLO(r.Lines[:1])
	return x, nil
}

// startTLS sends STARTTLS (RFC 3207 §4), checks that nothing follows the
// go-ahead in plaintext, runs the handshake and asks for the extensions
// again over TLS, forgetting the plaintext ones (§4.2).
func (c *Client) startTLS(ctx context.Context, mode starttls.Mode) error {
	res := c.res
	probe := c.opts.ProbeInjection
	var err error
	if probe {
		res.Injection = &starttls.InjectionProbe{Sent: probeCommand}
		// Deliberate pipelining without PIPELINING: the CVE-2011-0411 probe.
		err = c.tc.WriteLines("STARTTLS", probeCommand)
	} else {
		err = c.tc.WriteLine("STARTTLS")
	}
	if err != nil {
		return err
	}
	r, err := c.readReply()
	if err != nil {
		return fmt.Errorf("%w (waiting for the answer to STARTTLS)", err)
	}
	res.UpgradeReply = formatReply(r)
	if r.Code != 220 {
		re := replyError(r)
		if probe {
			res.Injection.Err = "STARTTLS refused: " + re.Error()
		}
		if mode == starttls.ModeRequired || r.Code == 421 {
			return fmt.Errorf("%w: %w", starttls.ErrUpgradeRefused, re)
		}
		c.tc.Note("STARTTLS refused: going on in plaintext (opportunistic)")
		if probe {
			// The probe command's answer is still due.
			if _, err := c.readReply(); err != nil {
				return err
			}
		}
		return nil
	}

	// A server that answers the probe command before starting TLS is not
	// executing it inside TLS: StartTLS records the answer, no verdict.
	if _, err := c.tc.StartTLS(ctx, c.conn, &c.opts, res, res.Injection, "STARTTLS", "the 220 go-ahead"); err != nil {
		return err
	}
	c.ext = nil // RFC 3207 §4.2: forget what the server said in plaintext

	if probe {
		if err := c.probe(ctx); err != nil {
			return err
		}
	}
	ext, err := c.hello(mode)
	if err != nil {
		return err
	}
	c.ext = ext
	res.CapsAfter, res.AuthAfter = ext.list, ext.auth
	res.OfferedAfterTLS = ext.has("STARTTLS")
	res.CapsReread = true
	if res.OfferedAfterTLS {
		c.tc.Note("the server still offers STARTTLS over TLS (RFC 3207 §4.2 forbids it)")
	}
	return nil
}

// probe waits opts.Wait() for the server to speak first over TLS: any reply
// is the answer to the command pipelined with STARTTLS, executed inside TLS.
func (c *Client) probe(ctx context.Context) error {
	inj := c.res.Injection
	var line string
	got := false
	err := c.tc.AwaitProbeAnswer(ctx, c.conn, c.opts.Wait(), inj, textline.IsClosed, func() error {
		var err error
		line, err = c.tc.ReadLine()
		got = err == nil
		return err
	})
	if err != nil || !got {
		return err
	}
	inj.Vulnerable = true
	if inj.Reply != "" {
		inj.Reply += "\n"
	}
	inj.Reply += starttls.Escape(line)
	c.tc.Note(fmt.Sprintf("the server answered the %s pipelined with STARTTLS inside TLS: vulnerable to CVE-2011-0411", probeCommand))
	// Read the rest of a multi-line answer, under ctx's deadline again, to
	// stay in step.
	if _, more, _, perr := textline.ParseReplyLine(line); perr == nil && more {
		r, err := c.readReply()
		if err != nil {
			return err
		}
		for _, l := range strings.Split(formatReply(r), "\n") {
			inj.Reply += "\n" + starttls.Escape(l)
		}
	}
	return nil
}

func (c *Client) readReply() (textline.Reply, error) {
	return textline.ReadReply(c.tc, c.opts.LinesLimit())
}

func (c *Client) cmd(line string) (textline.Reply, error) {
	if err := c.tc.WriteLine(line); err != nil {
		return textline.Reply{}, err
	}
	return c.readReply()
}

// formatReply renders a reply as received: "250-a\n250 b".
func formatReply(r textline.Reply) string {
	var b strings.Builder
	for i, l := range r.Lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		sep := "-"
		if i == len(r.Lines)-1 {
			sep = " "
		}
		fmt.Fprintf(&b, "%d%s%s", r.Code, sep, l)
	}
	return b.String()
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// NetConn returns the connection (a *tls.Conn underneath once upgraded),
// reading through any bytes already buffered, for interactive use. Do not
// mix it with the Client's methods.
func (c *Client) NetConn() net.Conn { return c.tc.NetConn() }

// Extension reports whether the server announced the EHLO keyword name
// (case-insensitive) in the capabilities in force, and its parameters.
func (c *Client) Extension(name string) (bool, string) {
	if c.ext == nil {
		return false, ""
	}
	p, ok := c.ext.params[strings.ToUpper(name)]
	return ok, p
}

// step bounds one dialog step by ctx.
func (c *Client) step(ctx context.Context) (context.Context, func()) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	stop := textline.Watch(ctx, c.conn)
	return ctx, func() { stop(); cancel() }
}

// Login authenticates with AUTH PLAIN (RFC 4954, RFC 4616), or AUTH LOGIN
// when the server offers only that. It refuses, with an error wrapping
// starttls.ErrFallbackForbidden, to send credentials without TLS unless the
// mode is ModePlain. The transcript shows "AUTH PLAIN ****". A refusal is
// a *ReplyError (errors.Is(err, ErrAuthFailed) for 535 5.7.8).
func (c *Client) Login(ctx context.Context, username, password string) error {
	if !c.tc.TLS() && c.res.Mode != starttls.ModePlain {
		return fmt.Errorf("smtp: refusing to send credentials without TLS in mode %s: %w", c.res.Mode, starttls.ErrFallbackForbidden)
	}
	if strings.ContainsRune(username, 0) || strings.ContainsRune(password, 0) {
		return errors.New("smtp: NUL byte in credentials")
	}
	var mechs []string
	if c.ext != nil {
		mechs = c.ext.auth
	}
	ctx, done := c.step(ctx)
	defer done()
	enc := base64.StdEncoding.EncodeToString
	var err error
	switch {
	case slices.Contains(mechs, "PLAIN"):
		err = c.auth(ctx, "AUTH PLAIN "+enc([]byte("\x00"+username+"\x00"+password)), "AUTH PLAIN ****")
	case slices.Contains(mechs, "LOGIN"):
		err = c.auth(ctx, "AUTH LOGIN", "AUTH LOGIN", enc([]byte(username)), enc([]byte(password)))
	default:
		return fmt.Errorf("smtp: the server offers neither AUTH PLAIN nor AUTH LOGIN (offered: %q)", mechs)
	}
	return textline.CtxErr(ctx, err)
}

// auth sends the AUTH command (shown masked as shown) and answers each 334
// challenge with the next of responses, masked.
func (c *Client) auth(ctx context.Context, cmd, shown string, responses ...string) error {
	if err := c.tc.WriteLineMasked(cmd, shown); err != nil {
		return err
	}
	for {
		r, err := c.readReply()
		if err != nil {
			return err
		}
		switch {
		case r.Code == 235:
			return nil
		case r.Code == 334 && len(responses) > 0:
			if err := c.tc.WriteLineMasked(responses[0], "****"); err != nil {
				return err
			}
			responses = responses[1:]
		case r.Code == 334:
			// A challenge we have no answer for: cancel (RFC 4954 §4).
			if err := c.tc.WriteLine("*"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w (AUTH)", replyError(r))
		}
	}
}

// SendMail sends one message: MAIL FROM, RCPT TO for each recipient, DATA
// (RFC 5321 §3.3). Line endings of msg are normalised to CRLF and lines
// starting with "." are dot-stuffed (§4.5.2). Addresses must not contain
// CR, LF, NUL or angle brackets; from may be empty (the null reverse-path).
// A refused recipient aborts the transaction (RSET). For LMTP the server
// answers DATA once per accepted recipient (RFC 2033 §4.2); the failures
// are joined in the returned error.
func (c *Client) SendMail(ctx context.Context, from string, to []string, msg []byte) error {
	if len(to) == 0 {
		return errors.New("smtp: no recipients")
	}
	for _, a := range append([]string{from}, to...) {
		if strings.ContainsAny(a, "\r\n\x00<>") {
			return fmt.Errorf("smtp: invalid address %q", starttls.Escape(a))
		}
	}
	for _, a := range to {
		if a == "" {
			return errors.New("smtp: empty recipient address")
		}
	}
	ctx, done := c.step(ctx)
	defer done()
	return textline.CtxErr(ctx, c.sendMail(from, to, msg))
}

func (c *Client) sendMail(from string, to []string, msg []byte) error {
	body := encodeData(msg)
	if limit := c.ext.size(); limit > 0 && int64(len(body)-3) > limit {
		// RFC 1870 §6: a client should not send what the server announced
		// it would refuse.
		return fmt.Errorf("smtp: message of %d bytes exceeds the server's SIZE %d", len(body)-3, limit)
	}
	mail := "MAIL FROM:<" + from + ">"
	if c.ext.has("SIZE") {
		mail += " SIZE=" + strconv.Itoa(len(body)-3)
	}
	if c.ext.has("8BITMIME") && has8bit(msg) {
		mail += " BODY=8BITMIME"
	}
	r, err := c.cmd(mail)
	if err != nil {
		return err
	}
	if r.Code != 250 {
		c.rset()
		return fmt.Errorf("%w (MAIL FROM)", replyError(r))
	}
	for _, rcpt := range to {
		r, err := c.cmd("RCPT TO:<" + rcpt + ">")
		if err != nil {
			return err
		}
		if r.Code != 250 && r.Code != 251 {
			c.rset()
			return fmt.Errorf("%w (RCPT TO:<%s>)", replyError(r), starttls.Escape(rcpt))
		}
	}
	r, err = c.cmd("DATA")
	if err != nil {
		return err
	}
	if r.Code != 354 {
		c.rset()
		return fmt.Errorf("%w (DATA)", replyError(r))
	}
	if err := c.tc.WriteRaw(body); err != nil {
		return err
	}
	if !c.lmtp {
		r, err := c.readReply()
		if err != nil {
			return err
		}
		if r.Code != 250 {
			return fmt.Errorf("%w (end of DATA)", replyError(r))
		}
		return nil
	}
	var errs []error
	for _, rcpt := range to {
		r, err := c.readReply()
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		if r.Code != 250 {
			errs = append(errs, fmt.Errorf("%w (delivery to <%s>)", replyError(r), starttls.Escape(rcpt)))
		}
	}
	return errors.Join(errs...)
}

// rset aborts a transaction, ignoring the answer.
func (c *Client) rset() {
	if _, err := c.cmd("RSET"); err != nil {
		c.tc.Note("RSET failed: " + err.Error())
	}
}

// encodeData turns msg into the DATA payload: every line ending (CRLF, bare
// LF, bare CR) becomes CRLF, a leading "." is doubled, and the payload ends
// with CRLF "." CRLF.
func encodeData(msg []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(msg) + len(msg)/50 + 5)
	bol := true
	for i := 0; i < len(msg); i++ {
		ch := msg[i]
		if bol && ch == '.' {
			b.WriteByte('.')
		}
		bol = false
		switch ch {
		case '\r':
			if i+1 < len(msg) && msg[i+1] == '\n' {
				i++
			}
			fallthrough
		case '\n':
			b.WriteString("\r\n")
			bol = true
		default:
			b.WriteByte(ch)
		}
	}
	if !bol {
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// Close sends QUIT, waits at most two seconds for the answer and closes the
// connection (with a TLS close_notify when upgraded).
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), quitTimeout)
	stop := textline.Watch(ctx, c.conn)
	if err := c.tc.WriteLine("QUIT"); err == nil {
		c.readReply()
	}
	stop()
	cancel()
	c.conn.SetDeadline(time.Now().Add(quitTimeout))
	return c.tc.Raw().Close()
}
