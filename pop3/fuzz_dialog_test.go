package pop3

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// The whole-dialog fuzz targets take the peer's bytes as chunks separated
// by chunkSep. In plaintext one Read returns at most the rest of one chunk
// (a chunk is what one TCP segment would bring), so a chunk with several
// answers or commands is pipelined data and one without is a peer in lock
// step. Inside TLS, a real TLS peer writes each chunk with one Write (one
// record up to 16 KiB) when the side under test asks for it (see
// tlsServerPeer and tlsClientPeer).
const chunkSep = "\x00\x00"

// script joins chunks with chunkSep.
func script(chunks ...string) []byte { return []byte(strings.Join(chunks, chunkSep)) }

// shortWait is the longest read deadline taken for a probe's short wait
// (InjectionWait) rather than for a wait for an answer: such a read ends
// as soon as the peer has nothing more to send right now, without
// depending on the clock.
const shortWait = 50 * time.Millisecond

// memPipe is a buffered in-memory connection between the side under test
// (end 0) and a TLS peer (end 1). Writes never block. It also tells the
// peer when the side under test waits for data (see waitTurn), so that the
// dialog does not depend on timing.
type memPipe struct {
	mu       sync.Mutex
	cond     sync.Cond
	buf      [2]bytes.Buffer // buf[i]: bytes for end i to read
	closed   [2]bool
	rd       time.Time // end 0's read deadline
	timer    *time.Timer
	waiting  bool // end 0 is blocked in Read, waiting for an answer
	peerIdle bool // the peer waits for its turn
	lines    int  // lines the peer has received inside TLS
}

func newMemPipe() *memPipe {
	p := &memPipe{}
	p.cond.L = &p.mu
	return p
}

// memEnd is one end of a memPipe.
type memEnd struct {
	p *memPipe
	i int
}

func (e memEnd) Read(b []byte) (int, error) {
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	defer func() {
		if e.i == 0 {
			p.waiting = false
		}
	}()
	for {
		switch {
		case p.closed[e.i]:
			return 0, net.ErrClosed
		case p.buf[e.i].Len() > 0:
			return p.buf[e.i].Read(b)
		case p.closed[1-e.i]:
			return 0, io.EOF
		}
		if e.i == 0 && !p.rd.IsZero() {
			left := time.Until(p.rd)
			if left <= 0 || left < shortWait && p.peerIdle {
				return 0, os.ErrDeadlineExceeded
			}
			if left >= shortWait && !p.waiting {
				p.waiting = true
				p.cond.Broadcast()
			}
		} else if e.i == 0 && !p.waiting {
			p.waiting = true
			p.cond.Broadcast()
		}
		p.cond.Wait()
	}
}

func (e memEnd) Write(b []byte) (int, error) {
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed[e.i]:
		return 0, net.ErrClosed
	case p.closed[1-e.i]:
		return len(b), nil // lost, as on a connection the peer closed
	}
	p.buf[1-e.i].Write(b)
	p.cond.Broadcast()
	return len(b), nil
}

func (e memEnd) Close() error {
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed[e.i] = true
	if p.timer != nil {
		p.timer.Stop()
	}
	p.cond.Broadcast()
	return nil
}

