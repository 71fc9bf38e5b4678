package sieve

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/serve"
	"github.com/starttls/starttls/internal/textline"
)

// Server limits of the in-memory script store.
const (
	// MaxScripts bounds the scripts of one user.
	MaxScripts = 32
	// MaxUserBytes bounds the total size of one user's scripts.
	MaxUserBytes = 4 << 20
	// maxNameLen bounds a script name (RFC 5804 §1.6 leaves it to the
	// server).
	maxNameLen = 128
)

// DefaultExtensions is the SIEVE capability of a Server without
// Extensions.
const DefaultExtensions = "fileinto reject envelope vacation"

// Backend authenticates the users of a Server.
type Backend interface {
	// Login checks a user's password; a non-nil error refuses the login
	// (the client sees NO, never the error text).
	Login(ctx context.Context, username, password string) error
}

// Server is a ManageSieve server (RFC 5804) with STARTTLS and AUTHENTICATE
// PLAIN, keeping each user's scripts in memory for the Server's lifetime,
// bounded by MaxScripts, MaxUserBytes and MaxScriptSize. Scripts are
// stored as sent: CHECKSCRIPT and PUTSCRIPT check only that a script is
// UTF-8 without NUL, not the Sieve language. A Server must not be copied
// after first use.
type Server struct {
	starttls.ServerOptions
	// Backend authenticates users. nil refuses every login.
	Backend Backend
	// Extensions is the value of the SIEVE capability; empty means
	// DefaultExtensions.
	Extensions string

	sessions serve.Sessions
	mu       sync.Mutex
	user     map[string]*userScripts
}

// userScripts is one user's store.
type userScripts struct {
	scripts map[string][]byte
	active  string
	size    int
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("sieve: panic serving connection", s.Log, func() {
		s.user = map[string]*userScripts{}
	})
}

// Serve accepts connections on l and serves each in its own goroutine
// until l fails or Close or Shutdown is called; it then returns a non-nil
// error.
func (s *Server) Serve(l net.Listener) error { return s.init().Serve(l, s.runSession) }

// ServeConn serves one connection for a whole session and closes it. It
// returns nil after LOGOUT, else the reason the session ended.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	return s.init().ServeConn(ctx, conn, s.runSession)
}

// runSession runs a whole session on conn.
func (s *Server) runSession(ctx context.Context, conn net.Conn) error {
	return s.newSession(ctx, conn).run()
}

// Handshake serves the plaintext part of a session (the greeting,
// CAPABILITY, refusals) until the client sends STARTTLS, then completes the
// TLS handshake and returns the *tls.Conn. Whoever continues the session
// must first send the capabilities again, unasked (RFC 5804 §2.2).
// Commands pipelined after STARTTLS always close the connection here. With
// Implicit the handshake is done at once. On error conn is closed.
func (s *Server) Handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	s.init()
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

func (s *Server) lineOptions() textline.Options {
	return textline.Options{
		Proto:      "sieve",
		Local:      starttls.FromServer,
		MaxLine:    s.LineLimit(),
		StrictCRLF: true,
	}
}

// store returns user's scripts, creating the store.
func (s *Server) store(user string) *userScripts {
	u := s.user[user]
	if u == nil {
		u = &userScripts{scripts: map[string][]byte{}}
		s.user[user] = u
	}
	return u
}

// Sentinels that end a session.
var (
	errLogout     = errors.New("sieve: client logged out")
	errHandedOver = errors.New("sieve: connection handed over after STARTTLS")
	errTooMany    = errors.New("sieve: too many errors")
)

// handler is one command: whether it needs a login, and its function.
type handler struct {
	auth bool
	fn   func(ss *session, args []token) error
}

