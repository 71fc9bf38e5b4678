package irc

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/serve"
	"github.com/starttls/starttls/internal/textline"
)

// Backend authenticates SASL PLAIN logins for a Server.
type Backend interface {
	// Login checks a user's password; a non-nil error refuses the login
	// (the client sees 904, never the error text).
	Login(ctx context.Context, username, password string) error
}

// Per-connection and per-server limits of Server.
const (
	maxChannelsPerUser = 10
	maxChannelName     = 50
	maxSASLPayload     = 4 * saslChunk // a PLAIN message of up to 1200 octets
	writeTimeout       = 10 * time.Second
	network            = "starttls-lab"
)

// Server is a minimal IRC server (RFC 2812 registration, channels and
// messages) with IRCv3 CAP, STARTTLS, SASL PLAIN and implicit TLS, for the
// lab and for tests. The zero value with a Backend serves plaintext and
// refuses every login; set TLSConfig to offer STARTTLS. A Server must not be
// copied after first use.
type Server struct {
	starttls.ServerOptions
	// Backend authenticates SASL PLAIN. nil refuses every login.
	Backend Backend

	sessions serve.Sessions
	mu       sync.Mutex
	nicks    map[string]*session          // lower-case nick → session (pending or registered)
	chans    map[string]map[*session]bool // lower-case channel → members
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("irc: panic serving connection", s.Log, func() {
		s.nicks = map[string]*session{}
		s.chans = map[string]map[*session]bool{}
	})
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

// Handshake serves the plaintext part of a session (CAP, refusals) until
// the client sends STARTTLS, then completes the TLS handshake and returns
// the *tls.Conn, with the IRC dialog over TLS still to come (the client
// will send CAP LS). Lines pipelined after STARTTLS always close the
// connection here, InsecureKeepPipelined or not. With Implicit the
// handshake is done at once. On error conn is closed.
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

// Sentinels that end a session.
var (
	errQuit       = errors.New("irc: client quit")
	errHandedOver = errors.New("irc: connection handed over after STARTTLS")
	errTooMany    = errors.New("irc: too many errors")
)

// session is one client connection.
type session struct {
	srv           *Server
	ctx           context.Context
	sniff         *textline.Sniffer
	wmu           sync.Mutex // guards tc writes: other sessions deliver messages
	tc            *textline.Conn
	tls           bool
	host          string
	nick          string // "" until NICK
	user          string // "" until USER
	registered    bool
	negotiating   bool // CAP LS/REQ seen, CAP END not yet
	capSASL       bool // sasl ACKed
	account       string
	chans         map[string]bool // lower-case names
	errors        int
	handshakeOnly bool
	upgraded      *tls.Conn
	tlsConn       *tls.Conn
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	sn := &textline.Sniffer{Conn: conn}
	host := "unknown"
	if h, _, err := net.SplitHostPort(conn.RemoteAddr().String()); err == nil {
		host = h
	}
	return &session{
		srv:   s,
		ctx:   ctx,
		sniff: sn,
		host:  host,
		tc:    textline.New(sn, s.lineOptions()),
		chans: map[string]bool{},
	}
}

func (s *Server) lineOptions() textline.Options {
	n := s.MaxLineLength
	if n <= 0 {
		n = maxClientLine
	}
	return textline.Options{
		Proto:      "irc",
		Local:      starttls.FromServer,
		MaxLine:    n,
		StrictCRLF: true,
	}
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("irc: "+msg, "remote", ss.sniff.RemoteAddr().String(), "err", err)
}

// deadline gives the next exchange CommandTimeout.
func (ss *session) deadline() {
	ss.sniff.SetReadDeadline(time.Now().Add(ss.srv.CommandTimeout()))
}

// send writes one line to this session; other sessions' goroutines call it
// to deliver messages.
func (ss *session) send(line string) error {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.sniff.SetWriteDeadline(time.Now().Add(writeTimeout))
	return ss.tc.WriteLine(line)
}

// target is the nick in numerics: "*" before NICK.
func (ss *session) target() string {
	if ss.nick == "" {
		return "*"
	}
	return ss.nick
}

// numeric sends ":server NNN nick params…".
func (ss *session) numeric(code string, params ...string) error {
	m := &Message{Prefix: ss.srv.Name(), Command: code, Params: append([]string{ss.target()}, params...)}
	return ss.send(m.String())
}

// fail sends an error numeric and counts a protocol error; past the limit
// it closes the session.
func (ss *session) fail(code string, params ...string) error {
	ss.errors++
	if err := ss.numeric(code, params...); err != nil {
		return err
	}
	if ss.errors >= ss.srv.ErrorLimit() {
		ss.send("ERROR :Closing link: too many errors")
		return errTooMany
	}
	return nil
}

func (ss *session) mask() string { return ss.nick + "!" + ss.user + "@" + ss.host }

// run serves the session until QUIT, an error, or the hand-over after
// STARTTLS in handshakeOnly mode.
func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("irc: panic serving connection", "remote", ss.sniff.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.sniff.SetDeadline(time.Now().Add(time.Second))
			ss.send("ERROR :Closing link: internal server error")
			err = errorf("panic: %v", v)
		}
		ss.leaveAll("Connection closed")
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
	// No NOTICE on connect: the server speaks only when spoken to, like
	// InspIRCd without lookups. openssl s_client -starttls irc gives up on
	// any non-numeric line before 670.
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.send("ERROR :Closing link: server shutting down")
			return err
		}
		ss.deadline()
		line, err := ss.tc.ReadLine()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
				ss.send("ERROR :Closing link: TLS received on the plaintext IRC port; use STARTTLS, or port 6697 for implicit TLS")
				return err
			case errors.Is(err, starttls.ErrLineTooLong):
				ss.send("ERROR :Closing link: line too long")
				return err
			case errors.Is(err, starttls.ErrProtocol):
				if e := ss.fail(ErrUnknownCommand, "*", "Malformed line (CRLF required, no NUL)"); e != nil {
					return errors.Join(err, e)
				}
				continue
			case errors.As(err, &ne) && ne.Timeout() && ss.ctx.Err() == nil:
				ss.send("ERROR :Closing link: Ping timeout")
				return err
			}
			return err
		}
		if line == "" {
			continue // RFC 2812 §2.3.1: empty messages are silently ignored
		}
		m, err := ParseMessage(line)
		if err != nil {
			if e := ss.fail(ErrUnknownCommand, "*", "Malformed message"); e != nil {
				return e
			}
			continue
		}
		if err := ss.dispatch(m); err != nil {
			return err
		}
	}
}

