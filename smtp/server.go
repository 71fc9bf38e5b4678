package smtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/serve"
	"github.com/starttls/starttls/internal/textline"
)

// Server defaults.
const (
	// DefaultMaxMessageBytes is the message size limit announced in SIZE
	// when Server.MaxMessageBytes is 0.
	DefaultMaxMessageBytes = 10 << 20
	// DefaultMaxRecipients is the recipient limit when Server.MaxRecipients
	// is 0 (RFC 5321 §4.5.3.1.8 asks for at least 100).
	DefaultMaxRecipients = 100
	// DefaultMaxCommandLength bounds a command line when
	// ServerOptions.MaxLineLength is 0. RFC 5321 §4.5.3.1.4 sets 512 octets
	// and §4.5.3.1 allows more for extensions; AUTH PLAIN initial responses
	// need room.
	DefaultMaxCommandLength = 2048
)

// Backend receives what the server accepts.
type Backend interface {
	// Login checks credentials given with AUTH PLAIN or AUTH LOGIN. A
	// *ReplyError chooses the reply; any other error answers
	// 535 5.7.8 (ErrAuthFailed).
	Login(ctx context.Context, username, password string) error
	// Deliver takes one message, dot-unstuffed, with CRLF line endings and
	// at most Server.MaxMessageBytes long. A *ReplyError chooses the reply;
	// any other error answers 451 4.3.0 (ErrLocalError). For LMTP the
	// same answer is given for every recipient.
	Deliver(ctx context.Context, from string, to []string, data []byte) error
}

// Server is an SMTP, submission or LMTP server with STARTTLS.
//
// Set TLSConfig to offer STARTTLS (or, with Implicit, to speak TLS from the
// first byte, port 465). AUTH is offered and accepted only over TLS unless
// AllowPlaintextLogin is set; before TLS it is answered with
// "530 5.7.0 Must issue a STARTTLS command first".
//
// Plaintext pipelined after STARTTLS (CVE-2011-0411) is never executed: when
// anything follows the STARTTLS command in the read buffer, the server sends
// its 220 go-ahead, discards those bytes and closes the connection without
// starting TLS. InsecureKeepPipelined instead feeds them to the TLS session,
// reproducing the bug for the lab.
type Server struct {
	starttls.ServerOptions
	// Backend checks logins and takes messages. nil refuses every login and
	// accepts and discards every message.
	Backend Backend
	// LMTP makes the server speak LMTP (RFC 2033): LHLO instead of
	// EHLO/HELO and one reply per recipient after DATA.
	LMTP bool
	// RequireAuth refuses MAIL before a successful AUTH (submission, RFC
	// 6409 §4.3): "530 5.7.0 Authentication required".
	RequireAuth bool
	// MaxMessageBytes limits a message, announced in SIZE (RFC 1870) and
	// enforced while reading; 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// MaxRecipients limits the recipients of one message; 0 means
	// DefaultMaxRecipients.
	MaxRecipients int

	sessions serve.Sessions
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("smtp: panic serving a connection", s.Log, nil)
}

func (s *Server) maxMessage() int64 {
	if s.MaxMessageBytes <= 0 {
		return DefaultMaxMessageBytes
	}
	return s.MaxMessageBytes
}

func (s *Server) maxRecipients() int {
	if s.MaxRecipients <= 0 {
		return DefaultMaxRecipients
	}
	return s.MaxRecipients
}

func (s *Server) lineLimit() int {
	if s.MaxLineLength <= 0 {
		return DefaultMaxCommandLength
	}
	return s.MaxLineLength
}

// Serve accepts connections on l and serves each in its own goroutine until
// Close or Shutdown; it then returns an error.
func (s *Server) Serve(l net.Listener) error { return s.init().Serve(l, s.serve) }

// ServeConn serves one connection, a whole session, and closes it. It
// returns nil when the client quit or went away, and the reason otherwise
// (an error wrapping starttls.ErrTLSOnPlaintextPort when the client sent a
// TLS ClientHello instead of a command). Cancelling ctx closes conn.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	return s.init().ServeConn(ctx, conn, s.serve)
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error { return s.sessions.Close() }