var handlers = map[string]handler{
	"CAPABILITY":   {false, (*session).cmdCapability},
	"STARTTLS":     {false, (*session).cmdStartTLS},
	"AUTHENTICATE": {false, (*session).cmdAuthenticate},
	"LOGOUT":       {false, (*session).cmdLogout},
	"NOOP":         {false, (*session).cmdNoop},
	"HAVESPACE":    {true, (*session).cmdHaveSpace},
	"PUTSCRIPT":    {true, (*session).cmdPutScript},
	"CHECKSCRIPT":  {true, (*session).cmdCheckScript},
	"LISTSCRIPTS":  {true, (*session).cmdListScripts},
	"SETACTIVE":    {true, (*session).cmdSetActive},
	"GETSCRIPT":    {true, (*session).cmdGetScript},
	"DELETESCRIPT": {true, (*session).cmdDeleteScript},
	"RENAMESCRIPT": {true, (*session).cmdRenameScript},
}

type session struct {
	srv           *Server
	ctx           context.Context
	sniff         *textline.Sniffer
	tc            *textline.Conn
	tls           bool
	username      string
	errors        int
	handshakeOnly bool
	upgraded      *tls.Conn
	tlsConn       *tls.Conn
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	sn := &textline.Sniffer{Conn: conn}
	return &session{srv: s, ctx: ctx, sniff: sn, tc: textline.New(sn, s.lineOptions())}
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("sieve: "+msg, "remote", ss.sniff.RemoteAddr().String(), "err", err)
}

func (ss *session) deadline() { ss.sniff.SetDeadline(time.Now().Add(ss.srv.CommandTimeout())) }

// respond writes OK, NO or BYE with an optional code and text.
func (ss *session) respond(kind, code, text string) error {
	line := kind
	if code != "" {
		line += " (" + code + ")"
	}
	if text != "" {
		line += " " + mustQuote(text)
	}
	return ss.tc.WriteLine(line)
}

func (ss *session) ok(text string) error { return ss.respond("OK", "", text) }

// no answers NO and counts a protocol error; past the limit it says BYE
// and closes the session.
func (ss *session) no(code, text string) error {
	ss.errors++
	if ss.errors >= ss.srv.ErrorLimit() {
		ss.respond("BYE", "", text+" (too many errors, closing)")
		return errTooMany
	}
	return ss.respond("NO", code, text)
}

func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("sieve: panic serving connection", "remote", ss.sniff.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.sniff.SetDeadline(time.Now().Add(time.Second))
			ss.respond("BYE", CodeTryLater, "internal server error, closing")
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
	case errors.Is(err, errLogout), errors.Is(err, errHandedOver):
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
		if err := ss.handshake(); err != nil {
			return err
		}
		if ss.handshakeOnly {
			return errHandedOver
		}
		ss.tc.Upgrade(ss.upgraded)
		ss.upgraded = nil
	}
	// RFC 5804 §1.7: the greeting is the capability list.
	if err := ss.writeCaps(ss.srv.Name() + " ManageSieve ready"); err != nil {
		return err
	}
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.deadline()
			ss.respond("BYE", CodeTryLater, "server shutting down")
			return err
		}
		ss.deadline()
		// Scripts only after login: before it, a literal is a string.
		maxLit := maxQuoted
		if ss.username != "" {
			maxLit = MaxScriptSize
		}
		toks, err := readTokens(ss.tc, maxLit, nonSyncOnly)
		ss.deadline()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
				ss.respond("BYE", "", "TLS received on the plaintext ManageSieve port; use STARTTLS")
				return err
			case errors.Is(err, starttls.ErrLineTooLong):
				ss.respond("BYE", "", "line too long, closing")
				return err
			case errors.Is(err, starttls.ErrProtocol):
				// A malformed line or literal: the stream cannot be
				// resynchronised safely.
				ss.respond("BYE", "", "malformed command, closing")
				return err
			case errors.As(err, &ne) && ne.Timeout() && ss.ctx.Err() == nil:
				ss.respond("BYE", "", "idle timeout, closing")
				return err
			}
			return err
		}
		if len(toks) == 0 {
			if err := ss.no("", "empty command"); err != nil {
				return err
			}
			continue
		}
		if err := ss.dispatch(toks); err != nil {
			return err
		}
	}
}

func (ss *session) dispatch(toks []token) error {
	if toks[0].kind != tokAtom {
		return ss.no("", "command name expected")
	}
	verb := strings.ToUpper(toks[0].s)
	h, ok := handlers[verb]
	if !ok {
		return ss.no("", "unknown command")
	}
	if h.auth && ss.username == "" {
		return ss.no("", "authenticate first")
	}
	return h.fn(ss, toks[1:])
}

