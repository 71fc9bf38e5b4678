package nntp

import (
	"bytes"
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

// Backend is the news store behind a Server. It is read-only.
type Backend interface {
	// Login checks a user's password; a non-nil error refuses the login
	// (the client sees "481 …", never the error text).
	Login(ctx context.Context, username, password string) error
	// Groups returns the names of the newsgroups the user may read.
	Groups(ctx context.Context, username string) ([]string, error)
	// Articles returns the articles of a group, oldest first: article
	// number n is element n-1. An error or an unknown group is "411".
	Articles(ctx context.Context, username, group string) ([][]byte, error)
}

// Server is an NNTP reader server (RFC 3977) with STARTTLS (RFC 4642),
// AUTHINFO USER/PASS and SASL PLAIN (RFC 4643) and implicit TLS. The zero
// value with a Backend serves plaintext and refuses every login; set
// TLSConfig to offer STARTTLS. A Server must not be copied after first use.
type Server struct {
	starttls.ServerOptions
	// Backend authenticates users and provides the articles. nil refuses
	// every login.
	Backend Backend

	sessions serve.Sessions
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("nntp: panic serving connection", s.Log, nil)
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

// Handshake serves the plaintext part of a session (greeting,
// CAPABILITIES, refusals) until the client sends STARTTLS, then completes
// the TLS handshake and returns the *tls.Conn, with the NNTP dialog over TLS
// still to come (the client will send CAPABILITIES). Commands pipelined
// after STARTTLS always close the connection here. With Implicit the
// handshake is done at once, before the greeting. On error conn is closed.
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

// commandLimit is the command line limit: 512 octets (RFC 3977 §3.1)
// unless MaxLineLength says otherwise.
func (s *Server) commandLimit() int {
	if s.MaxLineLength > 0 {
		return s.MaxLineLength
	}
	return maxCommand
}

func (s *Server) lineOptions() textline.Options {
	return textline.Options{
		Proto:      "nntp",
		Local:      starttls.FromServer,
		MaxLine:    s.commandLimit(),
		StrictCRLF: true,
	}
}

// Sentinels that end a session.
var (
	errQuit       = errors.New("nntp: client quit")
	errHandedOver = errors.New("nntp: connection handed over after STARTTLS")
	errTooMany    = errors.New("nntp: too many errors")
)

// handlers is the command table. Keys are the upper-cased first word.
var handlers = map[string]func(ss *session, args []string) error{
	"CAPABILITIES": (*session).cmdCapabilities,
	"STARTTLS":     (*session).cmdStartTLS,
	"AUTHINFO":     (*session).cmdAuthInfo,
	"MODE":         (*session).cmdMode,
	"GROUP":        (*session).cmdGroup,
	"LISTGROUP":    (*session).cmdListGroup,
	"ARTICLE":      (*session).cmdArticle,
	"HEAD":         (*session).cmdArticle,
	"BODY":         (*session).cmdArticle,
	"STAT":         (*session).cmdArticle,
	"LIST":         (*session).cmdList,
	"DATE":         (*session).cmdDate,
	"HELP":         (*session).cmdHelp,
	"QUIT":         (*session).cmdQuit,
}

// session is one client connection.
type session struct {
	srv           *Server
	ctx           context.Context
	sniff         *textline.Sniffer
	tc            *textline.Conn
	tls           bool
	user          string // name given with AUTHINFO USER, waiting for PASS
	username      string // authenticated user
	group         string // selected group
	articles      [][]byte
	current       int // current article number, 0 when none
	verb          string
	line          string // the command line being served
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
	ss.srv.Log().Debug("nntp: "+msg, "remote", ss.sniff.RemoteAddr().String(), "err", err)
}

func (ss *session) deadline() {
	ss.sniff.SetDeadline(time.Now().Add(ss.srv.CommandTimeout()))
}

func (ss *session) reply(code int, text string) error {
	return ss.tc.WriteLine(strconv.Itoa(code) + " " + text)
}

// bad answers a 5xx reply and counts a protocol error; past the limit it
// closes the session.
func (ss *session) bad(code int, text string) error {
	ss.errors++
	if ss.errors >= ss.srv.ErrorLimit() {
		ss.reply(code, text+" (too many errors, closing)")
		return errTooMany
	}
	return ss.reply(code, text)
}

func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("nntp: panic serving connection", "remote", ss.sniff.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.sniff.SetDeadline(time.Now().Add(time.Second))
			ss.reply(CodeInternalFault, "internal server error, closing")
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
	case errors.Is(err, errQuit), errors.Is(err, errHandedOver):
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
	// RFC 3977 §5.1.1: 201, reading only.
	if err := ss.reply(CodeNoPosting, ss.srv.Name()+" NNTP server ready (no posting)"); err != nil {
		return err
	}
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.deadline()
			ss.reply(CodeUnavailable, "server shutting down")
			return err
		}
		ss.deadline()
		line, err := ss.tc.ReadLine()
		ss.deadline()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
				ss.reply(CodeUnknownCommand, "TLS received on the plaintext NNTP port; use STARTTLS, or port 563 for implicit TLS")
				return err
			case errors.Is(err, starttls.ErrLineTooLong):
				ss.reply(CodeUnknownCommand, "line too long, closing")
				return err
			case errors.Is(err, starttls.ErrProtocol):
				if e := ss.bad(CodeUnknownCommand, "malformed command line (CRLF required, no NUL)"); e != nil {
					return errors.Join(err, e)
				}
				continue
			case errors.As(err, &ne) && ne.Timeout() && ss.ctx.Err() == nil:
				ss.reply(CodeUnavailable, "idle timeout, closing")
				return err
			}
			return err
		}
		if err := ss.dispatch(line); err != nil {
			return err
		}
	}
}

