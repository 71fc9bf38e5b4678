package mysql

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/serve"
)

// DefaultServerVersion is the version the Server announces: MariaDB's
// "5.5.5-" prefix, which MariaDB sends so that old clients see a version
// above 5.5.
const DefaultServerVersion = "5.5.5-10.11.0-MariaDB-starttls-lab"

// maxCommandPacket bounds a command packet the server accepts.
const maxCommandPacket = 64 << 10

// statusAutocommit is SERVER_STATUS_AUTOCOMMIT.
const statusAutocommit = 0x0002

// serverCaps are the capabilities the Server announces, CLIENT_SSL aside.
const serverCaps = ClientLongPassword | ClientFoundRows | ClientLongFlag | ClientConnectWithDB |
	ClientProtocol41 | ClientTransactions | ClientSecureConnection | ClientPluginAuth |
	ClientPluginAuthLenencClientData

// Backend authenticates users for a Server.
type Backend interface {
	// Password returns a user's password, which mysql_native_password
	// verification needs: the client proves it knows the password without
	// sending it. An error refuses the login with ERR 1045, never showing
	// the error text.
	Password(ctx context.Context, username string) (string, error)
}

// Server is a small MySQL server: the connection phase with the SSLRequest
// upgrade and mysql_native_password, COM_PING, COM_QUIT and COM_QUERY with
// a fixed set of answers. The zero value with a Backend serves plaintext
// and refuses every login; set TLSConfig to offer TLS. A Server must not be
// copied after first use.
//
// Of the shared ServerOptions, Hostname does not apply (the greeting names
// no host) and MaxLineLength neither: packets are capped at 64 KiB.
type Server struct {
	starttls.ServerOptions
	// Backend checks passwords. nil refuses every login.
	Backend Backend
	// ServerVersion is the version in the greeting; empty means
	// DefaultServerVersion.
	ServerVersion string

	sessions serve.Sessions
	connID   atomic.Uint32
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("mysql: panic serving connection", s.Log, nil)
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
// returns nil after COM_QUIT, else the reason the session ended.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	return s.init().ServeConn(ctx, conn, s.runSession)
}

// runSession runs a whole session on conn.
func (s *Server) runSession(ctx context.Context, conn net.Conn) error {
	return s.newSession(ctx, conn).run()
}

// Handshake serves the plaintext part of a session (the greeting and the
// SSLRequest) and returns the *tls.Conn right after the handshake, with
// the client's HandshakeResponse (sequence id 2) still to come. Plaintext
// pipelined after the SSLRequest always closes the connection here. With
// Implicit the handshake comes first and the greeting is still to be sent
// by the caller. On error conn is closed.
func (s *Server) Handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	if s.TLSConfig == nil {
		conn.Close()
		return nil, errorf("Handshake: no TLSConfig")
	}
	ss := s.newSession(ctx, conn)
	ss.handshakeOnly = true
	err := ss.run()
	if ss.upgraded != nil {
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
	errHandedOver = errors.New("mysql: connection handed over after the TLS handshake")
	errTooMany    = errors.New("mysql: too many errors")
	errLoginDone  = errors.New("mysql: login refused")
)

type session struct {
	srv           *Server
	ctx           context.Context
	raw           net.Conn
	w             *wire
	tlsConn       *tls.Conn
	upgraded      *tls.Conn
	handshakeOnly bool
	scramble      []byte
	errors        int
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	return &session{srv: s, ctx: ctx, raw: conn, w: newWire(conn, nil, starttls.FromServer)}
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("mysql: "+msg, "remote", ss.raw.RemoteAddr().String(), "err", err)
}

func (ss *session) deadline() { ss.raw.SetDeadline(time.Now().Add(ss.srv.CommandTimeout())) }

func (ss *session) sendErr(code uint16, state, msg string) error {
	return ss.w.writePacket(marshalErr(code, state, msg), fmt.Sprintf("ERR %d %s", code, msg))
}