func (ss *session) offersSTARTTLS() bool {
	return ss.srv.TLSConfig != nil && !ss.srv.Implicit && !ss.tls && ss.username == ""
}

func (ss *session) loginAllowed() bool { return ss.tls || ss.srv.AllowPlaintextLogin }

// caps is the capability list now (RFC 5804 §1.7).
func (ss *session) caps() []string {
	ext := ss.srv.Extensions
	if ext == "" {
		ext = DefaultExtensions
	}
	sasl := ""
	if ss.loginAllowed() && ss.username == "" {
		sasl = "PLAIN"
	}
	caps := []string{
		mustQuote(CapImplementation) + " " + mustQuote("starttls-go"),
		mustQuote(CapSASL) + " " + mustQuote(sasl),
		mustQuote(CapSieve) + " " + mustQuote(ext),
	}
	if ss.offersSTARTTLS() {
		caps = append(caps, mustQuote(CapSTARTTLS))
	}
	if ss.username != "" {
		caps = append(caps, mustQuote(CapOwner)+" "+mustQuote(ss.username))
	}
	return append(caps, mustQuote(CapVersion)+" "+mustQuote("1.0"))
}

func (ss *session) writeCaps(text string) error {
	return ss.tc.WriteLines(append(ss.caps(), "OK "+mustQuote(text))...)
}

func (ss *session) cmdCapability(args []token) error {
	if len(args) != 0 {
		return ss.no("", "CAPABILITY takes no argument")
	}
	return ss.writeCaps("Capability completed")
}