func (e memEnd) SetReadDeadline(t time.Time) error {
	if e.i != 0 {
		return nil
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rd = t
	if p.timer != nil {
		p.timer.Stop()
	}
	if !t.IsZero() {
		p.timer = time.AfterFunc(time.Until(t), func() {
			p.mu.Lock()
			p.cond.Broadcast()
			p.mu.Unlock()
		})
	}
	p.cond.Broadcast()
	return nil
}

func (e memEnd) SetDeadline(t time.Time) error      { return e.SetReadDeadline(t) }
func (e memEnd) SetWriteDeadline(t time.Time) error { return nil }
func (e memEnd) LocalAddr() net.Addr                { return &net.UnixAddr{Name: "mem", Net: "unix"} }
func (e memEnd) RemoteAddr() net.Addr               { return &net.UnixAddr{Name: "mem", Net: "unix"} }

// addLines records lines received by the peer.
func (p *memPipe) addLines(n int) {
	p.mu.Lock()
	p.lines += n
	p.cond.Broadcast()
	p.mu.Unlock()
}

// waitTurn waits until the peer has received n lines or the side under
// test waits for an answer with nothing left to read. It returns false
// when either end is closed.
func (p *memPipe) waitTurn(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peerIdle = true
	p.cond.Broadcast()
	defer func() { p.peerIdle = false }()
	for {
		switch {
		case p.closed[0] || p.closed[1]:
			return false
		case p.lines >= n || p.waiting && p.buf[0].Len() == 0:
			return true
		}
		p.cond.Wait()
	}
}

// dialogConn is the net.Conn of the side under test. It reads the peer's
// plaintext chunks and records what is written to it. When the side under
// test starts TLS (it writes a TLS record, or, as a server, the STLS
// go-ahead) and the current chunk has been read to its end, the rest of
// the plaintext is dropped and the conn goes on over a memPipe to a real
// TLS peer. Plaintext left unread in the current chunk is what the
// handshake gets instead, as on a real wire.
type dialogConn struct {
	mu     sync.Mutex
	chunks [][]byte     // plaintext still to come; chunks[0] is being read
	out    bytes.Buffer // written in plaintext before TLS
	// handshake: the side under test started TLS; what it writes without
	// the pipe (TLS records, alerts) is not kept in out.
	handshake bool
	remote    net.Addr
	// tlsClient: the side under test is the TLS client (else the server).
	tlsClient bool
	peer      func(conn net.Conn, p *memPipe)
	pipe      *memPipe
	done      chan struct{} // closed when peer has returned
	rd        time.Time
}

func newDialogConn(plain []byte, port int, tlsClient bool, peer func(net.Conn, *memPipe)) *dialogConn {
	return &dialogConn{
		chunks:    bytes.Split(plain, []byte(chunkSep)),
		remote:    &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
		tlsClient: tlsClient,
		peer:      peer,
	}
}

// startTLS records that the side under test starts TLS, and switches to
// the pipe and starts the TLS peer unless bytes of the current chunk are
// unread. c.mu is held.
func (c *dialogConn) startTLS() {
	c.handshake = true
	if c.pipe != nil || len(c.chunks) > 0 && len(c.chunks[0]) > 0 {
		return
	}
	c.chunks = nil
	p := newMemPipe()
	memEnd{p, 0}.SetReadDeadline(c.rd)
	c.pipe = p
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		defer memEnd{p, 1}.Close()
		c.peer(memEnd{p, 1}, p)
	}()
}

// end returns the side under test's end of the pipe, or nil before TLS.
func (c *dialogConn) end() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pipe == nil {
		return nil
	}
	return memEnd{c.pipe, 0}
}

