package xmpp

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/serve"
	"github.com/starttls/starttls/internal/textline"
)

// Backend checks the passwords of a Server's users.
type Backend interface {
	// Login checks a user's password; a non-nil error refuses the login
	// (the client sees <not-authorized/>, never the error text).
	Login(ctx context.Context, username, password string) error
}

// Server is an XMPP server (RFC 6120) for client-to-server streams, or
// server-to-server ones with ServerToServer: STARTTLS (§5), SASL PLAIN
// (§6), resource binding (§7) and XEP-0199 ping. The zero value with a
// Backend serves plaintext and refuses every login; set TLSConfig to offer
// STARTTLS. A Server must not be copied after first use.
type Server struct {
	starttls.ServerOptions
	// Backend authenticates users. nil refuses every login.
	Backend Backend
	// ServerToServer makes the server speak jabber:server (RFC 6120
	// §4.8.2): STARTTLS only, empty features over TLS, no login.
	ServerToServer bool
	// Domains are the names accepted in the client's stream 'to'; others
	// get the host-unknown stream error (RFC 6120 §4.9.3.6). Empty
	// accepts any name.
	Domains []string

	sessions serve.Sessions
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("xmpp: panic serving connection", s.Log, nil)
}

// Serve accepts connections on l and serves each in its own goroutine
// until l fails or Close or Shutdown is called; it then returns a non-nil
// error.
func (s *Server) Serve(l net.Listener) error { return s.init().Serve(l, s.runSession) }

// ServeConn serves one connection for a whole session and closes it. It
// returns nil when the client closed the stream, else the reason the
// session ended.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	return s.init().ServeConn(ctx, conn, s.runSession)
}

// runSession runs a whole session on conn.
func (s *Server) runSession(ctx context.Context, conn net.Conn) error {
	return s.newSession(ctx, conn).run()
}

// Handshake serves the plaintext part of a stream (header, features,
// refusals) until the client sends <starttls/>, then completes the TLS
// handshake and returns the *tls.Conn; the client opens a new stream over
// it next. Bytes pipelined after <starttls/> always close the connection
// here, InsecureKeepPipelined or not. With Implicit the handshake is done
// at once. On error conn is closed.
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
		err = errorf("client ended the stream before the upgrade")
	}
	return nil, err
}

// Close closes the listeners and all connections immediately.
func (s *Server) Close() error { return s.sessions.Close() }

// Shutdown closes the listeners and waits for the sessions to end until ctx
// is done, when it closes them.
func (s *Server) Shutdown(ctx context.Context) error { return s.sessions.Shutdown(ctx) }

func (s *Server) limit() int {
	if s.MaxLineLength > 0 {
		return s.MaxLineLength
	}
	return MaxStanzaSize
}

func (s *Server) ns() string {
	if s.ServerToServer {
		return NSServer
	}
	return NSClient
}

var (
	errClosed     = errors.New("xmpp: stream closed")
	errHandedOver = errors.New("xmpp: connection handed over after the upgrade")
)

type session struct {
	srv           *Server
	ctx           context.Context
	sniff         *textline.Sniffer
	conn          net.Conn // the connection in use: sniff or the *tls.Conn
	br            *bufio.Reader
	st            *stream
	tls           bool
	user          string // the authenticated user
	jid           string // the bound address
	opened        bool   // our stream header was sent
	errors        int
	handshakeOnly bool
	upgraded      *tls.Conn
	tlsConn       *tls.Conn
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	sn := &textline.Sniffer{Conn: conn}
	ss := &session{srv: s, ctx: ctx, sniff: sn}
	ss.reset(sn, nil)
	return ss
}

// reset reads from conn (with kept bytes first) through a new buffer.
func (ss *session) reset(conn net.Conn, kept []byte) {
	ss.conn = conn
	var r io.Reader = conn
	if len(kept) > 0 {
		r = io.MultiReader(strings.NewReader(string(kept)), conn)
	}
	ss.br = bufio.NewReaderSize(r, 4096)
	ss.restart()
}

func (ss *session) restart() {
	ss.st = newStream(ss.br, ss.srv.limit(), nil, starttls.FromClient, ss.tls)
	ss.opened = false
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("xmpp: "+msg, "remote", ss.sniff.RemoteAddr().String(), "err", err)
}

func (ss *session) deadline() {
	ss.sniff.SetDeadline(time.Now().Add(ss.srv.CommandTimeout()))
}

func (ss *session) send(s string) error {
	if _, err := io.WriteString(ss.conn, s); err != nil {
		return wrapIO(err)
	}
	return nil
}

