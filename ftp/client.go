package ftp

import (
	"context"
	"crypto/tls"
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
	// MaxFileSize bounds a file fetched with Client.Retr.
	MaxFileSize = 64 << 20
	// MaxListLines bounds the lines of a listing (List, NameList).
	MaxListLines = 100000
	// MaxListBytes bounds the octets of a listing, line endings included
	// (16 MiB).
	MaxListBytes = 16 << 20
	// quitTimeout bounds the polite QUIT of Client.Close.
	quitTimeout = 2 * time.Second
	// probeCommand is the harmless command pipelined after AUTH TLS by
	// the injection probe: FEAT is valid in every state.
	probeCommand = "FEAT"
	// probeUser is the user name the plaintext-login probe announces.
	probeUser = "starttls-probe"
)

// Client is an FTP session secured per the caller's mode. It is created by
// Upgrade or Dial, which have already done the TLS upgrade; it is not safe
// for concurrent use.
type Client struct {
	conn      net.Conn // the raw connection, or the *tls.Conn after the upgrade
	tc        *textline.Conn
	opts      *starttls.ClientOptions
	tlsConfig *tls.Config // shared by the control and data connections
	res       *starttls.Result
	mode      starttls.Mode
	peer      net.IP // the control connection's remote and local addresses
	local     net.IP
	feats     []string
	featOK    bool
	prot      bool // PROT P accepted: data connections use TLS
	protLater bool // PBSZ/PROT answered 530: send them again after login
	typeI     bool
	noEPSV    bool
	closed    bool
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// defaults to the host part of addr; opts is copied, never modified. A nil
// opts means safe defaults (ModeAuto: implicit TLS on port 990,
// ModeRequired elsewhere).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "ftp", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade runs the client dialog on conn: the greeting (RFC 959 §4.2), FEAT
// (RFC 2389), AUTH TLS per the mode (RFC 4217 §4), the TLS handshake, FEAT
// again over TLS, then PBSZ 0 and PROT P (RFC 4217 §9).
//
// ModeAuto is resolved from the remote port. ModeImplicit does the
// handshake first. ModePlain never upgrades. ModeRequired fails with
// ErrUpgradeNotOffered when FEAT succeeded without AUTH TLS (and sends
// nothing more) and with ErrUpgradeRefused when AUTH TLS is refused. When
// FEAT is not understood, AUTH TLS is tried anyway; Offered stays false.
// ModeOpportunistic goes on in plaintext in both cases, without an error.
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "ftp", Mode: mode}
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
		res.Transcript = opts.Transcript
	}
	// One config for the control and the data connections: the shared
	// session cache lets the data connections resume the control
	// connection's TLS session (RFC 4217 §10.2; vsftpd require_ssl_reuse).
	cfg := starttls.ClientTLSConfig(o.TLSConfig, starttls.ServerNameFor(&o, conn))
	if cfg.ClientSessionCache == nil {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	}
	o.TLSConfig = cfg
	c := &Client{conn: conn, opts: &o, tlsConfig: cfg, res: res, mode: mode}
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		c.peer = a.IP
	}
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		c.local = a.IP
	}
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
		Proto:      "ftp",
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
	if err := c.feat(); err != nil {
		return err
	}
	if c.res.Upgraded { // implicit TLS
		c.afterTLSCaps()
		c.probeNotRun("implicit TLS: no upgrade command")
		return c.protect()
	}
	c.res.CapsBefore = c.feats
	c.res.Offered = offersTLS(c.feats)
	if c.mode == starttls.ModePlain {
		c.probeNotRun("plain mode: no upgrade")
		return nil
	}
	if c.featOK && !c.res.Offered {
		c.probeNotRun("upgrade not offered")
		if c.mode == starttls.ModeRequired {
			// CL-31: nothing else is sent.
			return errorf("AUTH TLS not in FEAT: %w", starttls.ErrUpgradeNotOffered)
		}
		return nil
	}
	if !c.featOK {
		c.tc.Note("FEAT not supported: the upgrade is not advertised; trying AUTH TLS anyway")
	}
	return c.startTLS(ctx)
}

