package ftp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/serve"
	"github.com/starttls/starttls/internal/textline"
)

// DefaultDataTimeout bounds the wait for a passive data connection and each
// read or write on it.
const DefaultDataTimeout = 30 * time.Second

// Backend is the file store behind a Server.
type Backend interface {
	// Login checks a user's password; a non-nil error refuses the login
	// (the client sees "530 Login incorrect", never the error text).
	Login(ctx context.Context, username, password string) error
	// FS returns the read-only file tree the user sees after login; its
	// root is the FTP root "/". A failure is reported as 421.
	FS(ctx context.Context, username string) (fs.FS, error)
}

// Server is an FTP server (RFC 959) with FEAT (RFC 2389), EPSV (RFC 2428),
// MLSD/MLST/SIZE/MDTM (RFC 3659), AUTH TLS with PBSZ/PROT (RFC 4217) and
// implicit TLS. It serves the Backend's file tree read-only over passive
// data connections. The zero value with a Backend serves plaintext and
// refuses every login; set TLSConfig to offer AUTH TLS. A Server must not
// be copied after first use.
type Server struct {
	starttls.ServerOptions
	// Backend authenticates users and provides their files. nil refuses
	// every login.
	Backend Backend
	// DataTimeout bounds the wait for a passive data connection and each
	// transfer step; 0 means DefaultDataTimeout.
	DataTimeout time.Duration

	sessions serve.Sessions
	mu       sync.Mutex
	pasv     map[net.Listener]struct{}
}

// init prepares s on first use and returns its sessions.
func (s *Server) init() *serve.Sessions {
	return s.sessions.Setup("ftp: panic serving connection", s.Log, func() {
		s.pasv = map[net.Listener]struct{}{}
	})
}

func (s *Server) dataTimeout() time.Duration {
	if s.DataTimeout <= 0 {
		return DefaultDataTimeout
	}
	return s.DataTimeout
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

// Handshake serves the plaintext part of a session (greeting, FEAT,
// refusals) until the client sends AUTH TLS, then completes the TLS
// handshake and returns the *tls.Conn, with the FTP dialog over TLS still
// to come. Commands pipelined after AUTH TLS always close the connection
// here, InsecureKeepPipelined or not. With Implicit the handshake is done
// at once. Data connections are not relayed. On error conn is closed.
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

// Close closes the listeners, the passive data listeners and all
// connections immediately.
func (s *Server) Close() error {
	s.init()
	s.closePassive()
	return s.sessions.Close()
}

// Shutdown closes the listeners and waits for the sessions to end until ctx
// is done, when it closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	err := s.sessions.Shutdown(ctx)
	s.closePassive()
	return err
}

func (s *Server) closePassive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.pasv {
		l.Close()
	}
}

func (s *Server) track(l net.Listener, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.pasv[l] = struct{}{}
	} else {
		delete(s.pasv, l)
	}
}

// handler is one command: whether it needs a logged-in user, and its
// function.
type handler struct {
	login bool
	fn    func(ss *session, arg string) error
}

