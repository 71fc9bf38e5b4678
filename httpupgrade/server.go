package httpupgrade

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/serve"
	"github.com/starttls/starttls/internal/textline"
)

// Backend checks the credentials of the server's protected page.
type Backend interface {
	// Login checks a user's password; a non-nil error refuses it (the
	// client sees 401, never the error text).
	Login(ctx context.Context, username, password string) error
}

// Server is a tiny HTTP/1.1 site with the RFC 2817 upgrade to TLS, or
// HTTPS with Implicit. The zero value serves plaintext and refuses every
// login; set TLSConfig to offer the upgrade. A Server must not be copied
// after first use.
type Server struct {
	starttls.ServerOptions
	// Backend checks the Basic credentials for /private. nil refuses
	// every login.
	Backend Backend

	sessions serve.Sessions
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("http: panic serving connection", s.Log, nil)
}

// Serve accepts connections on l and serves each in its own goroutine
// until l fails or Close or Shutdown is called; it then returns a non-nil
// error.
func (s *Server) Serve(l net.Listener) error { return s.init().Serve(l, s.runSession) }

// ServeConn serves one connection until the client or the server closes it
// and closes it. It returns nil after a clean end ("Connection: close" or
// the client closing between requests), else the reason.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	return s.init().ServeConn(ctx, conn, s.runSession)
}

// runSession runs a whole session on conn.
func (s *Server) runSession(ctx context.Context, conn net.Conn) error {
	return s.newSession(ctx, conn).run()
}

// Handshake serves the plaintext requests (426, 503, OPTIONS) until one
// asks for the upgrade, sends 101, completes the TLS handshake and returns
// the *tls.Conn. The answer to the upgrade request, which RFC 2817 §3.3
// says the server sends over TLS, is still owed: the caller (a proxy
// relaying to a backend) sends it. Requests pipelined after the upgrade
// request always close the connection here. With Implicit the handshake is
// done at once. On error conn is closed.
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
	errDone       = errors.New("http: connection done")
	errHandedOver = errors.New("http: connection handed over after the upgrade")
)

// session is one client connection.
type session struct {
	srv           *Server
	ctx           context.Context
	sniff         *textline.Sniffer
	tc            *textline.Conn
	tls           bool
	requests      int
	errors        int
	handshakeOnly bool
	upgraded      *tls.Conn // the TLS connection just established
	tlsConn       *tls.Conn // the TLS connection in use, closed at the end
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	sn := &textline.Sniffer{Conn: conn}
	return &session{srv: s, ctx: ctx, sniff: sn, tc: textline.New(sn, s.lineOptions())}
}

func (s *Server) lineOptions() textline.Options {
	return textline.Options{
		Proto:      "http",
		Local:      starttls.FromServer,
		MaxLine:    s.LineLimit(),
		StrictCRLF: true,
	}
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("http: "+msg, "remote", ss.sniff.RemoteAddr().String(), "err", err)
}

func (ss *session) deadline() {
	ss.sniff.SetDeadline(time.Now().Add(ss.srv.CommandTimeout()))
}

// request is a parsed request head.
type request struct {
	method, target, version string
	h                       headers
}

// answer is one response.
type answer struct {
	code    int
	reason  string
	headers []string
	body    string
	close   bool
}

// write sends a response; the body is left out for HEAD (RFC 9110 §9.3.2)
// but its length is announced.
func (ss *session) write(method string, a answer) error {
	lines := []string{fmt.Sprintf("HTTP/1.1 %d %s", a.code, a.reason), "Server: starttls-lab"}
	lines = append(lines, a.headers...)
	if a.code != 101 {
		lines = append(lines, "Content-Length: "+strconv.Itoa(len(a.body)))
		if a.body != "" {
			lines = append(lines, "Content-Type: text/plain; charset=utf-8")
		}
	}
	if a.close {
		lines = append(lines, "Connection: close")
	}
	lines = append(lines, "")
	if err := ss.tc.WriteLines(lines...); err != nil {
		return err
	}
	if method != "HEAD" && a.body != "" {
		if err := ss.tc.WriteRaw([]byte(a.body)); err != nil {
			return err
		}
	}
	if a.close {
		return errDone
	}
	return nil
}

// fail answers a malformed request and ends the connection: after a
// framing error the next request cannot be found reliably.
func (ss *session) fail(code int, reason, text string, cause error) error {
	ss.write("GET", answer{code: code, reason: reason, body: text + "\n", close: true})
	return cause
}

// run serves the connection until it ends.
func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("http: panic serving connection", "remote", ss.sniff.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.sniff.SetDeadline(time.Now().Add(time.Second))
			ss.write("GET", answer{code: 500, reason: "Internal Server Error", body: "internal server error\n", close: true})
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
	case errors.Is(err, errDone), errors.Is(err, errHandedOver):
		return nil
	case err != nil:
		ss.debug("connection ended", err)
	}
	return err
}