// greeting reads the server's welcome: 220, possibly after a 120 "ready in
// nnn minutes" (RFC 959 §4.2.2, §5.4). Nothing may follow it before the
// client speaks.
func (c *Client) greeting() error {
	var rep Reply
	var err error
	for i := 0; i < 2; i++ {
		rep, err = c.readReply()
		if err != nil {
			return fmt.Errorf("%w (waiting for the greeting)", err)
		}
		c.res.Greeting = strings.TrimPrefix(c.res.Greeting+"\n", "\n") + replyText(rep)
		if rep.Code != 120 {
			break
		}
	}
	switch {
	case rep.Code == 220:
	case rep.Code >= 400:
		return errorf("server refused the session: %w", replyError(rep))
	default:
		return starttls.ProtocolError("ftp", "unexpected greeting %q", starttls.Escape(clipStr(replyText(rep), 80)))
	}
	if n := c.tc.Buffered(); n > 0 {
		return starttls.ProtocolError("ftp", "%d bytes of unsolicited data after the greeting", n)
	}
	return nil
}

// replyText renders a reply as received, one line per line.
func replyText(r Reply) string {
	if len(r.Lines) <= 1 {
		return strings.TrimRight(fmt.Sprintf("%d %s", r.Code, r.Text()), " ")
	}
	return fmt.Sprintf("%d-%s", r.Code, r.Text())
}

func (c *Client) readReply() (Reply, error) { return readReply(c.tc, c.opts.LinesLimit()) }

// cmd sends one command line (shown in the transcript as shown) and reads
// the reply.
func (c *Client) cmd(line, shown string) (Reply, error) {
	if err := c.tc.WriteLineMasked(line, shown); err != nil {
		return Reply{}, err
	}
	return c.readReply()
}

// feat sends FEAT (RFC 2389 §3) and stores the answer. A negative answer is
// no error: the server predates RFC 2389.
func (c *Client) feat() error {
	rep, err := c.cmd("FEAT", "FEAT")
	c.feats, c.featOK = nil, false
	if err != nil {
		return err
	}
	if rep.Code == 211 {
		c.feats, c.featOK = parseFeat(rep), true
	}
	return nil
}

// probeNotRun records why the injection probe could not run.
func (c *Client) probeNotRun(why string) {
	if c.opts.ProbeInjection && c.res.Injection == nil {
		c.res.Injection = &starttls.InjectionProbe{Err: why}
	}
}

// startTLS sends AUTH TLS (RFC 4217 §4), checks for response injection,
// does the handshake and asks for the features again.
func (c *Client) startTLS(ctx context.Context) error {
	var probe *starttls.InjectionProbe
	var err error
	if c.opts.ProbeInjection {
		probe = &starttls.InjectionProbe{Sent: probeCommand}
		c.res.Injection = probe
		err = c.tc.WriteLines("AUTH TLS", probeCommand)
	} else {
		err = c.tc.WriteLine("AUTH TLS")
	}
	if err != nil {
		return err
	}
	rep, err := c.readReply()
	if err != nil {
		return fmt.Errorf("%w (waiting for the AUTH TLS answer)", err)
	}
	c.res.UpgradeReply = replyText(rep)
	if rep.Code != 234 {
		if probe != nil {
			probe.Err = "upgrade refused"
		}
		// 431 (temporary), 500/502 (not understood), 504 (mechanism
		// unknown), 534 (policy): refused. 334 would start an ADAT
		// exchange (RFC 2228 §3), which only GSSAPI-style mechanisms use.
		rerr := replyError(rep)
		if c.mode == starttls.ModeRequired {
			return fmt.Errorf("ftp: AUTH TLS: %w: %w", starttls.ErrUpgradeRefused, rerr)
		}
		if probe != nil {
			// The pipelined FEAT is answered in plaintext; consume it so
			// that the opportunistic session stays in step.
			return c.skipReply(ctx)
		}
		return nil
	}

	// Upgrade rules 1 and 2: nothing may follow the go-ahead in plaintext.
	tc, err := c.tc.StartTLS(ctx, c.conn, c.opts, c.res, probe, "AUTH TLS", "AUTH TLS")
	if err != nil {
		// A server that answers the handshake in plaintext because it fed
		// the pipelined bytes to its TLS stack and failed (vsftpd: "500
		// OOPS: … wrong version number") did not execute them inside TLS:
		// safe, like one that closes the connection.
		var rh tls.RecordHeaderError
		if probe != nil && !probe.Closed && errors.As(err, &rh) {
			probe.Closed, probe.Err = true, ""
			c.tc.Note("injection probe: the server answered the handshake in plaintext and closed (pipelined bytes rejected)")
		}
		return err
	}
	c.conn = tc
	// Upgrade rule 3: forget what the server said before TLS.
	c.feats, c.featOK = nil, false
	if probe != nil {
		if err := c.runProbe(ctx, probe); err != nil {
			return err
		}
	}
	if err := c.feat(); err != nil {
		return err
	}
	c.afterTLSCaps()
	return c.protect()
}