// handlers is the command table (RFC 959 §4.1 and §5.3.1, RFC 2389,
// RFC 2428, RFC 3659, RFC 4217).
var handlers = map[string]handler{
	"FEAT": {false, (*session).cmdFeat},
	"OPTS": {false, (*session).cmdOpts},
	"AUTH": {false, (*session).cmdAuth},
	"PBSZ": {false, (*session).cmdPbsz},
	"PROT": {false, (*session).cmdProt},
	"CCC":  {false, (*session).cmdCcc},
	"USER": {false, (*session).cmdUser},
	"PASS": {false, (*session).cmdPass},
	"ACCT": {false, func(ss *session, _ string) error { return ss.reply("202 ACCT not needed") }},
	"QUIT": {false, (*session).cmdQuit},
	"NOOP": {false, func(ss *session, _ string) error { return ss.reply("200 OK") }},
	"SYST": {false, func(ss *session, _ string) error { return ss.reply("215 UNIX Type: L8") }},
	"HELP": {false, (*session).cmdHelp},
	"STAT": {false, (*session).cmdStat},
	"PWD":  {true, (*session).cmdPwd},
	"XPWD": {true, (*session).cmdPwd},
	"CWD":  {true, (*session).cmdCwd},
	"XCWD": {true, (*session).cmdCwd},
	"CDUP": {true, func(ss *session, _ string) error { return ss.cmdCwd("..") }},
	"XCUP": {true, func(ss *session, _ string) error { return ss.cmdCwd("..") }},
	"TYPE": {true, (*session).cmdType},
	"MODE": {true, (*session).cmdMode},
	"STRU": {true, (*session).cmdStru},
	"ALLO": {true, func(ss *session, _ string) error { return ss.reply("202 ALLO not needed") }},
	"ABOR": {true, func(ss *session, _ string) error { return ss.reply("225 No transfer to abort") }},
	"PASV": {true, (*session).cmdPasv},
	"EPSV": {true, (*session).cmdEpsv},
	"PORT": {true, (*session).cmdActive},
	"EPRT": {true, (*session).cmdActive},
	"LIST": {true, (*session).cmdList},
	"NLST": {true, (*session).cmdNlst},
	"MLSD": {true, (*session).cmdMlsd},
	"MLST": {true, (*session).cmdMlst},
	"RETR": {true, (*session).cmdRetr},
	"SIZE": {true, (*session).cmdSize},
	"MDTM": {true, (*session).cmdMdtm},
	"REST": {true, func(ss *session, _ string) error { return ss.bad("502 REST not implemented") }},
	"STOR": {true, (*session).cmdWrite},
	"STOU": {true, (*session).cmdWrite},
	"APPE": {true, (*session).cmdWrite},
	"DELE": {true, (*session).cmdWrite},
	"RMD":  {true, (*session).cmdWrite},
	"XRMD": {true, (*session).cmdWrite},
	"MKD":  {true, (*session).cmdWrite},
	"XMKD": {true, (*session).cmdWrite},
	"RNFR": {true, (*session).cmdWrite},
	"RNTO": {true, (*session).cmdWrite},
	"SITE": {true, (*session).cmdWrite},
}

// Sentinels that end a session.
var (
	errQuit       = errors.New("ftp: client quit")
	errHandedOver = errors.New("ftp: connection handed over after AUTH TLS")
	errTooMany    = errors.New("ftp: too many errors")
)

// session is one control connection.
type session struct {
	srv           *Server
	ctx           context.Context
	sniff         *textline.Sniffer
	tc            *textline.Conn
	peer, local   net.IP
	tls           bool
	pbsz, protP   bool
	user          string // name given with USER, waiting for PASS
	username      string // logged-in user
	fsys          fs.FS
	cwd           string
	pasv          net.Listener
	epsvAll       bool
	errors        int
	handshakeOnly bool
	upgraded      *tls.Conn // the TLS connection just established
	tlsConn       *tls.Conn // the TLS connection in use, closed at the end
}

func (s *Server) newSession(ctx context.Context, conn net.Conn) *session {
	sn := &textline.Sniffer{Conn: conn}
	ss := &session{srv: s, ctx: ctx, sniff: sn, tc: textline.New(sn, s.lineOptions()), cwd: "/"}
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		ss.peer = a.IP
	}
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		ss.local = a.IP
	}
	return ss
}

func (s *Server) lineOptions() textline.Options {
	return textline.Options{Proto: "ftp", Local: starttls.FromServer, MaxLine: s.LineLimit(), StrictCRLF: true}
}

func (ss *session) debug(msg string, err error) {
	ss.srv.Log().Debug("ftp: "+msg, "remote", ss.sniff.RemoteAddr().String(), "err", err)
}

func (ss *session) deadline() {
	ss.sniff.SetDeadline(time.Now().Add(ss.srv.CommandTimeout()))
}

func (ss *session) reply(line string) error { return ss.tc.WriteLine(line) }

// bad answers a negative reply ("CCC text") and counts a protocol error;
// past the limit it closes the session with 421.
func (ss *session) bad(line string) error {
	ss.errors++
	if ss.errors >= ss.srv.ErrorLimit() {
		ss.reply(line)
		ss.reply("421 Too many errors, closing control connection")
		return errTooMany
	}
	return ss.reply(line)
}