// preRegistration lists the commands allowed before registration.
var preRegistration = map[string]bool{
	"CAP": true, "NICK": true, "USER": true, "PASS": true, "PING": true, "PONG": true,
	"QUIT": true, "STARTTLS": true, "AUTHENTICATE": true,
}

func (ss *session) dispatch(m *Message) error {
	if !ss.registered && !preRegistration[m.Command] {
		if m.Command == "CAP" || isNumeric(m.Command) {
			return nil
		}
		return ss.fail(ErrNotRegistered, "You have not registered")
	}
	switch m.Command {
	case "CAP":
		return ss.cmdCap(m)
	case "STARTTLS":
		return ss.cmdStartTLS(m)
	case "AUTHENTICATE":
		return ss.cmdAuthenticate(m)
	case "NICK":
		return ss.cmdNick(m)
	case "USER":
		return ss.cmdUser(m)
	case "PASS":
		return nil // no server passwords
	case "PING":
		if len(m.Params) == 0 {
			return ss.fail(ErrNeedMoreParams, "PING", "Not enough parameters")
		}
		return ss.send((&Message{Prefix: ss.srv.Name(), Command: "PONG", Params: []string{ss.srv.Name(), m.Params[0]}}).String())
	case "PONG":
		return nil
	case "QUIT":
		return ss.cmdQuit(m)
	case "JOIN":
		return ss.cmdJoin(m)
	case "PART":
		return ss.cmdPart(m)
	case "PRIVMSG", "NOTICE":
		return ss.cmdMessage(m)
	}
	return ss.fail(ErrUnknownCommand, m.Command, "Unknown command")
}

// offersTLS reports whether CAP LS lists tls now.
func (ss *session) offersTLS() bool {
	return ss.srv.TLSConfig != nil && !ss.srv.Implicit && !ss.tls
}