// Shutdown closes the listeners and waits for the sessions to end until
// ctx is done, when it closes them.
func (s *Server) Shutdown(ctx context.Context) error { return s.sessions.Shutdown(ctx) }

// Handshake serves the plaintext part of a session on conn (greeting, EHLO,
// refusals) until the client sends STARTTLS, then runs the TLS handshake
// and returns the *tls.Conn: the caller (a proxy) continues from there. MAIL,
// AUTH and the like are answered "530 5.7.0 Must issue a STARTTLS command
// first". Bytes pipelined after STARTTLS always close the connection here,
// InsecureKeepPipelined or not. With Implicit it only runs the handshake.
// On error conn is closed.
func (s *Server) Handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	if s.TLSConfig == nil {
		conn.Close()
		return nil, errors.New("smtp: Server.Handshake needs a TLSConfig")
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	tconn, err := s.handshake(ctx, conn)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return tconn, nil
}

func (s *Server) handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	if s.Implicit {
		tconn := tls.Server(conn, s.TLSConfig)
		conn.SetDeadline(time.Now().Add(s.CommandTimeout()))
		if err := tconn.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("smtp: TLS handshake: %w", err)
		}
		return tconn, nil
	}
	ss := s.newSession(ctx, conn)
	ss.upgradeOnly = true
	err := ss.run()
	if errors.Is(err, errUpgraded) {
		return ss.tls, nil
	}
	if err == nil {
		err = errors.New("smtp: the client ended the session before STARTTLS")
	}
	return nil, err
}

// serve runs a full session on conn; the caller closes conn.
func (s *Server) serve(ctx context.Context, conn net.Conn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	log := s.Log().With("remote", conn.RemoteAddr().String())
	ss := s.newSession(ctx, conn)
	if s.Implicit {
		if s.TLSConfig == nil {
			return errors.New("smtp: Implicit needs a TLSConfig")
		}
		tconn := tls.Server(conn, s.TLSConfig)
		conn.SetDeadline(time.Now().Add(s.CommandTimeout()))
		if err := tconn.HandshakeContext(ctx); err != nil {
			log.Debug("smtp: TLS handshake failed", "err", err)
			return fmt.Errorf("smtp: TLS handshake: %w", err)
		}
		ss.tls = tconn
		ss.tc = ss.newConn(tconn)
	}
	err := ss.run()
	if ss.tls != nil {
		// close_notify, so that clients see a clean end of the TLS session.
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		ss.tls.Close()
	}
	if errors.Is(err, errQuit) || textline.IsClosed(err) {
		err = nil
	}
	if err != nil {
		log.Debug("smtp: session ended", "err", err)
	}
	return err
}

var (
	errQuit     = errors.New("smtp: client quit")
	errUpgraded = errors.New("smtp: upgraded")
)

// session is the state of one connection (RFC 5321 §4.1.4 order of
// commands), reset by EHLO, RSET and STARTTLS.
type session struct {
	s           *Server
	ctx         context.Context
	raw         net.Conn
	tc          *textline.Conn
	tls         *tls.Conn // non-nil once TLS is on
	upgradeOnly bool      // Handshake: stop after STARTTLS

	helo  string // EHLO/HELO/LHLO argument; "" before it
	ehlo  bool   // EHLO or LHLO rather than HELO
	user  string // authenticated user
	inTx  bool   // MAIL accepted
	from  string
	rcpts []string
	errs  int
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	ss := &session{s: s, ctx: ctx, raw: conn}
	ss.tc = ss.newConn(&textline.Sniffer{Conn: conn})
	return ss
}

func (ss *session) newConn(conn net.Conn) *textline.Conn {
	return textline.New(conn, textline.Options{
		Proto:      protoName(ss.s.LMTP),
		Local:      starttls.FromServer,
		MaxLine:    ss.s.lineLimit(),
		StrictCRLF: true,
	})
}

func (ss *session) send(e *ReplyError) error { return ss.tc.WriteLines(e.lines()...) }

func (ss *session) reply(code int, enh [3]int, msg string) error {
	return ss.send(&ReplyError{Code: code, Enhanced: enh, Message: msg})
}

