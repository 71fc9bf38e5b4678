package imap

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/mail"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/serve"
	"github.com/starttls/starttls/internal/textline"
)

// Backend is the read-only mail store behind a Server.
type Backend interface {
	// Login checks a user's password; a non-nil error refuses the login
	// (the client sees "NO [AUTHENTICATIONFAILED] …", never the error
	// text).
	Login(ctx context.Context, username, password string) error
	// Mailboxes returns the names of the user's mailboxes, "/" separating
	// hierarchy levels. INBOX is matched case-insensitively (RFC 3501
	// §5.1).
	Mailboxes(ctx context.Context, username string) ([]string, error)
	// Messages returns the messages of a mailbox named as Mailboxes
	// spells it, oldest first; message n of the session (and UID n) is
	// element n-1.
	Messages(ctx context.Context, username, mailbox string) ([][]byte, error)
}

// Server is an IMAP4rev1 server (RFC 3501) with STARTTLS (RFC 2595 §3.1),
// LOGINDISABLED until TLS, AUTHENTICATE PLAIN with SASL-IR (RFC 4959) and
// implicit TLS (RFC 8314). The zero value with a Backend serves plaintext
// and refuses every login; set TLSConfig to offer STARTTLS. A Server must
// not be copied after first use.
type Server struct {
	starttls.ServerOptions
	// Backend authenticates users and provides their mail. nil refuses
	// every login.
	Backend Backend

	sessions serve.Sessions
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("imap: panic serving connection", s.Log, nil)
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

// Handshake serves the plaintext part of a session (greeting, CAPABILITY,
// refusals) until the client sends STARTTLS, then completes the TLS
// handshake and returns the *tls.Conn, with the IMAP dialog over TLS still
// to come (the client will send CAPABILITY). Commands pipelined after
// STARTTLS always close the connection here, InsecureKeepPipelined or not.
// With Implicit the handshake is done at once. On error conn is closed.
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

// state is the connection state of RFC 3501 §3.
type state int

const (
	stateNotAuthenticated state = iota
	stateAuthenticated
	stateSelected
	stateLogout
)

func (st state) String() string {
	switch st {
	case stateNotAuthenticated:
		return "not authenticated"
	case stateAuthenticated:
		return "authenticated"
	case stateSelected:
		return "selected"
	case stateLogout:
		return "logout"
	}
	return "state(" + strconv.Itoa(int(st)) + ")"
}

// handler is one command: the states it is valid in and its function,
// which parses its arguments from d (positioned after the command name).
type handler struct {
	states []state
	fn     func(ss *session, tag string, d *decoder) error
}

var (
	inAny        = []state{stateNotAuthenticated, stateAuthenticated, stateSelected}
	inNotAuth    = []state{stateNotAuthenticated}
	inAuth       = []state{stateAuthenticated, stateSelected}
	inAuthedOnly = []state{stateAuthenticated}
	inSelected   = []state{stateSelected}
)

// handlers is the command table (RFC 3501 §6, RFC 2971, RFC 3691, RFC 5161).
var handlers = map[string]handler{
	"CAPABILITY":   {inAny, (*session).cmdCapability},
	"NOOP":         {inAny, (*session).cmdNoop},
	"LOGOUT":       {inAny, (*session).cmdLogout},
	"ID":           {inAny, (*session).cmdID},
	"STARTTLS":     {inNotAuth, (*session).cmdStartTLS},
	"LOGIN":        {inNotAuth, (*session).cmdLogin},
	"AUTHENTICATE": {inNotAuth, (*session).cmdAuthenticate},
	"ENABLE":       {inAuthedOnly, (*session).cmdEnable},
	"SELECT":       {inAuth, (*session).cmdSelect},
	"EXAMINE":      {inAuth, (*session).cmdSelect},
	"LIST":         {inAuth, (*session).cmdList},
	"LSUB":         {inAuth, (*session).cmdList},
	"STATUS":       {inAuth, (*session).cmdStatus},
	"IDLE":         {inAuth, (*session).cmdRefuse},
	"APPEND":       {inAuth, (*session).cmdReadOnly},
	"CREATE":       {inAuth, (*session).cmdReadOnly},
	"DELETE":       {inAuth, (*session).cmdReadOnly},
	"RENAME":       {inAuth, (*session).cmdReadOnly},
	"SUBSCRIBE":    {inAuth, (*session).cmdReadOnly},
	"UNSUBSCRIBE":  {inAuth, (*session).cmdReadOnly},
	"CHECK":        {inSelected, (*session).cmdCheck},
	"CLOSE":        {inSelected, (*session).cmdClose},
	"UNSELECT":     {inSelected, (*session).cmdClose},
	"EXPUNGE":      {inSelected, (*session).cmdReadOnly},
	"STORE":        {inSelected, (*session).cmdReadOnly},
	"COPY":         {inSelected, (*session).cmdReadOnly},
	"FETCH":        {inSelected, (*session).cmdFetch},
	"SEARCH":       {inSelected, (*session).cmdSearch},
	"UID FETCH":    {inSelected, (*session).cmdFetch},
	"UID SEARCH":   {inSelected, (*session).cmdSearch},
	"UID STORE":    {inSelected, (*session).cmdReadOnly},
	"UID COPY":     {inSelected, (*session).cmdReadOnly},
	"UID EXPUNGE":  {inSelected, (*session).cmdReadOnly},
}

// Sentinels that end a session.
var (
	errLogout     = errors.New("imap: client logged out")
	errHandedOver = errors.New("imap: connection handed over after STARTTLS")
	errTooMany    = errors.New("imap: too many errors")
)

// cmdError is a command the server could not read in full: a bad or too
// large literal. Fatal ones close the connection (the client sends a
// non-synchronising literal without waiting, RFC 7888 §4).
type cmdError struct {
	tag, text string
	fatal     bool
}

func (e *cmdError) Error() string { return "imap: " + e.text }

// session is one client connection.
type session struct {
	srv           *Server
	ctx           context.Context
	sniff         *textline.Sniffer
	tc            *textline.Conn
	tls           bool
	tlsConn       *tls.Conn
	state         state
	user          string
	mailbox       string
	readOnly      bool
	msgs          [][]byte
	seen          []bool
	uidValidity   uint32
	errors        int
	verb          string // the command being served, upper case ("UID FETCH")
	handshakeOnly bool
	upgraded      *tls.Conn
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
		Proto:      "imap",
		Local:      starttls.FromServer,
		MaxLine:    s.LineLimit(),
		StrictCRLF: true,
	}
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("imap: "+msg, "remote", ss.sniff.RemoteAddr().String(), "err", err)
}