// cmdStartTLS answers STARTTLS (RFC 5804 §2.2), runs the handshake and
// sends the capabilities again.
func (ss *session) cmdStartTLS(args []token) error {
	switch {
	case len(args) != 0:
		return ss.no("", "STARTTLS takes no argument")
	case ss.tls:
		return ss.no("", "TLS is already active")
	case ss.username != "":
		return ss.no("", "STARTTLS not permitted after authentication")
	case ss.srv.TLSConfig == nil || ss.srv.Implicit:
		return ss.no("", "STARTTLS not available")
	case ss.srv.RefuseUpgrade && ss.srv.RefusePermanently:
		return ss.respond("NO", "", "TLS not available")
	case ss.srv.RefuseUpgrade:
		return ss.respond("NO", CodeTryLater, "TLS not available due to temporary reason")
	}
	pipelined := ss.tc.Buffered()
	if ss.sniff.SawClientHello() {
		pipelined++
	}
	if err := ss.tc.WriteLinesThen(ss.srv.Forged("STARTTLS"), "OK "+mustQuote("Begin TLS negotiation now")); err != nil {
		return err
	}
	var kept []byte
	if pipelined > 0 {
		if !ss.srv.InsecureKeepPipelined || ss.handshakeOnly {
			return errorf("%d bytes pipelined after STARTTLS, closing the connection: %w", pipelined, starttls.ErrPlaintextAfterUpgrade)
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
	return ss.writeCaps("TLS negotiation successful")
}

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

// strArgs checks that args are n strings and returns them.
func strArgs(args []token, n int) ([]string, bool) {
	if len(args) != n {
		return nil, false
	}
	out := make([]string, n)
	for i, a := range args {
		if a.kind != tokString {
			return nil, false
		}
		out[i] = a.s
	}
	return out, true
}

// cmdAuthenticate answers AUTHENTICATE "PLAIN" [initial-response] (RFC 5804
// §2.1, RFC 4616); without an initial response the server sends an empty
// challenge and reads the response as a string.
func (ss *session) cmdAuthenticate(args []token) error {
	if ss.username != "" {
		return ss.no("", "already authenticated")
	}
	if len(args) < 1 || len(args) > 2 || args[0].kind != tokString || (len(args) == 2 && args[1].kind != tokString) {
		return ss.no("", `usage: AUTHENTICATE "PLAIN" ["initial-response"]`)
	}
	if !ss.loginAllowed() {
		return ss.no(CodeEncryptNeeded, "authentication requires TLS: use STARTTLS first")
	}
	if !strings.EqualFold(args[0].s, "PLAIN") {
		return ss.no("", "unsupported SASL mechanism")
	}
	var ir string
	if len(args) == 2 {
		ir = args[1].s
	} else {
		if err := ss.tc.WriteLine(`""`); err != nil {
			return err
		}
		toks, err := readTokens(ss.tc, maxQuoted, nonSyncOnly)
		if err != nil {
			return err
		}
		if len(toks) != 1 || toks[0].kind != tokString {
			return ss.no("", "malformed SASL response")
		}
		if toks[0].s == "*" {
			return ss.no("", "authentication cancelled")
		}
		ir = toks[0].s
	}
	authz, user, pass, err := decodePlain(ir)
	if err != nil {
		return ss.no("", "malformed PLAIN response")
	}
	ss.srv.SawCredentials("AUTHENTICATE PLAIN", user, pass, ss.tls)
	if authz != "" && authz != user {
		return ss.no("", "authorization identity not permitted")
	}
	if ss.srv.Backend == nil {
		return ss.no("", "authentication failed")
	}
	if err := ss.srv.Backend.Login(ss.ctx, user, pass); err != nil {
		ss.debug("login failed for "+strconv.Quote(user), err)
		return ss.no("", "authentication failed")
	}
	ss.username = user
	return ss.ok("Logged in")
}

func decodePlain(s string) (authz, user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", "", err
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return "", "", "", errors.New("sieve: malformed PLAIN message")
	}
	return parts[0], parts[1], parts[2], nil
}

func (ss *session) cmdLogout(args []token) error {
	ss.ok("Logout completed")
	if ss.handshakeOnly {
		return errorf("client logged out before the upgrade")
	}
	return errLogout
}

// cmdNoop answers NOOP [tag] (RFC 5804 §2.11).
func (ss *session) cmdNoop(args []token) error {
	switch a, ok := strArgs(args, 1); {
	case len(args) == 0:
		return ss.ok("Done")
	case ok:
		return ss.tc.WriteLine("OK (TAG " + mustQuote(a[0]) + ") " + mustQuote("Done"))
	}
	return ss.no("", `usage: NOOP ["tag"]`)
}

// validName checks a script name (RFC 5804 §1.6: UTF-8, no controls).
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return false
		}
	}
	return true
}