// fail answers a client error and counts it; past ErrorLimit it closes the
// session with 421.
func (ss *session) fail(e *ReplyError) error {
	if err := ss.send(e); err != nil {
		return err
	}
	ss.errs++
	if ss.errs >= ss.s.ErrorLimit() {
		ss.reply(421, [3]int{4, 7, 0}, ss.s.Name()+" Too many errors, closing connection")
		return fmt.Errorf("smtp: %d protocol errors, last: %w", ss.errs, e)
	}
	return nil
}

func (ss *session) resetTx() {
	ss.inTx, ss.from, ss.rcpts = false, "", nil
}

// lastWords gives a closing reply time to be written after a read
// deadline expired.
func (ss *session) lastWords(code int, enh [3]int, msg string) {
	ss.raw.SetWriteDeadline(time.Now().Add(5 * time.Second))
	ss.reply(code, enh, msg)
}

func (ss *session) deadline() {
	ss.raw.SetDeadline(time.Now().Add(ss.s.CommandTimeout()))
}

func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.s.Log().Error("smtp: panic serving a connection", "remote", ss.raw.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.lastWords(421, [3]int{4, 3, 0}, ss.s.Name()+" Internal error, closing connection")
			err = fmt.Errorf("smtp: panic: %v", v)
		}
	}()
	ss.deadline()
	greet := " ESMTP ready"
	if ss.s.LMTP {
		greet = " LMTP ready"
	}
	if err := ss.tc.WriteLine("220 " + ss.s.Name() + greet); err != nil {
		return err
	}
	for {
		ss.deadline()
		line, err := ss.tc.ReadLine()
		if err != nil {
			if err := ss.readError(err); err != nil {
				return err
			}
			continue
		}
		if err := ss.handle(line); err != nil {
			return err
		}
	}
}

// readError answers a failed command read. It returns nil when the session
// can go on (the bad line was consumed whole).
func (ss *session) readError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
		return err
	case errors.As(err, &ne) && ne.Timeout():
		ss.lastWords(421, [3]int{4, 4, 2}, ss.s.Name()+" Idle timeout, closing connection")
		return err
	case errors.Is(err, starttls.ErrLineTooLong):
		// The rest of the line is still unread: it must not be taken for a
		// command, so the session ends here.
		ss.reply(500, [3]int{5, 5, 2}, "Line too long, closing connection")
		return err
	case errors.Is(err, starttls.ErrProtocol):
		// Bare LF, bare CR or NUL (SMTP smuggling, RFC 5321 §2.3.8).
		return ss.fail(&ReplyError{500, [3]int{5, 5, 2}, "Syntax error: command lines end with CRLF and contain no NUL or bare CR"})
	}
	return err
}

func (ss *session) handle(line string) error {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	arg = strings.TrimSpace(arg)
	if ss.upgradeOnly {
		switch verb {
		case "EHLO", "HELO", "LHLO", "STARTTLS", "NOOP", "RSET", "HELP", "QUIT":
		default:
			return ss.fail(ErrTLSRequired)
		}
	}
	switch verb {
	case "EHLO", "HELO", "LHLO":
		return ss.hello(verb, arg)
	case "STARTTLS":
		return ss.startTLS(arg)
	case "AUTH":
		return ss.auth(arg)
	case "MAIL":
		return ss.mail(arg)
	case "RCPT":
		return ss.rcpt(arg)
	case "DATA":
		return ss.data(arg)
	case "RSET":
		if arg != "" {
			return ss.fail(&ReplyError{501, [3]int{5, 5, 4}, "Syntax: RSET"})
		}
		ss.resetTx()
		return ss.reply(250, [3]int{2, 0, 0}, "OK")
	case "NOOP":
		return ss.reply(250, [3]int{2, 0, 0}, "OK")
	case "VRFY":
		return ss.reply(252, [3]int{2, 5, 0}, "Cannot VRFY user, but will accept message and attempt delivery")
	case "HELP":
		return ss.reply(214, [3]int{2, 0, 0}, "See RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)")
	case "QUIT":
		ss.reply(221, [3]int{2, 0, 0}, ss.s.Name()+" Bye")
		return errQuit
	case "EXPN", "BDAT", "TURN", "ETRN", "SEND", "SOML", "SAML":
		return ss.fail(&ReplyError{502, [3]int{5, 5, 1}, "Command not implemented"})
	}
	return ss.fail(ErrUnknownCommand)
}