// run serves the session until QUIT, an error, or the hand-over after AUTH
// TLS in handshakeOnly mode.
func (ss *session) run() (err error) {
	defer func() {
		if v := recover(); v != nil {
			ss.srv.Log().Error("ftp: panic serving connection", "remote", ss.sniff.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
			ss.sniff.SetDeadline(time.Now().Add(time.Second))
			ss.reply("421 Internal server error, closing control connection")
			err = errorf("panic: %v", v)
		}
		ss.closePasv()
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
	if err := ss.reply("220 " + ss.srv.Name() + " FTP server ready"); err != nil {
		return err
	}
	for {
		if err := ss.ctx.Err(); err != nil {
			ss.deadline()
			ss.reply("421 Server shutting down, closing control connection")
			return err
		}
		ss.deadline()
		line, err := ss.tc.ReadLine()
		ss.deadline()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
				ss.reply("500 TLS received on the plaintext FTP port; use AUTH TLS, or port 990 for implicit TLS")
				return err
			case errors.Is(err, starttls.ErrLineTooLong):
				ss.reply("500 Command line too long, closing control connection")
				return err
			case errors.Is(err, starttls.ErrProtocol):
				if e := ss.bad("500 Malformed command line (CRLF required, no NUL)"); e != nil {
					return errors.Join(err, e)
				}
				continue
			case errors.As(err, &ne) && ne.Timeout() && ss.ctx.Err() == nil:
				ss.reply("421 Timeout, closing control connection")
				return err
			}
			return err
		}
		if err := ss.dispatch(line); err != nil {
			return err
		}
	}
}

// parseCommand splits a command line into the upper-cased verb and its
// argument (RFC 959 §5.3: verb, one space, argument). It reports false for
// a verb that is not 3–4 ASCII letters.
func parseCommand(line string) (verb, arg string, ok bool) {
	verb, arg, _ = strings.Cut(line, " ")
	if len(verb) < 3 || len(verb) > 4 {
		return "", "", false
	}
	for i := 0; i < len(verb); i++ {
		c := verb[i] | 0x20
		if c < 'a' || c > 'z' {
			return "", "", false
		}
	}
	return strings.ToUpper(verb), arg, true
}

// dispatch runs one command after checking the login state.
func (ss *session) dispatch(line string) error {
	verb, arg, ok := parseCommand(line)
	if !ok {
		return ss.bad("500 Syntax error, command unrecognized")
	}
	h, ok := handlers[verb]
	if !ok {
		return ss.bad("502 Command not implemented")
	}
	if h.login && ss.username == "" {
		return ss.bad("530 Please login with USER and PASS")
	}
	return h.fn(ss, arg)
}

// offersTLS reports whether FEAT lists AUTH TLS now.
func (ss *session) offersTLS() bool {
	return ss.srv.TLSConfig != nil && !ss.srv.Implicit && !ss.tls
}

// loginAllowed reports whether USER/PASS are accepted now: over TLS, or
// before TLS with AllowPlaintextLogin.
func (ss *session) loginAllowed() bool { return ss.tls || ss.srv.AllowPlaintextLogin }

func (ss *session) cmdFeat(string) error {
	lines := []string{"211-Features:"}
	if ss.offersTLS() {
		lines = append(lines, " AUTH TLS")
	}
	if ss.srv.TLSConfig != nil {
		lines = append(lines, " PBSZ", " PROT")
	}
	lines = append(lines, " EPSV", " PASV", " MDTM", " MLST type*;size*;modify*;", " SIZE", " UTF8", "211 End")
	return ss.tc.WriteLines(lines...)
}

func (ss *session) cmdOpts(arg string) error {
	if strings.EqualFold(strings.Join(strings.Fields(arg), " "), "UTF8 ON") {
		return ss.reply("200 Always in UTF8 mode")
	}
	return ss.bad("501 Option not understood")
}

