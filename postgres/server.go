package postgres

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/serve"
)

// Backend checks passwords for a Server.
type Backend interface {
	// Login checks a user's cleartext password (sent over TLS, or in
	// plaintext with AllowPlaintextLogin); a non-nil error refuses it
	// (the client sees FATAL 28P01, never the error text).
	Login(ctx context.Context, username, password string) error
}

// SCRAMBackend is a Backend that can run SCRAM-SHA-256: the Server then
// asks for SCRAM instead of a cleartext password.
type SCRAMBackend interface {
	Backend
	// SCRAMSecret returns the user's stored secret; an error means no such
	// user (the server then runs a mock exchange that fails at the end, so
	// that user names cannot be probed).
	SCRAMSecret(ctx context.Context, username string) (*SCRAMSecret, error)
}

// DefaultServerVersion is the server_version a Server reports.
const DefaultServerVersion = "15.0"

// Server is a PostgreSQL server speaking protocol 3.0 with TLS (SSLRequest
// and PG 17 direct TLS) and a tiny fixed query repertoire, for the lab and
// tests. The zero value with a Backend refuses every session (there is no
// TLS to protect it); set TLSConfig. A Server must not be copied after
// first use.
type Server struct {
	starttls.ServerOptions
	// Backend checks passwords; nil refuses every login.
	Backend Backend
	// ServerVersion is reported in ParameterStatus server_version and by
	// SELECT version(); empty means DefaultServerVersion.
	ServerVersion string

	sessions serve.Sessions
	mockKey  []byte
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("postgres: panic serving connection", s.Log, func() {
		s.mockKey = make([]byte, 32)
		rand.Read(s.mockKey)
	})
}

func (s *Server) version() string {
	if s.ServerVersion == "" {
		return DefaultServerVersion
	}
	return s.ServerVersion
}

// Serve accepts connections on l and serves each in its own goroutine
// until l fails or Close or Shutdown is called; it then returns a non-nil
// error.
func (s *Server) Serve(l net.Listener) error { return s.init().Serve(l, s.runSession) }

// ServeConn serves one connection for a whole session and closes it. It
// returns nil after Terminate, else the reason the session ended.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	return s.init().ServeConn(ctx, conn, s.runSession)
}

// runSession runs a whole session on conn.
func (s *Server) runSession(ctx context.Context, conn net.Conn) error {
	return s.newSession(ctx, conn).run()
}

// Handshake serves the negotiation (SSLRequest, GSSENCRequest refused)
// until the TLS handshake is done and returns the *tls.Conn, with the
// StartupMessage still to come over TLS. Bytes pipelined after the
// SSLRequest and a StartupMessage in plaintext always end the connection
// here. On error conn is closed.
func (s *Server) Handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	if s.TLSConfig == nil {
		conn.Close()
		return nil, errorf("Handshake: no TLSConfig")
	}
	s.init()
	ss := s.newSession(ctx, conn)
	ss.handshakeOnly = true
	err := ss.run()
	if ss.upgraded != nil && err == nil {
		conn.SetDeadline(time.Time{})
		return ss.upgraded, nil
	}
	conn.Close()
	if err == nil {
		err = errorf("client ended the session before the upgrade")
	}
	return nil, err
}

// Close closes the listeners and all connections immediately.
func (s *Server) Close() error { return s.sessions.Close() }

// Shutdown closes the listeners and waits for the sessions to end until ctx
// is done, when it closes them.
func (s *Server) Shutdown(ctx context.Context) error { return s.sessions.Shutdown(ctx) }

var (
	errTerminate  = errors.New("postgres: client terminated the session")
	errHandedOver = errors.New("postgres: connection handed over after the handshake")
)

type session struct {
	srv           *Server
	ctx           context.Context
	raw           net.Conn
	w             *wire
	tls           bool
	tlsConn       *tls.Conn
	upgraded      *tls.Conn
	handshakeOnly bool
	sslTried      bool
	gssTried      bool
	errors        int
	user          string
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	return &session{srv: s, ctx: ctx, raw: conn, w: newWire(conn, starttls.FromServer, nil, maxServerMessage)}
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("postgres: "+msg, "remote", ss.raw.RemoteAddr().String(), "err", err)
}

func (ss *session) deadline() { ss.raw.SetDeadline(time.Now().Add(ss.srv.CommandTimeout())) }