// bad answers an ERR and counts a protocol error; past the limit it ends
// the session.
func (ss *session) bad(code uint16, state, msg string) error {
	ss.errors++
	if err := ss.sendErr(code, state, msg); err != nil {
		return err
	}
	if ss.errors >= ss.srv.ErrorLimit() {
		return errTooMany
	}
	return nil
}

func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("mysql: panic serving connection", "remote", ss.raw.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.raw.SetDeadline(time.Now().Add(time.Second))
			ss.sendErr(ErUnknown, "HY000", "internal server error, closing")
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
	case errors.Is(err, errQuit), errors.Is(err, errHandedOver):
		return nil
	case err != nil:
		ss.debug("session ended", err)
	}
	return err
}

// newScramble returns 20 random printable bytes (no NUL: the greeting
// NUL-terminates the second part).
func newScramble() []byte {
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = 0x21 + b[i]%94
	}
	return b
}

func (ss *session) serve() error {
	ss.deadline()
	if ss.srv.Implicit {
		if ss.srv.TLSConfig == nil {
			return errorf("implicit TLS without TLSConfig")
		}
		if err := ss.handshake(ss.raw); err != nil {
			return err
		}
		if ss.handshakeOnly {
			return errHandedOver
		}
		ss.w.reset(ss.upgraded)
	}
	ss.scramble = newScramble()
	caps := serverCaps
	offer := ss.srv.TLSConfig != nil && !ss.srv.Implicit
	if offer {
		caps |= ClientSSL
	}
	g := &Greeting{ProtocolVersion: 10, ServerVersion: ss.srv.version(), ConnectionID: ss.srv.connID.Add(1),
		Scramble: ss.scramble, Capabilities: caps, Charset: charsetUTF8MB4, Status: statusAutocommit,
		AuthPlugin: PluginNativePassword}
	if err := ss.w.writePacket(g.marshal(), "greeting"); err != nil {
		return err
	}
	p, err := ss.readHandshakePacket()
	if err != nil {
		return err
	}
	h, sslRequest, err := parseHandshakeResponse(p)
	if err != nil {
		ss.sendErr(ErHandshakeError, "08S01", "Bad handshake")
		return err
	}
	if sslRequest {
		if !offer || ss.w.tls {
			// What MySQL does with an SSLRequest it cannot serve: the
			// 32 bytes are a truncated handshake response.
			ss.sendErr(ErHandshakeError, "08S01", "Bad handshake")
			return errorf("SSLRequest without TLS offered")
		}
		if ss.srv.RefuseUpgrade && ss.srv.RefusePermanently {
			ss.sendErr(ErHandshakeError, "08S01", "Bad handshake")
			return errorf("upgrade refused (RefuseUpgrade, permanent)")
		}
		if ss.srv.RefuseUpgrade {
			ss.sendErr(ErConCountError, "08004", "Too many connections")
			return errorf("upgrade refused (RefuseUpgrade)")
		}
		if err := ss.upgrade(); err != nil {
			return err
		}
		if ss.handshakeOnly {
			return errHandedOver
		}
		if p, err = ss.readHandshakePacket(); err != nil {
			return err
		}
		if h, sslRequest, err = parseHandshakeResponse(p); err != nil || sslRequest {
			ss.sendErr(ErHandshakeError, "08S01", "Bad handshake")
			return errors.Join(err, errorf("bad handshake response after TLS"))
		}
	} else if ss.handshakeOnly {
		ss.sendErr(ErSecureTransportRequired, "HY000", errInsecureTransportMessage)
		return errorf("handshake response without SSLRequest")
	}
	if err := ss.login(h); err != nil {
		return err
	}
	return ss.commands()
}