func (c *dialogConn) Read(p []byte) (int, error) {
	if e := c.end(); e != nil {
		return e.Read(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func (c *dialogConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.tlsClient && len(p) > 0 && p[0] == 0x16 { // a ClientHello
		c.startTLS()
	}
	c.mu.Unlock()
	if e := c.end(); e != nil {
		return e.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handshake {
		return len(p), nil
	}
	n, err := c.out.Write(p)
	if !c.tlsClient && bytes.HasPrefix(p, []byte("+OK Begin TLS")) {
		c.startTLS()
	}
	return n, err
}

func (c *dialogConn) Close() error {
	if e := c.end(); e != nil {
		return e.Close()
	}
	return nil
}

// finish closes both ends of the pipe and waits for the TLS peer; it
// reports false when the peer did not return.
func (c *dialogConn) finish(wait time.Duration) bool {
	c.mu.Lock()
	p, done := c.pipe, c.done
	c.mu.Unlock()
	if p == nil {
		return true
	}
	memEnd{p, 0}.Close()
	memEnd{p, 1}.Close()
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// plaintext returns what was written before TLS.
func (c *dialogConn) plaintext() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *dialogConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *dialogConn) RemoteAddr() net.Addr { return c.remote }

func (c *dialogConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *dialogConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rd = t
	c.mu.Unlock()
	if e := c.end(); e != nil {
		return e.SetReadDeadline(t)
	}
	return nil
}

// Writes never block.
func (c *dialogConn) SetWriteDeadline(t time.Time) error { return nil }

// tlsServerPeer is the TLS server of FuzzClientDialog. After the handshake
// it sends chunk 0 at once (data the client did not ask for), then chunk i
// when the client has sent i lines or waits for more of an answer; it
// closes the connection at the next such turn after the last chunk.
func tlsServerPeer(cfg *tls.Config, chunks [][]byte) func(net.Conn, *memPipe) {
	return func(raw net.Conn, p *memPipe) {
		tc := tls.Server(raw, cfg)
		if tc.Handshake() != nil {
			return
		}
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			buf := make([]byte, 4096)
			for {
				n, err := tc.Read(buf)
				p.addLines(bytes.Count(buf[:n], []byte("\n")))
				if err != nil {
					return
				}
			}
		}()
		defer func() { raw.Close(); <-readerDone }()
		for i := 0; i <= len(chunks); i++ {
			if i > 0 && !p.waitTurn(i) {
				return
			}
			if i < len(chunks) && len(chunks[i]) > 0 {
				if _, err := tc.Write(chunks[i]); err != nil {
					return
				}
			}
		}
	}
}

// tlsClientPeer is the TLS client of FuzzServerSession. After the
// handshake it sends each chunk with one Write, then close_notify, and
// keeps what the server sends in got.
func tlsClientPeer(cfg *tls.Config, chunks [][]byte, got *bytes.Buffer) func(net.Conn, *memPipe) {
	return func(raw net.Conn, _ *memPipe) {
		tc := tls.Client(raw, cfg)
		if tc.Handshake() != nil {
			return
		}
		drained := make(chan struct{})
		go func() { io.Copy(got, tc); close(drained) }()
		for _, chunk := range chunks {
			if len(chunk) > 0 {
				if _, err := tc.Write(chunk); err != nil {
					break
				}
			}
		}
		tc.CloseWrite()
		<-drained // until the server closes
	}
}

// failOnError is a slog handler that fails the test on error records (a
// recovered panic is logged at error level) and drops the rest.
type failOnError struct{ t testing.TB }

func (h failOnError) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h failOnError) Handle(_ context.Context, r slog.Record) error {
	var attrs []string
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.String()); return true })
	h.t.Errorf("server logged an error: %s %s", r.Message, strings.Join(attrs, " "))
	return nil
}
func (h failOnError) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failOnError) WithGroup(string) slog.Handler      { return h }

// A normal server's answers.
const (
	fzGoAhead = "+OK Begin TLS negotiation now\r\n"
	fzUser    = "+OK send PASS\r\n"
	fzPass    = "+OK maildrop has 2 messages (99 octets)\r\n"
	fzStat    = "+OK 2 99\r\n"
	fzRetr    = "+OK 40 octets\r\nFrom: a\r\n\r\n..dot\r\nbody\r\n.\r\n"
	fzBye     = "+OK bye\r\n"
	fzCapsTLS = "+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n"
)