// fatal sends a FATAL ErrorResponse and returns err (or an error made of
// the message) to end the session.
func (ss *session) fatal(code, msg string, err error) error {
	ss.w.send("ErrorResponse FATAL "+code+" "+msg, errorMessage("FATAL", code, msg))
	if err == nil {
		err = &Error{Severity: "FATAL", Code: code, Message: msg}
	}
	return err
}

func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("postgres: panic serving connection", "remote", ss.raw.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.raw.SetDeadline(time.Now().Add(time.Second))
			ss.w.send("ErrorResponse", errorMessage("FATAL", CodeInternalError, "internal server error"))
			err = errorf("panic: %v", v)
		}
	}()
	stop := context.AfterFunc(ss.ctx, func() { ss.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err = ss.serve()
	if ss.tlsConn != nil && !errors.Is(err, errHandedOver) {
		ss.tlsConn.Close()
	}
	switch {
	case errors.Is(err, errTerminate), errors.Is(err, errHandedOver):
		return nil
	case err != nil:
		ss.debug("session ended", err)
	}
	return err
}

func (ss *session) serve() error {
	ss.deadline()
	if ss.srv.Implicit {
		if ss.srv.TLSConfig == nil {
			return errorf("implicit TLS without TLSConfig")
		}
		return ss.direct()
	}
	// PostgreSQL 17: a ClientHello as the very first bytes is direct TLS.
	if b, err := ss.w.r.Peek(1); err == nil && b[0] == 0x16 && ss.srv.TLSConfig != nil {
		return ss.direct()
	}
	return ss.negotiate()
}

// direct runs a direct-TLS handshake (PG 17), which requires ALPN
// "postgresql", then the session.
func (ss *session) direct() error {
	if err := ss.handshake(&bufferedConn{Conn: ss.raw, r: ss.w.r}); err != nil {
		return err
	}
	tc := ss.upgraded
	ss.w.upgrade(tc)
	if tc.ConnectionState().NegotiatedProtocol != ALPN {
		return ss.fatal(CodeProtocolViolation, "received direct SSL connection request without ALPN protocol negotiation extension", nil)
	}
	if ss.handshakeOnly {
		return errHandedOver
	}
	ss.upgraded = nil
	return ss.negotiate()
}

// negotiate reads start-up packets (§55.2.10, §55.2.11) until the
// StartupMessage.
func (ss *session) negotiate() error {
	for {
		ss.deadline()
		body, err := ss.w.readStartup()
		if err != nil {
			switch {
			case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
				// Nothing sensible can be answered: the client waits for a
				// ServerHello.
				return err
			case errors.Is(err, starttls.ErrLineTooLong), errors.Is(err, starttls.ErrProtocol):
				return ss.fatal(CodeProtocolViolation, "invalid length of startup packet", err)
			}
			return err
		}
		code := int32(binary.BigEndian.Uint32(body))
		switch code {
		case SSLRequestCode:
			if ss.tls || ss.sslTried || len(body) != 4 {
				// SV-24: no second SSL negotiation.
				return ss.fatal(CodeProtocolViolation, "unsupported frontend protocol 1234.5679: SSL negotiation already done", nil)
			}
			ss.sslTried = true
			if err := ss.sslRequest(); err != nil {
				return err
			}
			if ss.handshakeOnly && ss.tls {
				return errHandedOver
			}
		case GSSENCRequestCode:
			if ss.tls || ss.gssTried || len(body) != 4 {
				return ss.fatal(CodeProtocolViolation, "unsupported frontend protocol 1234.5680: GSSAPI negotiation already done", nil)
			}
			ss.gssTried = true
			if err := ss.w.send("N", []byte{'N'}); err != nil {
				return err
			}
		case CancelRequestCode:
			return errTerminate // nothing to cancel; PostgreSQL closes silently
		default:
			if code>>16 != 3 {
				return ss.fatal(CodeFeatureNotSupported, fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0 to 3.0", code>>16, code&0xffff), nil)
			}
			if ss.handshakeOnly {
				return ss.fatal(CodeInvalidAuthorization, "SSL required", nil)
			}
			return ss.startup(code, body[4:])
		}
	}
}

// sslRequest answers the SSLRequest and runs the handshake.
func (ss *session) sslRequest() error {
	s := ss.srv
	if s.TLSConfig == nil || s.Implicit || s.RefuseUpgrade {
		return ss.w.send("N", []byte{'N'})
	}
	// Anything already received came in plaintext after the SSLRequest
	// (CVE-2021-23214): never read it as if it came over TLS.
	pipelined := ss.w.buffered()
	if err := ss.w.send("S", append([]byte{'S'}, s.Forged("SSLRequest")...)); err != nil {
		return err
	}
	var kept []byte
	if pipelined > 0 && s.InsecureKeepPipelined && !ss.handshakeOnly {
		kept = ss.w.takeBuffered()
	}
	if err := ss.handshake(ss.raw); err != nil {
		return err
	}
	tc := ss.upgraded
	ss.w.upgrade(tc)
	if pipelined > 0 && kept == nil {
		// PostgreSQL 14.1+: report it inside TLS, then close.
		ss.upgraded = nil
		return ss.fatal(CodeProtocolViolation, "received unencrypted data after SSL request",
			fmt.Errorf("postgres: %d bytes pipelined after the SSLRequest, closing: %w", pipelined, starttls.ErrPlaintextAfterUpgrade))
	}
	if ss.handshakeOnly {
		return nil
	}
	ss.upgraded = nil
	if kept != nil {
		// The CVE-2021-23214 bug, on purpose: plaintext read as TLS data.
		ss.w.resetReader(io.MultiReader(bytes.NewReader(kept), tc))
	}
	return nil
}

// handshake runs the server TLS handshake on conn.
func (ss *session) handshake(conn net.Conn) error {
	cfg := ss.srv.TLSConfig.Clone()
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{ALPN}
	}
	tc := tls.Server(conn, cfg)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.CommandTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return &starttls.HandshakeError{Err: err}
	}
	ss.tls = true
	ss.upgraded = tc
	ss.tlsConn = tc
	return nil
}