func (c *Client) tlsDone(tc *tls.Conn) {
	c.conn = tc
	st := tc.ConnectionState()
	c.res.TLS = &st
	c.res.Upgraded = true
}

func (c *Client) afterTLSCaps() {
	c.res.CapsAfter = c.feats
	c.res.CapsReread = c.featOK
	c.res.OfferedAfterTLS = offersTLS(c.feats)
	// RFC 959 §4.1.1: USER/PASS is always there; FTP announces no login
	// mechanism.
	c.res.AuthAfter = []string{"USER"}
}

// protect sends PBSZ 0 and PROT P (RFC 4217 §8–9) so that data
// connections use TLS. A 530 (not logged in: some servers want these after
// USER/PASS) postpones them to Login; any other refusal leaves the data
// channel unprotected, and transfers then fail unless the mode is
// ModePlain.
func (c *Client) protect() error {
	c.protLater = false
	rep, err := c.cmd("PBSZ 0", "PBSZ 0")
	if err != nil {
		return err
	}
	if rep.Code == 200 {
		rep, err = c.cmd("PROT P", "PROT P")
		if err != nil {
			return err
		}
	}
	switch {
	case rep.Code == 200:
		c.prot = true
		c.tc.Note("PROT P accepted: data connections are protected by TLS")
	case rep.Code == 530:
		c.protLater = true
		c.tc.Note("PBSZ/PROT refused before login; sent again after login")
	default:
		c.tc.Note("PROT P not accepted (" + replyText(rep) + "): data connections would be in plaintext; transfers refused")
	}
	return nil
}

// DataProtected reports whether the server accepted PROT P: file listings
// and contents then travel over TLS.
func (c *Client) DataProtected() bool { return c.prot }

// runProbe waits opts.Wait() for data the client did not ask for: a
// server that executed the pipelined FEAT inside TLS answers it now
// (CVE-2011-0411).
func (c *Client) runProbe(ctx context.Context, probe *starttls.InjectionProbe) error {
	return c.tc.AwaitProbeAnswer(ctx, c.conn, c.opts.Wait(), probe, textline.IsClosed, func() error {
		rep, err := c.readReply()
		if err == nil || len(rep.Lines) > 0 {
			probe.Vulnerable = true
			probe.Reply = replyText(rep)
			c.tc.Note("injection probe: the server answered the pipelined " + probeCommand + " inside TLS (CVE-2011-0411)")
		}
		return err
	})
}

func (c *Client) restoreDeadline(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(d)
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
}

// skipReply reads and drops the answer to the FEAT pipelined after a
// refused AUTH TLS, waiting at most opts.Wait() for it to start.
func (c *Client) skipReply(ctx context.Context) error {
	c.conn.SetReadDeadline(time.Now().Add(c.opts.Wait()))
	_, err := c.readReply()
	c.restoreDeadline(ctx)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
		return nil
	}
	return err
}

// Result returns the record of the upgrade.
func (c *Client) Result() *starttls.Result { return c.res }

// NetConn returns the control connection (a *tls.Conn after an upgrade)
// with any bytes already buffered readable first, for interactive use. The
// Client should not be used for commands afterwards.
func (c *Client) NetConn() net.Conn { return c.tc.NetConn() }

// begin applies ctx to one command exchange.
func (c *Client) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	stop := textline.Watch(ctx, c.conn)
	return ctx, func() { stop(); cancel() }
}

// Login authenticates with USER and PASS (RFC 959 §4.1.1). A 230 to USER
// (no password needed) ends it early; 332 (ACCT) is not supported.
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
	err := c.login(username, password)
	if err == nil && c.protLater {
		err = c.protect()
	}
	return textline.CtxErr(ctx, err)
}