// loginAllowed reports whether SASL is possible now.
func (ss *session) loginAllowed() bool { return ss.tls || ss.srv.AllowPlaintextLogin }

// caps returns the capabilities CAP LS lists now; with values for 302.
func (ss *session) caps(v302 bool) []string {
	var caps []string
	if ss.offersTLS() {
		caps = append(caps, CapTLS)
	}
	if ss.loginAllowed() {
		if v302 {
			caps = append(caps, CapSASL+"=PLAIN")
		} else {
			caps = append(caps, CapSASL)
		}
	}
	return caps
}

// cmdCap answers CAP LS, LIST, REQ and END (IRCv3 capability negotiation).
func (ss *session) cmdCap(m *Message) error {
	sub := strings.ToUpper(m.Param(0))
	capMsg := func(params ...string) error {
		return ss.send((&Message{Prefix: ss.srv.Name(), Command: "CAP", Params: append([]string{ss.target()}, params...)}).String())
	}
	switch sub {
	case "LS":
		if !ss.registered {
			ss.negotiating = true
		}
		v, _ := strconv.Atoi(m.Param(1))
		return capMsg("LS", strings.Join(ss.caps(v >= 302), " "))
	case "LIST":
		var list []string
		if ss.capSASL {
			list = append(list, CapSASL)
		}
		return capMsg("LIST", strings.Join(list, " "))
	case "REQ":
		if !ss.registered {
			ss.negotiating = true
		}
		req := m.Param(1)
		ok := true
		sasl := ss.capSASL
		for _, c := range strings.Fields(req) {
			switch {
			case c == CapSASL && ss.loginAllowed():
				sasl = true
			case c == "-"+CapSASL:
				sasl = false
			default:
				ok = false
			}
		}
		if !ok || strings.TrimSpace(req) == "" {
			return capMsg("NAK", req)
		}
		ss.capSASL = sasl
		return capMsg("ACK", req)
	case "END":
		ss.negotiating = false
		return ss.tryRegister()
	}
	return ss.fail(ErrInvalidCapCmd, m.Param(0), "Invalid CAP command")
}

// cmdStartTLS answers STARTTLS (IRCv3 tls extension) and runs the
// handshake.
func (ss *session) cmdStartTLS(m *Message) error {
	switch {
	case ss.srv.TLSConfig == nil || ss.srv.Implicit:
		return ss.fail(ErrUnknownCommand, "STARTTLS", "Unknown command")
	case ss.tls:
		return ss.fail(ErrStartTLS, "STARTTLS failure: TLS already active")
	case ss.registered:
		return ss.fail(ErrStartTLS, "STARTTLS failure: not allowed after registration")
	case ss.srv.RefuseUpgrade && ss.srv.RefusePermanently:
		return ss.numeric(ErrUnknownCommand, "STARTTLS", "Unknown command")
	case ss.srv.RefuseUpgrade:
		return ss.numeric(ErrStartTLS, "STARTTLS failure")
	}
	// Anything already received was pipelined after STARTTLS in plaintext
	// (CVE-2011-0411): never execute it inside TLS.
	pipelined := ss.tc.Buffered()
	if ss.sniff.SawClientHello() {
		pipelined++
	}
	if err := ss.numeric(RplStartTLS, "STARTTLS successful, go ahead with TLS handshake"); err != nil {
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
	ss.wmu.Lock()
	if kept != nil {
		ss.tc = textline.New(textline.KeepPlaintext(tc, kept), ss.srv.lineOptions())
	} else {
		ss.tc.Upgrade(tc)
	}
	ss.wmu.Unlock()
	return nil
}

// handshake runs the server TLS handshake and resets the session: the
// nick, user and capabilities given before TLS are forgotten.
func (ss *session) handshake() error {
	ss.sniff.Stop()
	tc := tls.Server(ss.sniff, ss.srv.TLSConfig)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.CommandTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return &starttls.HandshakeError{Err: err}
	}
	ss.tls = true
	ss.releaseNick()
	ss.user, ss.capSASL, ss.account = "", false, ""
	ss.upgraded = tc
	ss.tlsConn = tc
	return nil
}