// startup handles the StartupMessage (§55.2.2).
func (ss *session) startup(code int32, rest []byte) error {
	params, err := startupParams(rest)
	if err != nil {
		return ss.fatal(CodeProtocolViolation, "invalid startup packet layout: expected terminator as last byte", err)
	}
	var user, db, app string
	var unknown []string
	for _, p := range params {
		switch p[0] {
		case "user":
			user = p[1]
		case "database":
			db = p[1]
		case "application_name":
			app = p[1]
		default:
			if strings.HasPrefix(p[0], "_pq_.") {
				unknown = append(unknown, p[0])
			}
		}
	}
	if code&0xffff != 0 || len(unknown) > 0 {
		b := newMessage('v').int32(ProtocolVersion).int32(int32(len(unknown)))
		for _, u := range unknown {
			b.cstring(u)
		}
		ss.w.queue("NegotiateProtocolVersion", b.done())
	}
	if user == "" {
		return ss.fatal(CodeInvalidAuthorization, "no PostgreSQL user name specified in startup packet", nil)
	}
	if db == "" {
		db = user
	}
	if !ss.tls && !ss.srv.AllowPlaintextLogin {
		host, _, _ := net.SplitHostPort(ss.raw.RemoteAddr().String())
		return ss.fatal(CodeInvalidAuthorization, fmt.Sprintf("no pg_hba.conf entry for host %q, user %q, database %q, no encryption", host, clipText(user, 64), clipText(db, 64)), nil)
	}
	ss.deadline()
	if err := ss.authenticate(user); err != nil {
		return err
	}
	ss.user = user
	kv := [][2]string{
		{"application_name", app},
		{"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"},
		{"default_transaction_read_only", "off"},
		{"in_hot_standby", "off"},
		{"integer_datetimes", "on"},
		{"IntervalStyle", "postgres"},
		{"is_superuser", "off"},
		{"server_encoding", "UTF8"},
		{"server_version", ss.srv.version()},
		{"session_authorization", user},
		{"standard_conforming_strings", "on"},
		{"TimeZone", "UTC"},
	}
	ss.w.queue("AuthenticationOk", newMessage('R').int32(0).done())
	for _, p := range kv {
		ss.w.queue("ParameterStatus", newMessage('S').cstring(p[0]).cstring(p[1]).done())
	}
	var key [8]byte
	rand.Read(key[:])
	ss.w.queue("BackendKeyData", newMessage('K').bytes(key[:]).done())
	ss.w.queue("ReadyForQuery I", readyForQuery())
	if err := ss.w.flush(); err != nil {
		return err
	}
	return ss.queries()
}