func (c *Client) login(username, password string) error {
	rep, err := c.cmd("USER "+username, "USER "+username)
	if err != nil {
		return err
	}
	switch rep.Code {
	case 230:
		return nil
	case 331:
	default:
		return replyError(rep)
	}
	if rep, err = c.cmd("PASS "+password, "PASS ****"); err != nil {
		return err
	}
	switch rep.Code {
	case 230, 202:
		return nil
	case 332:
		return errorf("the server wants an account (ACCT), which is not supported: %w", replyError(rep))
	}
	return replyError(rep)
}

// expect sends a command and checks that the reply code is one of ok.
func (c *Client) expect(line string, ok ...int) (Reply, error) {
	rep, err := c.cmd(line, line)
	if err != nil {
		return rep, err
	}
	for _, code := range ok {
		if rep.Code == code {
			return rep, nil
		}
	}
	return rep, replyError(rep)
}

// checkArg refuses CR, LF and NUL in a path, which would smuggle a second
// command (net/smtp validateLine).
func checkArg(s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return errorf("argument %q contains CR, LF or NUL", starttls.Escape(s))
	}
	return nil
}

// passive asks for a passive data port (EPSV, RFC 2428 §3, else PASV,
// RFC 959 §4.1.2) and returns the address to connect to: always the
// control connection's peer address, whatever a 227 reply names.
func (c *Client) passive() (string, error) {
	port := 0
	if !c.noEPSV {
		rep, err := c.cmd("EPSV", "EPSV")
		if err != nil {
			return "", err
		}
		switch {
		case rep.Code == 229:
			if port, err = parseEPSV(rep.Text()); err != nil {
				return "", err
			}
		case rep.Code >= 500:
			c.noEPSV = true
		default:
			return "", replyError(rep)
		}
	}
	if port == 0 {
		rep, err := c.expect("PASV", 227)
		if err != nil {
			return "", err
		}
		ip, p, err := parsePASV(rep.Text())
		if err != nil {
			return "", err
		}
		if !ip.Equal(c.peer) {
			c.tc.Note(fmt.Sprintf("PASV names %s; connecting to the control connection's peer %s instead", ip, c.peer))
		}
		port = p
	}
	return net.JoinHostPort(c.peer.String(), strconv.Itoa(port)), nil
}

// transfer runs one data transfer: passive port, data connection, the
// command, a 150/125 preliminary reply, TLS on the data connection when
// PROT P is in force, read, and the 226/250 completion reply.
func (c *Client) transfer(ctx context.Context, command string, read func(io.Reader) error) error {
	if !c.prot && c.mode != starttls.ModePlain {
		return errorf("%s: the data connection would not be protected (PROT P was not accepted): %w", command, starttls.ErrFallbackForbidden)
	}
	addr, err := c.passive()
	if err != nil {
		return err
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: c.local}}
	dc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return errorf("data connection: %w", err)
	}
	defer dc.Close()
	stop := textline.Watch(ctx, dc)
	defer stop()
	rep, err := c.cmd(command, command)
	if err != nil {
		return err
	}
	if rep.Code != 150 && rep.Code != 125 {
		return replyError(rep)
	}
	var r io.Reader = dc
	if c.prot {
		tc := tls.Client(dc, c.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.readReply() // the server's 425/426/522
			return errorf("data connection: %w", &starttls.HandshakeError{Err: err})
		}
		if st := tc.ConnectionState(); st.DidResume {
			c.tc.Note("data connection: TLS session resumed from the control connection")
		} else {
			c.tc.Note("data connection: TLS session not resumed")
		}
		defer tc.Close()
		r = tc
	}
	rerr := read(r)
	dc.Close()
	rep, err = c.readReply()
	if rerr != nil {
		return rerr
	}
	if err != nil {
		return err
	}
	if rep.Code != 226 && rep.Code != 250 {
		return replyError(rep)
	}
	return nil
}

// readLines reads the lines of a listing, bounded in length, count
// (MaxListLines) and total size (MaxListBytes).
func (c *Client) readLines(r io.Reader, out *[]string) error {
	lc := textline.New(readOnlyConn{r}, textline.Options{Proto: "ftp", MaxLine: c.opts.LineLimit()})
	total := 0
	for {
		line, err := lc.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(*out) >= MaxListLines {
			return errorf("listing longer than %d lines", MaxListLines)
		}
		if total += len(line) + 2; total > MaxListBytes {
			return fmt.Errorf("ftp: listing longer than %d bytes: %w", MaxListBytes, starttls.ErrLineTooLong)
		}
		*out = append(*out, line)
	}
}