func (ss *session) dispatch(line string) error {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ss.bad(CodeUnknownCommand, "empty command")
	}
	verb := strings.ToUpper(f[0])
	h, ok := handlers[verb]
	if !ok {
		return ss.bad(CodeUnknownCommand, "unknown command")
	}
	ss.verb, ss.line = verb, line
	return h(ss, f[1:])
}

func (ss *session) offersSTARTTLS() bool {
	return ss.srv.TLSConfig != nil && !ss.srv.Implicit && !ss.tls && ss.username == ""
}

func (ss *session) loginAllowed() bool { return ss.tls || ss.srv.AllowPlaintextLogin }

// caps is the capability list now (RFC 3977 §5.2, RFC 4642 §2.1, RFC 4643
// §2.1): STARTTLS only before TLS, AUTHINFO mechanisms only when login is
// allowed, no AUTHINFO after login.
func (ss *session) caps() []string {
	caps := []string{"VERSION 2", "READER"}
	if ss.offersSTARTTLS() {
		caps = append(caps, CapSTARTTLS)
	}
	if ss.username == "" {
		if ss.loginAllowed() {
			caps = append(caps, "AUTHINFO USER SASL", "SASL PLAIN")
		} else {
			caps = append(caps, CapAuthInfo)
		}
	}
	return append(caps, "LIST ACTIVE NEWSGROUPS", "IMPLEMENTATION starttls-go")
}

func (ss *session) cmdCapabilities(args []string) error {
	lines := append([]string{"101 Capability list:"}, ss.caps()...)
	return ss.tc.WriteLines(append(lines, ".")...)
}