// cmdAuth answers AUTH (RFC 2228 §3, RFC 4217 §4) and runs the handshake.
func (ss *session) cmdAuth(arg string) error {
	mech := strings.ToUpper(strings.TrimSpace(arg))
	switch {
	case ss.tls:
		return ss.bad("503 Already using TLS")
	case ss.username != "":
		// SECURITY SV-11: no upgrade after authentication.
		return ss.bad("503 AUTH not permitted after login")
	case mech != "TLS" && mech != "TLS-C" && mech != "SSL":
		return ss.bad("504 Unknown security mechanism")
	case ss.srv.TLSConfig == nil || ss.srv.Implicit:
		return ss.bad("502 AUTH TLS not available")
	case ss.srv.RefuseUpgrade && ss.srv.RefusePermanently:
		return ss.reply("534 Request denied for policy reasons")
	case ss.srv.RefuseUpgrade:
		return ss.reply("431 Need some unavailable resource to process security; try again later")
	}
	// Anything already received was pipelined after AUTH in plaintext
	// (CVE-2011-0411): never execute it inside TLS.
	pipelined := ss.tc.Buffered()
	if ss.sniff.SawClientHello() {
		pipelined++
	}
	if err := ss.tc.WriteLinesThen(ss.srv.Forged("AUTH "+mech), "234 Proceed with negotiation"); err != nil {
		return err
	}
	var kept []byte
	if pipelined > 0 {
		if !ss.srv.InsecureKeepPipelined || ss.handshakeOnly {
			return errorf("%d bytes pipelined after AUTH TLS, closing the connection: %w", pipelined, starttls.ErrPlaintextAfterUpgrade)
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

// handshake runs the server TLS handshake and resets the session (RFC 4217
// §4: a USER given before is forgotten).
func (ss *session) handshake() error {
	ss.sniff.Stop()
	tc := tls.Server(ss.sniff, ss.srv.TLSConfig)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.CommandTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return &starttls.HandshakeError{Err: err}
	}
	ss.tls = true
	ss.user, ss.pbsz, ss.protP = "", false, false
	ss.upgraded = tc
	ss.tlsConn = tc
	return nil
}

// cmdPbsz answers PBSZ (RFC 4217 §8): only after TLS; the size is always 0.
func (ss *session) cmdPbsz(arg string) error {
	if !ss.tls {
		return ss.bad("503 PBSZ needs a TLS session (AUTH TLS first)")
	}
	if _, err := strconv.ParseUint(strings.TrimSpace(arg), 10, 32); err != nil {
		return ss.bad("501 PBSZ needs a number")
	}
	ss.pbsz = true
	return ss.reply("200 PBSZ=0")
}

// cmdProt answers PROT (RFC 4217 §9, RFC 2228 §3): P after PBSZ; C is
// refused in a TLS session so that data never travels in plaintext next to
// a protected control connection.
func (ss *session) cmdProt(arg string) error {
	if !ss.tls {
		return ss.bad("503 PROT needs a TLS session (AUTH TLS first)")
	}
	if !ss.pbsz {
		return ss.bad("503 PBSZ first")
	}
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "P":
		ss.protP = true
		return ss.reply("200 Protection level set to Private")
	case "C":
		return ss.bad("534 Data connections must be protected; PROT C refused")
	case "S", "E":
		return ss.bad("536 Protection level not supported")
	}
	return ss.bad("504 Unknown protection level")
}

// cmdCcc refuses CCC (RFC 4217 §6): the control connection stays in TLS.
func (ss *session) cmdCcc(string) error {
	return ss.bad("534 CCC not permitted: the control connection stays protected")
}

func (ss *session) refuseLogin() error {
	if ss.offersTLS() {
		return ss.bad("530 TLS required: use AUTH TLS before USER and PASS")
	}
	return ss.bad("530 Login refused without TLS")
}

// cmdUser answers USER (RFC 959 §4.1.1); a new USER ends a login.
func (ss *session) cmdUser(arg string) error {
	if !ss.loginAllowed() {
		return ss.refuseLogin()
	}
	if arg == "" {
		return ss.bad("501 USER needs a name")
	}
	ss.user, ss.username, ss.fsys, ss.cwd = arg, "", nil, "/"
	return ss.reply("331 Password required for " + clipStr(arg, 64))
}

// cmdPass answers PASS (RFC 959 §4.1.1). The password is the rest of the
// line and may contain spaces.
func (ss *session) cmdPass(arg string) error {
	if !ss.loginAllowed() {
		return ss.refuseLogin()
	}
	if ss.user == "" {
		return ss.bad("503 Login with USER first")
	}
	user := ss.user
	ss.user = ""
	ss.srv.SawCredentials("USER/PASS", user, arg, ss.tls)
	if ss.srv.Backend == nil {
		return ss.bad("530 Login incorrect")
	}
	if err := ss.srv.Backend.Login(ss.ctx, user, arg); err != nil {
		ss.debug("login failed for "+strconv.Quote(user), err)
		return ss.bad("530 Login incorrect")
	}
	fsys, err := ss.srv.Backend.FS(ss.ctx, user)
	if err != nil {
		ss.debug("file tree of "+strconv.Quote(user), err)
		ss.reply("421 Unable to open the file tree, closing control connection")
		return err
	}
	ss.username, ss.fsys, ss.cwd = user, fsys, "/"
	return ss.reply("230 Login successful")
}

func (ss *session) cmdQuit(string) error {
	ss.reply("221 Goodbye")
	if ss.handshakeOnly {
		return errorf("client quit before the upgrade")
	}
	return errQuit
}

// helpVerbs is the HELP text: the commands in the handlers table.
const helpVerbs = " ABOR ACCT ALLO APPE AUTH CCC CDUP CWD DELE EPRT EPSV FEAT HELP LIST MDTM MKD MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD QUIT REST RETR RMD RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER"

func (ss *session) cmdHelp(string) error {
	return ss.tc.WriteLines("214-The following commands are recognized:", helpVerbs, "214 Help OK")
}

// cmdWrite refuses every command that would change the file tree.
func (ss *session) cmdWrite(string) error {
	return ss.reply("550 Permission denied: the file tree is read-only")
}

func (ss *session) cmdStat(arg string) error {
	if arg != "" {
		return ss.bad("502 STAT with an argument is not implemented")
	}
	prot := "clear"
	if ss.protP {
		prot = "private"
	}
	state := "not logged in"
	if ss.username != "" {
		state = "logged in as " + clipStr(ss.username, 64)
	}
	return ss.tc.WriteLines("211-"+ss.srv.Name()+" FTP server status:", " "+state, fmt.Sprintf(" TLS: %v, data protection: %s", ss.tls, prot), "211 End of status")
}

// resolve turns a client path into a name in the fs.FS and the absolute
// FTP path. ".." never leaves the root.
func (ss *session) resolve(arg string) (name, abs string, ok bool) {
	p := arg
	if !strings.HasPrefix(p, "/") {
		p = path.Join(ss.cwd, p)
	}
	abs = path.Clean("/" + p)
	name = strings.TrimPrefix(abs, "/")
	if name == "" {
		name = "."
	}
	return name, abs, fs.ValidPath(name)
}

// quotePath doubles the quotes in a path for a 257 reply (RFC 959
// Appendix II).
func quotePath(p string) string { return `"` + strings.ReplaceAll(p, `"`, `""`) + `"` }

func (ss *session) cmdPwd(string) error {
	return ss.reply("257 " + quotePath(ss.cwd) + " is the current directory")
}

func (ss *session) cmdCwd(arg string) error {
	if arg == "" {
		return ss.bad("501 CWD needs a directory")
	}
	name, abs, ok := ss.resolve(arg)
	if !ok {
		return ss.bad("550 No such directory")
	}
	fi, err := fs.Stat(ss.fsys, name)
	if err != nil || !fi.IsDir() {
		return ss.bad("550 No such directory")
	}
	ss.cwd = abs
	return ss.reply("250 Directory changed to " + quotePath(abs))
}

func (ss *session) cmdType(arg string) error {
	switch strings.ToUpper(strings.Join(strings.Fields(arg), " ")) {
	case "A", "A N":
		return ss.reply("200 Type set to A")
	case "I", "L 8":
		return ss.reply("200 Type set to I")
	}
	return ss.bad("504 Type not supported")
}

func (ss *session) cmdMode(arg string) error {
	if strings.EqualFold(arg, "S") {
		return ss.reply("200 Mode set to S")
	}
	return ss.bad("504 Only stream mode is supported")
}

func (ss *session) cmdStru(arg string) error {
	if strings.EqualFold(arg, "F") {
		return ss.reply("200 Structure set to F")
	}
	return ss.bad("504 Only file structure is supported")
}

// cmdActive refuses PORT and EPRT: active mode lets a client aim the
// server at a third party (FTP bounce, RFC 2577 §3).
func (ss *session) cmdActive(string) error {
	return ss.bad("502 Active mode not supported; use EPSV or PASV")
}

// listen opens the passive listener on the control connection's local
// address, on a port the system chooses.
func (ss *session) listen() (int, error) {
	ss.closePasv()
	l, err := net.Listen("tcp", net.JoinHostPort(ss.local.String(), "0"))
	if err != nil {
		return 0, err
	}
	ss.pasv = l
	ss.srv.track(l, true)
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (ss *session) closePasv() {
	if ss.pasv != nil {
		ss.srv.track(ss.pasv, false)
		ss.pasv.Close()
		ss.pasv = nil
	}
}

// cmdPasv answers PASV (RFC 959 §4.1.2), IPv4 only.
func (ss *session) cmdPasv(string) error {
	if ss.epsvAll {
		return ss.bad("503 PASV not allowed after EPSV ALL")
	}
	ip4 := ss.local.To4()
	if ip4 == nil {
		return ss.bad("522 PASV needs IPv4; use EPSV")
	}
	port, err := ss.listen()
	if err != nil {
		ss.debug("passive listen", err)
		return ss.reply("425 Cannot open a passive connection")
	}
	return ss.reply(fmt.Sprintf("227 Entering Passive Mode (%d,%d,%d,%d,%d,%d)", ip4[0], ip4[1], ip4[2], ip4[3], port>>8, port&0xff))
}

// cmdEpsv answers EPSV (RFC 2428 §3).
func (ss *session) cmdEpsv(arg string) error {
	switch a := strings.ToUpper(strings.TrimSpace(arg)); {
	case a == "ALL":
		ss.epsvAll = true
		return ss.reply("200 EPSV ALL ok")
	case a == "":
	case a == "1" && ss.local.To4() != nil, a == "2" && ss.local.To4() == nil:
	case a == "1" || a == "2":
		return ss.bad("522 Network protocol not supported, use (" + map[bool]string{true: "1", false: "2"}[ss.local.To4() != nil] + ")")
	default:
		return ss.bad("501 EPSV argument not understood")
	}
	port, err := ss.listen()
	if err != nil {
		ss.debug("passive listen", err)
		return ss.reply("425 Cannot open a passive connection")
	}
	return ss.reply(fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)", port))
}

// acceptData waits for the passive data connection from the control
// connection's peer address; connections from anywhere else are closed
// (data-port stealing) and the wait goes on until the data timeout.
func (ss *session) acceptData(l net.Listener) (net.Conn, error) {
	if tl, ok := l.(*net.TCPListener); ok {
		tl.SetDeadline(time.Now().Add(ss.srv.dataTimeout()))
	}
	for {
		conn, err := l.Accept()
		if err != nil {
			return nil, err
		}
		if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok && a.IP.Equal(ss.peer) {
			return conn, nil
		}
		ss.debug("data connection from "+conn.RemoteAddr().String()+" refused: not the control connection's peer", nil)
		conn.Close()
	}
}

// withData runs one transfer over the passive data connection: 150, the
// connection, TLS when PROT P, send, 226.
func (ss *session) withData(send func(w io.Writer) error) error {
	if ss.pasv == nil {
		return ss.bad("425 Use EPSV or PASV first")
	}
	l := ss.pasv
	defer ss.closePasv()
	if ss.tls && !ss.protP {
		return ss.bad("521 Data connections must be protected: send PBSZ 0 and PROT P")
	}
	if err := ss.reply("150 Opening data connection"); err != nil {
		return err
	}
	dc, err := ss.acceptData(l)
	// The waits below can outlast the control connection's deadline, set
	// before the command: refresh it for each reply that follows one.
	if err != nil {
		ss.debug("data connection", err)
		ss.deadline()
		return ss.reply("425 Cannot open data connection")
	}
	defer dc.Close()
	dc.SetDeadline(time.Now().Add(ss.srv.dataTimeout()))
	var w net.Conn = dc
	if ss.protP {
		tc := tls.Server(dc, ss.srv.TLSConfig)
		ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.dataTimeout())
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			ss.debug("data connection TLS handshake", err)
			ss.deadline()
			return ss.reply("425 TLS negotiation on the data connection failed")
		}
		w = tc
	}
	err = send(w)
	if err == nil {
		err = w.Close() // close_notify, then the TCP close
	}
	ss.deadline()
	if err != nil {
		ss.debug("data transfer", err)
		return ss.reply("426 Connection closed; transfer aborted")
	}
	return ss.reply("226 Transfer complete")
}