// deadline gives the next exchange CommandTimeout.
func (ss *session) deadline() {
	ss.sniff.SetDeadline(time.Now().Add(ss.srv.CommandTimeout()))
}

func (ss *session) reply(line string) error { return ss.tc.WriteLine(line) }

// bad answers "tag BAD text" and counts a protocol error; past the limit
// it says BYE and closes the session.
func (ss *session) bad(tag, text string) error { return ss.fail(tag, "BAD", text) }

// fail answers "tag NO|BAD text" and counts an error.
func (ss *session) fail(tag, typ, text string) error {
	ss.errors++
	if err := ss.reply(tag + " " + typ + " " + text); err != nil {
		return err
	}
	if ss.errors >= ss.srv.ErrorLimit() {
		ss.reply("* BYE Too many invalid commands, closing")
		return errTooMany
	}
	return nil
}

// ok answers "tag OK text".
func (ss *session) ok(tag, text string) error { return ss.reply(tag + " OK " + text) }

// run serves the session until LOGOUT, an error, or the hand-over after
// STARTTLS in handshakeOnly mode.
func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("imap: panic serving connection", "remote", ss.sniff.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.sniff.SetDeadline(time.Now().Add(time.Second))
			ss.reply("* BYE [UNAVAILABLE] Internal server error, closing")
			err = errorf("panic: %v", v)
		}
	}()
	stop := context.AfterFunc(ss.ctx, func() { ss.sniff.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err = ss.serve()
	if ss.tlsConn != nil && !ss.handshakeOnly {
		// Say close_notify, so that TLS clients (openssl s_client) see a
		// clean end rather than a truncation.
		ss.sniff.SetDeadline(time.Now().Add(time.Second))
		ss.tlsConn.CloseWrite()
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
	if err := ss.reply("* OK [CAPABILITY " + strings.Join(ss.caps(), " ") + "] " + ss.srv.Name() + " ready"); err != nil {
		return err
	}
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.deadline()
			ss.reply("* BYE [UNAVAILABLE] Server shutting down")
			return err
		}
		cmd, err := ss.readCommand()
		ss.deadline()
		if err != nil {
			var ce *cmdError
			var ne net.Error
			switch {
			case errors.As(err, &ce):
				if ce.fatal {
					ss.reply("* BYE " + ce.text)
					return err
				}
				if e := ss.bad(ce.tag, ce.text); e != nil {
					return errors.Join(err, e)
				}
				continue
			case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
				ss.reply("* BYE TLS received on the plaintext IMAP port; use STARTTLS, or port 993 for implicit TLS")
				return err
			case errors.Is(err, starttls.ErrLineTooLong):
				ss.reply("* BYE [TOOBIG] Line too long, closing")
				return err
			case errors.Is(err, starttls.ErrProtocol):
				// A bare LF, a bare CR or a NUL: refused; the line was
				// consumed.
				if e := ss.bad("*", "Malformed command line (CRLF required, no NUL)"); e != nil {
					return errors.Join(err, e)
				}
				continue
			case errors.As(err, &ne) && ne.Timeout():
				if ss.ctx.Err() != nil {
					ss.reply("* BYE [UNAVAILABLE] Server shutting down")
				} else {
					ss.reply("* BYE Autologout; idle for too long")
				}
				return err
			}
			return err
		}
		if err := ss.dispatch(cmd); err != nil {
			return err
		}
		if ss.state == stateLogout {
			return errLogout
		}
	}
}

