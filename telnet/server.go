package telnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
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

// Backend checks the logins of a Server.
type Backend interface {
	// Login checks a user's password; a non-nil error refuses it (the
	// client sees "Login incorrect", never the error text).
	Login(ctx context.Context, username, password string) error
}

// Server is a Telnet server (RFC 854) with START_TLS
// (draft-altman-telnet-starttls) or implicit TLS, a login prompt and a tiny
// shell. The zero value serves plaintext and refuses every login; set
// TLSConfig to offer START_TLS. A Server must not be copied after first
// use.
type Server struct {
	starttls.ServerOptions
	// Backend checks the logins. nil refuses every login.
	Backend Backend

	sessions serve.Sessions
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("telnet: panic serving connection", s.Log, nil)
}

// Serve accepts connections on l and serves each in its own goroutine
// until l fails or Close or Shutdown is called; it then returns a non-nil
// error.
func (s *Server) Serve(l net.Listener) error { return s.init().Serve(l, s.runSession) }

// ServeConn serves one connection for a whole session and closes it. It
// returns nil after "exit" or "logout", else the reason the session ended.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	return s.init().ServeConn(ctx, conn, s.runSession)
}

// runSession runs a whole session on conn.
func (s *Server) runSession(ctx context.Context, conn net.Conn) error {
	return s.newSession(ctx, conn).run()
}

// Handshake serves the plaintext negotiation until the client's FOLLOWS,
// completes the TLS handshake and returns the *tls.Conn, with the Telnet
// session over TLS still to come (the server sends the banner first). Bytes
// pipelined after the client's FOLLOWS always close the connection here.
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

// state is where the session is.
type state int

const (
	stateNegotiate state = iota // START_TLS offered, waiting for the client
	stateFollows                // FOLLOWS sent, waiting for the client's
	stateNoLogin                // no TLS and no plaintext login: nothing to do
	stateUser                   // "login:" sent
	statePassword               // "Password:" sent
	stateShell                  // logged in
)

var (
	errLogout     = errors.New("telnet: client logged out")
	errHandedOver = errors.New("telnet: connection handed over after START_TLS")
	errTooMany    = errors.New("telnet: too many errors")
)

// session is one client connection.
type session struct {
	srv           *Server
	ctx           context.Context
	sniff         *textline.Sniffer
	conn          net.Conn // sniff, or the TLS connection
	r             *bufio.Reader
	dec           decoder
	tls           bool
	state         state
	line          []byte
	user          string
	username      string
	errors        int
	replies       map[[2]byte]int
	handshakeOnly bool
	upgraded      *tls.Conn
	tlsConn       *tls.Conn
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	sn := &textline.Sniffer{Conn: conn}
	ss := &session{srv: s, ctx: ctx, sniff: sn}
	ss.setConn(sn)
	return ss
}

func (ss *session) setConn(conn net.Conn) {
	ss.conn = conn
	ss.r = bufio.NewReaderSize(conn, 4096)
	ss.dec = decoder{}
	ss.replies = map[[2]byte]int{}
	ss.line = ss.line[:0]
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("telnet: "+msg, "remote", ss.sniff.RemoteAddr().String(), "err", err)
}

func (ss *session) deadline() {
	ss.sniff.SetDeadline(time.Now().Add(ss.srv.CommandTimeout()))
}

func (ss *session) write(b []byte) error {
	_, err := ss.conn.Write(b)
	return err
}

// say writes text with NVT line ends (CR LF).
func (ss *session) say(text string) error {
	return ss.write(escape(strings.ReplaceAll(text, "\n", "\r\n")))
}

// bad answers a protocol error and closes past the limit.
func (ss *session) bad(text string) error {
	ss.errors++
	if ss.errors >= ss.srv.ErrorLimit() {
		ss.say(text + " (too many errors, closing)\n")
		return errTooMany
	}
	return ss.say(text + "\n")
}

func (ss *session) offersTLS() bool {
	return ss.srv.TLSConfig != nil && !ss.srv.Implicit && !ss.tls
}

func (ss *session) loginAllowed() bool { return ss.tls || ss.srv.AllowPlaintextLogin }