// readHandshakePacket reads a connection-phase packet, with a TLS
// ClientHello recognised before TLS.
func (ss *session) readHandshakePacket() ([]byte, error) {
	ss.deadline()
	ss.w.sniff = !ss.w.tls
	p, err := ss.w.readPacket(MaxHandshakePacket)
	ss.w.sniff = false
	if errors.Is(err, starttls.ErrLineTooLong) {
		ss.sendErr(ErNetPacketTooLarge, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes")
	}
	return p, err
}

// upgrade runs the TLS handshake after an SSLRequest. Bytes already
// received that are not the start of a TLS record were pipelined in
// plaintext: close, or with InsecureKeepPipelined keep whole packets among
// them for the session inside TLS (the lab's CVE-2011-0411 reproduction).
func (ss *session) upgrade() error {
	var buffered []byte
	if n := ss.w.r.Buffered(); n > 0 {
		buffered = make([]byte, n)
		io.ReadFull(ss.w.r, buffered)
	}
	var kept []byte
	if len(buffered) > 0 && buffered[0] != 0x16 {
		if !ss.srv.InsecureKeepPipelined || ss.handshakeOnly {
			return errorf("%d bytes pipelined in plaintext after the SSLRequest, closing the connection: %w", len(buffered), starttls.ErrPlaintextAfterUpgrade)
		}
		kept, buffered = splitPackets(buffered)
		if len(buffered) > 0 && buffered[0] != 0x16 {
			return errorf("partial plaintext packet after the SSLRequest: %w", starttls.ErrPlaintextAfterUpgrade)
		}
	}
	conn := ss.raw
	if len(buffered) > 0 {
		// The start of the ClientHello, read with the SSLRequest.
		conn = &prefixConn{Conn: ss.raw, r: io.MultiReader(bytes.NewReader(buffered), ss.raw)}
	}
	if err := ss.handshake(conn); err != nil {
		return err
	}
	if ss.handshakeOnly {
		return nil
	}
	seq := ss.w.seq
	if kept != nil {
		ss.w.reset(&keptConn{Conn: ss.upgraded, r: io.MultiReader(bytes.NewReader(kept), ss.upgraded)})
	} else {
		ss.w.reset(ss.upgraded)
	}
	ss.w.seq = seq
	return nil
}

// splitPackets returns the complete packets at the start of b and the rest.
func splitPackets(b []byte) (packets, rest []byte) {
	i := 0
	for len(b)-i >= 4 {
		n := int(b[i]) | int(b[i+1])<<8 | int(b[i+2])<<16
		if len(b)-i-4 < n {
			break
		}
		i += 4 + n
	}
	return b[:i], b[i:]
}

func (ss *session) handshake(conn net.Conn) error {
	tc := tls.Server(conn, ss.srv.TLSConfig)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.CommandTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return &starttls.HandshakeError{Err: err}
	}
	ss.upgraded = tc
	ss.tlsConn = tc
	return nil
}

// login checks a HandshakeResponse41, switching the client to
// mysql_native_password when it answered another plugin.
func (ss *session) login(h *handshakeResponse) error {
	if !ss.w.tls && !ss.srv.AllowPlaintextLogin {
		ss.sendErr(ErSecureTransportRequired, "HY000", errInsecureTransportMessage)
		return fmt.Errorf("%w: login without TLS", errLoginDone)
	}
	auth := h.AuthResponse
	if h.Capabilities&ClientPluginAuth != 0 && h.AuthPlugin != PluginNativePassword {
		sw := append([]byte{0xfe}, PluginNativePassword...)
		sw = append(sw, 0)
		sw = append(sw, ss.scramble...)
		sw = append(sw, 0)
		if err := ss.w.writePacket(sw, "AuthSwitchRequest mysql_native_password"); err != nil {
			return err
		}
		p, err := ss.readHandshakePacket()
		if err != nil {
			return err
		}
		auth = p
	}
	if h.User != "" && len(auth) > 0 && ss.srv.OnCredentials != nil {
		// Not the password: its mysql_native_password scramble, which
		// anyone who saw the nonce can attack offline.
		ss.srv.SawCredentials("mysql_native_password scramble", h.User, fmt.Sprintf("%x", auth), ss.w.tls)
	}
	ok := false
	if ss.srv.Backend != nil && h.User != "" {
		if pw, err := ss.srv.Backend.Password(ss.ctx, h.User); err == nil {
			ok = checkNative(ss.scramble, pw, auth)
		}
	}
	if !ok {
		using := "NO"
		if len(auth) > 0 {
			using = "YES"
		}
		host, _, _ := net.SplitHostPort(ss.raw.RemoteAddr().String())
		ss.sendErr(ErAccessDenied, "28000", fmt.Sprintf("Access denied for user '%s'@'%s' (using password: %s)", starttls.Escape(h.User), host, using))
		return fmt.Errorf("%w: bad credentials for %q", errLoginDone, h.User)
	}
	return ss.w.writePacket(marshalOK(statusAutocommit), "OK")
}