// cmdAuthenticate runs SASL PLAIN (IRCv3 sasl-3.1, RFC 4616).
func (ss *session) cmdAuthenticate(m *Message) error {
	switch {
	case !ss.loginAllowed():
		return ss.fail(ErrSASLFail, "SASL authentication failed: use STARTTLS first")
	case !ss.capSASL:
		return ss.fail(ErrSASLFail, "SASL authentication failed: request the sasl capability first")
	case ss.account != "":
		return ss.fail(ErrSASLAlready, "You have already authenticated using SASL")
	case ss.registered:
		return ss.fail(ErrSASLFail, "SASL authentication failed: already registered")
	case !strings.EqualFold(m.Param(0), "PLAIN"):
		if err := ss.numeric(RplSASLMechs, "PLAIN", "are available SASL mechanisms"); err != nil {
			return err
		}
		return ss.fail(ErrSASLFail, "SASL authentication failed")
	}
	if err := ss.send("AUTHENTICATE +"); err != nil {
		return err
	}
	var payload strings.Builder
	for {
		ss.deadline()
		line, err := ss.tc.ReadLine()
		if err != nil {
			return err
		}
		am, err := ParseMessage(line)
		if err != nil || am.Command != "AUTHENTICATE" || len(am.Params) == 0 {
			return ss.fail(ErrSASLAborted, "SASL authentication aborted")
		}
		chunk := am.Params[0]
		if chunk == "*" {
			return ss.fail(ErrSASLAborted, "SASL authentication aborted")
		}
		if chunk != "+" {
			payload.WriteString(chunk)
		}
		if payload.Len() > maxSASLPayload {
			return ss.fail(ErrSASLTooLong, "SASL message too long")
		}
		if chunk == "+" || len(chunk) < saslChunk {
			break
		}
	}
	user, pass, ok := decodePlain(payload.String())
	if ok {
		ss.srv.SawCredentials("SASL PLAIN", user, pass, ss.tls)
	}
	if !ok || ss.srv.Backend == nil {
		return ss.fail(ErrSASLFail, "SASL authentication failed")
	}
	if err := ss.srv.Backend.Login(ss.ctx, user, pass); err != nil {
		ss.debug("login failed for "+strconv.Quote(user), err)
		return ss.fail(ErrSASLFail, "SASL authentication failed")
	}
	ss.account = user
	nick := ss.target()
	if err := ss.numeric(RplLoggedIn, nick+"!"+ss.userOr()+"@"+ss.host, user, "You are now logged in as "+user); err != nil {
		return err
	}
	return ss.numeric(RplSASLSuccess, "SASL authentication successful")
}

func (ss *session) userOr() string {
	if ss.user == "" {
		return "*"
	}
	return ss.user
}

// decodePlain decodes a SASL PLAIN message (RFC 4616 §2); an authorization
// identity other than the user is refused.
func decodePlain(s string) (user, pass string, ok bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", false
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 || parts[1] == "" || (parts[0] != "" && parts[0] != parts[1]) {
		return "", "", false
	}
	return parts[1], parts[2], true
}

// cmdNick sets or changes the nick (RFC 2812 §3.1.2).
func (ss *session) cmdNick(m *Message) error {
	nick := m.Param(0)
	if nick == "" {
		return ss.fail(ErrNoNicknameGiven, "No nickname given")
	}
	if !validNick(nick) {
		return ss.fail(ErrErroneusNick, nick, "Erroneous nickname")
	}
	key := strings.ToLower(nick)
	s := ss.srv
	s.mu.Lock()
	if other, ok := s.nicks[key]; ok && other != ss {
		s.mu.Unlock()
		return ss.numeric(ErrNicknameInUse, nick, "Nickname is already in use")
	}
	if ss.nick != "" {
		delete(s.nicks, strings.ToLower(ss.nick))
	}
	s.nicks[key] = ss
	var peers []*session
	if ss.registered {
		peers = ss.peersLocked()
	}
	// Other sessions read nick under s.mu (JOIN's names list).
	old := ss.mask()
	ss.nick = nick
	s.mu.Unlock()
	if ss.registered {
		line := ":" + old + " NICK :" + nick
		ss.send(line)
		for _, p := range peers {
			p.send(line)
		}
		return nil
	}
	return ss.tryRegister()
}

