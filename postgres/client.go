package postgres

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
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
	// terminateTimeout bounds the polite Terminate of Client.Close.
	terminateTimeout = 2 * time.Second
	// maxParams bounds the ParameterStatus messages kept.
	maxParams = 256
	// maxResultBytes bounds the data of one SimpleQuery result.
	maxResultBytes = 16 << 20
	// applicationName is sent in every StartupMessage.
	applicationName = "starttls"
	// ProbeUser is the user named by the injection probe and by
	// ProbePlaintextAuth; no password is ever sent for it.
	ProbeUser = "starttls-probe"
)

// Client is a PostgreSQL session secured per the caller's mode. It is
// created by Upgrade or Dial, which have already negotiated TLS; Login then
// starts the session proper. It is not safe for concurrent use.
type Client struct {
	// Database is the database named in the StartupMessage; empty means
	// the user name (libpq's default). Set it before Login.
	Database string

	conn     net.Conn // the raw connection, or the *tls.Conn
	w        *wire
	opts     *starttls.ClientOptions
	tlsOpts  *starttls.ClientOptions // opts with ALPN "postgresql" offered
	res      *starttls.Result
	mode     starttls.Mode
	params   map[string]string
	loggedIn bool
	spent    string // why the session cannot be used, if it cannot
	closed   bool
}

// Dial connects to addr ("host:port") and runs Upgrade. The TLS server name
// defaults to the host part of addr; opts is copied, never modified. A nil
// opts means ModeAuto, which is ModeRequired on every port (PostgreSQL has
// no implicit-TLS port).
func Dial(ctx context.Context, addr string, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	conn, o, res, err := textline.Dial(ctx, "postgres", addr, opts)
	if err != nil {
		return nil, res, err
	}
	return Upgrade(ctx, conn, o)
}