// Commands ("Text Protocol").
const (
	comQuit   = 0x01
	comInitDB = 0x02
	comQuery  = 0x03
	comPing   = 0x0e
)

func (ss *session) commands() error {
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.deadline()
			ss.w.seq = 1
			ss.sendErr(ErServerShutdown, "08S01", "Server shutdown in progress")
			return err
		}
		ss.deadline()
		ss.w.seq = 0
		p, err := ss.w.readPacket(maxCommandPacket)
		ss.deadline()
		if err != nil {
			if errors.Is(err, starttls.ErrLineTooLong) {
				ss.w.seq = 1
				ss.sendErr(ErNetPacketTooLarge, "08S01", "Got a packet bigger than 'max_allowed_packet' bytes")
			}
			return err
		}
		if len(p) == 0 {
			if err := ss.bad(ErUnknownCom, "08S01", "Unknown command"); err != nil {
				return err
			}
			continue
		}
		switch p[0] {
		case comQuit:
			return errQuit
		case comPing, comInitDB:
			err = ss.w.writePacket(marshalOK(statusAutocommit), "OK")
		case comQuery:
			err = ss.query(string(p[1:]))
		default:
			err = ss.bad(ErUnknownCom, "08S01", "Unknown command")
		}
		if err != nil {
			return err
		}
	}
}

// query answers the few statements the lab knows.
func (ss *session) query(q string) error {
	norm := strings.ToLower(strings.Join(strings.Fields(strings.TrimRight(strings.TrimSpace(q), "; \t\r\n")), " "))
	switch norm {
	case "select 1":
		return ss.resultSet([]string{"1"}, [][]string{{"1"}})
	case "select version()":
		return ss.resultSet([]string{"VERSION()"}, [][]string{{ss.srv.version()}})
	case "select @@version_comment", "select @@version_comment limit 1":
		return ss.resultSet([]string{"@@version_comment"}, [][]string{{"starttls lab"}})
	case "show status like 'ssl_cipher'", "show session status like 'ssl_cipher'":
		cipher := ""
		if ss.tlsConn != nil {
			cipher = tls.CipherSuiteName(ss.tlsConn.ConnectionState().CipherSuite)
		}
		return ss.resultSet([]string{"Variable_name", "Value"}, [][]string{{"Ssl_cipher", cipher}})
	}
	return ss.bad(ErSyntax, "42000", "You have an error in your SQL syntax; the starttls lab answers only SELECT 1, SELECT VERSION() and SHOW STATUS LIKE 'Ssl_cipher'")
}

// resultSet sends a text result set with EOF packets, in one write.
func (ss *session) resultSet(cols []string, rows [][]string) error {
	ps := [][]byte{appendLenenc(nil, uint64(len(cols)))}
	shown := []string{fmt.Sprintf("result set, %d columns", len(cols))}
	for _, c := range cols {
		ps = append(ps, marshalColumn(c))
		shown = append(shown, "column "+c)
	}
	ps = append(ps, marshalEOF(statusAutocommit))
	shown = append(shown, "EOF")
	for _, r := range rows {
		var b []byte
		for _, v := range r {
			b = appendLenencString(b, v)
		}
		ps = append(ps, b)
		shown = append(shown, "row")
	}
	ps = append(ps, marshalEOF(statusAutocommit))
	shown = append(shown, "EOF")
	return ss.w.writePackets(ps, shown)
}