// clientDialogSeeds are server scripts: the plaintext chunks, the chunks
// sent inside TLS (chunk i answers the client's i-th line there). They
// hold the hostile POP3 strings of SECURITY.md.
var clientDialogSeeds = [][2][]byte{
	// Normal dialogs: STLS, AUTH PLAIN, the probe answered inside TLS
	// (CVE-2011-0411), implicit TLS, plaintext, a pre-RFC 2449 server.
	{script(greeting, capsSTLS, fzGoAhead), script("", capsTLS, fzUser, fzPass, fzStat, fzRetr, fzBye)},
	{script(greeting, capsSTLS, fzGoAhead), script("", "+OK\r\nSASL PLAIN\r\n.\r\n", "+OK logged in\r\n", fzStat, fzRetr, fzBye)},
	{script(greeting, capsSTLS, fzGoAhead), script("+OK\r\nSTLS\r\n.\r\n", capsTLS, fzUser, fzPass, fzStat, fzRetr, fzBye)},
	{script(greeting, capsSTLS, fzGoAhead), script("", "+OK\r\nSASL PLAIN\r\n.\r\n", "+ \r\n", "+OK\r\n", fzStat, fzRetr, fzBye)}, // AUTH PLAIN continuation
	{script(""), script(greeting, capsTLS, fzUser, fzPass, fzStat, fzRetr, fzBye)},
	{script(greeting, capsNoSTLS, fzUser, fzPass, fzStat, fzRetr, fzBye), nil},
	{script(greeting, "-ERR unknown command\r\n", fzGoAhead), script("", "-ERR unknown command\r\n", fzUser, fzPass, fzStat, fzRetr, fzBye)},
	// CL-07: STLS not offered, refused; an APOP time stamp; a refused STLS
	// with the probe's CAPA answered in plaintext.
	{script("+OK POP3 server ready. <1234.123456789@example.org>\r\n", capsNoSTLS, fzUser, fzPass, fzStat, fzRetr, fzBye), nil},
	{script(greeting, capsSTLS, "-ERR STARTTLS not supported.\r\n", fzUser, fzPass, fzStat, fzRetr, fzBye), nil},
	{script(greeting, capsSTLS, "-ERR [SYS/PERM] perm alert\r\n", capsNoSTLS, fzStat, fzRetr, fzBye), nil},
	{script(greeting, capsSTLS, "-ERR [SYS/TEMP] try later\r\n"), nil},
	// CL-10, EAST pop3 Buffering B_1: response injection after the go-ahead.
	{script(greeting, capsSTLS, "+OK Begin fake TLS negotiation now.\r\n+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"), script("", capsTLS, fzUser, fzPass)},
	{script(greeting, capsSTLS, "+OK Begin fake TLS negotiation now.\r\n", "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"), script("", capsTLS, fzUser, fzPass)},
	// CL-12, EAST pop3 Buffering B_2: garbage instead of a handshake.
	{script(greeting, capsSTLS, "+OK Begin fake TLS negotiation now.\r\n\xb9\xb3\xb9\xb2\xb3"), nil},
	{script(greeting, capsSTLS, "+OK Begin fake TLS negotiation now.\r\n", "\xb9\xb3\xb9\xb2\xb3"), nil},
	// PR-08: a very long SASL list; more CAPA lines than MaxLines.
	{script(greeting, "+OK\r\nSTLS\r\nSASL "+strings.Repeat("X ", 200)+"\r\n.\r\n", fzGoAhead), script("", "+OK\r\nSASL "+strings.Repeat("M ", 200)+"PLAIN\r\n.\r\n", "+OK\r\n", fzStat, fzRetr)},
	{script(greeting, "+OK\r\n"+strings.Repeat("X\r\n", 100)+"STLS\r\n.\r\n", fzGoAhead), script("", "+OK\r\n"+strings.Repeat("USER\r\n", 100)+".\r\n", fzUser, fzPass)},
	// PR-11: an unsolicited multi-line answer right after the greeting.
	{script(greeting + "+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"), nil},
	{script(greeting, "+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"), nil},
	// Odd answers inside TLS.
	{script(greeting, capsSTLS, fzGoAhead), script("", capsTLS, fzUser, fzPass, "+OK -1 99999999999999999999\r\n", "+OK\r\n..\r\n.\r\n")},
	{script(greeting, capsSTLS, fzGoAhead), script("", capsTLS, fzUser, fzPass, "+OK 1 2\r\n", "+OK\r\nno terminator\r\n")},
	{script(greeting, capsSTLS, fzGoAhead), script("", capsTLS, fzUser, fzPass, fzStat, "+OK\r\nno terminator\r\n", "more\r\n.\r\n")},
	{script(greeting, capsSTLS, fzGoAhead), script("", fzCapsTLS, "+ \r\n-ERR [AUTH] no\r\n")},
	{script(greeting, capsSTLS, fzGoAhead), script("", "* OK IMAP\r\n")},
	{script(greeting, capsSTLS, fzGoAhead), script("", capsTLS+fzUser+fzPass+fzStat+fzRetr+fzBye)},
	{script(greeting + capsSTLS + fzGoAhead), nil},
	{script(greeting, "+OK\r\nSTLS\r\n"), nil},
	{script("\x16\x03\x01\x00\x05hello"), nil},
}