func readyForQuery() []byte { return newMessage('Z').byte1('I').done() }

// authenticate asks for SCRAM-SHA-256 when the Backend can do it, else for
// a cleartext password.
func (ss *session) authenticate(user string) error {
	failed := func(err error) error {
		ss.debug(fmt.Sprintf("authentication of %q failed", user), err)
		return ss.fatal(CodeInvalidPassword, fmt.Sprintf("password authentication failed for user %q", clipText(user, 64)), err)
	}
	if sb, ok := ss.srv.Backend.(SCRAMBackend); ok {
		return ss.scram(user, sb, failed)
	}
	if err := ss.w.send("AuthenticationCleartextPassword", newMessage('R').int32(3).done()); err != nil {
		return err
	}
	body, err := ss.readPassword()
	if err != nil {
		return err
	}
	d := &decoder{b: body}
	pass := d.cstring()
	if err := d.end("PasswordMessage"); err != nil {
		return ss.fatal(CodeProtocolViolation, "invalid password packet size", err)
	}
	ss.srv.SawCredentials("cleartext password", user, pass, ss.tls)
	if ss.srv.Backend == nil {
		return failed(errors.New("no backend"))
	}
	if err := ss.srv.Backend.Login(ss.ctx, user, pass); err != nil {
		return failed(err)
	}
	return nil
}

// readPassword reads the client's 'p' message.
func (ss *session) readPassword() ([]byte, error) {
	typ, body, err := ss.w.read()
	if err != nil {
		return nil, err
	}
	if typ != 'p' {
		return nil, ss.fatal(CodeProtocolViolation, fmt.Sprintf("expected password response, got message type %d", typ), nil)
	}
	ss.w.tr.Add(starttls.Note, ss.tls, "(password message)")
	return body, nil
}

// scram runs SCRAM-SHA-256 (§55.3.1, RFC 5802).
func (ss *session) scram(user string, sb SCRAMBackend, failed func(error) error) error {
	secret, lerr := sb.SCRAMSecret(ss.ctx, user)
	if lerr != nil || secret == nil {
		secret = ss.mockSecret(user)
		if lerr == nil {
			lerr = errors.New("no secret")
		}
	}
	if err := ss.w.send("AuthenticationSASL", newMessage('R').int32(10).cstring(SCRAMSHA256).byte1(0).done()); err != nil {
		return err
	}
	body, err := ss.readPassword()
	if err != nil {
		return err
	}
	d := &decoder{b: body}
	mech := d.cstring()
	n := d.int32()
	data := d.b
	if d.err != nil || (n >= 0 && int(n) != len(data)) || (n < 0 && len(data) != 0) {
		return ss.fatal(CodeProtocolViolation, "malformed SASLInitialResponse", d.err)
	}
	if mech != SCRAMSHA256 {
		return ss.fatal(CodeProtocolViolation, "client selected an invalid SASL authentication mechanism", nil)
	}
	sc := &scramServer{secret: secret}
	first, err := sc.first(string(data))
	if err != nil {
		return ss.fatal(CodeProtocolViolation, "malformed SCRAM message", err)
	}
	if err := ss.w.send("AuthenticationSASLContinue", newMessage('R').int32(11).bytes([]byte(first)).done()); err != nil {
		return err
	}
	if body, err = ss.readPassword(); err != nil {
		return err
	}
	final, err := sc.final(string(body))
	switch {
	case errors.Is(err, errSCRAMProof):
		return failed(err)
	case err != nil:
		return ss.fatal(CodeProtocolViolation, "malformed SCRAM message", err)
	case lerr != nil:
		return failed(lerr)
	}
	return ss.w.send("AuthenticationSASLFinal", newMessage('R').int32(12).bytes([]byte(final)).done())
}

// mockSecret is a stable secret for an unknown user: the exchange looks the
// same as for a real one and fails at the end (PostgreSQL does the same).
func (ss *session) mockSecret(user string) *SCRAMSecret {
	h := func(label string) []byte {
		m := hmac.New(sha256.New, ss.srv.mockKey)
		m.Write([]byte(label + "\x00" + user))
		return m.Sum(nil)
	}
	return &SCRAMSecret{Iterations: 4096, Salt: h("salt")[:16], StoredKey: h("stored"), ServerKey: h("server")}
}