func (ss *session) canStartTLS() bool {
	return ss.s.TLSConfig != nil && !ss.s.Implicit && ss.tls == nil
}

func (ss *session) authAllowed() bool {
	return ss.tls != nil || ss.s.AllowPlaintextLogin
}

// hello answers EHLO, HELO and LHLO (RFC 5321 §4.1.1.1, RFC 2033 §4.1).
func (ss *session) hello(verb, arg string) error {
	if ss.s.LMTP != (verb == "LHLO") {
		if ss.s.LMTP {
			return ss.fail(&ReplyError{500, [3]int{5, 5, 1}, "This is an LMTP server: use LHLO"})
		}
		return ss.fail(ErrUnknownCommand)
	}
	if arg == "" {
		return ss.fail(&ReplyError{501, [3]int{5, 5, 4}, "Syntax: " + verb + " hostname"})
	}
	ss.resetTx()
	ss.helo, ss.ehlo = arg, verb != "HELO"
	if !ss.ehlo {
		return ss.tc.WriteLine("250 " + ss.s.Name())
	}
	lines := []string{
		ss.s.Name(),
		"PIPELINING",
		"SIZE " + strconv.FormatInt(ss.s.maxMessage(), 10),
		"8BITMIME",
		"ENHANCEDSTATUSCODES",
	}
	if ss.canStartTLS() {
		lines = append(lines, "STARTTLS")
	}
	if ss.authAllowed() {
		lines = append(lines, "AUTH PLAIN LOGIN")
	}
	for i := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		lines[i] = "250" + sep + lines[i]
	}
	return ss.tc.WriteLines(lines...)
}

// startTLS answers STARTTLS (RFC 3207 §4) and, on 220, runs the handshake
// and resets the session (§4.2).
func (ss *session) startTLS(arg string) error {
	switch {
	case arg != "":
		return ss.fail(&ReplyError{501, [3]int{5, 5, 4}, "Syntax error (no parameters allowed)"})
	case ss.tls != nil:
		return ss.fail(&ReplyError{503, [3]int{5, 5, 1}, "TLS already active"})
	case !ss.canStartTLS():
		return ss.fail(&ReplyError{502, [3]int{5, 5, 1}, "STARTTLS not available"})
	case ss.s.RefuseUpgrade && ss.s.RefusePermanently:
		return ss.send(&ReplyError{554, [3]int{5, 7, 3}, "TLS not available"})
	case ss.s.RefuseUpgrade:
		return ss.send(ErrTLSNotAvailable)
	}
	goAhead := &ReplyError{Code: 220, Enhanced: [3]int{2, 0, 0}, Message: "Ready to start TLS"}
	if err := ss.tc.WriteLinesThen(ss.s.Forged("STARTTLS"), goAhead.lines()...); err != nil {
		return err
	}
	var keep []byte
	if n := ss.tc.Buffered(); n > 0 {
		if !ss.s.InsecureKeepPipelined || ss.upgradeOnly {
			// CVE-2011-0411: never execute plaintext sent after STARTTLS.
			return fmt.Errorf("smtp: %d bytes pipelined after STARTTLS, discarded, closing: %w", n, starttls.ErrPlaintextAfterUpgrade)
		}
		keep = ss.tc.TakeBuffered()
	}
	tconn := tls.Server(ss.raw, ss.s.TLSConfig)
	ss.deadline()
	if err := tconn.HandshakeContext(ss.ctx); err != nil {
		return fmt.Errorf("smtp: TLS handshake after STARTTLS: %w", err)
	}
	ss.tls = tconn
	// RFC 3207 §4.2: forget everything learnt from the client.
	ss.resetTx()
	ss.helo, ss.ehlo, ss.user = "", false, ""
	if ss.upgradeOnly {
		return errUpgraded
	}
	if keep != nil {
		ss.tc = ss.newConn(textline.KeepPlaintext(tconn, keep))
	} else {
		ss.tc = ss.newConn(tconn)
	}
	return nil
}

