package pop3

import (
	"bytes"
	"context"
	"crypto/sha256"
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

// Backend is the mail store behind a Server.
//
// The maildrop is read-only: DELE marks a message deleted for the rest of
// the session only, and QUIT does not remove anything (the UPDATE state of
// RFC 1939 §6 applies no deletions).
type Backend interface {
	// Login checks a user's password; a non-nil error refuses the login
	// (the client sees "-ERR [AUTH] …", never the error text).
	Login(ctx context.Context, username, password string) error
	// Messages returns the user's maildrop, oldest first; message n of
	// the POP3 session is element n-1. A failure is reported to the client
	// as "-ERR [SYS/TEMP] …".
	Messages(ctx context.Context, username string) ([][]byte, error)
}

// Server is a POP3 server (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595
// §4), AUTH PLAIN (RFC 5034) and implicit TLS (RFC 8314). The zero value
// with a Backend serves plaintext and refuses every login; set TLSConfig to
// offer STLS. A Server must not be copied after first use.
type Server struct {
	starttls.ServerOptions
	// Backend authenticates users and provides their messages. nil refuses
	// every login.
	Backend Backend

	sessions serve.Sessions
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("pop3: panic serving connection", s.Log, nil)
}

// Serve accepts connections on l and serves each in its own goroutine
// until l fails or Close or Shutdown is called; it then returns a non-nil
// error.
func (s *Server) Serve(l net.Listener) error { return s.init().Serve(l, s.runSession) }

// ServeConn serves one connection for a whole session and closes it. It
// returns nil after QUIT, else the reason the session ended.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	return s.init().ServeConn(ctx, conn, s.runSession)
}

// runSession runs a whole session on conn.
func (s *Server) runSession(ctx context.Context, conn net.Conn) error {
	return s.newSession(ctx, conn).run()
}

// Handshake serves the plaintext part of a session (greeting, CAPA,
// refusals) until the client sends STLS, then completes the TLS handshake
// and returns the *tls.Conn, with the POP3 dialog over TLS still to come
// (the client will send CAPA). Commands pipelined after STLS always close
// the connection here, InsecureKeepPipelined or not. With Implicit the
// handshake is done at once. On error conn is closed.
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

// state is the session state of RFC 1939 §3.
type state int

const (
	stateAuthorization state = iota
	stateTransaction
	stateUpdate
)

func (st state) String() string {
	switch st {
	case stateAuthorization:
		return "AUTHORIZATION"
	case stateTransaction:
		return "TRANSACTION"
	case stateUpdate:
		return "UPDATE"
	}
	return "state(" + strconv.Itoa(int(st)) + ")"
}

// handler is one command: the states it is valid in and its function.
type handler struct {
	states []state
	fn     func(ss *session, arg string) error
}

var (
	inAuth  = []state{stateAuthorization}
	inTrans = []state{stateTransaction}
	inBoth  = []state{stateAuthorization, stateTransaction}
)

// handlers is the command table (RFC 1939 §4–7, RFC 2449 §5, RFC 2595 §4,
// RFC 5034 §4).
var handlers = map[string]handler{
	"CAPA": {inBoth, (*session).cmdCapa},
	"STLS": {inAuth, (*session).cmdStls},
	"USER": {inAuth, (*session).cmdUser},
	"PASS": {inAuth, (*session).cmdPass},
	"AUTH": {inAuth, (*session).cmdAuth},
	"APOP": {inAuth, (*session).cmdApop},
	"STAT": {inTrans, (*session).cmdStat},
	"LIST": {inTrans, (*session).cmdList},
	"UIDL": {inTrans, (*session).cmdUidl},
	"RETR": {inTrans, (*session).cmdRetr},
	"TOP":  {inTrans, (*session).cmdTop},
	"DELE": {inTrans, (*session).cmdDele},
	"RSET": {inTrans, (*session).cmdRset},
	"NOOP": {inTrans, (*session).cmdNoop},
	"QUIT": {inBoth, (*session).cmdQuit},
}

// Sentinels that end a session.
var (
	errQuit       = errors.New("pop3: client quit")
	errHandedOver = errors.New("pop3: connection handed over after STLS")
	errTooMany    = errors.New("pop3: too many errors")
)