// tagOf returns the tag a command line starts with, or "*".
func tagOf(line string) string {
	d := newDecoder(line)
	if t := d.tag(); d.ok() && d.peek() == ' ' {
		return t
	}
	return "*"
}

// readCommand reads one command with its literals (RFC 3501 §4.3):
// synchronising ones are answered "+" before their data is read;
// non-synchronising ones (RFC 7888) are read at once. Before login
// literals are capped at a few hundred bytes, after at MaxLiteral.
func (ss *session) readCommand() (string, error) {
	var b strings.Builder
	for {
		ss.deadline()
		line, err := ss.tc.ReadLine()
		if err != nil {
			return "", err
		}
		if b.Len()+len(line) > maxCommand {
			return "", &cmdError{tag: tagOf(b.String()), text: "[TOOBIG] Command too long", fatal: true}
		}
		b.WriteString(line)
		n, nonSync, ok, err := literalSuffix(line)
		if err != nil {
			return "", &cmdError{tag: tagOf(b.String()), text: "Invalid literal size", fatal: nonSync}
		}
		if !ok {
			return b.String(), nil
		}
		limit := int64(MaxLiteral)
		if ss.state == stateNotAuthenticated {
			limit = maxPreAuthLiteral
			if nonSync {
				limit = maxPreAuthNonSync
			}
		}
		if n > limit || int64(b.Len())+n > maxCommand {
			return "", &cmdError{tag: tagOf(b.String()), text: "[TOOBIG] Literal too big", fatal: nonSync}
		}
		if !nonSync {
			if err := ss.reply("+ Ready for literal data"); err != nil {
				return "", err
			}
		}
		ss.deadline()
		data, err := ss.tc.ReadFull(int(n))
		if err != nil {
			return "", err
		}
		b.WriteString("\r\n")
		b.Write(data)
	}
}

// dispatch runs one command after checking that it is valid in the current
// state (RFC 3501 §3).
func (ss *session) dispatch(cmd string) error {
	d := newDecoder(cmd)
	tag := d.tag()
	if !d.ok() {
		return ss.bad("*", "Missing or invalid tag")
	}
	if !d.sp() {
		return ss.bad(tag, "Missing command")
	}
	verb := strings.ToUpper(d.atom())
	if verb == "UID" && d.sp() {
		verb += " " + strings.ToUpper(d.atom())
	}
	if !d.ok() {
		return ss.bad(tag, "Invalid command")
	}
	h, ok := handlers[verb]
	if !ok {
		return ss.bad(tag, "Unknown command")
	}
	allowed := false
	for _, st := range h.states {
		allowed = allowed || st == ss.state
	}
	if !allowed {
		return ss.bad(tag, verb+" not allowed in the "+ss.state.String()+" state")
	}
	ss.verb = verb
	return h.fn(ss, tag, d)
}

// syntax answers BAD when the arguments did not parse; it reports whether
// the caller should go on.
func (ss *session) syntax(tag string, d *decoder, err *error) bool {
	d.end()
	if d.err != nil {
		*err = ss.bad(tag, "Syntax error: "+d.err.Error())
		return false
	}
	return true
}

// offersSTARTTLS reports whether the capabilities list STARTTLS now.
func (ss *session) offersSTARTTLS() bool {
	return ss.srv.TLSConfig != nil && !ss.srv.Implicit && !ss.tls && ss.state == stateNotAuthenticated
}

// loginAllowed reports whether login is possible now: over TLS, or before
// TLS with AllowPlaintextLogin.
func (ss *session) loginAllowed() bool { return ss.tls || ss.srv.AllowPlaintextLogin }

func (ss *session) cmdCapability(tag string, d *decoder) (err error) {
	if !ss.syntax(tag, d, &err) {
		return err
	}
	if err := ss.reply("* CAPABILITY " + strings.Join(ss.caps(), " ")); err != nil {
		return err
	}
	return ss.ok(tag, "CAPABILITY completed")
}

func (ss *session) cmdNoop(tag string, d *decoder) (err error) {
	if !ss.syntax(tag, d, &err) {
		return err
	}
	return ss.ok(tag, "NOOP completed")
}

func (ss *session) cmdLogout(tag string, d *decoder) (err error) {
	if !ss.syntax(tag, d, &err) {
		return err
	}
	ss.state = stateLogout
	ss.reply("* BYE " + ss.srv.Name() + " logging out")
	if err := ss.ok(tag, "LOGOUT completed"); err != nil {
		return err
	}
	if ss.handshakeOnly {
		return errorf("client logged out before the upgrade")
	}
	return errLogout
}

// cmdID answers ID (RFC 2971) with NIL: the server tells nothing about
// itself.
func (ss *session) cmdID(tag string, d *decoder) (err error) {
	d.sp()
	d.value()
	if !ss.syntax(tag, d, &err) {
		return err
	}
	if err := ss.reply("* ID NIL"); err != nil {
		return err
	}
	return ss.ok(tag, "ID completed")
}