// auth answers AUTH PLAIN and AUTH LOGIN (RFC 4954, RFC 4616).
func (ss *session) auth(arg string) error {
	switch {
	case !ss.ehlo:
		return ss.fail(&ReplyError{503, [3]int{5, 5, 1}, "Send EHLO first"})
	case !ss.authAllowed():
		if ss.s.TLSConfig != nil && !ss.s.Implicit {
			return ss.fail(ErrTLSRequired)
		}
		return ss.fail(ErrEncryptionRequired)
	case ss.user != "":
		return ss.fail(&ReplyError{503, [3]int{5, 5, 1}, "Already authenticated"})
	case ss.inTx:
		return ss.fail(&ReplyError{503, [3]int{5, 5, 1}, "AUTH not permitted during a mail transaction"})
	}
	mech, initial, _ := strings.Cut(arg, " ")
	var user, pass string
	switch strings.ToUpper(mech) {
	case "PLAIN":
		resp, err := ss.saslResponse(initial, "")
		if err != nil || resp == nil {
			return ss.saslError(err)
		}
		parts := strings.Split(string(resp), "\x00")
		if len(parts) != 3 || parts[1] == "" {
			return ss.fail(&ReplyError{501, [3]int{5, 5, 2}, "Invalid PLAIN response"})
		}
		ss.s.SawCredentials("AUTH PLAIN", parts[1], parts[2], ss.tls != nil)
		if parts[0] != "" && parts[0] != parts[1] {
			return ss.fail(ErrAuthFailed)
		}
		user, pass = parts[1], parts[2]
	case "LOGIN":
		u, err := ss.saslResponse(initial, "VXNlcm5hbWU6") // "Username:"
		if err != nil || u == nil {
			return ss.saslError(err)
		}
		p, err := ss.saslResponse("", "UGFzc3dvcmQ6") // "Password:"
		if err != nil || p == nil {
			return ss.saslError(err)
		}
		user, pass = string(u), string(p)
		ss.s.SawCredentials("AUTH LOGIN", user, pass, ss.tls != nil)
	default:
		return ss.fail(&ReplyError{504, [3]int{5, 5, 4}, "Unrecognized authentication mechanism"})
	}
	err := errors.New("no backend")
	if ss.s.Backend != nil {
		err = ss.s.Backend.Login(ss.ctx, user, pass)
	}
	if err != nil {
		ss.s.Log().Debug("smtp: login failed", "remote", ss.raw.RemoteAddr().String(), "user", user, "err", err)
		var re *ReplyError
		if !errors.As(err, &re) {
			re = ErrAuthFailed
		}
		return ss.fail(re)
	}
	ss.user = user
	return ss.reply(235, [3]int{2, 7, 0}, "Authentication successful")
}

var (
	errSASLCancelled = &ReplyError{501, [3]int{5, 0, 0}, "Authentication cancelled"}
	errSASLBase64    = &ReplyError{501, [3]int{5, 5, 2}, "Invalid base64 data"}
)

// saslResponse returns the decoded client response: the initial response
// when given ("=" is an empty one, RFC 4954 §4), else the answer to a 334
// challenge. A nil slice with a nil error cannot happen; errors are
// *ReplyError for the client's faults and others for I/O.
func (ss *session) saslResponse(initial, challenge string) ([]byte, error) {
	if initial == "" {
		if err := ss.tc.WriteLine("334 " + challenge); err != nil {
			return nil, err
		}
		ss.deadline()
		line, err := ss.tc.ReadLine()
		if err != nil {
			return nil, err
		}
		initial = line
	}
	switch initial {
	case "*":
		return nil, errSASLCancelled
	case "=":
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(initial)
	if err != nil {
		return nil, errSASLBase64
	}
	return b, nil
}

func (ss *session) saslError(err error) error {
	var re *ReplyError
	if errors.As(err, &re) {
		return ss.fail(re)
	}
	if err == nil {
		err = errors.New("smtp: empty SASL response")
	}
	return ss.readError(err)
}

// mail answers MAIL FROM (RFC 5321 §4.1.1.2) with the SIZE (RFC 1870) and
// BODY (RFC 6152) parameters.
func (ss *session) mail(arg string) error {
	switch {
	case ss.helo == "":
		return ss.fail(&ReplyError{503, [3]int{5, 5, 1}, "Send " + ss.helloVerb() + " first"})
	case ss.inTx:
		return ss.fail(&ReplyError{503, [3]int{5, 5, 1}, "Nested MAIL command"})
	case ss.s.RequireAuth && ss.user == "":
		if !ss.authAllowed() && ss.canStartTLS() {
			return ss.fail(ErrTLSRequired)
		}
		return ss.fail(ErrAuthRequired)
	}
	addr, params, ok := parsePath(arg, "FROM:")
	if !ok {
		return ss.fail(&ReplyError{501, [3]int{5, 5, 4}, "Syntax: MAIL FROM:<address>"})
	}
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		switch strings.ToUpper(k) {
		case "SIZE":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return ss.fail(&ReplyError{501, [3]int{5, 5, 4}, "Invalid SIZE parameter"})
			}
			if n > ss.s.maxMessage() {
				return ss.fail(ErrMessageTooBig)
			}
		case "BODY":
			if v = strings.ToUpper(v); v != "7BIT" && v != "8BITMIME" {
				return ss.fail(&ReplyError{501, [3]int{5, 5, 4}, "Invalid BODY parameter"})
			}
		case "AUTH":
			// RFC 4954 §5: accepted, not trusted.
		default:
			return ss.fail(&ReplyError{555, [3]int{5, 5, 4}, "Unsupported MAIL parameter"})
		}
	}
	ss.inTx, ss.from, ss.rcpts = true, addr, nil
	return ss.reply(250, [3]int{2, 1, 0}, "Sender OK")
}