func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("telnet: panic serving connection", "remote", ss.sniff.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.sniff.SetDeadline(time.Now().Add(time.Second))
			ss.say("internal server error, closing\n")
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

// banner starts the login dialog, or says why there is none.
func (ss *session) banner() error {
	where := "in plaintext"
	if ss.tls {
		where = "over TLS"
	}
	if !ss.loginAllowed() {
		ss.state = stateNoLogin
		return ss.say(ss.srv.Name() + " starttls lab telnet server (" + where + ")\nLogin is disabled without TLS.\n")
	}
	ss.state = stateUser
	return ss.say(ss.srv.Name() + " starttls lab telnet server (" + where + ")\n\nlogin: ")
}

func (ss *session) serve() error {
	ss.deadline()
	switch {
	case ss.srv.Implicit:
		if ss.srv.TLSConfig == nil {
			return errorf("implicit TLS without TLSConfig")
		}
		if err := ss.handshake(nil, nil); err != nil {
			return err
		}
		if ss.handshakeOnly {
			return errHandedOver
		}
		if err := ss.banner(); err != nil {
			return err
		}
	case ss.offersTLS():
		// draft-altman-telnet-starttls §2: the server asks first.
		if err := ss.write(neg(cmdDO, OptStartTLS)); err != nil {
			return err
		}
		ss.state = stateNegotiate
		if ss.srv.AllowPlaintextLogin {
			if err := ss.banner(); err != nil {
				return err
			}
		}
	default:
		if err := ss.banner(); err != nil {
			return err
		}
	}
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.deadline()
			ss.say("\nserver shutting down\n")
			return err
		}
		ss.deadline()
		b, err := ss.r.ReadByte()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
				ss.say("TLS received on the plaintext telnet port; use START_TLS, or port 992 for implicit TLS\n")
			case errors.As(err, &ne) && ne.Timeout() && ss.ctx.Err() == nil:
				ss.deadline()
				ss.say("\nidle timeout, closing\n")
			}
			return err
		}
		ev, ok, err := ss.dec.feed(b)
		if err != nil {
			ss.say("telnet protocol error, closing\n")
			return err
		}
		if !ok {
			continue
		}
		if err := ss.event(ev); err != nil {
			return err
		}
	}
}

// event handles one decoded unit from the client.
func (ss *session) event(ev event) error {
	switch ev.kind {
	case evData:
		return ss.data(ev.b)
	case evCmd:
		if ev.b == cmdAYT {
			return ss.say("\n[Yes]\n")
		}
		return nil
	case evSB:
		if ev.opt == OptStartTLS && len(ev.data) == 1 && ev.data[0] == follows && ss.state == stateFollows {
			return ss.upgrade()
		}
		return nil // subnegotiation of an option not enabled: ignored
	}
	// evNeg
	if ev.opt == OptStartTLS {
		switch {
		case ev.b == cmdWILL && ss.offersTLS() && (ss.state == stateNegotiate || ss.state == stateUser && len(ss.line) == 0):
			if ss.srv.RefuseUpgrade {
				if err := ss.write(neg(cmdDONT, OptStartTLS)); err != nil {
					return err
				}
				return ss.noTLS("TLS is not available at the moment, try again later.")
			}
			ss.state = stateFollows
			return ss.write(startTLSFollows)
		case ev.b == cmdWONT && (ss.state == stateNegotiate || ss.state == stateFollows):
			return ss.noTLS("This server requires TLS.")
		case ev.b == cmdWILL:
			return ss.refuse(cmdDONT, ev.opt)
		case ev.b == cmdDO:
			return ss.refuse(cmdWONT, ev.opt)
		}
		return nil
	}
	switch ev.b {
	case cmdDO:
		return ss.refuse(cmdWONT, ev.opt)
	case cmdWILL:
		return ss.refuse(cmdDONT, ev.opt)
	}
	return nil
}

// noTLS goes on without TLS: the login prompt with AllowPlaintextLogin
// (already shown), else a message and the end of the session.
func (ss *session) noTLS(msg string) error {
	if ss.srv.AllowPlaintextLogin {
		if ss.state != stateUser && ss.state != statePassword && ss.state != stateShell {
			return ss.banner()
		}
		return nil
	}
	ss.say(msg + "\n")
	return errorf("client declined START_TLS or it was refused")
}

// refuse answers an option request with WONT or DONT, at most twice per
// option (RFC 854: no negotiation loops).
func (ss *session) refuse(verb, opt byte) error {
	k := [2]byte{verb, opt}
	if ss.replies[k] >= 2 {
		return nil
	}
	ss.replies[k]++
	return ss.write(neg(verb, opt))
}