// FuzzClientDialog feeds hostile server bytes through the whole client:
// Upgrade in every mode, with and without the injection probe, then Login,
// Stat, Retr and Close. The Result is never nil, the Client is nil exactly
// when there is an error, capabilities are bounded by MaxLines, nothing
// read in plaintext becomes a post-TLS capability, a required or implicit
// session never ends without TLS, no credentials go out in plaintext
// except in ModePlain, and nothing hangs.
//
// flags: bits 0–3 the mode (mod 5), 0x20 a password too long for an AUTH
// PLAIN initial response, 0x40 port 995 (ModeAuto resolves to implicit),
// 0x80 ProbeInjection.
func FuzzClientDialog(f *testing.F) {
	for _, s := range clientDialogSeeds {
		for _, m := range []uint8{0, 1, 2, 3, 4, 0x40, 0x82, 0x83, 0x84, 0xa3} {
			f.Add(s[0], s[1], m)
		}
	}
	for _, s := range hostile {
		f.Add([]byte(s), []byte(nil), uint8(3))
		f.Add(script(greeting, s), []byte(nil), uint8(0x82))
		f.Add(script(greeting, capsSTLS, s), []byte(nil), uint8(0x82))
		f.Add(script(greeting, capsSTLS, fzGoAhead), script("", s), uint8(0x83))
		f.Add(script(greeting, capsSTLS, fzGoAhead), script("", capsTLS, fzUser, fzPass, s), uint8(3))
	}
	st, ct := linetest.TLSPair(f)
	f.Fuzz(func(t *testing.T, plain, secure []byte, flags uint8) {
		mode := starttls.Mode(int(flags&0x0f) % 5)
		port := 110
		if flags&0x40 != 0 {
			port = 995
		}
		password := "secret pw"
		if flags&0x20 != 0 {
			password = strings.Repeat("p", 300)
		}
		opts := &starttls.ClientOptions{
			Mode:           mode,
			TLSConfig:      ct,
			Transcript:     &starttls.Transcript{},
			MaxLines:       64,
			InjectionWait:  time.Millisecond,
			ProbeInjection: flags&0x80 != 0,
		}
		conn := newDialogConn(plain, port, true, tlsServerPeer(st, bytes.Split(secure, []byte(chunkSep))))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()

		type outcome struct {
			c   *Client
			res *starttls.Result
			err error
		}
		ended := make(chan outcome, 1)
		go func() {
			c, res, err := Upgrade(ctx, conn, opts)
			if err == nil && c != nil {
				c.Login(ctx, "alice", password)
				c.Stat(ctx)
				c.Retr(ctx, 1)
				c.Close()
			}
			ended <- outcome{c, res, err}
		}()
		var o outcome
		select {
		case o = <-ended:
		case <-time.After(6 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("client did not end on %q / %q:\n%s", plain, secure, buf[:runtime.Stack(buf, true)])
		}
		if !conn.finish(5 * time.Second) {
			t.Fatal("the TLS server peer did not end")
		}

		res := o.res
		if res == nil {
			t.Fatal("nil Result")
		}
		if o.err != nil && o.c != nil {
			t.Fatalf("non-nil Client with error %v", o.err)
		}
		if o.err == nil && o.c == nil {
			t.Fatal("nil Client without an error")
		}
		if o.c != nil && o.c.Result() != res {
			t.Error("Client.Result is not the Result Upgrade returned")
		}
		if len(res.CapsBefore) > opts.MaxLines || len(res.CapsAfter) > opts.MaxLines {
			t.Errorf("capabilities not bounded by MaxLines: %d, %d", len(res.CapsBefore), len(res.CapsAfter))
		}
		if len(res.AuthBefore) > maxSASLMechs+1 || len(res.AuthAfter) > maxSASLMechs+1 {
			t.Errorf("mechanisms not bounded: %d, %d", len(res.AuthBefore), len(res.AuthAfter))
		}
		// Upgrade rule 3 and CL-10: what was read in plaintext is never a
		// post-TLS capability.
		tlsData := len(bytes.ReplaceAll(secure, []byte(chunkSep), nil)) > 0
		if (!res.Upgraded || !tlsData) && (len(res.CapsAfter) > 0 || len(res.AuthAfter) > 0 || res.CapsReread) {
			t.Errorf("post-TLS capabilities %q without TLS data (upgraded %v)", res.CapsAfter, res.Upgraded)
		}
		resolved := mode.Resolve(port)
		if o.err == nil && (resolved == starttls.ModeRequired || resolved == starttls.ModeImplicit) && (!res.Upgraded || res.TLS == nil) {
			t.Errorf("mode %v ended without TLS and without an error", resolved)
		}
		if resolved == starttls.ModePlain && res.Upgraded {
			t.Error("plain mode upgraded")
		}
		if !opts.ProbeInjection && res.Injection != nil {
			t.Error("an injection probe result without ProbeInjection")
		}
		if opts.ProbeInjection && o.err == nil && res.Injection == nil {
			t.Error("no injection probe result with ProbeInjection")
		}
		// CL-07: no credentials in plaintext unless the caller chose plain.
		if resolved != starttls.ModePlain {
			out := conn.plaintext()
			for _, l := range strings.Split(string(out), "\r\n") {
				verb, _, _ := strings.Cut(l, " ")
				switch strings.ToUpper(verb) {
				case "USER", "PASS", "AUTH", "APOP":
					t.Errorf("mode %v sent %q in plaintext: %q", resolved, l, out)
				}
			}
			if bytes.Contains(out, []byte(password)) || bytes.Contains(out, []byte("AGFsaWNlA")) {
				t.Errorf("mode %v sent the password in plaintext: %q", resolved, out)
			}
		}
	})
}

// FuzzServerSession flags.
const (
	fzAllowPlain = 1 << iota
	fzKeepPipelined
	fzImplicit
	fzRefuseUpgrade
	fzNoBackend
	fzFailMaildrop
	fzDefaultMaxErrors
)

// FuzzServerSession feeds hostile client bytes through a whole server
// session (Server.ServeConn): plaintext chunks, and, when the server gives
// the STLS go-ahead after the current chunk (or at once with Implicit and
// an empty first chunk), chunks a real TLS client sends after the
// handshake. No panic (a recovered panic is logged at error level and
// fails the test), no hang, no login accepted before TLS unless
// AllowPlaintextLogin, and only CRLF line endings and no NUL on the wire.
func FuzzServerSession(f *testing.F) {
	const session = "CAPA\r\nUSER alice\r\nPASS secret pw\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 0\r\nTOP 2 1\r\nLIST 2\r\nUIDL 1\r\nDELE 1\r\nRETR 1\r\nRSET\r\nNOOP\r\nQUIT\r\n"
	lockstep := func(cmds string) []byte {
		lines := strings.SplitAfter(cmds, "\r\n")
		return script(lines...)
	}
	seeds := []struct {
		plain, secure []byte
		flags         uint8
	}{
		// Normal dialogs, in lock step and pipelined.
		{lockstep("CAPA\r\nSTLS\r\n"), lockstep(session), 0},
		{script("CAPA\r\n", "STLS\r\n"), []byte(session), 0},
		{script(""), lockstep(session), fzImplicit},
		{script(""), []byte(session), fzImplicit},
		{lockstep(session), nil, fzAllowPlain},
		{[]byte(session), nil, fzAllowPlain},
		{lockstep("CAPA\r\nSTLS\r\n"), lockstep("CAPA\r\nAUTH PLAIN AGFsaWNlAHNlY3JldCBwdw==\r\nSTAT\r\nRETR 2\r\nQUIT\r\n"), 0},
		{script("STLS\r\n"), lockstep("AUTH PLAIN\r\nAGFsaWNlAHNlY3JldCBwdw==\r\nLIST\r\nQUIT\r\n"), 0},
		{script("STLS\r\n"), []byte("AUTH PLAIN\r\nAGFsaWNlAHNlY3JldCBwdw==\r\nLIST\r\nQUIT\r\n"), 0},
		// AUTH PLAIN variants: empty, cancelled, no mechanism, other
		// mechanism, authzid equal to and different from the user.
		{script("STLS\r\n"), lockstep("AUTH PLAIN\r\n=\r\nAUTH PLAIN\r\n*\r\nAUTH\r\nAUTH LOGIN\r\nAUTH PLAIN =\r\nAUTH PLAIN YWxpY2UAYWxpY2UAc2VjcmV0IHB3\r\nAUTH PLAIN Ym9iAGFsaWNlAHNlY3JldCBwdw==\r\n"), fzDefaultMaxErrors},
		{script("AUTH PLAIN\r\n", "AGFsaWNlAHNlY3JldCBwdw==\r\n", "STAT\r\n"), nil, fzAllowPlain},
		// RETR/TOP/LIST/UIDL/DELE with odd arguments.
		{script("STLS\r\n"), lockstep("USER alice\r\nPASS secret pw\r\nRETR -1\r\nRETR +1\r\nRETR 0\r\nRETR 3\r\nRETR 01\r\nRETR 99999999999999999999\r\nRETR \u0661\r\nRETR\r\nRETR 1 2\r\nTOP 1 -1\r\nTOP 1\r\nTOP x y\r\nTOP 1 99999999999999999999\r\nTOP 0 0\r\nLIST 1 2\r\nLIST -0\r\nUIDL 3\r\nUIDL x\r\nDELE 1\r\nDELE 1\r\nRETR 1\r\nTOP 1 0\r\nLIST 1\r\nUIDL 1\r\nDELE\r\nSTAT x\r\nRSET x\r\nNOOP x\r\nLIST\r\nUIDL\r\nQUIT\r\n"), 0},
		{lockstep("USER alice\r\nPASS secret pw\r\nDELE 1\r\nDELE 2\r\nLIST\r\nUIDL\r\nSTAT\r\nRETR 2\r\nRSET\r\nTOP 2 99\r\nQUIT x\r\n"), nil, fzAllowPlain},
		// Backend failures.
		{script("STLS\r\n"), lockstep("USER alice\r\nPASS secret pw\r\nSTAT\r\n"), fzFailMaildrop},
		{script("STLS\r\n"), lockstep("USER alice\r\nPASS secret pw\r\nSTAT\r\n"), fzNoBackend},
		{script("STLS\r\n"), lockstep("USER alice\r\nPASS wrong\r\nUSER alice\r\nPASS\r\nPASS secret pw\r\n"), fzDefaultMaxErrors},
		// STLS inside TLS, state errors, APOP.
		{script("STLS\r\n"), lockstep("STLS\r\nUSER\r\nPASS x\r\nUSER alice\r\nSTAT\r\nAPOP alice 0123456789abcdef\r\nQUIT\r\n"), 0},
		// SV-03, CVE-2011-0411: commands pipelined after STLS.
		{script("STLS\r\nCAPA\r\n"), nil, 0},
		{script("STLS\r\nUSER alice\r\nPASS secret pw\r\nRETR 1\r\n"), lockstep("STAT\r\nQUIT\r\n"), fzKeepPipelined},
		{script("STLS\r\nCAPA\r\n"), script("CAPA\r\n"), fzKeepPipelined | fzAllowPlain},
		{script("STLS\r\nUSER alice\r\nPASS secret pw\r\nRETR 1\r\n"), nil, 0},
		// The EAST pop3 Buffering B_1/B_2 (CL-10, CL-12), CL-07 and PR-11
		// strings, sent by a client.
		{script("STLS\r\n+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"), nil, fzKeepPipelined},
		{script("+OK Begin fake TLS negotiation now.\r\n+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"), nil, 0},
		{script("+OK Begin fake TLS negotiation now.\r\n\xb9\xb3\xb9\xb2\xb3"), nil, 0},
		{script("STLS\r\n\xb9\xb3\xb9\xb2\xb3"), nil, 0},
		{script("STLS\r\n", "\xb9\xb3\xb9\xb2\xb3"), nil, 0},
		{script("+OK POP3 server ready. <1234.123456789@example.org>\r\n-ERR STARTTLS not supported.\r\n-ERR [SYS/PERM] perm alert\r\n"), nil, 0},
		{script("+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"), nil, fzAllowPlain},
		// Refusals and state errors before TLS.
		{lockstep("USER alice\r\nSTLS\r\nPASS secret pw\r\nSTLS x\r\nSTAT\r\nQUIT\r\n"), nil, fzAllowPlain},
		{lockstep("USER alice\r\nPASS secret pw\r\nAUTH PLAIN AGFsaWNlAHNlY3JldCBwdw==\r\nAUTH PLAIN\r\nCAPA\r\nSTLS\r\n"), nil, 0},
		{lockstep("CAPA\r\nSTLS\r\n"), nil, fzRefuseUpgrade},
		{script("STLS\r\n"), nil, fzImplicit},
		// Bare LF, NUL, empty lines, long lines, TLS on the plaintext port.
		{[]byte("CAPA\nUSER alice\nPASS secret pw\nSTAT\n"), nil, fzAllowPlain},
		{lockstep("CAPA\r\nUS\x00ER alice\r\n\r\n \r\nCAPA \r\n capa\r\nquit\r\n"), nil, fzAllowPlain | fzDefaultMaxErrors},
		{script("STLS\r\n"), []byte("USER alice\nPASS secret pw\r\nPASS secret\x00pw\r\nAUTH PLAIN\r\nAGFsaWNlAHNlY3JldCBwdw==\n"), 0},
		{script("STLS\n"), nil, 0},
		{[]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), nil, 0},
		{script("CAPA\r\n", "STLS\r\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), nil, 0},
		{script("CAPA\r\n" + strings.Repeat("A", 3000) + "\r\nCAPA\r\n"), nil, 0},
		{script("STLS\r\n"), []byte("AUTH PLAIN\r\n" + strings.Repeat("A", 3000) + "\r\n"), 0},
		{script("CAPA\r\n", "STLS\r\n"), []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 0},
	}
	for _, s := range seeds {
		f.Add(s.plain, s.secure, s.flags)
	}
	st, ct := linetest.TLSPair(f)
	peerCfg := ct.Clone()
	peerCfg.ServerName = "localhost"
	f.Fuzz(func(t *testing.T, plain, secure []byte, flags uint8) {
		var backend Backend = &memBackend{failMaildrop: flags&fzFailMaildrop != 0}
		if flags&fzNoBackend != 0 {
			backend = nil
		}
		s := &Server{Backend: backend}
		s.TLSConfig = st
		s.Hostname = "pop.test"
		s.AllowPlaintextLogin = flags&fzAllowPlain != 0
		s.InsecureKeepPipelined = flags&fzKeepPipelined != 0
		s.Implicit = flags&fzImplicit != 0
		s.RefuseUpgrade = flags&fzRefuseUpgrade != 0
		s.ReadTimeout = 2 * time.Second
		if flags&fzDefaultMaxErrors == 0 {
			s.MaxErrors = 1000
		}
		s.Logger = slog.New(failOnError{t})

		var got bytes.Buffer // what the server sent inside TLS
		conn := newDialogConn(plain, 50000, false, tlsClientPeer(peerCfg, bytes.Split(secure, []byte(chunkSep)), &got))
		if s.Implicit {
			conn.mu.Lock()
			conn.startTLS()
			conn.mu.Unlock()
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ServeConn(context.Background(), conn)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("session did not end on %q / %q:\n%s", plain, secure, buf[:runtime.Stack(buf, true)])
		}
		if !conn.finish(5 * time.Second) {
			t.Fatal("the TLS client peer did not end")
		}

		out := conn.plaintext()
		if !s.AllowPlaintextLogin && (bytes.Contains(out, []byte("+OK maildrop")) || bytes.Contains(out, []byte("+OK send PASS"))) {
			t.Errorf("login accepted before TLS: %q", out)
		}
		for _, wire := range [][]byte{out, got.Bytes()} {
			if len(wire) > 0 && !bytes.HasSuffix(wire, []byte("\r\n")) {
				t.Errorf("server output does not end with CRLF: %q", wire)
			}
			if bytes.Count(wire, []byte("\n")) != bytes.Count(wire, []byte("\r\n")) || bytes.IndexByte(wire, 0) >= 0 {
				t.Errorf("bare LF or NUL in the server output: %q", wire)
			}
		}
	})
}