func (ss *session) helloVerb() string {
	if ss.s.LMTP {
		return "LHLO"
	}
	return "EHLO/HELO"
}

// rcpt answers RCPT TO (RFC 5321 §4.1.1.3).
func (ss *session) rcpt(arg string) error {
	if !ss.inTx {
		return ss.fail(&ReplyError{503, [3]int{5, 5, 1}, "Need MAIL before RCPT"})
	}
	addr, params, ok := parsePath(arg, "TO:")
	if !ok || addr == "" {
		return ss.fail(&ReplyError{501, [3]int{5, 5, 4}, "Syntax: RCPT TO:<address>"})
	}
	if len(params) > 0 {
		return ss.fail(&ReplyError{555, [3]int{5, 5, 4}, "Unsupported RCPT parameter"})
	}
	if len(ss.rcpts) >= ss.s.maxRecipients() {
		return ss.send(ErrTooManyRecipients)
	}
	ss.rcpts = append(ss.rcpts, addr)
	return ss.reply(250, [3]int{2, 1, 5}, "Recipient OK")
}

// parsePath parses `FROM:<addr> params` (the keyword given, any case, with
// or without a space before "<"). Addresses are at most 256 octets (RFC
// 5321 §4.5.3.1.3) and carry no spaces or control bytes.
func parsePath(arg, keyword string) (addr string, params []string, ok bool) {
	if len(arg) < len(keyword) || !strings.EqualFold(arg[:len(keyword)], keyword) {
		return "", nil, false
	}
	rest := strings.TrimLeft(arg[len(keyword):], " ")
	if !strings.HasPrefix(rest, "<") {
		return "", nil, false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", nil, false
	}
	addr = rest[1:end]
	if len(addr) > 256 || strings.ContainsAny(addr, " <") || hasControl(addr) {
		return "", nil, false
	}
	// A source route "@a,@b:user@c" (RFC 5321 §4.1.2) is accepted and
	// dropped.
	if strings.HasPrefix(addr, "@") {
		i := strings.IndexByte(addr, ':')
		if i < 0 {
			return "", nil, false
		}
		addr = addr[i+1:]
	}
	after := rest[end+1:]
	if after != "" && after[0] != ' ' {
		return "", nil, false
	}
	return addr, strings.Fields(after), true
}