// Upgrade negotiates TLS on conn per the mode: the SSLRequest (§55.2.10)
// and the handshake, or with ModeImplicit the handshake at once (PG 17
// direct TLS). It offers ALPN "postgresql" unless the caller's TLSConfig
// sets NextProtos. The session itself starts with Login.
//
// After 'S' any byte already received fails with
// starttls.ErrPlaintextAfterUpgrade (CVE-2021-23222) and is kept in
// Result.PlaintextAfterUpgrade. 'N' fails with ErrUpgradeNotOffered in
// ModeRequired, and leaves a plaintext session in ModeOpportunistic. An 'E'
// fails with an error that satisfies starttls.IsTemporary; its text is not
// read (CVE-2024-10977). ModePlain sends nothing.
//
// The Result is never nil. On error conn is closed and the Client is nil.
func Upgrade(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) (*Client, *starttls.Result, error) {
	mode := opts.ResolveMode(conn)
	res := &starttls.Result{Protocol: "postgres", Mode: mode}
	var o starttls.ClientOptions
	if opts != nil {
		o = *opts
		res.Transcript = opts.Transcript
	}
	to := o
	if o.TLSConfig != nil {
		to.TLSConfig = o.TLSConfig.Clone()
	} else {
		to.TLSConfig = &tls.Config{}
	}
	if len(to.TLSConfig.NextProtos) == 0 {
		to.TLSConfig.NextProtos = []string{ALPN}
	}
	c := &Client{conn: conn, opts: &o, tlsOpts: &to, res: res, mode: mode}
	c.w = newWire(conn, starttls.FromClient, res.Transcript, MaxMessageSize)
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

func (c *Client) dialog(ctx context.Context) error {
	switch c.mode {
	case starttls.ModePlain:
		c.probeNotRun("plain mode: no upgrade")
		return nil
	case starttls.ModeImplicit:
		tc, err := starttls.Handshake(ctx, c.conn, c.tlsOpts)
		if err != nil {
			return errorf("direct TLS: %w", err)
		}
		c.tlsDone(tc)
		c.probeNotRun("implicit TLS: no upgrade command")
		return nil
	case starttls.ModeOpportunistic, starttls.ModeRequired:
		return c.sslRequest(ctx)
	}
	return errorf("unsupported mode %v", c.mode)
}

// probeNotRun records why the injection probe could not run.
func (c *Client) probeNotRun(why string) {
	if c.opts.ProbeInjection && c.res.Injection == nil {
		c.res.Injection = &starttls.InjectionProbe{Err: why}
	}
}

func probeStartup() []byte {
	return startupMessage([][2]string{{"user", ProbeUser}, {"database", ProbeUser}, {"application_name", applicationName}})
}

// sslRequest sends the SSLRequest, reads the answer and shakes hands.
func (c *Client) sslRequest(ctx context.Context) error {
	var probe *starttls.InjectionProbe
	c.w.queue("SSLRequest", sslRequest())
	if c.opts.ProbeInjection {
		// CVE-2021-23214: the StartupMessage travels in the same segment.
		probe = &starttls.InjectionProbe{Sent: "StartupMessage user=" + ProbeUser}
		c.res.Injection = probe
		c.w.queue(describeStartup(probeStartup()[4:]), probeStartup())
	}
	if err := c.w.flush(); err != nil {
		return err
	}
	b, err := c.w.readByte()
	if err != nil {
		return fmt.Errorf("%w (waiting for the answer to the SSLRequest)", err)
	}
	c.res.UpgradeReply = starttls.Escape(string(b))
	c.w.tr.Add(starttls.FromServer, false, c.res.UpgradeReply)
	switch b {
	case 'S':
		c.res.Offered = true
	case 'N':
		if probe != nil {
			probe.Err = "upgrade not offered"
			c.spent = "the injection probe's start-up message went to the server in plaintext"
			// The server may already have answered the probe's start-up
			// message in plaintext: expected, recorded, not trusted.
			if b := c.w.takeBuffered(); len(b) > 0 {
				probe.Reply = "(in plaintext, no TLS; discarded) " + starttls.Escape(clipText(string(b), 200))
				c.w.note(fmt.Sprintf("%d bytes in plaintext after 'N' (answer to the probe?), discarded", len(b)))
			}
		} else if n := c.w.buffered(); n > 0 {
			return starttls.ProtocolError("postgres", "%d bytes of unsolicited data after 'N'", n)
		}
		if c.mode == starttls.ModeRequired {
			return errorf("the server answered 'N' to the SSLRequest: %w", starttls.ErrUpgradeNotOffered)
		}
		return nil
	case 'E':
		if probe != nil {
			probe.Err = "error answer to the SSLRequest"
		}
		return negotiationError{}
	default:
		return starttls.ProtocolError("postgres", "answer %q to the SSLRequest (want 'S' or 'N')", b)
	}

	// Upgrade rule 1: nothing may follow the 'S' in plaintext.
	if b := c.w.takeBuffered(); len(b) > 0 {
		if probe != nil {
			// The server may have answered the probe in plaintext before
			// the handshake: not response injection, and not trusted.
			probe.Reply = "(in plaintext, before TLS; discarded) " + starttls.Escape(clipText(string(b), 200))
			c.w.note(fmt.Sprintf("%d bytes in plaintext after 'S' (answer to the probe?), discarded", len(b)))
		} else {
			c.res.PlaintextAfterUpgrade = b
			c.w.note(fmt.Sprintf("%d bytes of plaintext after 'S': %q", len(b), clipText(string(b), 80)))
			return fmt.Errorf("postgres: %d bytes received after 'S', before TLS (CVE-2021-23222): %w", len(b), starttls.ErrPlaintextAfterUpgrade)
		}
	}
	tc, err := starttls.Handshake(ctx, c.conn, c.tlsOpts)
	if err != nil {
		if probe != nil {
			if textline.IsClosed(err) {
				probe.Closed = true
			} else {
				probe.Err = err.Error()
			}
		}
		return errorf("SSL negotiation: %w", err)
	}
	c.tlsDone(tc)
	if probe != nil {
		return c.runProbe(ctx, probe)
	}
	return nil
}

func (c *Client) tlsDone(tc *tls.Conn) {
	c.conn = tc
	c.w.upgrade(tc)
	st := tc.ConnectionState()
	c.res.TLS = &st
	c.res.Upgraded = true
}

// runProbe waits opts.Wait() for a message the client did not ask for: a
// server that read the pipelined StartupMessage as if it came over TLS
// answers it now with an authentication request (CVE-2021-23214).
func (c *Client) runProbe(ctx context.Context, probe *starttls.InjectionProbe) error {
	deadline := time.Now().Add(c.opts.Wait())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.conn.SetReadDeadline(deadline)
	typ, body, err := c.w.read()
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(d)
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var ne net.Error
	switch {
	case err == nil && typ == 'E':
		// PostgreSQL 14.1 and later: FATAL 08P01 "received unencrypted
		// data after SSL request", then close.
		c.spent = "the server ended the session"
		probe.Closed = true
		e, perr := parseError(body)
		if perr != nil {
			probe.Reply = describe(typ, body, true)
			return perr
		}
		probe.Reply = e.Error()
		return errorf("the server rejected the start-up message pipelined after the SSLRequest: %w", e)
	case err == nil:
		probe.Vulnerable = true
		probe.Reply = describe(typ, body, true)
		c.spent = "the server answered the injection probe's start-up message"
		c.w.note("injection probe: the server answered the start-up message pipelined after the SSLRequest inside TLS (CVE-2021-23214)")
		return nil
	case errors.As(err, &ne) && ne.Timeout():
		return nil // silence: not vulnerable, the session goes on
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		probe.Closed = true
		return errorf("server closed the connection after the TLS handshake (injection probe): %w", err)
	default:
		probe.Err = err.Error()
		return err
	}
}

// Result returns the record of the upgrade (AuthAfter or AuthBefore is
// filled in by Login).
func (c *Client) Result() *starttls.Result { return c.res }

// NetConn returns the connection (a *tls.Conn after an upgrade) with any
// bytes already buffered readable first, for interactive use. The Client
// should not be used afterwards.
func (c *Client) NetConn() net.Conn { return c.w.netConn() }

// Parameter returns a run-time parameter the server reported at login
// (ParameterStatus, §55.2.7), such as "server_version".
func (c *Client) Parameter(name string) string { return c.params[name] }

// begin applies ctx to one exchange.
func (c *Client) begin(ctx context.Context) (context.Context, func()) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	stop := textline.Watch(ctx, c.conn)
	return ctx, func() { stop(); cancel() }
}