// cmdStartTLS answers STARTTLS (RFC 4642 §2.2) and runs the handshake.
func (ss *session) cmdStartTLS(args []string) error {
	switch {
	case len(args) != 0:
		return ss.bad(CodeSyntax, "STARTTLS takes no argument")
	case ss.tls:
		return ss.bad(CodeNotPermitted, "already using TLS")
	case ss.username != "":
		return ss.bad(CodeNotPermitted, "STARTTLS not permitted after authentication")
	case ss.srv.TLSConfig == nil || ss.srv.Implicit:
		return ss.bad(CodeNotPermitted, "STARTTLS not available")
	case ss.srv.RefuseUpgrade && ss.srv.RefusePermanently:
		return ss.reply(CodeNotPermitted, "TLS not available")
	case ss.srv.RefuseUpgrade:
		return ss.reply(CodeCannotTLS, "Can not initiate TLS negotiation")
	}
	pipelined := ss.tc.Buffered()
	if ss.sniff.SawClientHello() {
		pipelined++
	}
	if err := ss.tc.WriteLinesThen(ss.srv.Forged("STARTTLS"), strconv.Itoa(CodeContinueTLS)+" Continue with TLS negotiation"); err != nil {
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

// handshake runs the server TLS handshake and resets the session state
// (RFC 4642 §2.2.2).
func (ss *session) handshake() error {
	ss.sniff.Stop()
	tc := tls.Server(ss.sniff, ss.srv.TLSConfig)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.CommandTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return &starttls.HandshakeError{Err: err}
	}
	ss.tls = true
	ss.user = ""
	ss.group, ss.articles, ss.current = "", nil, 0
	ss.upgraded = tc
	ss.tlsConn = tc
	return nil
}

// cmdAuthInfo answers AUTHINFO USER, PASS and SASL (RFC 4643 §2.3, §2.4).
func (ss *session) cmdAuthInfo(args []string) error {
	if len(args) == 0 {
		return ss.bad(CodeSyntax, "usage: AUTHINFO USER name|PASS password|SASL mechanism")
	}
	if ss.username != "" {
		return ss.bad(CodeNotPermitted, "already authenticated")
	}
	if !ss.loginAllowed() {
		return ss.bad(CodeEncryptionNeeded, "Encryption required: use STARTTLS first")
	}
	switch strings.ToUpper(args[0]) {
	case "USER":
		if len(args) != 2 {
			return ss.bad(CodeSyntax, "usage: AUTHINFO USER name")
		}
		ss.user = args[1]
		return ss.reply(CodePasswordRequired, "Password required")
	case "PASS":
		// The password is the rest of the line and may contain spaces
		// (as INN reads it).
		pass := passArg(ss.line)
		if pass == "" {
			return ss.bad(CodeSyntax, "usage: AUTHINFO PASS password")
		}
		if ss.user == "" {
			return ss.bad(CodeAuthSequence, "Authentication commands issued out of sequence")
		}
		user := ss.user
		ss.user = ""
		return ss.authenticate(user, pass)
	case "SASL":
		return ss.authSASL(args[1:])
	}
	return ss.bad(CodeSyntax, "unknown AUTHINFO subcommand")
}

// passArg returns what follows "AUTHINFO PASS " on a command line.
func passArg(line string) string {
	rest := strings.TrimLeft(line, " \t")
	for range 2 { // skip AUTHINFO and PASS
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			return ""
		}
		rest = strings.TrimLeft(rest[i:], " \t")
	}
	return rest
}

// authSASL runs AUTHINFO SASL PLAIN (RFC 4643 §2.4, RFC 4616), with an
// initial response or a 383 continuation.
func (ss *session) authSASL(args []string) error {
	if len(args) == 0 || len(args) > 2 {
		return ss.bad(CodeSyntax, "usage: AUTHINFO SASL mechanism [initial-response]")
	}
	if !strings.EqualFold(args[0], "PLAIN") {
		return ss.bad(CodeNotPermitted, "mechanism not supported")
	}
	var ir string
	if len(args) == 2 {
		ir = args[1]
	} else {
		if err := ss.reply(CodeSASLContinue, "="); err != nil {
			return err
		}
		line, err := ss.tc.ReadLine()
		if err != nil {
			return err
		}
		if line == "*" {
			return ss.bad(CodeAuthFailed, "authentication cancelled")
		}
		ir = line
	}
	if ir == "=" {
		ir = ""
	}
	authz, user, pass, err := decodePlain(ir)
	if err != nil {
		return ss.bad(CodeSyntax, "malformed PLAIN response")
	}
	if authz != "" && authz != user {
		return ss.bad(CodeAuthFailed, "authorization identity not permitted")
	}
	return ss.authenticate(user, pass)
}