// data answers DATA (RFC 5321 §4.1.1.4): reads the message, delivers it
// and answers once, or once per recipient for LMTP (RFC 2033 §4.2).
func (ss *session) data(arg string) error {
	switch {
	case arg != "":
		return ss.fail(&ReplyError{501, [3]int{5, 5, 4}, "Syntax: DATA"})
	case !ss.inTx:
		return ss.fail(&ReplyError{503, [3]int{5, 5, 1}, "Need MAIL command"})
	case len(ss.rcpts) == 0:
		return ss.fail(&ReplyError{503, [3]int{5, 5, 1}, "Need RCPT command"})
	}
	if err := ss.reply(354, [3]int{}, "Start mail input; end with <CRLF>.<CRLF>"); err != nil {
		return err
	}
	msg, problem, err := ss.readData()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			ss.lastWords(421, [3]int{4, 4, 2}, ss.s.Name()+" Timeout reading message, closing connection")
		} else if errors.Is(err, errDataOverflow) {
			ss.send(ErrMessageTooBig)
		}
		return err
	}
	from, rcpts := ss.from, ss.rcpts
	ss.resetTx()
	res := problem
	if res == nil {
		var derr error
		if ss.s.Backend != nil {
			derr = ss.s.Backend.Deliver(ss.ctx, from, rcpts, msg)
		}
		switch {
		case derr == nil:
			res = &ReplyError{250, [3]int{2, 0, 0}, "OK: message accepted"}
		case errors.As(derr, &res):
		default:
			ss.s.Log().Debug("smtp: delivery failed", "remote", ss.raw.RemoteAddr().String(), "err", derr)
			res = ErrLocalError
		}
	}
	n := 1
	if ss.s.LMTP {
		n = len(rcpts)
	}
	for range n {
		if err := ss.send(res); err != nil {
			return err
		}
	}
	return nil
}

var (
	errDataOverflow = errors.New("smtp: client kept sending far past the size limit")
	errBareNewline  = &ReplyError{554, [3]int{5, 6, 0}, "Message contains a bare CR or LF (RFC 5321 §2.3.8)"}
)

// Message framing states (RFC 5321 §4.5.2), as in textproto's dotReader but
// strict: only CRLF "." CRLF ends the data, and a CR or LF that is not part
// of a CRLF is an error, never a line boundary (SMTP smuggling,
// CVE-2023-51764).
const (
	stBOL   = iota // at the beginning of a line
	stDot          // "." at the beginning of a line
	stDotCR        // ".\r" at the beginning of a line
	stData         // inside a line
	stCR           // "\r" inside a line
)

// readData reads the message up to CRLF "." CRLF, dot-unstuffed. It keeps
// at most MaxMessageBytes; past that it reads on and discards to stay in
// step with the client, then reports ErrMessageTooBig. A client that sends
// more than twice the limit is cut off with errDataOverflow. problem is the
// reply for a message that was read but must be refused.
func (ss *session) readData() (msg []byte, problem *ReplyError, err error) {
	limit := ss.s.maxMessage()
	maxRaw := 2*limit + 1<<20
	var out bytes.Buffer
	r := ss.tc.NetConn()
	var one [1]byte
	var raw int64
	state := stBOL
	emit := func(b ...byte) {
		if problem != nil {
			return
		}
		if int64(out.Len()+len(b)) > limit {
			problem = ErrMessageTooBig
			out = bytes.Buffer{}
			return
		}
		out.Write(b)
	}
	bad := func() {
		if problem == nil {
			problem = errBareNewline
			out = bytes.Buffer{}
		}
	}
	for {
		if raw%65536 == 0 {
			ss.deadline()
		}
		if _, err := io.ReadFull(r, one[:]); err != nil {
			return nil, nil, err
		}
		raw++
		if raw > maxRaw {
			return nil, nil, errDataOverflow
		}
		c := one[0]
		switch state {
		case stBOL, stData:
			switch c {
			case '.':
				if state == stBOL {
					state = stDot
				} else {
					emit(c)
				}
			case '\r':
				state = stCR
			case '\n':
				bad()
				state = stData
			default:
				emit(c)
				state = stData
			}
		case stDot:
			switch c {
			case '\r':
				state = stDotCR
			case '\n':
				bad()
				state = stData
			default:
				emit(c) // the leading dot is dropped (transparency)
				state = stData
			}
		case stDotCR:
			if c == '\n' {
				if problem != nil {
					return nil, problem, nil
				}
				return out.Bytes(), nil, nil
			}
			bad()
			state = stData
			if c == '\r' {
				state = stCR
			}
		case stCR:
			switch c {
			case '\n':
				emit('\r', '\n')
				state = stBOL
			case '\r':
				bad()
			default:
				bad()
				state = stData
			}
		}
	}
}