// Login sends the StartupMessage (protocol 3.0, user, database, and
// application_name "starttls") and answers the server's authentication
// request: SCRAM-SHA-256 (RFC 7677, the server signature verified), MD5
// or a cleartext password; then reads the parameters until ReadyForQuery.
// The method the server asked for goes into Result.AuthAfter (AuthBefore
// without TLS). An ErrorResponse is returned as *Error.
//
// Login refuses, with an error wrapping starttls.ErrFallbackForbidden, to
// start a session without TLS unless the mode is ModePlain. The transcript
// never shows the password or the SCRAM proof.
func (c *Client) Login(ctx context.Context, username, password string) error {
	switch {
	case c.spent != "":
		return errorf("session unusable: %s", c.spent)
	case c.loggedIn:
		return errorf("already logged in")
	case !c.res.Upgraded && c.mode != starttls.ModePlain:
		return errorf("refusing to send credentials without TLS in mode %v: %w", c.mode, starttls.ErrFallbackForbidden)
	case username == "":
		return errorf("empty user name")
	case strings.ContainsRune(username+password+c.Database, 0):
		return errorf("user name, password or database contains NUL")
	}
	ctx, done := c.begin(ctx)
	defer done()
	err := c.login(username, password)
	if err != nil && !c.loggedIn {
		c.spent = "login failed"
	}
	return textline.CtxErr(ctx, err)
}

func (c *Client) setAuth(m string) {
	if c.res.Upgraded {
		c.res.AuthAfter = []string{m}
	} else {
		c.res.AuthBefore = []string{m}
	}
}