// decodePlain decodes a SASL PLAIN message (RFC 4616 §2).
func decodePlain(s string) (authz, user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", "", err
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return "", "", "", errors.New("nntp: malformed PLAIN message")
	}
	return parts[0], parts[1], parts[2], nil
}

func (ss *session) authenticate(user, pass string) error {
	ss.srv.SawCredentials("AUTHINFO", user, pass, ss.tls)
	if ss.srv.Backend == nil {
		return ss.bad(CodeAuthFailed, "Authentication failed")
	}
	if err := ss.srv.Backend.Login(ss.ctx, user, pass); err != nil {
		ss.debug("login failed for "+strconv.Quote(user), err)
		return ss.bad(CodeAuthFailed, "Authentication failed")
	}
	ss.username = user
	return ss.reply(CodeAuthAccepted, "Authentication accepted")
}

// needLogin answers 480 when no user is logged in (RFC 4643 §2.2, RFC 3977
// §3.2.1).
func (ss *session) needLogin() (bool, error) {
	if ss.username != "" {
		return true, nil
	}
	return false, ss.reply(CodeAuthRequired, "Authentication required")
}

func (ss *session) cmdMode(args []string) error {
	if len(args) != 1 || !strings.EqualFold(args[0], "READER") {
		return ss.bad(CodeSyntax, "usage: MODE READER")
	}
	return ss.reply(CodeNoPosting, "Reader mode, posting prohibited")
}

// selectGroup loads a group the user may read; it answers 411 itself.
func (ss *session) selectGroup(name string) (bool, error) {
	groups, err := ss.srv.Backend.Groups(ss.ctx, ss.username)
	if err != nil {
		ss.debug("groups", err)
		return false, ss.reply(CodeNoSuchGroup, "No such newsgroup")
	}
	found := false
	for _, g := range groups {
		found = found || g == name
	}
	if !found {
		return false, ss.reply(CodeNoSuchGroup, "No such newsgroup")
	}
	arts, err := ss.srv.Backend.Articles(ss.ctx, ss.username, name)
	if err != nil {
		ss.debug("articles of "+strconv.Quote(name), err)
		return false, ss.reply(CodeNoSuchGroup, "No such newsgroup")
	}
	ss.group = name
	ss.articles = make([][]byte, len(arts))
	for i, a := range arts {
		ss.articles[i] = normalize(a)
	}
	ss.current = 0
	if len(arts) > 0 {
		ss.current = 1
	}
	return true, nil
}

// groupLine is the text of a 211 reply.
func (ss *session) groupLine() string {
	n := len(ss.articles)
	if n == 0 {
		return fmt.Sprintf("0 0 0 %s", ss.group)
	}
	return fmt.Sprintf("%d 1 %d %s", n, n, ss.group)
}

// cmdGroup answers GROUP (RFC 3977 §6.1.1).
func (ss *session) cmdGroup(args []string) error {
	if len(args) != 1 {
		return ss.bad(CodeSyntax, "usage: GROUP newsgroup")
	}
	if ok, err := ss.needLogin(); !ok {
		return err
	}
	if ok, err := ss.selectGroup(args[0]); !ok {
		return err
	}
	return ss.reply(CodeGroupSelected, ss.groupLine()+" group selected")
}