func (ss *session) serve() error {
	ss.deadline()
	if ss.srv.Implicit {
		if ss.srv.TLSConfig == nil {
			return errorf("implicit TLS without TLSConfig")
		}
		if err := ss.handshake(); err != nil {
			return err
		}
		if ss.handshakeOnly {
			return errHandedOver
		}
		ss.tc.Upgrade(ss.upgraded)
		ss.upgraded = nil
	}
	for {
		if err := ss.ctx.Err(); err != nil {
			return err
		}
		ss.deadline()
		req, err := ss.readRequest()
		if err != nil {
			return err
		}
		ss.deadline()
		ss.requests++
		if err := ss.dispatch(req); err != nil {
			return err
		}
	}
}

// readRequest reads a request head and its body (RFC 9112 §2–6), which is
// read whole and dropped. Errors are answered here.
func (ss *session) readRequest() (request, error) {
	var line string
	var err error
	// RFC 9112 §2.2: empty lines before the request line are ignored.
	for i := 0; i < 4; i++ {
		if line, err = ss.tc.ReadLine(); err != nil || line != "" {
			break
		}
	}
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
			return request{}, ss.fail(400, "Bad Request", "TLS received on the plaintext HTTP port: use the RFC 2817 upgrade, or https", err)
		case errors.Is(err, starttls.ErrLineTooLong):
			return request{}, ss.fail(414, "URI Too Long", "request line too long", err)
		case errors.Is(err, starttls.ErrProtocol):
			return request{}, ss.fail(400, "Bad Request", "malformed request line (CRLF required, no NUL)", err)
		case textline.IsClosed(err) && ss.requests > 0:
			return request{}, errDone // the client closed between requests
		case errors.As(err, &ne) && ne.Timeout() && ss.requests > 0:
			return request{}, errDone // idle keep-alive connection
		}
		return request{}, err
	}
	if textline.LooksLikeTLS(line) {
		return request{}, ss.fail(400, "Bad Request", "TLS received on the plaintext HTTP port", textline.ErrClientHello)
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || !isToken(parts[0]) || parts[1] == "" {
		return request{}, ss.fail(400, "Bad Request", "malformed request line", starttls.ProtocolError("http", "request line %q", starttls.Escape(line)))
	}
	req := request{method: parts[0], target: parts[1], version: parts[2]}
	if req.version != "HTTP/1.1" && req.version != "HTTP/1.0" {
		return req, ss.fail(505, "HTTP Version Not Supported", "HTTP/1.1 only", starttls.ProtocolError("http", "version %q", starttls.Escape(req.version)))
	}
	req.h, err = readHeaders(ss.tc, "http", MaxHeaders)
	if err != nil {
		switch {
		case errors.Is(err, starttls.ErrLineTooLong):
			return req, ss.fail(431, "Request Header Fields Too Large", "header line too long", err)
		case errors.Is(err, starttls.ErrProtocol):
			return req, ss.fail(400, "Bad Request", "malformed header: "+err.Error(), err)
		}
		return req, err
	}
	hosts := 0
	for _, f := range req.h {
		if f.name == "Host" {
			hosts++
		}
	}
	if req.version == "HTTP/1.1" && hosts != 1 {
		// RFC 9112 §3.2: exactly one Host header.
		return req, ss.fail(400, "Bad Request", "exactly one Host header required", starttls.ProtocolError("http", "no Host header or several"))
	}
	n, chunked, err := bodyLength(req.h)
	switch {
	case err != nil && req.h.has("Transfer-Encoding"):
		return req, ss.fail(501, "Not Implemented", "Transfer-Encoding not supported", err)
	case err != nil:
		return req, ss.fail(400, "Bad Request", err.Error(), err)
	case chunked:
		return req, ss.fail(501, "Not Implemented", "chunked request bodies not supported", starttls.ProtocolError("http", "chunked request body"))
	case n > MaxBody:
		return req, ss.fail(413, "Content Too Large", "request body too large", starttls.ProtocolError("http", "request body of %d bytes", n))
	case n > 0:
		if _, err := ss.tc.ReadFull(int(n)); err != nil {
			return req, err
		}
	}
	return req, nil
}

// canUpgrade reports whether the upgrade is offered now.
func (ss *session) canUpgrade() bool {
	return ss.srv.TLSConfig != nil && !ss.srv.Implicit && !ss.tls
}

// dispatch answers one request.
func (ss *session) dispatch(req request) error {
	// RFC 2817 §3.2: the upgrade needs both headers, "Connection: Upgrade"
	// so that proxies do not forward it. Over TLS the header is ignored,
	// which refuses a second upgrade.
	if req.h.offersTLS() && req.h.hasToken("Connection", "upgrade") && ss.canUpgrade() {
		if ss.srv.RefuseUpgrade && ss.srv.RefusePermanently {
			return ss.write(req.method, answer{code: 501, reason: "Not Implemented",
				body: "TLS upgrade not supported\n"})
		}
		if ss.srv.RefuseUpgrade {
			return ss.write(req.method, answer{code: 503, reason: "Service Unavailable",
				headers: []string{"Retry-After: 60", "Upgrade: " + upgradeToken},
				body:    "TLS is not available at the moment, try again later\n"})
		}
		if err := ss.upgrade(); err != nil {
			return err
		}
		// RFC 2817 §3.3: now answer the original request, over TLS.
	}
	return ss.respond(req)
}