// cmdEnable answers ENABLE (RFC 5161): no extension can be enabled.
func (ss *session) cmdEnable(tag string, d *decoder) (err error) {
	for d.ok() && !d.done() {
		d.sp()
		d.atom()
	}
	if !ss.syntax(tag, d, &err) {
		return err
	}
	if err := ss.reply("* ENABLED"); err != nil {
		return err
	}
	return ss.ok(tag, "ENABLE completed")
}

func (ss *session) cmdRefuse(tag string, d *decoder) error {
	return ss.reply(tag + " NO [CANNOT] Not supported")
}

func (ss *session) cmdReadOnly(tag string, d *decoder) error {
	return ss.reply(tag + " NO [CANNOT] The mail store is read-only")
}

// cmdStartTLS answers STARTTLS (RFC 3501 §6.2.1, RFC 2595 §3.1) and runs
// the handshake.
func (ss *session) cmdStartTLS(tag string, d *decoder) (err error) {
	if !ss.syntax(tag, d, &err) {
		return err
	}
	switch {
	case ss.tls:
		return ss.bad(tag, "TLS is already active")
	case ss.srv.TLSConfig == nil || ss.srv.Implicit:
		return ss.bad(tag, "STARTTLS not available")
	case ss.srv.RefuseUpgrade && ss.srv.RefusePermanently:
		return ss.reply(tag + " NO [CANNOT] TLS not available")
	case ss.srv.RefuseUpgrade:
		return ss.reply(tag + " NO [UNAVAILABLE] TLS not available due to temporary reason")
	}
	// Anything already received was pipelined after STARTTLS in plaintext
	// (CVE-2011-0411): never execute it inside TLS.
	pipelined := ss.tc.Buffered()
	if ss.sniff.SawClientHello() {
		pipelined++
	}
	if err := ss.tc.WriteLinesThen(ss.srv.Forged(tag+" STARTTLS"), tag+" OK Begin TLS negotiation now"); err != nil {
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
	return nil
}

// handshake runs the server TLS handshake; the session stays in the not
// authenticated state and the client must ask for the capabilities again
// (RFC 2595 §3.1).
func (ss *session) handshake() error {
	ss.sniff.Stop()
	tc := tls.Server(ss.sniff, ss.srv.TLSConfig)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.CommandTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return &starttls.HandshakeError{Err: err}
	}
	ss.tls = true
	ss.tlsConn = tc
	ss.state = stateNotAuthenticated
	ss.upgraded = tc
	return nil
}

// refuseLogin answers a login before TLS (RFC 3501 §6.2.3, RFC 9051
// §7.1 PRIVACYREQUIRED).
func (ss *session) refuseLogin(tag string) error {
	return ss.fail(tag, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections; use STARTTLS first")
}

// cmdLogin answers LOGIN (RFC 3501 §6.2.3).
func (ss *session) cmdLogin(tag string, d *decoder) (err error) {
	if !ss.loginAllowed() {
		return ss.refuseLogin(tag)
	}
	d.sp()
	user := d.astring()
	d.sp()
	pass := d.astring()
	if !ss.syntax(tag, d, &err) {
		return err
	}
	ss.srv.SawCredentials("LOGIN", user, pass, ss.tls)
	return ss.authenticate(tag, user, pass)
}

// cmdAuthenticate answers AUTHENTICATE (RFC 3501 §6.2.2) with the PLAIN
// mechanism (RFC 4616), with an initial response (RFC 4959) or a "+ "
// continuation.
func (ss *session) cmdAuthenticate(tag string, d *decoder) (err error) {
	d.sp()
	mech := d.atom()
	ir, hasIR := "", false
	if d.ok() && d.maybe(' ') {
		ir, hasIR = d.atom(), true
	}
	if !ss.syntax(tag, d, &err) {
		return err
	}
	if !ss.loginAllowed() {
		return ss.refuseLogin(tag)
	}
	if !strings.EqualFold(mech, "PLAIN") {
		return ss.fail(tag, "NO", "Unsupported authentication mechanism")
	}
	if !hasIR {
		if err := ss.reply("+ "); err != nil {
			return err
		}
		ss.deadline()
		line, err := ss.tc.ReadLine()
		if err != nil {
			return err
		}
		ir = line
	}
	if ir == "*" {
		return ss.bad(tag, "Authentication cancelled")
	}
	if ir == "=" { // RFC 4959 §3: an empty initial response
		ir = ""
	}
	authz, user, pass, derr := decodePlain(ir)
	if derr != nil {
		return ss.bad(tag, "Malformed PLAIN response")
	}
	ss.srv.SawCredentials("AUTHENTICATE PLAIN", user, pass, ss.tls)
	if authz != "" && authz != user {
		return ss.fail(tag, "NO", "[AUTHORIZATIONFAILED] Authorization identity not permitted")
	}
	return ss.authenticate(tag, user, pass)
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
		return "", "", "", errors.New("imap: malformed PLAIN message")
	}
	return parts[0], parts[1], parts[2], nil
}