// header is the answering stream header (RFC 6120 §4.7) with a new id.
func (ss *session) header() string {
	var id [12]byte
	rand.Read(id[:])
	return "<?xml version='1.0'?><stream:stream xmlns='" + ss.srv.ns() + "' xmlns:stream='" + NSStreams +
		"' id='" + hex.EncodeToString(id[:]) + "' from='" + esc(ss.srv.Name()) + "' version='1.0' xml:lang='en'>"
}

// streamErr sends a stream error and closes the stream (RFC 6120 §4.9.1);
// it opens our stream first if needed (§4.9.1.2).
func (ss *session) streamErr(cond, text string, err error) error {
	var b strings.Builder
	if !ss.opened {
		b.WriteString(ss.header())
	}
	b.WriteString("<stream:error><" + cond + " xmlns='" + NSStreamErr + "'/>")
	if text != "" {
		b.WriteString("<text xmlns='" + NSStreamErr + "'>" + esc(text) + "</text>")
	}
	b.WriteString("</stream:error></stream:stream>")
	ss.send(b.String())
	if err == nil {
		err = errorf("stream error %s: %s", cond, text)
	}
	return err
}

// bad counts a protocol error; past the limit it ends the stream.
func (ss *session) bad() error {
	ss.errors++
	if ss.errors >= ss.srv.ErrorLimit() {
		return ss.streamErr("policy-violation", "too many errors", nil)
	}
	return nil
}

// run serves the session until the client closes the stream, an error, or
// the hand-over after STARTTLS in handshakeOnly mode.
func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("xmpp: panic serving connection", "remote", ss.sniff.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.sniff.SetDeadline(time.Now().Add(time.Second))
			ss.streamErr("internal-server-error", "", nil)
			err = errorf("panic: %v", v)
		}
	}()
	stop := context.AfterFunc(ss.ctx, func() { ss.sniff.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err = ss.serve()
	if ss.tlsConn != nil && !errors.Is(err, errHandedOver) {
		ss.tlsConn.Close()
	}
	switch {
	case errors.Is(err, errClosed), errors.Is(err, errHandedOver):
		return nil
	case err != nil:
		ss.debug("session ended", err)
	}
	return err
}

// readErr answers a read error with the matching stream error.
func (ss *session) readErr(err error) error {
	var ne net.Error
	var pe *parseError
	switch {
	case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
		return ss.streamErr("not-well-formed", "TLS received on the plaintext XMPP port; use STARTTLS, or port 5223 for direct TLS", err)
	case errors.As(err, &pe):
		return ss.streamErr(pe.cond, pe.err.Error(), err)
	case errors.As(err, &ne) && ne.Timeout() && ss.ctx.Err() == nil:
		return ss.streamErr("connection-timeout", "idle timeout", err)
	case ss.ctx.Err() != nil:
		ss.deadline()
		return ss.streamErr("system-shutdown", "server shutting down", err)
	}
	return err
}

func (ss *session) serve() error {
	ss.deadline()
	if ss.srv.Implicit {
		if ss.srv.TLSConfig == nil {
			return errorf("direct TLS without TLSConfig")
		}
		if err := ss.handshake(nil); err != nil {
			return err
		}
		if ss.handshakeOnly {
			return errHandedOver
		}
	}
	for {
		if err := ss.openStream(); err != nil {
			return err
		}
		restart, err := ss.stanzas()
		if err != nil {
			return err
		}
		if !restart {
			return nil
		}
	}
}

// openStream reads the client's header and answers it with ours and the
// features (RFC 6120 §4.3).
func (ss *session) openStream() error {
	ss.deadline()
	h, err := ss.st.header()
	ss.deadline()
	if err != nil {
		return ss.readErr(err)
	}
	if !h.is(NSStreams, "stream") {
		return ss.streamErr("invalid-namespace", "expected <stream:stream xmlns:stream='"+NSStreams+"'>", nil)
	}
	if ns := h.attr("xmlns"); ns != ss.srv.ns() {
		return ss.streamErr("invalid-namespace", "this service speaks "+ss.srv.ns(), nil)
	}
	if v := h.attr("version"); !strings.HasPrefix(v, "1.") {
		return ss.streamErr("unsupported-version", "version 1.0 required", nil)
	}
	to := h.attr("to")
	if len(ss.srv.Domains) > 0 && !slices.ContainsFunc(ss.srv.Domains, func(d string) bool { return strings.EqualFold(d, to) }) {
		return ss.streamErr("host-unknown", "this server does not serve "+clip(to, 100), nil)
	}
	if err := ss.send(ss.header() + ss.features()); err != nil {
		return err
	}
	ss.opened = true
	return nil
}

func (ss *session) offersTLS() bool {
	return ss.srv.TLSConfig != nil && !ss.srv.Implicit && !ss.tls
}

func (ss *session) loginAllowed() bool {
	return !ss.srv.ServerToServer && ss.user == "" && (ss.tls || ss.srv.AllowPlaintextLogin)
}

// features renders <stream:features> for the current state.
func (ss *session) features() string {
	var b strings.Builder
	b.WriteString("<stream:features>")
	if ss.offersTLS() {
		b.WriteString("<starttls xmlns='" + NSTLS + "'>")
		// RFC 6120 §5.3.1: mandatory unless plaintext login is allowed
		// (Prosody's c2s_require_encryption).
		if !ss.srv.AllowPlaintextLogin || ss.srv.ServerToServer {
			b.WriteString("<required/>")
		}
		b.WriteString("</starttls>")
	}
	if ss.loginAllowed() {
		b.WriteString("<mechanisms xmlns='" + NSSASL + "'><mechanism>PLAIN</mechanism></mechanisms>")
	}
	if ss.user != "" && ss.jid == "" {
		b.WriteString("<bind xmlns='" + NSBind + "'/>")
	}
	b.WriteString("</stream:features>")
	return b.String()
}

// stanzas serves top-level elements until the stream ends; restart is true
// when a new stream follows (after TLS or SASL).
func (ss *session) stanzas() (restart bool, err error) {
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.deadline()
			return false, ss.streamErr("system-shutdown", "server shutting down", err)
		}
		ss.deadline()
		el, err := ss.st.next()
		ss.deadline()
		if errors.Is(err, errStreamClosed) {
			ss.send("</stream:stream>")
			if ss.handshakeOnly {
				return false, errorf("client closed the stream before the upgrade")
			}
			return false, errClosed
		}
		if err != nil {
			return false, ss.readErr(err)
		}
		switch {
		case el.is(NSTLS, "starttls"):
			return ss.startTLS()
		case el.is(NSSASL, "auth"):
			restart, err := ss.auth(el)
			if err != nil || restart {
				return restart, err
			}
		case el.Name.Space == ss.srv.ns() && (el.Name.Local == "iq" || el.Name.Local == "message" || el.Name.Local == "presence"):
			if ss.user != "" && ss.jid == "" && el.Name.Local == "iq" {
				if err := ss.bind(el); err != nil {
					return false, err
				}
				continue
			}
			if ss.jid == "" {
				return false, ss.streamErr("not-authorized", "authenticate and bind a resource first", nil)
			}
			if err := ss.stanza(el); err != nil {
				return false, err
			}
		case el.is(NSStreams, "error"):
			return false, errorf("client sent a stream error: %w", streamError(el))
		default:
			return false, ss.streamErr("unsupported-stanza-type", "unexpected <"+clip(el.Name.Local, 40)+">", nil)
		}
	}
}