// cmdListGroup answers LISTGROUP [group [range]] (RFC 3977 §6.1.2).
func (ss *session) cmdListGroup(args []string) error {
	if len(args) > 2 {
		return ss.bad(CodeSyntax, "usage: LISTGROUP [newsgroup [range]]")
	}
	if ok, err := ss.needLogin(); !ok {
		return err
	}
	if len(args) > 0 {
		if ok, err := ss.selectGroup(args[0]); !ok {
			return err
		}
	} else if ss.group == "" {
		return ss.reply(CodeNoGroup, "No newsgroup selected")
	}
	lo, hi := 1, len(ss.articles)
	if len(args) == 2 {
		var ok bool
		if lo, hi, ok = parseRange(args[1], len(ss.articles)); !ok {
			return ss.bad(CodeSyntax, "invalid range")
		}
	}
	lines := []string{strconv.Itoa(CodeGroupSelected) + " " + ss.groupLine() + " list follows"}
	for n := max(lo, 1); n <= min(hi, len(ss.articles)); n++ {
		lines = append(lines, strconv.Itoa(n))
	}
	return ss.tc.WriteLines(append(lines, ".")...)
}

// parseRange parses "n", "n-" or "n-m" (RFC 3977 §4.2 range).
func parseRange(s string, high int) (lo, hi int, ok bool) {
	a, b, dash := strings.Cut(s, "-")
	lo, err := strconv.Atoi(a)
	if err != nil || lo < 0 {
		return 0, 0, false
	}
	switch {
	case !dash:
		return lo, lo, true
	case b == "":
		return lo, high, true
	}
	hi, err = strconv.Atoi(b)
	if err != nil || hi < 0 {
		return 0, 0, false
	}
	return lo, hi, true
}

// cmdArticle answers ARTICLE, HEAD, BODY and STAT (RFC 3977 §6.2).
func (ss *session) cmdArticle(args []string) error {
	verb := ss.verb
	if len(args) > 1 {
		return ss.bad(CodeSyntax, "usage: "+verb+" [number|<message-id>]")
	}
	if ok, err := ss.needLogin(); !ok {
		return err
	}
	var art []byte
	var num int
	var id string
	switch {
	case len(args) == 1 && strings.HasPrefix(args[0], "<"):
		id = args[0]
		if !validMessageID(id) {
			return ss.bad(CodeSyntax, "invalid message-id")
		}
		var err error
		if art, err = ss.byID(id); err != nil {
			return err
		}
		if art == nil {
			return ss.reply(CodeNoSuchID, "No article with that message-id")
		}
	case ss.group == "":
		return ss.reply(CodeNoGroup, "No newsgroup selected")
	case len(args) == 1:
		n, err := strconv.Atoi(args[0])
		if err != nil || args[0][0] < '0' || args[0][0] > '9' {
			return ss.bad(CodeSyntax, "invalid article number")
		}
		if n < 1 || n > len(ss.articles) {
			return ss.reply(CodeNoSuchNumber, "No article with that number")
		}
		num = n
		ss.current = n
	default:
		if ss.current == 0 {
			return ss.reply(CodeNoCurrent, "Current article number is invalid")
		}
		num = ss.current
	}
	if art == nil {
		art = ss.articles[num-1]
		id = messageID(art, num, ss.group, ss.srv.Name())
	}
	head, body := split(art)
	switch verb {
	case "ARTICLE":
		ss.reply(CodeArticle, fmt.Sprintf("%d %s", num, id))
		return ss.tc.WriteRaw(stuff(art))
	case "HEAD":
		ss.reply(CodeHead, fmt.Sprintf("%d %s", num, id))
		return ss.tc.WriteRaw(stuff(head))
	case "BODY":
		ss.reply(CodeBody, fmt.Sprintf("%d %s", num, id))
		return ss.tc.WriteRaw(stuff(body))
	}
	return ss.reply(CodeStat, fmt.Sprintf("%d %s", num, id))
}

// byID finds an article by message-id in every group the user may read.
func (ss *session) byID(id string) ([]byte, error) {
	groups, err := ss.srv.Backend.Groups(ss.ctx, ss.username)
	if err != nil {
		return nil, nil
	}
	for _, g := range groups {
		arts, err := ss.srv.Backend.Articles(ss.ctx, ss.username, g)
		if err != nil {
			continue
		}
		for i, a := range arts {
			a = normalize(a)
			if messageID(a, i+1, g, ss.srv.Name()) == id {
				return a, nil
			}
		}
	}
	return nil, nil
}