// authenticate checks the credentials and enters the authenticated state.
func (ss *session) authenticate(tag, user, pass string) error {
	if ss.srv.Backend == nil {
		return ss.fail(tag, "NO", "[AUTHENTICATIONFAILED] Invalid credentials")
	}
	if err := ss.srv.Backend.Login(ss.ctx, user, pass); err != nil {
		ss.debug("login failed for "+strconv.Quote(user), err)
		return ss.fail(tag, "NO", "[AUTHENTICATIONFAILED] Invalid credentials")
	}
	ss.user = user
	ss.state = stateAuthenticated
	return ss.ok(tag, "[CAPABILITY "+strings.Join(ss.caps(), " ")+"] Logged in")
}

// mailboxes returns the user's mailboxes; on failure it has answered NO.
func (ss *session) mailboxes(tag string) ([]string, bool, error) {
	list, err := ss.srv.Backend.Mailboxes(ss.ctx, ss.user)
	if err != nil {
		ss.debug("mailboxes of "+strconv.Quote(ss.user), err)
		return nil, false, ss.reply(tag + " NO [UNAVAILABLE] Unable to list mailboxes")
	}
	return list, true, nil
}

// findMailbox returns the Backend's spelling of name (INBOX in any case,
// RFC 3501 §5.1); on failure it has answered NO.
func (ss *session) findMailbox(tag, name string) (string, bool, error) {
	list, ok, err := ss.mailboxes(tag)
	if !ok {
		return "", false, err
	}
	for _, m := range list {
		if m == name || strings.EqualFold(m, "INBOX") && strings.EqualFold(name, "INBOX") {
			return m, true, nil
		}
	}
	return "", false, ss.reply(tag + " NO [NONEXISTENT] No such mailbox")
}

// loadMailbox returns the messages of a mailbox, normalized to CRLF; on
// failure it has answered NO.
func (ss *session) loadMailbox(tag, name string) ([][]byte, bool, error) {
	msgs, err := ss.srv.Backend.Messages(ss.ctx, ss.user, name)
	if err != nil {
		ss.debug("messages of "+strconv.Quote(ss.user)+" in "+strconv.Quote(name), err)
		return nil, false, ss.reply(tag + " NO [UNAVAILABLE] Unable to open the mailbox")
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = normalize(m)
	}
	return out, true, nil
}

// uidValidity is derived from the name and content so that it changes
// whenever the positions, which are the UIDs, may have changed (RFC 3501
// §2.3.1.1).
func uidValidity(name string, msgs [][]byte) uint32 {
	h := fnv.New32a()
	io.WriteString(h, name)
	for _, m := range msgs {
		h.Write([]byte{0})
		h.Write(m)
	}
	if v := h.Sum32(); v != 0 {
		return v
	}
	return 1
}