// releaseNick frees the nick for others.
func (ss *session) releaseNick() {
	if ss.nick == "" {
		return
	}
	ss.srv.mu.Lock()
	if ss.srv.nicks[strings.ToLower(ss.nick)] == ss {
		delete(ss.srv.nicks, strings.ToLower(ss.nick))
	}
	ss.nick = ""
	ss.srv.mu.Unlock()
}

// cmdUser records the user (RFC 2812 §3.1.3).
func (ss *session) cmdUser(m *Message) error {
	if ss.registered {
		return ss.fail(ErrAlreadyRegistered, "You may not reregister")
	}
	if len(m.Params) < 4 || m.Params[0] == "" {
		return ss.fail(ErrNeedMoreParams, "USER", "Not enough parameters")
	}
	ss.user = "~" + identFrom(m.Params[0])
	return ss.tryRegister()
}

// tryRegister completes the registration once NICK and USER are known and
// capability negotiation is over (RFC 2812 §5.1, 001–005; MOTD).
func (ss *session) tryRegister() error {
	if ss.registered || ss.nick == "" || ss.user == "" || ss.negotiating {
		return nil
	}
	// Other sessions read registered under s.mu (PRIVMSG to a nick).
	ss.srv.mu.Lock()
	ss.registered = true
	ss.srv.mu.Unlock()
	name := ss.srv.Name()
	lines := []struct {
		code   string
		params []string
	}{
		{RplWelcome, []string{"Welcome to the " + network + " IRC network, " + ss.mask()}},
		{RplYourHost, []string{"Your host is " + name + ", running starttls"}},
		{RplCreated, []string{"This server was created for the starttls lab"}},
		{RplMyInfo, []string{name, "starttls", "i", "n"}},
		{RplISupport, []string{"CASEMAPPING=ascii", "CHANTYPES=#", "CHANLIMIT=#:" + strconv.Itoa(maxChannelsPerUser), "NICKLEN=30", "CHANNELLEN=" + strconv.Itoa(maxChannelName), "NETWORK=" + network, "are supported by this server"}},
		{RplMOTDStart, []string{"- " + name + " Message of the day -"}},
		{RplMOTD, []string{"- This server is part of the starttls lab."}},
		{RplEndOfMOTD, []string{"End of /MOTD command."}},
	}
	for _, l := range lines {
		if err := ss.numeric(l.code, l.params...); err != nil {
			return err
		}
	}
	return nil
}

// validChannel: '#' and up to maxChannelName octets without space, comma,
// BEL or colon (RFC 2812 §1.3).
func validChannel(c string) bool {
	return len(c) >= 2 && len(c) <= maxChannelName && c[0] == '#' && !strings.ContainsAny(c, " ,\x07:")
}

// cmdJoin joins channels (RFC 2812 §3.2.1).
func (ss *session) cmdJoin(m *Message) error {
	if m.Param(0) == "" {
		return ss.fail(ErrNeedMoreParams, "JOIN", "Not enough parameters")
	}
	for _, name := range strings.Split(m.Param(0), ",") {
		if !validChannel(name) {
			if err := ss.fail(ErrNoSuchChannel, name, "No such channel"); err != nil {
				return err
			}
			continue
		}
		key := strings.ToLower(name)
		if ss.chans[key] {
			continue
		}
		if len(ss.chans) >= maxChannelsPerUser {
			if err := ss.numeric(ErrTooManyChannels, name, "You have joined too many channels"); err != nil {
				return err
			}
			continue
		}
		s := ss.srv
		s.mu.Lock()
		members := s.chans[key]
		if members == nil {
			members = map[*session]bool{}
			s.chans[key] = members
		}
		members[ss] = true
		ss.chans[key] = true
		var all []*session
		var names []string
		for p := range members {
			all = append(all, p)
			names = append(names, p.nick)
		}
		s.mu.Unlock()
		line := ":" + ss.mask() + " JOIN " + name
		for _, p := range all {
			if p != ss {
				p.send(line)
			}
		}
		if err := ss.send(line); err != nil {
			return err
		}
		if err := ss.numeric(RplNamReply, "=", name, strings.Join(names, " ")); err != nil {
			return err
		}
		if err := ss.numeric(RplEndOfNames, name, "End of /NAMES list"); err != nil {
			return err
		}
	}
	return nil
}