// queries serves the session after the login until Terminate.
func (ss *session) queries() error {
	skipToSync := false
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.deadline()
			return ss.fatal(CodeAdminShutdown, "terminating connection due to administrator command", err)
		}
		ss.deadline()
		typ, body, err := ss.w.read()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
				return err
			case errors.Is(err, starttls.ErrLineTooLong), errors.Is(err, starttls.ErrProtocol):
				return ss.fatal(CodeProtocolViolation, "invalid message length", err)
			case errors.As(err, &ne) && ne.Timeout() && ss.ctx.Err() == nil:
				return ss.fatal("57P05", "terminating connection due to idle-session timeout", err)
			}
			return err
		}
		switch typ {
		case 'X':
			return errTerminate
		case 'Q':
			d := &decoder{b: body}
			sql := d.cstring()
			if err := d.end("Query"); err != nil {
				return ss.fatal(CodeProtocolViolation, "invalid query message", err)
			}
			if err := ss.query(sql); err != nil {
				return err
			}
		case 'S': // Sync ends an extended-protocol attempt
			skipToSync = false
			if err := ss.w.send("ReadyForQuery I", readyForQuery()); err != nil {
				return err
			}
		case 'P', 'B', 'E', 'D', 'C', 'H', 'F', 'd', 'c', 'f':
			if skipToSync {
				continue
			}
			skipToSync = true
			ss.errors++
			if ss.errors >= ss.srv.ErrorLimit() {
				return ss.fatal(CodeProtocolViolation, "too many errors, closing", nil)
			}
			msg := "this server supports only the simple query protocol"
			if err := ss.w.send("ErrorResponse ERROR 0A000", errorMessage("ERROR", CodeFeatureNotSupported, msg)); err != nil {
				return err
			}
		default:
			return ss.fatal(CodeProtocolViolation, fmt.Sprintf("invalid frontend message type %d", typ), nil)
		}
	}
}

// column is one column of a fixed answer.
type column struct {
	name string
	oid  int32 // 23 int4, 25 text
}

// query answers the fixed repertoire (§55.2.3).
func (ss *session) query(sql string) error {
	q := strings.ToLower(strings.Join(strings.Fields(strings.TrimRight(strings.TrimSpace(sql), "; \t\r\n")), " "))
	ssl := "off"
	if ss.tls {
		ssl = "on"
	}
	var col column
	var val, tag string
	switch q {
	case "":
		ss.w.queue("EmptyQueryResponse", newMessage('I').done())
		ss.w.queue("ReadyForQuery I", readyForQuery())
		return ss.w.flush()
	case "select 1":
		col, val, tag = column{"?column?", 23}, "1", "SELECT 1"
	case "select version()":
		col, val, tag = column{"version", 25}, "PostgreSQL "+ss.srv.version()+" (starttls lab server)", "SELECT 1"
	case "show ssl":
		col, val, tag = column{"ssl", 25}, ssl, "SHOW"
	case "show server_version":
		col, val, tag = column{"server_version", 25}, ss.srv.version(), "SHOW"
	case "select current_user", "select user", "select session_user":
		col, val, tag = column{strings.TrimPrefix(q, "select "), 19}, ss.user, "SELECT 1"
	default:
		ss.w.queue("ErrorResponse ERROR 42601", errorMessage("ERROR", CodeSyntaxError,
			"syntax error or unsupported statement: this server answers only SELECT 1, SELECT version(), SELECT current_user, SHOW ssl and SHOW server_version"))
		ss.w.queue("ReadyForQuery I", readyForQuery())
		return ss.w.flush()
	}
	size := int16(-1)
	if col.oid == 23 {
		size = 4
	}
	ss.w.queue("RowDescription", newMessage('T').int16(1).
		cstring(col.name).int32(0).int16(0).int32(col.oid).int16(size).int32(-1).int16(0).done())
	ss.w.queue("DataRow", newMessage('D').int16(1).int32(int32(len(val))).bytes([]byte(val)).done())
	ss.w.queue("CommandComplete "+tag, newMessage('C').cstring(tag).done())
	ss.w.queue("ReadyForQuery I", readyForQuery())
	return ss.w.flush()
}