// upgrade runs the TLS handshake after the client's FOLLOWS.
//
// The client starts its handshake right after its FOLLOWS without waiting
// (draft-altman-telnet-starttls §2), so a ClientHello may already be
// buffered: it goes to the handshake. Any other byte before it was
// pipelined in plaintext (CVE-2011-0411 class) and is never processed
// inside TLS: the connection is closed, unless InsecureKeepPipelined.
func (ss *session) upgrade() error {
	buf, _ := ss.r.Peek(ss.r.Buffered())
	hello := len(buf)
	for i := range buf {
		if buf[i] == 0x16 && (i+1 == len(buf) || buf[i+1] == 0x03) {
			hello = i
			break
		}
	}
	pipelined := append([]byte(nil), buf[:hello]...)
	start := append([]byte(nil), buf[hello:]...)
	if len(pipelined) > 0 && (!ss.srv.InsecureKeepPipelined || ss.handshakeOnly) {
		return errorf("%d bytes pipelined after FOLLOWS, closing the connection: %w", len(pipelined), starttls.ErrPlaintextAfterUpgrade)
	}
	var kept []byte
	if len(pipelined) > 0 {
		kept = pipelined
	}
	if err := ss.handshake(start, kept); err != nil {
		return err
	}
	if ss.handshakeOnly {
		return errHandedOver
	}
	// draft-altman-telnet-starttls §3: the session starts again over TLS.
	return ss.banner()
}

// prefixConn reads the bytes of r (buffered ones, then the connection).
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// handshake runs the server TLS handshake. start is the beginning of the
// ClientHello already read; kept bytes are fed into the TLS session
// (InsecureKeepPipelined).
func (ss *session) handshake(start, kept []byte) error {
	ss.sniff.Stop()
	var raw net.Conn = ss.sniff
	if len(start) > 0 {
		raw = &prefixConn{Conn: ss.sniff, r: io.MultiReader(bytes.NewReader(start), ss.sniff)}
	}
	tc := tls.Server(raw, ss.srv.TLSConfig)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.CommandTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return &starttls.HandshakeError{Err: err}
	}
	ss.tls = true
	ss.upgraded = tc
	ss.tlsConn = tc
	if kept != nil {
		ss.setConn(textline.KeepPlaintext(tc, kept))
	} else {
		ss.setConn(tc)
	}
	ss.user = ""
	return nil
}

// data collects a line of text; CR LF or CR NUL ends it (RFC 854).
func (ss *session) data(b byte) error {
	switch b {
	case '\r':
		return ss.endLine()
	case '\n', 0:
		return nil // the rest of CR LF or CR NUL, or a bare LF after CR
	}
	if len(ss.line) >= ss.srv.LineLimit() {
		ss.say("\nline too long, closing\n")
		return errorf("line longer than %d bytes: %w", ss.srv.LineLimit(), starttls.ErrLineTooLong)
	}
	ss.line = append(ss.line, b)
	return nil
}

func (ss *session) endLine() error {
	line := string(ss.line)
	ss.line = ss.line[:0]
	switch ss.state {
	case stateNegotiate, stateFollows:
		return ss.bad("Please negotiate START_TLS first.")
	case stateNoLogin:
		return ss.bad("Login is disabled without TLS.")
	case stateUser:
		if line == "" {
			return ss.say("login: ")
		}
		ss.user = line
		ss.state = statePassword
		return ss.say("Password: ")
	case statePassword:
		user := ss.user
		ss.user = ""
		ss.srv.SawCredentials("login/password", user, line, ss.tls)
		if ss.srv.Backend == nil || ss.srv.Backend.Login(ss.ctx, user, line) != nil {
			ss.debug("login failed for "+strconv.Quote(user), nil)
			ss.state = stateUser
			if err := ss.bad("\nLogin incorrect"); err != nil {
				return err
			}
			return ss.say("login: ")
		}
		ss.username = user
		ss.state = stateShell
		return ss.say(fmt.Sprintf("\nWelcome %s\n$ ", user))
	case stateShell:
		switch strings.TrimSpace(line) {
		case "exit", "logout":
			ss.say("logout\n")
			return errLogout
		case "":
			return ss.say("$ ")
		case "whoami":
			return ss.say(ss.username + "\n$ ")
		}
		return ss.say(strings.TrimSpace(line) + "\n$ ")
	}
	return nil
}