// listArg drops ls-style options ("-la") that clients send with LIST.
func listArg(arg string) string {
	f := strings.Fields(arg)
	for len(f) > 0 && strings.HasPrefix(f[0], "-") {
		f = f[1:]
	}
	return strings.Join(f, " ")
}

// entries returns the entries a listing of arg shows: a directory's
// children or the file itself.
func (ss *session) entries(arg string) ([]fs.FileInfo, bool, error) {
	name, _, ok := ss.resolve(arg)
	if !ok {
		return nil, false, fs.ErrNotExist
	}
	fi, err := fs.Stat(ss.fsys, name)
	if err != nil {
		return nil, false, err
	}
	if !fi.IsDir() {
		return []fs.FileInfo{fi}, false, nil
	}
	des, err := fs.ReadDir(ss.fsys, name)
	if err != nil {
		return nil, true, err
	}
	out := make([]fs.FileInfo, 0, len(des))
	for _, de := range des {
		if fi, err := de.Info(); err == nil {
			out = append(out, fi)
		}
	}
	return out, true, nil
}

func (ss *session) listing(arg string, format func(fs.FileInfo) string) error {
	fis, _, err := ss.entries(arg)
	if err != nil {
		return ss.bad("550 No such file or directory")
	}
	return ss.withData(func(w io.Writer) error {
		var b strings.Builder
		for _, fi := range fis {
			b.WriteString(format(fi))
			b.WriteString("\r\n")
		}
		_, err := io.WriteString(w, b.String())
		return err
	})
}