func (c *Client) login(user, password string) error {
	db := c.Database
	if db == "" {
		db = user
	}
	start := startupMessage([][2]string{{"user", user}, {"database", db}, {"application_name", applicationName}})
	if err := c.w.send(describeStartup(start[4:]), start); err != nil {
		return err
	}
	var sc *scramClient
	scramDone, authOK := false, false
	c.params = map[string]string{}
	for n := 0; ; n++ {
		if n >= c.opts.LinesLimit() {
			return starttls.ProtocolError("postgres", "more than %d messages during the login", c.opts.LinesLimit())
		}
		typ, body, err := c.w.read()
		if err != nil {
			return err
		}
		d := &decoder{b: body}
		switch typ {
		case 'R':
			if authOK {
				return starttls.ProtocolError("postgres", "authentication request after AuthenticationOk")
			}
			code := d.int32()
			if d.err != nil {
				return d.err
			}
			switch code {
			case 0: // AuthenticationOk
				if err := d.end("AuthenticationOk"); err != nil {
					return err
				}
				if sc != nil && !scramDone {
					// libpq: the server must prove it knows the secret.
					return starttls.ProtocolError("postgres", "AuthenticationOk before the SCRAM exchange completed")
				}
				authOK = true
			case 3: // AuthenticationCleartextPassword
				c.setAuth("CLEARTEXT")
				msg := newMessage('p').cstring(password).done()
				if err := c.w.send("PasswordMessage ****", msg); err != nil {
					return err
				}
			case 5: // AuthenticationMD5Password
				salt := d.take(4)
				if err := d.end("AuthenticationMD5Password"); err != nil {
					return err
				}
				c.setAuth("MD5")
				msg := newMessage('p').cstring(md5Password(user, password, salt)).done()
				if err := c.w.send("PasswordMessage md5****", msg); err != nil {
					return err
				}
			case 10: // AuthenticationSASL
				mechs, err := saslMechanisms(d.b)
				if err != nil {
					return err
				}
				if sc != nil {
					return starttls.ProtocolError("postgres", "second AuthenticationSASL")
				}
				if !slices.Contains(mechs, SCRAMSHA256) {
					return errorf("no supported SASL mechanism offered (%s; want %s)", strings.Join(mechs, ", "), SCRAMSHA256)
				}
				c.setAuth(SCRAMSHA256)
				sc = newSCRAMClient(password)
				first := sc.first()
				msg := newMessage('p').cstring(SCRAMSHA256).int32(int32(len(first))).bytes([]byte(first)).done()
				if err := c.w.send("SASLInitialResponse "+SCRAMSHA256+" "+first, msg); err != nil {
					return err
				}
			case 11: // AuthenticationSASLContinue
				if sc == nil || sc.serverSignature != nil {
					return starttls.ProtocolError("postgres", "unexpected AuthenticationSASLContinue")
				}
				final, err := sc.final(string(d.b))
				if err != nil {
					return err
				}
				proofless, _, _ := strings.Cut(final, ",p=")
				if err := c.w.send("SASLResponse "+proofless+",p=****", newMessage('p').bytes([]byte(final)).done()); err != nil {
					return err
				}
			case 12: // AuthenticationSASLFinal
				if sc == nil || sc.serverSignature == nil || scramDone {
					return starttls.ProtocolError("postgres", "unexpected AuthenticationSASLFinal")
				}
				if err := sc.verify(string(d.b)); err != nil {
					return err
				}
				scramDone = true
			default:
				return errorf("unsupported authentication method %s (request %d)", authName(code), code)
			}
		case 'E':
			e, err := parseError(body)
			if err != nil {
				return err
			}
			return e
		case 'N', 'v': // notices; NegotiateProtocolVersion (we asked for 3.0 only)
		case 'S':
			k, v := d.cstring(), d.cstring()
			if err := d.end("ParameterStatus"); err != nil {
				return err
			}
			if len(c.params) < maxParams {
				c.params[k] = v
			}
		case 'K':
		case 'Z':
			if !authOK {
				return starttls.ProtocolError("postgres", "ReadyForQuery before AuthenticationOk")
			}
			c.loggedIn = true
			return nil
		default:
			return starttls.ProtocolError("postgres", "unexpected message %q during the login", typ)
		}
	}
}

// md5Password is "md5" + md5hex(md5hex(password + user) + salt)
// (§55.2.2 AuthenticationMD5Password).
func md5Password(user, password string, salt []byte) string {
	inner := md5.Sum([]byte(password + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), salt...))
	return "md5" + hex.EncodeToString(outer[:])
}

// SimpleQuery runs sql with the simple query protocol (§55.2.3) and
// returns the rows of the results as text, NULL as "". At most
// opts.LinesLimit() rows and 16 MiB are kept; more fails after the rest is
// read. An ErrorResponse is returned as *Error; the session stays usable.
func (c *Client) SimpleQuery(ctx context.Context, sql string) ([][]string, error) {
	switch {
	case c.spent != "":
		return nil, errorf("session unusable: %s", c.spent)
	case !c.loggedIn:
		return nil, errorf("SimpleQuery before Login")
	case strings.ContainsRune(sql, 0):
		return nil, errorf("query contains NUL")
	}
	ctx, done := c.begin(ctx)
	defer done()
	rows, err := c.query(sql)
	return rows, textline.CtxErr(ctx, err)
}