// cmdSelect answers SELECT and EXAMINE (RFC 3501 §6.3.1, §6.3.2).
func (ss *session) cmdSelect(tag string, d *decoder) (err error) {
	verb := ss.verb
	d.sp()
	name := d.astring()
	if !ss.syntax(tag, d, &err) {
		return err
	}
	// A SELECT, even a failed one, leaves the selected state (§6.3.1).
	ss.state, ss.mailbox, ss.msgs, ss.seen = stateAuthenticated, "", nil, nil
	mbox, ok, err := ss.findMailbox(tag, name)
	if !ok {
		return err
	}
	msgs, ok, err := ss.loadMailbox(tag, mbox)
	if !ok {
		return err
	}
	ss.state, ss.mailbox, ss.msgs = stateSelected, mbox, msgs
	ss.seen = make([]bool, len(msgs))
	ss.readOnly = verb == "EXAMINE"
	ss.uidValidity = uidValidity(mbox, msgs)
	lines := []string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`,
		`* OK [PERMANENTFLAGS ()] No permanent flags permitted`,
		fmt.Sprintf("* %d EXISTS", len(msgs)),
		"* 0 RECENT",
		fmt.Sprintf("* OK [UIDVALIDITY %d] UIDs valid", ss.uidValidity),
		fmt.Sprintf("* OK [UIDNEXT %d] Predicted next UID", len(msgs)+1),
	}
	if ss.readOnly {
		lines = append(lines, tag+" OK [READ-ONLY] "+verb+" completed")
	} else {
		lines = append(lines, tag+" OK [READ-WRITE] "+verb+" completed")
	}
	return ss.tc.WriteLines(lines...)
}

func (ss *session) cmdCheck(tag string, d *decoder) (err error) {
	if !ss.syntax(tag, d, &err) {
		return err
	}
	return ss.ok(tag, "CHECK completed")
}

// cmdClose answers CLOSE and UNSELECT (RFC 3501 §6.4.2, RFC 3691): nothing
// is expunged, the store is read-only.
func (ss *session) cmdClose(tag string, d *decoder) (err error) {
	if !ss.syntax(tag, d, &err) {
		return err
	}
	ss.state, ss.mailbox, ss.msgs, ss.seen = stateAuthenticated, "", nil, nil
	return ss.ok(tag, "Completed")
}

// cmdList answers LIST and LSUB (RFC 3501 §6.3.8, §6.3.9); every mailbox
// counts as subscribed.
func (ss *session) cmdList(tag string, d *decoder) (err error) {
	verb := ss.verb
	d.sp()
	ref := d.astring()
	d.sp()
	pattern := d.listMailbox()
	if !ss.syntax(tag, d, &err) {
		return err
	}
	var b bytes.Buffer
	if pattern == "" {
		// §6.3.8: the hierarchy delimiter and the root of ref.
		if verb == "LIST" {
			b.WriteString(`* LIST (\Noselect) "/" ""` + "\r\n")
		}
	} else {
		list, ok, err := ss.mailboxes(tag)
		if !ok {
			return err
		}
		full := ref + pattern
		for _, m := range list {
			if matchMailbox(full, m) {
				fmt.Fprintf(&b, "* %s () \"/\" %s\r\n", verb, quote(m, true))
			}
		}
	}
	b.WriteString(tag + " OK " + verb + " completed\r\n")
	return ss.tc.WriteRaw(b.Bytes())
}

// matchMailbox matches a mailbox name against a LIST pattern: "*" matches
// anything, "%" anything but the delimiter "/" (RFC 3501 §6.3.8). INBOX
// matches case-insensitively. The dynamic programme is O(len(p)·len(name)).
func matchMailbox(pattern, name string) bool {
	if strings.EqualFold(name, "INBOX") {
		return match(strings.ToUpper(pattern), "INBOX") || match(pattern, name)
	}
	return match(pattern, name)
}

func match(p, s string) bool {
	// prev[j]: p[:i] matches s[:j].
	prev := make([]bool, len(s)+1)
	cur := make([]bool, len(s)+1)
	prev[0] = true
	for i := 0; i < len(p); i++ {
		cur[0] = prev[0] && (p[i] == '*' || p[i] == '%')
		for j := 1; j <= len(s); j++ {
			switch p[i] {
			case '*':
				cur[j] = prev[j] || cur[j-1]
			case '%':
				cur[j] = prev[j] || cur[j-1] && s[j-1] != '/'
			default:
				cur[j] = prev[j-1] && p[i] == s[j-1]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(s)]
}

// cmdStatus answers STATUS (RFC 3501 §6.3.10).
func (ss *session) cmdStatus(tag string, d *decoder) (err error) {
	d.sp()
	name := d.astring()
	d.sp()
	var items []string
	d.list(func() { items = append(items, strings.ToUpper(d.atom())) })
	if !ss.syntax(tag, d, &err) {
		return err
	}
	mbox, ok, err := ss.findMailbox(tag, name)
	if !ok {
		return err
	}
	msgs, ok, err := ss.loadMailbox(tag, mbox)
	if !ok {
		return err
	}
	var out []string
	for _, it := range items {
		var v int64
		switch it {
		case "MESSAGES", "UNSEEN":
			v = int64(len(msgs))
		case "RECENT":
			v = 0
		case "UIDNEXT":
			v = int64(len(msgs) + 1)
		case "UIDVALIDITY":
			v = int64(uidValidity(mbox, msgs))
		default:
			return ss.bad(tag, "Unknown STATUS item "+strconv.Quote(it))
		}
		out = append(out, it+" "+strconv.FormatInt(v, 10))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "* STATUS %s (%s)\r\n%s OK STATUS completed\r\n", quote(mbox, true), strings.Join(out, " "), tag)
	return ss.tc.WriteRaw(b.Bytes())
}

// normalize returns m with CRLF line endings, the form in which sizes are
// counted and messages sent.
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
		if found {
			b.WriteString("\r\n")
		}
		m = rest
	}
	return b.Bytes()
}

// seqRange is one element of a sequence set; 0 stands for "*".
type seqRange struct{ lo, hi uint32 }

const maxSeqRanges = 1000

// seqSet reads a sequence set (RFC 3501 §9 sequence-set): "1", "2:4",
// "5:*", "1,3:*".
func (d *decoder) seqSet() []seqRange {
	tok := d.span(func(b byte) bool { return b >= '0' && b <= '9' || b == ':' || b == ',' || b == '*' })
	if tok == "" {
		d.fail("expected a sequence set")
		return nil
	}
	parts := strings.Split(tok, ",")
	if len(parts) > maxSeqRanges {
		d.fail("more than %d ranges in a sequence set", maxSeqRanges)
		return nil
	}
	num := func(s string) (uint32, bool) {
		if s == "*" {
			return 0, true
		}
		v, err := strconv.ParseUint(s, 10, 32)
		return uint32(v), err == nil && v > 0
	}
	set := make([]seqRange, 0, len(parts))
	for _, p := range parts {
		a, b, isRange := strings.Cut(p, ":")
		lo, ok1 := num(a)
		hi, ok2 := lo, true
		if isRange {
			hi, ok2 = num(b)
		}
		if !ok1 || !ok2 {
			d.fail("invalid sequence set %q", clip(tok, 40))
			return nil
		}
		set = append(set, seqRange{lo, hi})
	}
	return set
}

// contains reports whether n is in the set, "*" standing for max.
func contains(set []seqRange, n, max uint32) bool {
	for _, r := range set {
		lo, hi := r.lo, r.hi
		if lo == 0 {
			lo = max
		}
		if hi == 0 {
			hi = max
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if n >= lo && n <= hi {
			return true
		}
	}
	return false
}

// outOfRange reports whether a message sequence set names a message that
// does not exist (RFC 3501 §9: "*" in an empty mailbox names none).
func outOfRange(set []seqRange, max uint32) bool {
	for _, r := range set {
		if r.lo > max || r.hi > max {
			return true
		}
	}
	return false
}

// fetchItem is one FETCH data item (RFC 3501 §6.4.5).
type fetchItem struct {
	name    string // UID, FLAGS, RFC822.SIZE, INTERNALDATE, RFC822, RFC822.HEADER, RFC822.TEXT, BODY
	peek    bool   // BODY.PEEK
	section string // "", HEADER, TEXT, HEADER.FIELDS, HEADER.FIELDS.NOT, 1
	fields  []string
	partial bool
	start   uint32
	count   uint32 // 0: to the end
}

// fetchItems reads a FETCH item, a macro or a parenthesised item list.
func (d *decoder) fetchItems() []fetchItem {
	var items []fetchItem
	if d.peek() == '(' {
		d.list(func() { items = append(items, d.fetchItem()) })
		return items
	}
	save := d.pos
	switch strings.ToUpper(d.span(isAtomChar)) {
	case "FAST":
		return []fetchItem{{name: "FLAGS"}, {name: "INTERNALDATE"}, {name: "RFC822.SIZE"}}
	case "ALL", "FULL":
		d.fail("macros ALL and FULL are not supported (ENVELOPE)")
		return nil
	}
	d.pos = save
	return []fetchItem{d.fetchItem()}
}

func (d *decoder) fetchItem() fetchItem {
	name := strings.ToUpper(d.span(func(b byte) bool { return isAtomChar(b) && b != '[' && b != '<' }))
	it := fetchItem{name: name}
	switch name {
	case "UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.TEXT":
		return it
	case "BODY", "BODY.PEEK":
		it.name, it.peek = "BODY", name == "BODY.PEEK"
	default:
		d.fail("unsupported FETCH item %q", clip(name, 30))
		return it
	}
	if !d.expect('[') {
		return it
	}
	it.section = strings.ToUpper(d.span(func(b byte) bool { return isAtomChar(b) && b != '[' }))
	switch it.section {
	case "", "HEADER", "TEXT", "1":
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		d.sp()
		d.list(func() { it.fields = append(it.fields, strings.ToUpper(d.astring())) })
	default:
		d.fail("unsupported section %q", clip(it.section, 30))
	}
	d.expect(']')
	if d.maybe('<') {
		it.partial = true
		it.start = d.number()
		if d.maybe('.') {
			if it.count = d.number(); it.count == 0 && d.ok() {
				d.fail("partial length 0")
			}
		}
		d.expect('>')
	}
	return it
}

// cmdFetch answers FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8).
func (ss *session) cmdFetch(tag string, d *decoder) (err error) {
	uid := ss.verb == "UID FETCH"
	d.sp()
	set := d.seqSet()
	d.sp()
	items := d.fetchItems()
	if !ss.syntax(tag, d, &err) {
		return err
	}
	n := uint32(len(ss.msgs))
	if !uid && outOfRange(set, n) {
		return ss.bad(tag, "Invalid message sequence number")
	}
	if uid {
		hasUID := false
		for _, it := range items {
			hasUID = hasUID || it.name == "UID"
		}
		if !hasUID {
			items = append([]fetchItem{{name: "UID"}}, items...)
		}
	}
	var b bytes.Buffer
	for i := uint32(1); i <= n; i++ {
		if !contains(set, i, n) {
			continue
		}
		ss.fetchOne(&b, int(i-1), items)
		if b.Len() > 1<<20 {
			if err := ss.tc.WriteRaw(b.Bytes()); err != nil {
				return err
			}
			b.Reset()
		}
	}
	b.WriteString(tag + " OK FETCH completed\r\n")
	return ss.tc.WriteRaw(b.Bytes())
}

// fetchOne writes the FETCH response for message index i.
func (ss *session) fetchOne(b *bytes.Buffer, i int, items []fetchItem) {
	m := ss.msgs[i]
	header, text := splitMessage(m)
	var parts []string
	literal := func(name string, data []byte) {
		parts = append(parts, name+" {"+strconv.Itoa(len(data))+"}\r\n"+string(data))
	}
	hasFlags, setSeen := false, false
	for _, it := range items {
		switch it.name {
		case "UID":
			parts = append(parts, "UID "+strconv.Itoa(i+1))
		case "FLAGS":
			hasFlags = true
			parts = append(parts, "") // filled below, once \Seen is settled
		case "RFC822.SIZE":
			parts = append(parts, "RFC822.SIZE "+strconv.Itoa(len(m)))
		case "INTERNALDATE":
			parts = append(parts, `INTERNALDATE "`+internalDate(m).Format("02-Jan-2006 15:04:05 -0700")+`"`)
		case "RFC822":
			literal("RFC822", m)
			setSeen = true
		case "RFC822.HEADER":
			literal("RFC822.HEADER", header)
		case "RFC822.TEXT":
			literal("RFC822.TEXT", text)
			setSeen = true
		case "BODY":
			data := m
			spec := it.section
			switch it.section {
			case "HEADER":
				data = header
			case "TEXT", "1":
				data = text
			case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
				data = headerFields(header, it.fields, it.section == "HEADER.FIELDS.NOT")
				spec += " (" + strings.Join(it.fields, " ") + ")"
			}
			name := "BODY[" + spec + "]"
			if it.partial {
				name += "<" + strconv.FormatUint(uint64(it.start), 10) + ">"
				data = partial(data, it.start, it.count)
			}
			literal(name, data)
			setSeen = setSeen || !it.peek
		}
	}
	// RFC 3501 §6.4.5: BODY[] without PEEK sets \Seen, and the new flags
	// are reported.
	if setSeen && !ss.readOnly && !ss.seen[i] {
		ss.seen[i] = true
		if !hasFlags {
			parts = append(parts, "")
		}
	}
	flags := "FLAGS ()"
	if ss.seen[i] {
		flags = `FLAGS (\Seen)`
	}
	for j, p := range parts {
		if p == "" {
			parts[j] = flags
		}
	}
	fmt.Fprintf(b, "* %d FETCH (%s)\r\n", i+1, strings.Join(parts, " "))
}

// splitMessage returns the header (with the blank line that ends it) and
// the body of m (RFC 3501 §6.4.5 HEADER and TEXT).
func splitMessage(m []byte) (header, text []byte) {
	if bytes.HasPrefix(m, []byte("\r\n")) {
		return m[:2], m[2:]
	}
	if i := bytes.Index(m, []byte("\r\n\r\n")); i >= 0 {
		return m[:i+4], m[i+4:]
	}
	return m, nil
}

// headerFields keeps (or, with not, drops) the header fields named in
// fields (upper case), continuation lines included, and ends the result
// with the blank line.
func headerFields(header []byte, fields []string, not bool) []byte {
	var out bytes.Buffer
	keep := false
	for len(header) > 0 {
		line, rest, _ := bytes.Cut(header, []byte("\r\n"))
		header = rest
		if len(line) == 0 {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := bytes.Cut(line, []byte(":"))
			keep = hasCap(fields, strings.ToUpper(strings.TrimSpace(string(name)))) != not
		}
		if keep {
			out.Write(line)
			out.WriteString("\r\n")
		}
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

// partial returns the bytes of data from start, count of them (0: all).
func partial(data []byte, start, count uint32) []byte {
	if uint64(start) >= uint64(len(data)) {
		return nil
	}
	data = data[start:]
	if count > 0 && uint64(count) < uint64(len(data)) {
		data = data[:count]
	}
	return data
}

// internalDate is the message's Date header, or the Unix epoch: the store
// keeps no arrival time.
func internalDate(m []byte) time.Time {
	if msg, err := mail.ReadMessage(bytes.NewReader(m)); err == nil {
		if t, err := msg.Header.Date(); err == nil {
			return t
		}
	}
	return time.Unix(0, 0).UTC()
}

// cmdSearch answers SEARCH and UID SEARCH (RFC 3501 §6.4.4) for the keys
// ALL, SEEN, UNSEEN, UID set and a sequence set, ANDed.
func (ss *session) cmdSearch(tag string, d *decoder) (err error) {
	n := uint32(len(ss.msgs))
	match := make([]bool, n)
	for i := range match {
		match[i] = true
	}
	keys := 0
	for d.ok() && d.maybe(' ') {
		keys++
		if c := d.peek(); c >= '0' && c <= '9' || c == '*' {
			set := d.seqSet()
			for i := range match {
				match[i] = match[i] && contains(set, uint32(i+1), n)
			}
			continue
		}
		key := strings.ToUpper(d.atom())
		switch key {
		case "CHARSET":
			d.sp()
			if cs := strings.ToUpper(d.astring()); d.ok() && cs != "US-ASCII" && cs != "UTF-8" {
				return ss.reply(tag + " NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset")
			}
			keys--
		case "ALL":
		case "SEEN", "UNSEEN":
			for i := range match {
				match[i] = match[i] && ss.seen[i] == (key == "SEEN")
			}
		case "UID":
			d.sp()
			set := d.seqSet()
			for i := range match {
				match[i] = match[i] && contains(set, uint32(i+1), n)
			}
		default:
			if d.ok() {
				return ss.reply(tag + " NO [CANNOT] Unsupported search criterion " + strconv.Quote(clip(key, 30)))
			}
		}
	}
	if keys == 0 && d.ok() {
		d.fail("missing search criteria")
	}
	if !ss.syntax(tag, d, &err) {
		return err
	}
	var b strings.Builder
	b.WriteString("* SEARCH")
	for i, ok := range match {
		if ok {
			b.WriteString(" " + strconv.Itoa(i+1)) // UIDs are positions
		}
	}
	if err := ss.reply(b.String()); err != nil {
		return err
	}
	return ss.ok(tag, "SEARCH completed")
}