// validScript checks what this server can check of a script: UTF-8
// without NUL (RFC 5228 §2.1).
func validScript(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// fits reports whether a script of size octets named name fits the user's
// quota; it answers NO itself when it does not.
func (ss *session) fits(u *userScripts, name string, size int) (bool, error) {
	old, exists := u.scripts[name]
	switch {
	case size > MaxScriptSize:
		return false, ss.respond("NO", CodeQuotaMaxSize, "script too large")
	case !exists && len(u.scripts) >= MaxScripts:
		return false, ss.respond("NO", CodeQuotaMaxScripts, "too many scripts")
	case u.size-len(old)+size > MaxUserBytes:
		return false, ss.respond("NO", CodeQuota, "quota exceeded")
	}
	return true, nil
}

func (ss *session) cmdHaveSpace(args []token) error {
	if len(args) != 2 || args[0].kind != tokString || args[1].kind != tokAtom {
		return ss.no("", `usage: HAVESPACE "name" size`)
	}
	size, err := strconv.Atoi(args[1].s)
	if err != nil || size < 0 {
		return ss.no("", "invalid size")
	}
	if !validName(args[0].s) {
		return ss.no("", "invalid script name")
	}
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	if ok, err := ss.fits(ss.srv.store(ss.username), args[0].s, size); !ok {
		return err
	}
	return ss.ok("Putscript would succeed")
}

func (ss *session) cmdPutScript(args []token) error {
	a, ok := strArgs(args, 2)
	if !ok {
		return ss.no("", `usage: PUTSCRIPT "name" {n+}`)
	}
	if !validName(a[0]) {
		return ss.no("", "invalid script name")
	}
	if !validScript(a[1]) {
		return ss.no("", "script is not UTF-8 or contains NUL")
	}
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	u := ss.srv.store(ss.username)
	if ok, err := ss.fits(u, a[0], len(a[1])); !ok {
		return err
	}
	u.size += len(a[1]) - len(u.scripts[a[0]])
	u.scripts[a[0]] = []byte(a[1])
	return ss.ok("Putscript completed")
}

func (ss *session) cmdCheckScript(args []token) error {
	a, ok := strArgs(args, 1)
	if !ok {
		return ss.no("", "usage: CHECKSCRIPT {n+}")
	}
	if !validScript(a[0]) {
		return ss.no("", "script is not UTF-8 or contains NUL")
	}
	return ss.ok("Script is valid")
}

func (ss *session) cmdListScripts(args []token) error {
	if len(args) != 0 {
		return ss.no("", "LISTSCRIPTS takes no argument")
	}
	ss.srv.mu.Lock()
	u := ss.srv.store(ss.username)
	names := make([]string, 0, len(u.scripts))
	for n := range u.scripts {
		names = append(names, n)
	}
	active := u.active
	ss.srv.mu.Unlock()
	sort.Strings(names)
	lines := make([]string, 0, len(names)+1)
	for _, n := range names {
		l := mustQuote(n)
		if n == active {
			l += " ACTIVE"
		}
		lines = append(lines, l)
	}
	return ss.tc.WriteLines(append(lines, "OK "+mustQuote("Listscripts completed"))...)
}

func (ss *session) cmdSetActive(args []token) error {
	a, ok := strArgs(args, 1)
	if !ok {
		return ss.no("", `usage: SETACTIVE "name"`)
	}
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	u := ss.srv.store(ss.username)
	if _, exists := u.scripts[a[0]]; a[0] != "" && !exists {
		return ss.respond("NO", CodeNonexistent, "no such script")
	}
	u.active = a[0]
	return ss.ok("Setactive completed")
}

func (ss *session) cmdGetScript(args []token) error {
	a, ok := strArgs(args, 1)
	if !ok {
		return ss.no("", `usage: GETSCRIPT "name"`)
	}
	ss.srv.mu.Lock()
	script, exists := ss.srv.store(ss.username).scripts[a[0]]
	ss.srv.mu.Unlock()
	if !exists {
		return ss.respond("NO", CodeNonexistent, "no such script")
	}
	if err := ss.tc.WriteLine(fmt.Sprintf("{%d}", len(script))); err != nil {
		return err
	}
	if err := ss.tc.WriteRaw(append(append([]byte(nil), script...), '\r', '\n')); err != nil {
		return err
	}
	return ss.ok("Getscript completed")
}

func (ss *session) cmdDeleteScript(args []token) error {
	a, ok := strArgs(args, 1)
	if !ok {
		return ss.no("", `usage: DELETESCRIPT "name"`)
	}
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	u := ss.srv.store(ss.username)
	script, exists := u.scripts[a[0]]
	switch {
	case !exists:
		return ss.respond("NO", CodeNonexistent, "no such script")
	case u.active == a[0]:
		return ss.respond("NO", CodeActive, "the active script cannot be deleted")
	}
	u.size -= len(script)
	delete(u.scripts, a[0])
	return ss.ok("Deletescript completed")
}

func (ss *session) cmdRenameScript(args []token) error {
	a, ok := strArgs(args, 2)
	if !ok {
		return ss.no("", `usage: RENAMESCRIPT "old" "new"`)
	}
	if !validName(a[1]) {
		return ss.no("", "invalid script name")
	}
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	u := ss.srv.store(ss.username)
	script, exists := u.scripts[a[0]]
	switch {
	case !exists:
		return ss.respond("NO", CodeNonexistent, "no such script")
	case u.scripts[a[1]] != nil:
		return ss.respond("NO", CodeAlreadyExists, "a script with that name exists")
	}
	delete(u.scripts, a[0])
	u.scripts[a[1]] = script
	if u.active == a[0] {
		u.active = a[1]
	}
	return ss.ok("Renamescript completed")
}