// validMessageID checks the shape of a message-id (RFC 3977 §3.6): "<…>",
// at most 250 octets, printable US-ASCII without ">" inside.
func validMessageID(id string) bool {
	if len(id) < 3 || len(id) > 250 || id[0] != '<' || id[len(id)-1] != '>' {
		return false
	}
	for i := 1; i < len(id)-1; i++ {
		if id[i] <= ' ' || id[i] > '~' || id[i] == '>' {
			return false
		}
	}
	return true
}

// messageID returns the Message-ID header of a normalized article, or a
// made-up one when it has none or a malformed one.
func messageID(art []byte, num int, group, host string) string {
	head, _ := split(art)
	for _, l := range strings.Split(string(head), "\r\n") {
		name, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(name, "Message-ID") {
			if v = strings.TrimSpace(v); validMessageID(v) {
				return v
			}
			break
		}
	}
	return fmt.Sprintf("<%d.%s@%s>", num, group, host)
}

// split returns the header (without the blank line) and the body of a
// normalized article.
func split(art []byte) (head, body []byte) {
	if bytes.HasPrefix(art, []byte("\r\n")) {
		return nil, art[2:]
	}
	if i := bytes.Index(art, []byte("\r\n\r\n")); i >= 0 {
		return art[:i+2], art[i+4:]
	}
	return art, nil
}

// normalize returns m with CRLF line endings, ending in CRLF when not
// empty.
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

// stuff dot-stuffs normalized lines (RFC 3977 §3.1.1) and appends the
// terminating ".".
func stuff(m []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(m) + len(m)/64 + 8)
	for len(m) > 0 {
		line, rest, _ := bytes.Cut(m, []byte("\r\n"))
		m = rest
		if len(line) > 0 && line[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

// cmdList answers LIST [ACTIVE|NEWSGROUPS [wildmat]] (RFC 3977 §7.6); the
// wildmat is ignored: every group is listed.
func (ss *session) cmdList(args []string) error {
	kw := "ACTIVE"
	if len(args) > 0 {
		kw = strings.ToUpper(args[0])
	}
	if len(args) > 2 || (kw != "ACTIVE" && kw != "NEWSGROUPS") {
		return ss.bad(CodeSyntax, "usage: LIST [ACTIVE|NEWSGROUPS [wildmat]]")
	}
	if ok, err := ss.needLogin(); !ok {
		return err
	}
	groups, err := ss.srv.Backend.Groups(ss.ctx, ss.username)
	if err != nil {
		ss.debug("groups", err)
		return ss.reply(CodeInternalFault, "unable to list the newsgroups")
	}
	lines := []string{"215 list of newsgroups follows"}
	for _, g := range groups {
		if kw == "NEWSGROUPS" {
			lines = append(lines, g+"\t"+g)
			continue
		}
		arts, err := ss.srv.Backend.Articles(ss.ctx, ss.username, g)
		if err != nil {
			continue
		}
		if n := len(arts); n > 0 {
			lines = append(lines, fmt.Sprintf("%s %d 1 n", g, n))
		} else {
			lines = append(lines, g+" 0 1 n")
		}
	}
	return ss.tc.WriteLines(append(lines, ".")...)
}

func (ss *session) cmdDate(args []string) error {
	return ss.reply(CodeDate, time.Now().UTC().Format("20060102150405"))
}

func (ss *session) cmdHelp(args []string) error {
	return ss.tc.WriteLines("100 Help text follows",
		"CAPABILITIES, STARTTLS, AUTHINFO USER|PASS|SASL, MODE READER,",
		"GROUP, LISTGROUP, ARTICLE, HEAD, BODY, STAT, LIST ACTIVE|NEWSGROUPS,",
		"DATE, HELP, QUIT",
		".")
}

func (ss *session) cmdQuit(args []string) error {
	ss.reply(CodeClosing, "closing connection")
	if ss.handshakeOnly {
		return errorf("client quit before the upgrade")
	}
	return errQuit
}