// List returns the lines of a LIST of path (RFC 959 §4.1.3), as the server
// formats them; an empty path lists the current directory.
func (c *Client) List(ctx context.Context, path string) ([]string, error) {
	return c.listing(ctx, "LIST", path)
}

// NameList returns the names in path (NLST, RFC 959 §4.1.3).
func (c *Client) NameList(ctx context.Context, path string) ([]string, error) {
	return c.listing(ctx, "NLST", path)
}

func (c *Client) listing(ctx context.Context, verb, path string) ([]string, error) {
	if err := checkArg(path); err != nil {
		return nil, err
	}
	command := strings.TrimSpace(verb + " " + path)
	ctx, done := c.begin(ctx)
	defer done()
	var lines []string
	err := c.transfer(ctx, command, func(r io.Reader) error { return c.readLines(r, &lines) })
	if err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	return lines, nil
}

// Retr fetches the file at path in binary mode (TYPE I, RETR, RFC 959
// §4.1.3). Files larger than MaxFileSize fail.
func (c *Client) Retr(ctx context.Context, path string) ([]byte, error) {
	if err := checkArg(path); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errorf("RETR needs a path")
	}
	ctx, done := c.begin(ctx)
	defer done()
	if !c.typeI {
		if _, err := c.expect("TYPE I", 200); err != nil {
			return nil, textline.CtxErr(ctx, err)
		}
		c.typeI = true
	}
	var data []byte
	err := c.transfer(ctx, "RETR "+path, func(r io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
		if err != nil {
			return errorf("RETR: %w", err)
		}
		if len(b) > MaxFileSize {
			return errorf("RETR: file larger than %d bytes", MaxFileSize)
		}
		data = b
		c.tc.Note(fmt.Sprintf("data connection: %d bytes received", len(b)))
		return nil
	})
	if err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	return data, nil
}

// Close sends QUIT (RFC 959 §4.1.1), waits at most two seconds for the
// answer and closes the connection.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(quitTimeout))
	if c.tc.WriteLine("QUIT") == nil {
		c.readReply()
	}
	return c.conn.Close()
}

// ProbePlaintextLogin asks a server, on conn without TLS, whether it would
// take a password in plaintext, without sending one: after the greeting it
// sends "USER starttls-probe" and QUIT. The rule: 331 or 332 (password or
// account wanted next) and 230 (logged in at once) mean the plaintext login
// goes ahead and return ["USER"]; any 5xx (530 "TLS required", vsftpd's
// "Non-anonymous sessions must use encryption", 534, 550, 500) returns an
// empty list; a 4xx is a temporary error. It does not close conn. It is
// FTP's dial.PlaintextAuthFunc.
func ProbePlaintextLogin(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) ([]string, error) {
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
	}
	o.Mode = starttls.ModePlain
	c := &Client{conn: conn, opts: &o, res: &starttls.Result{Protocol: "ftp", Mode: starttls.ModePlain, Transcript: o.Transcript}, mode: starttls.ModePlain}
	c.tc = textline.New(conn, c.lineOptions())
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	defer cancel()
	stop := textline.Watch(ctx, conn)
	defer stop()
	if err := c.greeting(); err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	rep, err := c.cmd("USER "+probeUser, "USER "+probeUser)
	if err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	if c.tc.WriteLine("QUIT") == nil {
		c.readReply()
	}
	switch {
	case rep.Code == 230 || rep.Code == 331 || rep.Code == 332:
		return []string{"USER"}, nil
	case rep.Code >= 500:
		return []string{}, nil
	}
	return nil, errorf("USER: %w", replyError(rep))
}

// readOnlyConn lets textline read lines from a plain io.Reader.
type readOnlyConn struct{ io.Reader }

func (readOnlyConn) Write(p []byte) (int, error)      { return 0, errors.New("ftp: read-only") }
func (readOnlyConn) Close() error                     { return nil }
func (readOnlyConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (readOnlyConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (readOnlyConn) SetDeadline(time.Time) error      { return nil }
func (readOnlyConn) SetReadDeadline(time.Time) error  { return nil }
func (readOnlyConn) SetWriteDeadline(time.Time) error { return nil }