// cmdPart leaves channels (RFC 2812 §3.2.2).
func (ss *session) cmdPart(m *Message) error {
	if m.Param(0) == "" {
		return ss.fail(ErrNeedMoreParams, "PART", "Not enough parameters")
	}
	for _, name := range strings.Split(m.Param(0), ",") {
		key := strings.ToLower(name)
		if !ss.chans[key] {
			if err := ss.numeric(ErrNotOnChannel, name, "You're not on that channel"); err != nil {
				return err
			}
			continue
		}
		line := ":" + ss.mask() + " PART " + name
		for _, p := range ss.leave(key) {
			p.send(line)
		}
		if err := ss.send(line); err != nil {
			return err
		}
	}
	return nil
}

// leave removes the session from one channel and returns the members
// left.
func (ss *session) leave(key string) []*session {
	s := ss.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(ss.chans, key)
	members := s.chans[key]
	delete(members, ss)
	if len(members) == 0 {
		delete(s.chans, key)
	}
	var out []*session
	for p := range members {
		out = append(out, p)
	}
	return out
}

// peersLocked returns the other members of the session's channels; s.mu
// is held.
func (ss *session) peersLocked() []*session {
	seen := map[*session]bool{}
	var out []*session
	for key := range ss.chans {
		for p := range ss.srv.chans[key] {
			if p != ss && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// leaveAll removes the session from every channel and frees its nick,
// telling the other members with QUIT.
func (ss *session) leaveAll(reason string) {
	if ss.srv.nicks == nil {
		return
	}
	ss.srv.mu.Lock()
	peers := ss.peersLocked()
	for key := range ss.chans {
		members := ss.srv.chans[key]
		delete(members, ss)
		if len(members) == 0 {
			delete(ss.srv.chans, key)
		}
	}
	ss.chans = map[string]bool{}
	ss.srv.mu.Unlock()
	if ss.registered {
		line := (&Message{Prefix: ss.mask(), Command: "QUIT", Params: []string{reason}}).String()
		for _, p := range peers {
			p.send(line)
		}
	}
	ss.releaseNick()
}

// cmdMessage delivers PRIVMSG and NOTICE to a channel or a nick (RFC 2812
// §3.3). The sender does not get its own message back.
func (ss *session) cmdMessage(m *Message) error {
	notice := m.Command == "NOTICE"
	if m.Param(0) == "" {
		if notice {
			return nil
		}
		return ss.fail(ErrNoRecipient, "No recipient given (PRIVMSG)")
	}
	if len(m.Params) < 2 || m.Params[1] == "" {
		if notice {
			return nil
		}
		return ss.fail(ErrNoTextToSend, "No text to send")
	}
	target, text := m.Params[0], m.Params[1]
	line := (&Message{Prefix: ss.mask(), Command: m.Command, Params: []string{target, text}}).String()
	key := strings.ToLower(target)
	s := ss.srv
	var to []*session
	s.mu.Lock()
	if strings.HasPrefix(target, "#") {
		if ss.chans[key] {
			for p := range s.chans[key] {
				if p != ss {
					to = append(to, p)
				}
			}
		}
		s.mu.Unlock()
		if !ss.chans[key] {
			if notice {
				return nil
			}
			return ss.numeric(ErrCannotSendToChan, target, "Cannot send to channel")
		}
	} else {
		p, ok := s.nicks[key]
		if ok && p.registered {
			to = append(to, p)
		}
		s.mu.Unlock()
		if len(to) == 0 {
			if notice {
				return nil
			}
			return ss.numeric(ErrNoSuchNick, target, "No such nick/channel")
		}
	}
	for _, p := range to {
		p.send(line)
	}
	return nil
}

// cmdQuit ends the session (RFC 2812 §3.1.7).
func (ss *session) cmdQuit(m *Message) error {
	reason := "Client Quit"
	if r := m.Param(0); r != "" {
		reason = "Quit: " + r
	}
	ss.leaveAll(reason)
	ss.send("ERROR :Closing link: " + ss.host + " (" + reason + ")")
	if ss.handshakeOnly {
		return errorf("client quit before the upgrade")
	}
	return errQuit
}