// startTLS answers <starttls/> (RFC 6120 §5.4.2) and runs the handshake.
func (ss *session) startTLS() (bool, error) {
	if !ss.offersTLS() {
		ss.send("<failure xmlns='" + NSTLS + "'/></stream:stream>")
		return false, errorf("STARTTLS not available")
	}
	if ss.srv.RefuseUpgrade {
		// RFC 6120 §5.4.2.2: <failure/>, then the stream is closed.
		ss.send("<failure xmlns='" + NSTLS + "'/></stream:stream>")
		return false, errorf("STARTTLS refused (RefuseUpgrade)")
	}
	// Anything already received was pipelined after <starttls/> in
	// plaintext (CVE-2011-0411): never process it inside TLS.
	pipelined := ss.br.Buffered()
	if ss.sniff.SawClientHello() {
		pipelined++
	}
	if err := ss.send("<proceed xmlns='" + NSTLS + "'/>"); err != nil {
		return false, err
	}
	var kept []byte
	if pipelined > 0 {
		if !ss.srv.InsecureKeepPipelined || ss.handshakeOnly {
			return false, errorf("%d bytes pipelined after <starttls/>, closing the connection: %w", pipelined, starttls.ErrPlaintextAfterUpgrade)
		}
		kept = make([]byte, ss.br.Buffered())
		io.ReadFull(ss.br, kept)
	}
	if err := ss.handshake(kept); err != nil {
		return false, err
	}
	if ss.handshakeOnly {
		return false, errHandedOver
	}
	return true, nil
}

// handshake runs the server TLS handshake and starts afresh (RFC 6120
// §5.4.3.3: nothing from the plaintext stream is kept). kept are bytes
// read before TLS to be served as if they came over it (the lab's
// InsecureKeepPipelined).
func (ss *session) handshake(kept []byte) error {
	ss.sniff.Stop()
	cfg := ss.srv.TLSConfig
	if ss.srv.Implicit && len(cfg.NextProtos) == 0 {
		// XEP-0368: the ALPN protocol, when the client names it.
		cfg = cfg.Clone()
		cfg.NextProtos = []string{ALPNClient, ALPNServer}
	}
	tc := tls.Server(ss.sniff, cfg)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.CommandTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return &starttls.HandshakeError{Err: err}
	}
	ss.tls = true
	ss.user, ss.jid = "", ""
	ss.upgraded = tc
	ss.tlsConn = tc
	ss.reset(tc, kept)
	return nil
}