// session is one client connection.
type session struct {
	srv           *Server
	ctx           context.Context
	sniff         *textline.Sniffer
	tc            *textline.Conn
	tls           bool
	state         state
	user          string // name given with USER, waiting for PASS
	username      string // authenticated user
	msgs          [][]byte
	deleted       []bool
	errors        int
	handshakeOnly bool
	upgraded      *tls.Conn // the TLS connection just established
	tlsConn       *tls.Conn // the TLS connection in use, closed at the end
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	sn := &textline.Sniffer{Conn: conn}
	return &session{
		srv:   s,
		ctx:   ctx,
		sniff: sn,
		tc:    textline.New(sn, s.lineOptions()),
	}
}

func (s *Server) lineOptions() textline.Options {
	return textline.Options{
		Proto:      "pop3",
		Local:      starttls.FromServer,
		MaxLine:    s.LineLimit(),
		StrictCRLF: true,
	}
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("pop3: "+msg, "remote", ss.sniff.RemoteAddr().String(), "err", err)
}

// deadline gives the next exchange CommandTimeout.
func (ss *session) deadline() {
	ss.sniff.SetDeadline(time.Now().Add(ss.srv.CommandTimeout()))
}

func (ss *session) reply(line string) error { return ss.tc.WriteLine(line) }

// bad answers -ERR text and counts a protocol error; past the limit it
// closes the session.
func (ss *session) bad(text string) error {
	ss.errors++
	if ss.errors >= ss.srv.ErrorLimit() {
		ss.reply("-ERR " + text + " (too many errors, closing)")
		return errTooMany
	}
	return ss.reply("-ERR " + text)
}

// run serves the session until QUIT, an error, or the hand-over after STLS
// in handshakeOnly mode.
func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("pop3: panic serving connection", "remote", ss.sniff.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.sniff.SetDeadline(time.Now().Add(time.Second))
			ss.reply("-ERR [SYS/TEMP] internal server error, closing")
			err = errorf("panic: %v", v)
		}
	}()
	stop := context.AfterFunc(ss.ctx, func() { ss.sniff.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err = ss.serve()
	if ss.tlsConn != nil && !errors.Is(err, errHandedOver) {
		// Send close_notify, so that clients see a clean end of the stream.
		ss.tlsConn.Close()
	}
	switch {
	case errors.Is(err, errQuit):
		return nil
	case errors.Is(err, errHandedOver):
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
	if err := ss.reply("+OK " + ss.srv.Name() + " POP3 server ready"); err != nil {
		return err
	}
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.deadline()
			ss.reply("-ERR [SYS/TEMP] server shutting down")
			return err
		}
		ss.deadline()
		line, err := ss.tc.ReadLine()
		ss.deadline()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
				ss.reply("-ERR TLS received on the plaintext POP3 port; use STLS, or port 995 for implicit TLS")
				return err
			case errors.Is(err, starttls.ErrLineTooLong):
				ss.reply("-ERR line too long, closing")
				return err
			case errors.Is(err, starttls.ErrProtocol):
				// A bare LF or a NUL: refused; the line was consumed.
				if e := ss.bad("malformed command line (CRLF required, no NUL)"); e != nil {
					return errors.Join(err, e)
				}
				continue
			case errors.As(err, &ne) && ne.Timeout() && ss.ctx.Err() == nil:
				ss.reply("-ERR [SYS/TEMP] idle timeout, closing")
				return err
			}
			return err
		}
		if err := ss.dispatch(line); err != nil {
			return err
		}
	}
}

// dispatch runs one command after checking that it is valid in the current
// state.
func (ss *session) dispatch(line string) error {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	h, ok := handlers[verb]
	if !ok {
		return ss.bad("unknown command")
	}
	allowed := false
	for _, st := range h.states {
		allowed = allowed || st == ss.state
	}
	if !allowed {
		return ss.bad(verb + " not valid in the " + ss.state.String() + " state")
	}
	return h.fn(ss, arg)
}

// offersSTLS reports whether CAPA lists STLS now.
func (ss *session) offersSTLS() bool {
	return ss.srv.TLSConfig != nil && !ss.srv.Implicit && !ss.tls
}