func (ss *session) cmdList(arg string) error { return ss.listing(listArg(arg), listLine) }
func (ss *session) cmdNlst(arg string) error {
	return ss.listing(listArg(arg), func(fi fs.FileInfo) string { return fi.Name() })
}
func (ss *session) cmdMlsd(arg string) error {
	name, _, ok := ss.resolve(arg)
	if fi, err := fs.Stat(ss.fsys, name); !ok || err != nil || !fi.IsDir() {
		return ss.bad("501 MLSD needs a directory")
	}
	return ss.listing(arg, func(fi fs.FileInfo) string { return mlsxFacts(fi) + " " + fi.Name() })
}

// cmdMlst answers MLST (RFC 3659 §7) on the control connection.
func (ss *session) cmdMlst(arg string) error {
	name, abs, ok := ss.resolve(arg)
	fi, err := fs.Stat(ss.fsys, name)
	if !ok || err != nil {
		return ss.bad("550 No such file or directory")
	}
	return ss.tc.WriteLines("250-Listing "+abs, " "+mlsxFacts(fi)+" "+abs, "250 End")
}

// listLine formats one LIST line in the style of ls -l, which clients
// parse.
func listLine(fi fs.FileInfo) string {
	perm := "-r--r--r--"
	if fi.IsDir() {
		perm = "dr-xr-xr-x"
	}
	t := fi.ModTime().UTC()
	stamp := t.Format("Jan _2 15:04")
	if time.Since(t) > 180*24*time.Hour || t.After(time.Now().Add(24*time.Hour)) {
		stamp = t.Format("Jan _2  2006")
	}
	return fmt.Sprintf("%s 1 ftp ftp %12d %s %s", perm, fi.Size(), stamp, fi.Name())
}