func (c *Client) query(sql string) ([][]string, error) {
	if err := c.w.send("Query "+clipText(sql, 200), newMessage('Q').cstring(sql).done()); err != nil {
		c.spent = "I/O error"
		return nil, err
	}
	var rows [][]string
	var qerr error
	size := 0
	for n := 0; ; n++ {
		if n > 4*c.opts.LinesLimit()+16 {
			c.spent = "query answer too long"
			return nil, starttls.ProtocolError("postgres", "more than %d messages in a query answer", 4*c.opts.LinesLimit()+16)
		}
		typ, body, err := c.w.read()
		if err != nil {
			c.spent = "I/O error"
			return nil, err
		}
		switch typ {
		case 'D':
			row, err := parseDataRow(body)
			if err != nil {
				c.spent = "protocol error"
				return nil, err
			}
			size += len(body)
			if len(rows) >= c.opts.LinesLimit() || size > maxResultBytes {
				if qerr == nil {
					qerr = errorf("query answer longer than %d rows or %d bytes", c.opts.LinesLimit(), maxResultBytes)
				}
				continue
			}
			rows = append(rows, row)
		case 'E':
			e, err := parseError(body)
			if err != nil {
				c.spent = "protocol error"
				return nil, err
			}
			if qerr == nil {
				qerr = e
			}
			if e.Severity == "FATAL" || e.Severity == "PANIC" {
				c.spent = "the server ended the session"
				return nil, e
			}
		case 'T', 'C', 'I', 'N', 'S':
		case 'Z':
			if qerr != nil {
				return nil, qerr
			}
			return rows, nil
		default:
			c.spent = "protocol error"
			return nil, starttls.ProtocolError("postgres", "unexpected message %q in a query answer", typ)
		}
	}
}

// Close sends Terminate (§55.2.9) when a session is open, waits at most
// two seconds, and closes the connection (with a TLS close_notify).
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.conn.SetDeadline(time.Now().Add(terminateTimeout))
	if c.loggedIn && c.spent == "" {
		c.w.send("Terminate", newMessage('X').done())
	}
	return c.conn.Close()
}

// ProbePlaintextAuth asks the server, on conn without TLS, which
// authentication it would run in plaintext: it sends a StartupMessage for
// the user "starttls-probe" without an SSLRequest and reads the answer. An
// authentication request returns its method ("SCRAM-SHA-256", "MD5",
// "CLEARTEXT", "TRUST" when the server lets the session in without any);
// FATAL 28000 (pg_hba.conf rejects connections without encryption) returns
// an empty list. It never sends a password: it ends with Terminate. It does
// not close conn. It is a dial.PlaintextAuthFunc.
func ProbePlaintextAuth(ctx context.Context, conn net.Conn, opts *starttls.ClientOptions) ([]string, error) {
	ctx, cancel := textline.WithDefaultTimeout(ctx)
	defer cancel()
	stop := textline.Watch(ctx, conn)
	defer stop()
	var tr *starttls.Transcript
	if opts != nil {
		tr = opts.Transcript
	}
	w := newWire(conn, starttls.FromClient, tr, MaxMessageSize)
	start := probeStartup()
	if err := w.send(describeStartup(start[4:]), start); err != nil {
		return nil, textline.CtxErr(ctx, err)
	}
	for n := 0; n < 8; n++ {
		typ, body, err := w.read()
		if err != nil {
			return nil, textline.CtxErr(ctx, err)
		}
		switch typ {
		case 'R':
			d := &decoder{b: body}
			code := d.int32()
			if d.err != nil {
				return nil, d.err
			}
			var ms []string
			switch code {
			case 10:
				if ms, err = saslMechanisms(d.b); err != nil {
					return nil, err
				}
			default:
				ms = []string{authName(code)}
			}
			w.send("Terminate", newMessage('X').done())
			return ms, nil
		case 'E':
			e, err := parseError(body)
			if err != nil {
				return nil, err
			}
			if e.Code == CodeInvalidAuthorization {
				return []string{}, nil
			}
			return nil, e
		case 'N', 'v':
		default:
			return nil, starttls.ProtocolError("postgres", "unexpected message %q in answer to a plaintext StartupMessage", typ)
		}
	}
	return nil, starttls.ProtocolError("postgres", "no authentication request in answer to a plaintext StartupMessage")
}