// loginAllowed reports whether login is possible now: over TLS, or before
// TLS with AllowPlaintextLogin.
func (ss *session) loginAllowed() bool { return ss.tls || ss.srv.AllowPlaintextLogin }

// refuseLogin answers a login command sent before TLS with the AUTH
// response code (RFC 2449 §8.1, RFC 3206 §5).
func (ss *session) refuseLogin() error {
	if ss.offersSTLS() {
		return ss.bad("[AUTH] plaintext authentication disallowed, use STLS first")
	}
	return ss.bad("[AUTH] plaintext authentication disallowed")
}

func (ss *session) caps() []string {
	var caps []string
	if ss.offersSTLS() {
		caps = append(caps, CapSTLS)
	}
	if ss.loginAllowed() {
		caps = append(caps, CapUSER, CapSASL+" PLAIN")
	}
	return append(caps, CapTOP, CapUIDL, CapRespCodes, CapAuthRespCode, CapPipelining)
}

// cmdCapa answers CAPA (RFC 2449 §5).
func (ss *session) cmdCapa(string) error {
	lines := append([]string{"+OK Capability list follows"}, ss.caps()...)
	return ss.tc.WriteLines(append(lines, ".")...)
}

// cmdStls answers STLS (RFC 2595 §4) and runs the handshake.
func (ss *session) cmdStls(arg string) error {
	switch {
	case arg != "":
		return ss.bad("STLS takes no argument")
	case ss.tls:
		return ss.bad("command not permitted when TLS active")
	case ss.srv.TLSConfig == nil || ss.srv.Implicit:
		return ss.bad("STLS not available")
	case ss.user != "":
		return ss.bad("STLS not permitted after USER")
	case ss.srv.RefuseUpgrade && ss.srv.RefusePermanently:
		return ss.reply("-ERR [SYS/PERM] TLS not available")
	case ss.srv.RefuseUpgrade:
		return ss.reply("-ERR [SYS/TEMP] TLS not available due to temporary reason")
	}
	// Anything already received was pipelined after STLS in plaintext
	// (CVE-2011-0411): never execute it inside TLS.
	pipelined := ss.tc.Buffered()
	if ss.sniff.SawClientHello() {
		pipelined++
	}
	if err := ss.tc.WriteLinesThen(ss.srv.Forged("STLS"), "+OK Begin TLS negotiation now"); err != nil {
		return err
	}
	var kept []byte
	if pipelined > 0 {
		if !ss.srv.InsecureKeepPipelined || ss.handshakeOnly {
			return errorf("%d bytes pipelined after STLS, closing the connection: %w", pipelined, starttls.ErrPlaintextAfterUpgrade)
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

// handshake runs the server TLS handshake and resets the session (RFC 2595
// §4: the client must re-issue CAPA; nothing from before is kept).
func (ss *session) handshake() error {
	ss.sniff.Stop()
	tc := tls.Server(ss.sniff, ss.srv.TLSConfig)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.CommandTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return &starttls.HandshakeError{Err: err}
	}
	ss.tls = true
	ss.state = stateAuthorization
	ss.user = ""
	ss.upgraded = tc
	ss.tlsConn = tc
	return nil
}

// cmdUser answers USER (RFC 1939 §7).
func (ss *session) cmdUser(arg string) error {
	if !ss.loginAllowed() {
		return ss.refuseLogin()
	}
	if arg == "" {
		return ss.bad("USER needs a name")
	}
	ss.user = arg
	return ss.reply("+OK send PASS")
}

// cmdPass answers PASS (RFC 1939 §7). The password is the rest of the
// line and may contain spaces.
func (ss *session) cmdPass(arg string) error {
	if !ss.loginAllowed() {
		return ss.refuseLogin()
	}
	if ss.user == "" {
		return ss.bad("USER first")
	}
	user := ss.user
	ss.user = ""
	ss.srv.SawCredentials("USER/PASS", user, arg, ss.tls)
	return ss.authenticate(user, arg)
}

// cmdApop refuses APOP (RFC 1939 §7): it needs the clear-text password on
// the server and adds nothing over TLS.
func (ss *session) cmdApop(string) error {
	return ss.bad("APOP not supported")
}

// cmdAuth answers AUTH (RFC 5034 §4) with the PLAIN mechanism (RFC 4616),
// with an initial response or a "+ " continuation.
func (ss *session) cmdAuth(arg string) error {
	if !ss.loginAllowed() {
		return ss.refuseLogin()
	}
	mech, ir, hasIR := strings.Cut(arg, " ")
	if mech == "" {
		return ss.tc.WriteLines("+OK", "PLAIN", ".")
	}
	if !strings.EqualFold(mech, "PLAIN") {
		return ss.bad("unrecognized authentication type")
	}
	if !hasIR {
		if err := ss.reply("+ "); err != nil {
			return err
		}
		line, err := ss.tc.ReadLine()
		if err != nil {
			return err
		}
		ir = line
	}
	if ir == "*" {
		return ss.bad("authentication cancelled")
	}
	if ir == "=" { // RFC 5034 §4: an empty initial response
		ir = ""
	}
	authz, user, pass, err := decodePlain(ir)
	if err != nil {
		return ss.bad("malformed AUTH PLAIN response")
	}
	ss.srv.SawCredentials("AUTH PLAIN", user, pass, ss.tls)
	if authz != "" && authz != user {
		return ss.bad("[AUTH] authorization identity not permitted")
	}
	return ss.authenticate(user, pass)
}

// decodePlain decodes a SASL PLAIN message (RFC 4616 §2):
// [authzid] NUL authcid NUL passwd, base64-encoded.
func decodePlain(s string) (authz, user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", "", err
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return "", "", "", errors.New("pop3: malformed PLAIN message")
	}
	return parts[0], parts[1], parts[2], nil
}

// authenticate checks the credentials and opens the maildrop.
func (ss *session) authenticate(user, pass string) error {
	if ss.srv.Backend == nil {
		return ss.bad("[AUTH] invalid username or password")
	}
	if err := ss.srv.Backend.Login(ss.ctx, user, pass); err != nil {
		ss.debug("login failed for "+strconv.Quote(user), err)
		return ss.bad("[AUTH] invalid username or password")
	}
	msgs, err := ss.srv.Backend.Messages(ss.ctx, user)
	if err != nil {
		ss.debug("maildrop of "+strconv.Quote(user), err)
		return ss.reply("-ERR [SYS/TEMP] unable to open the maildrop")
	}
	ss.msgs = make([][]byte, len(msgs))
	for i, m := range msgs {
		ss.msgs[i] = normalize(m)
	}
	ss.deleted = make([]bool, len(msgs))
	ss.username = user
	ss.state = stateTransaction
	n, size := ss.stat()
	return ss.reply(fmt.Sprintf("+OK maildrop has %d messages (%d octets)", n, size))
}

// normalize returns m with CRLF line endings, ending in CRLF when not
// empty: the form in which sizes are counted and messages sent.
func normalize(m []byte) []byte {
	if len(m) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.Grow(len(m) + len(m)/32 + 2)
	for len(m) > 0 {
		line, rest, found := bytes.Cut(m, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		b.Write(line)
		b.WriteString("\r\n")
		m = rest
		if !found {
			break
		}
	}
	return b.Bytes()
}

func (ss *session) stat() (n int, size int64) {
	for i, m := range ss.msgs {
		if !ss.deleted[i] {
			n++
			size += int64(len(m))
		}
	}
	return n, size
}

// msgArg parses a message number that names a message not deleted
// (RFC 1939 §5). It answers -ERR itself when ok is false.
func (ss *session) msgArg(arg string) (i int, ok bool, err error) {
	n, perr := strconv.Atoi(arg)
	switch {
	case perr != nil || arg == "" || arg[0] < '0' || arg[0] > '9':
		return 0, false, ss.bad("invalid message number")
	case n < 1 || n > len(ss.msgs):
		return 0, false, ss.bad("no such message")
	case ss.deleted[n-1]:
		return 0, false, ss.bad("message " + arg + " already deleted")
	}
	return n - 1, true, nil
}

func (ss *session) cmdStat(arg string) error {
	n, size := ss.stat()
	return ss.reply(fmt.Sprintf("+OK %d %d", n, size))
}

func (ss *session) cmdList(arg string) error {
	if arg != "" {
		i, ok, err := ss.msgArg(arg)
		if !ok {
			return err
		}
		return ss.reply(fmt.Sprintf("+OK %d %d", i+1, len(ss.msgs[i])))
	}
	n, size := ss.stat()
	lines := []string{fmt.Sprintf("+OK %d messages (%d octets)", n, size)}
	for i, m := range ss.msgs {
		if !ss.deleted[i] {
			lines = append(lines, fmt.Sprintf("%d %d", i+1, len(m)))
		}
	}
	return ss.tc.WriteLines(append(lines, ".")...)
}

// uid is the unique-id of message i (RFC 1939 §7 UIDL): stable as long as
// the backend keeps the order and the content.
func (ss *session) uid(i int) string {
	sum := sha256.Sum256(ss.msgs[i])
	return fmt.Sprintf("%d.%x", i+1, sum[:12])
}

func (ss *session) cmdUidl(arg string) error {
	if arg != "" {
		i, ok, err := ss.msgArg(arg)
		if !ok {
			return err
		}
		return ss.reply(fmt.Sprintf("+OK %d %s", i+1, ss.uid(i)))
	}
	lines := []string{"+OK unique-id listing follows"}
	for i := range ss.msgs {
		if !ss.deleted[i] {
			lines = append(lines, fmt.Sprintf("%d %s", i+1, ss.uid(i)))
		}
	}
	return ss.tc.WriteLines(append(lines, ".")...)
}

func (ss *session) cmdRetr(arg string) error {
	i, ok, err := ss.msgArg(arg)
	if !ok {
		return err
	}
	if err := ss.reply(fmt.Sprintf("+OK %d octets", len(ss.msgs[i]))); err != nil {
		return err
	}
	return ss.tc.WriteRaw(stuff(ss.msgs[i], -1))
}

// cmdTop answers TOP n m (RFC 1939 §7): the header, the blank line and m
// lines of the body.
func (ss *session) cmdTop(arg string) error {
	num, lines, _ := strings.Cut(arg, " ")
	m, err := strconv.Atoi(lines)
	if err != nil || m < 0 {
		return ss.bad("usage: TOP msg n")
	}
	i, ok, err := ss.msgArg(num)
	if !ok {
		return err
	}
	if err := ss.reply("+OK top of message follows"); err != nil {
		return err
	}
	return ss.tc.WriteRaw(stuff(ss.msgs[i], m))
}

// stuff byte-stuffs a normalized message (RFC 1939 §3) and appends the
// terminating ".". With bodyLines >= 0 only the header and that many body
// lines are kept (TOP).
func stuff(m []byte, bodyLines int) []byte {
	var b bytes.Buffer
	b.Grow(len(m) + len(m)/64 + 8)
	inBody := false
	for len(m) > 0 {
		line, rest, _ := bytes.Cut(m, []byte("\r\n"))
		m = rest
		if inBody && bodyLines >= 0 {
			if bodyLines == 0 {
				break
			}
			bodyLines--
		}
		if len(line) == 0 {
			inBody = true
		}
		if len(line) > 0 && line[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

func (ss *session) cmdDele(arg string) error {
	i, ok, err := ss.msgArg(arg)
	if !ok {
		return err
	}
	ss.deleted[i] = true
	return ss.reply(fmt.Sprintf("+OK message %d deleted (for this session only)", i+1))
}

func (ss *session) cmdRset(string) error {
	clear(ss.deleted)
	n, size := ss.stat()
	return ss.reply(fmt.Sprintf("+OK maildrop has %d messages (%d octets)", n, size))
}

func (ss *session) cmdNoop(string) error { return ss.reply("+OK") }

// cmdQuit ends the session (RFC 1939 §6). In TRANSACTION the session
// enters UPDATE, which removes nothing: the maildrop is read-only.
func (ss *session) cmdQuit(string) error {
	if ss.state == stateTransaction {
		ss.state = stateUpdate
	}
	ss.reply("+OK " + ss.srv.Name() + " POP3 server signing off")
	if ss.handshakeOnly {
		return errorf("client quit before the upgrade")
	}
	return errQuit
}