// mlsxFacts formats the facts of RFC 3659 §7.5.
func mlsxFacts(fi fs.FileInfo) string {
	if fi.IsDir() {
		return "type=dir;modify=" + fi.ModTime().UTC().Format("20060102150405") + ";"
	}
	return fmt.Sprintf("type=file;size=%d;modify=%s;", fi.Size(), fi.ModTime().UTC().Format("20060102150405"))
}

// file returns the regular file named by arg.
func (ss *session) file(arg string) (string, fs.FileInfo, bool) {
	if arg == "" {
		return "", nil, false
	}
	name, _, ok := ss.resolve(arg)
	if !ok {
		return "", nil, false
	}
	fi, err := fs.Stat(ss.fsys, name)
	if err != nil || !fi.Mode().IsRegular() {
		return "", nil, false
	}
	return name, fi, true
}

func (ss *session) cmdRetr(arg string) error {
	name, _, ok := ss.file(arg)
	if !ok {
		return ss.bad("550 No such file")
	}
	return ss.withData(func(w io.Writer) error {
		f, err := ss.fsys.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
}

func (ss *session) cmdSize(arg string) error {
	_, fi, ok := ss.file(arg)
	if !ok {
		return ss.bad("550 No such file")
	}
	return ss.reply("213 " + strconv.FormatInt(fi.Size(), 10))
}

func (ss *session) cmdMdtm(arg string) error {
	_, fi, ok := ss.file(arg)
	if !ok {
		return ss.bad("550 No such file")
	}
	return ss.reply("213 " + fi.ModTime().UTC().Format("20060102150405"))
}