// upgrade sends 101 and runs the handshake (RFC 2817 §3.3).
func (ss *session) upgrade() error {
	// Anything already received was pipelined after the upgrade request
	// in plaintext (CVE-2011-0411 class, SV-26): never serve it inside TLS.
	pipelined := ss.tc.Buffered()
	if ss.sniff.SawClientHello() {
		pipelined++
	}
	if err := ss.tc.WriteLinesThen(ss.srv.Forged("Upgrade: "+upgradeToken), "HTTP/1.1 101 Switching Protocols", "Upgrade: "+upgradeToken+", HTTP/1.1", "Connection: Upgrade", ""); err != nil {
		return err
	}
	var kept []byte
	if pipelined > 0 {
		if !ss.srv.InsecureKeepPipelined || ss.handshakeOnly {
			return errorf("%d bytes pipelined after the upgrade request, closing the connection: %w", pipelined, starttls.ErrPlaintextAfterUpgrade)
		}
		kept = ss.tc.TakeBuffered()
	}
	if err := ss.handshake(); err != nil {
		return err
	}
	if ss.handshakeOnly {
		return errHandedOver
	}
	tc := ss.upgraded
	ss.upgraded = nil
	if kept != nil {
		ss.tc = textline.New(textline.KeepPlaintext(tc, kept), ss.srv.lineOptions())
	} else {
		ss.tc.Upgrade(tc)
	}
	return nil
}

// handshake runs the server TLS handshake.
func (ss *session) handshake() error {
	ss.sniff.Stop()
	tc := tls.Server(ss.sniff, ss.srv.TLSConfig)
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

const allowed = "GET, HEAD, OPTIONS"

// respond answers a request once any upgrade is done.
func (ss *session) respond(req request) error {
	a := ss.answer(req)
	if a.code >= 400 && a.code != 426 {
		ss.errors++
		if ss.errors >= ss.srv.ErrorLimit() {
			a.close = true
		}
	}
	if req.version == "HTTP/1.0" || req.h.hasToken("Connection", "close") || ss.requests >= MaxRequests {
		a.close = true
	}
	return ss.write(req.method, a)
}

func (ss *session) answer(req request) answer {
	challenge := `WWW-Authenticate: Basic realm="starttls lab", charset="UTF-8"`
	switch req.method {
	case "OPTIONS":
		hs := []string{"Allow: " + allowed}
		if ss.canUpgrade() {
			hs = append(hs, "Upgrade: "+upgradeToken)
		}
		return answer{code: 200, reason: "OK", headers: hs}
	case "GET", "HEAD":
	default:
		return answer{code: 405, reason: "Method Not Allowed", headers: []string{"Allow: " + allowed}, body: "method not allowed\n"}
	}
	loginOK := ss.tls || ss.srv.AllowPlaintextLogin
	if ss.canUpgrade() && !ss.srv.AllowPlaintextLogin {
		// RFC 2817 §4.2: the mandatory upgrade.
		return answer{code: 426, reason: "Upgrade Required",
			headers: []string{"Upgrade: " + upgradeToken + ", HTTP/1.1", "Connection: Upgrade"},
			body:    "this site is served over TLS only: upgrade with \"Upgrade: TLS/1.0\" (RFC 2817)\n"}
	}
	user := ""
	if auth := req.h.get("Authorization"); auth != "" {
		if !loginOK {
			return answer{code: 403, reason: "Forbidden", body: "credentials refused without TLS\n"}
		}
		u, err := ss.checkBasic(auth)
		if err != nil {
			return answer{code: 401, reason: "Unauthorized", headers: []string{challenge}, body: "invalid user name or password\n"}
		}
		user = u
	}
	path, _, _ := strings.Cut(req.target, "?")
	switch path {
	case "/":
		where := "in plaintext"
		if ss.tls {
			where = "over TLS"
		}
		return answer{code: 200, reason: "OK", body: "starttls lab: this page was served " + where + "\n"}
	case "/private":
		switch {
		case user != "":
			return answer{code: 200, reason: "OK", body: "Welcome " + user + "\n"}
		case !loginOK:
			return answer{code: 403, reason: "Forbidden", body: "login requires TLS\n"}
		}
		return answer{code: 401, reason: "Unauthorized", headers: []string{challenge}, body: "login required\n"}
	}
	return answer{code: 404, reason: "Not Found", body: "not found\n"}
}

// checkBasic checks "Basic base64(user:password)" (RFC 7617 §2).
func (ss *session) checkBasic(auth string) (string, error) {
	scheme, cred, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", errorf("unsupported scheme %q", scheme)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", err
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if ok && user != "" {
		ss.srv.SawCredentials("HTTP Basic", user, pass, ss.tls)
	}
	if !ok || user == "" || ss.srv.Backend == nil {
		return "", errorf("malformed credentials")
	}
	if err := ss.srv.Backend.Login(ss.ctx, user, pass); err != nil {
		ss.debug("login failed for "+strconv.Quote(user), err)
		return "", err
	}
	return user, nil
}