// auth runs SASL PLAIN (RFC 6120 §6.4, RFC 4616).
func (ss *session) auth(el *element) (bool, error) {
	fail := func(cond string) (bool, error) {
		if err := ss.send("<failure xmlns='" + NSSASL + "'><" + cond + "/></failure>"); err != nil {
			return false, err
		}
		return false, ss.bad()
	}
	if !ss.loginAllowed() {
		if ss.user != "" || ss.srv.ServerToServer {
			return false, ss.streamErr("policy-violation", "authentication not available", nil)
		}
		// RFC 6120 §6.4.2, §6.5.4: TLS first.
		return fail("encryption-required")
	}
	if el.attr("mechanism") != "PLAIN" {
		return fail("invalid-mechanism")
	}
	data := strings.TrimSpace(el.Text)
	if data == "" {
		// No initial response: an empty challenge (RFC 6120 §6.4.3).
		if err := ss.send("<challenge xmlns='" + NSSASL + "'/>"); err != nil {
			return false, err
		}
		resp, err := ss.st.next()
		if err != nil {
			return false, ss.readErr(err)
		}
		if resp.is(NSSASL, "abort") {
			return fail("aborted")
		}
		if !resp.is(NSSASL, "response") {
			return false, ss.streamErr("not-authorized", "expected <response/>", nil)
		}
		data = strings.TrimSpace(resp.Text)
	}
	if data == "=" { // RFC 6120 §6.4.2: an empty response
		data = ""
	}
	authz, user, pass, err := decodePlain(data)
	if err != nil {
		return fail("malformed-request")
	}
	ss.srv.SawCredentials("SASL PLAIN", user, pass, ss.tls)
	if authz != "" && authz != user && !strings.HasPrefix(authz, user+"@") {
		return fail("invalid-authzid")
	}
	if ss.srv.Backend == nil {
		return fail("not-authorized")
	}
	if err := ss.srv.Backend.Login(ss.ctx, user, pass); err != nil {
		ss.debug("login failed for "+strconv.Quote(user), err)
		return fail("not-authorized")
	}
	ss.user = user
	if err := ss.send("<success xmlns='" + NSSASL + "'/>"); err != nil {
		return false, err
	}
	// RFC 6120 §6.4.6: the client opens a new stream.
	ss.restart()
	return true, nil
}

// decodePlain decodes a SASL PLAIN message (RFC 4616 §2).
func decodePlain(s string) (authz, user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", "", err
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return "", "", "", errors.New("xmpp: malformed PLAIN message")
	}
	return parts[0], parts[1], parts[2], nil
}

// stanza answers a stanza of a bound (or binding) session.
func (ss *session) stanza(el *element) error {
	if el.Name.Local != "iq" {
		return nil // messages and presence go nowhere
	}
	id, typ := el.attr("id"), el.attr("type")
	if typ != "get" && typ != "set" {
		return nil
	}
	var payload *element
	if len(el.Children) > 0 {
		payload = el.Children[0]
	}
	switch {
	case payload.is(NSPing, "ping") && typ == "get":
		return ss.send("<iq type='result' id='" + esc(id) + "' from='" + esc(ss.srv.Name()) + "'/>")
	case payload.is(NSSession, "session") && typ == "set":
		return ss.send("<iq type='result' id='" + esc(id) + "'/>")
	}
	return ss.send("<iq type='error' id='" + esc(id) + "'><error type='cancel'><service-unavailable xmlns='" + NSStanzaErr + "'/></error></iq>")
}

// bind answers resource binding (RFC 6120 §7); it is the only stanza
// allowed between authentication and binding.
func (ss *session) bind(el *element) error {
	id := el.attr("id")
	b := el.child(NSBind, "bind")
	if el.attr("type") != "set" || b == nil {
		return ss.streamErr("not-authorized", "bind a resource first", nil)
	}
	res := strings.TrimSpace(b.child(NSBind, "resource").textOr(""))
	if res == "" || len(res) > 1023 || strings.ContainsAny(res, "/@\x00") {
		var r [6]byte
		rand.Read(r[:])
		res = "r" + hex.EncodeToString(r[:])
	}
	ss.jid = fmt.Sprintf("%s@%s/%s", ss.user, ss.srv.Name(), res)
	return ss.send("<iq type='result' id='" + esc(id) + "'><bind xmlns='" + NSBind + "'><jid>" + esc(ss.jid) + "</jid></bind></iq>")
}

func (e *element) textOr(def string) string {
	if e == nil {
		return def
	}
	return e.Text
}
