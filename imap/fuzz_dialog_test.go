package imap

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
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

// peerConn is a net.Conn with a scripted peer. Until the TLS part begins,
// reads return the bytes of plain and then io.EOF, and writes are recorded
// in sent and otherwise discarded, like a fixed script. The TLS part begins
// at the write that trigger accepts (a ClientHello from a client, the go
// ahead to STARTTLS from a server); from then on, after what is left of
// plain, the connection is a pipe to peer, run in its own goroutine, which
// does the other half of the handshake and sends its bytes inside TLS. The
// fuzzers thus reach the dialog after the upgrade, which a fixed script
// cannot.
type peerConn struct {
	remote  net.Addr
	trigger func(p []byte) bool
	forward bool // the triggering write belongs to the TLS part
	peer    func(net.Conn)

	mu      sync.Mutex
	plain   []byte
	sent    bytes.Buffer
	inTLS   bool
	pipe    net.Conn // our end
	other   net.Conn // the peer's end
	done    chan struct{}
	started bool
}

func newPeerConn(plain []byte, port int, trigger func([]byte) bool, forward bool, peer func(net.Conn)) *peerConn {
	c := &peerConn{
		remote:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
		trigger: trigger,
		forward: forward,
		peer:    peer,
		plain:   plain,
		done:    make(chan struct{}),
	}
	c.pipe, c.other = memPipe()
	return c
}

// startTLS switches to the TLS part and starts the peer; c.mu is held.
func (c *peerConn) startTLS() {
	c.inTLS, c.started = true, true
	go func() {
		defer close(c.done)
		defer c.other.Close()
		c.peer(c.other)
	}()
}

func (c *peerConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.plain) > 0 {
		n := copy(p, c.plain)
		c.plain = c.plain[n:]
		c.mu.Unlock()
		return n, nil
	}
	inTLS := c.inTLS
	c.mu.Unlock()
	if !inTLS {
		return 0, io.EOF
	}
	return c.pipe.Read(p)
}

func (c *peerConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.inTLS {
		start := c.trigger(p)
		if start {
			c.startTLS()
		}
		if !start || !c.forward {
			c.sent.Write(p)
			c.mu.Unlock()
			return len(p), nil
		}
	}
	c.mu.Unlock()
	return c.pipe.Write(p)
}

// plaintext returns what was written before the TLS part.
func (c *peerConn) plaintext() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent.String()
}

// finish closes both ends and waits for the peer.
func (c *peerConn) finish() {
	c.pipe.Close()
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if started {
		<-c.done
	} else {
		c.other.Close()
	}
}

func (c *peerConn) Close() error                       { return c.pipe.Close() }
func (c *peerConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (c *peerConn) RemoteAddr() net.Addr               { return c.remote }
func (c *peerConn) SetDeadline(t time.Time) error      { return c.pipe.SetDeadline(t) }
func (c *peerConn) SetReadDeadline(t time.Time) error  { return c.pipe.SetReadDeadline(t) }
func (c *peerConn) SetWriteDeadline(t time.Time) error { return c.pipe.SetWriteDeadline(t) }

// memPipe returns the two ends of an in-memory connection between the code
// under test (the first end) and a scripted peer (the second). Writes never
// block. Reads take turns: a read returns data only once the writer has
// finished its flight, that is waits in a read itself or has closed, so how
// the bytes are cut into reads does not depend on scheduling and the
// fuzzers' coverage is reproducible; a deadline fires likewise only once the
// writer is idle. When both ends wait with nothing to read, the peer's read
// fails with errStuck (temporary, like a timeout), unless a deadline of the
// code under test is about to fire: a peer that waits for an answer gives
// up at once instead of at the dialog's timeout.
func memPipe() (net.Conn, net.Conn) {
	n := &memNet{}
	n.cond.L = &n.mu
	return &memConn{n, 0}, &memConn{n, 1}
}

type memNet struct {
	mu   sync.Mutex
	cond sync.Cond
	ends [2]memEnd
}

type memEnd struct {
	data     []byte // received, not read yet
	eof      bool   // the other end closed
	closed   bool   // this end closed
	waiting  bool   // blocked in a read
	deadline time.Time
	timer    *time.Timer
}

// soonWindow is how close a deadline of the code under test must be for
// the peer to let it fire rather than give up waiting.
const soonWindow = 100 * time.Millisecond

type stuckError struct{}

func (stuckError) Error() string   { return "both ends of the connection wait" }
func (stuckError) Timeout() bool   { return true }
func (stuckError) Temporary() bool { return true }

var errStuck net.Error = stuckError{}

func (n *memNet) read(i int, p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, o := &n.ends[i], &n.ends[1-i]
	defer func() { e.waiting = false }()
	for {
		now := time.Now()
		idle := o.waiting || o.closed || e.eof
		expired := !e.deadline.IsZero() && !now.Before(e.deadline)
		switch {
		case e.closed:
			return 0, net.ErrClosed
		case len(e.data) > 0 && idle:
			k := copy(p, e.data)
			e.data = e.data[k:]
			return k, nil
		case len(e.data) > 0:
			// The other end is still writing.
		case e.eof:
			return 0, io.EOF
		case expired && idle:
			return 0, os.ErrDeadlineExceeded
		case i == 1 && o.waiting && len(o.data) == 0 && (o.deadline.IsZero() || o.deadline.Sub(now) > soonWindow):
			return 0, errStuck
		}
		if !e.waiting {
			e.waiting = true
			n.cond.Broadcast()
		}
		n.cond.Wait()
	}
}

func (n *memNet) write(i int, p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	o := &n.ends[1-i]
	if n.ends[i].closed || o.closed {
		return 0, net.ErrClosed
	}
	o.data = append(o.data, p...)
	n.cond.Broadcast()
	return len(p), nil
}

func (n *memNet) setDeadline(i int, t time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := &n.ends[i]
	e.deadline = t
	if e.timer != nil {
		e.timer.Stop()
	}
	if !t.IsZero() {
		e.timer = time.AfterFunc(time.Until(t), func() {
			n.mu.Lock()
			n.cond.Broadcast()
			n.mu.Unlock()
		})
	}
	n.cond.Broadcast()
}

func (n *memNet) close(i int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ends[i].closed = true
	n.ends[1-i].eof = true
	n.cond.Broadcast()
}

// memConn is one end of a memPipe.
type memConn struct {
	n *memNet
	i int
}

func (c *memConn) Read(p []byte) (int, error)         { return c.n.read(c.i, p) }
func (c *memConn) Write(p []byte) (int, error)        { return c.n.write(c.i, p) }
func (c *memConn) Close() error                       { c.n.close(c.i); return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(t time.Time) error      { c.n.setDeadline(c.i, t); return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { c.n.setDeadline(c.i, t); return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// pause in the bytes a scripted peer sends inside TLS makes it wait until
// the other side sends something, or waits too, before it goes on.
const pause = "\x00\x00"

// tlsPeer runs tc's handshake and sends script, pausing at each pause,
// then closes its writing side; it returns what it read inside TLS until
// the other side closed or both waited.
func tlsPeer(tc *tls.Conn, script []byte) []byte {
	if tc.Handshake() != nil {
		return nil
	}
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for i, seg := range bytes.Split(script, []byte(pause)) {
		if i > 0 {
			n, err := tc.Read(buf)
			got.Write(buf[:n])
			if err != nil && !errors.Is(err, errStuck) {
				return got.Bytes()
			}
		}
		if len(seg) > 0 {
			if _, err := tc.Write(seg); err != nil {
				return got.Bytes()
			}
		}
	}
	tc.CloseWrite()
	for {
		n, err := tc.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			return got.Bytes()
		}
	}
}

// isClientHello recognises the first write of a TLS client.
func isClientHello(p []byte) bool { return len(p) > 0 && p[0] == 0x16 }

// isGoAhead recognises the server's tagged OK to STARTTLS.
func isGoAhead(p []byte) bool { return bytes.HasSuffix(p, []byte(" OK Begin TLS negotiation now\r\n")) }

// failOnError is a slog handler that fails the test on Error records: a
// recovered panic in a session is logged at that level.
type failOnError struct{ t testing.TB }

func (h failOnError) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h failOnError) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.t.Errorf("error logged: %s%s", r.Message, b.String())
	return nil
}
func (h failOnError) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failOnError) WithGroup(string) slog.Handler      { return h }

// watchdog runs fn and fails the test when it does not end within d.
func watchdog(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		buf := make([]byte, 1<<20)
		t.Fatalf("%s did not end within %v:\n%s", what, d, buf[:runtime.Stack(buf, true)])
	}
}

// The tags the client uses: a1 is the first command after the greeting.
const (
	goAheadA1 = "a1 OK Begin TLS negotiation now\r\n"
	listTLS   = `* LIST (\HasNoChildren) "/" INBOX` + "\r\n" + `* LIST () "/" {5}` + "\r\nSpäm\r\n"
	// afterTLS answers CAPABILITY, LOGIN, LIST and LOGOUT after a1
	// STARTTLS, each when the client has sent it; afterProbe does the same
	// after a1 STARTTLS and a2 NOOP, the probe, which a safe server never
	// answers.
	afterTLS   = pause + capsTLS + "a2 OK\r\n" + pause + "a3 OK\r\n" + pause + listTLS + "a4 OK\r\n" + pause + "* BYE bye\r\na5 OK\r\n"
	afterProbe = pause + capsTLS + "a3 OK\r\n" + pause + "a4 OK\r\n" + pause + listTLS + "a5 OK\r\n" + pause + "* BYE bye\r\na6 OK\r\n"
)

// clientDialogSeeds are hostile and normal server dialogs: the plaintext
// part, the part inside TLS (where the server waits for the client at each
// pause), and the mode (the low five bits modulo 5; 0x80 probes for
// injection, 0x40 dials port 993, 0x20 logs in with an 8-bit user name).
// From SECURITY.md: CL-13…CL-17, CL-27, PR-09, PR-10, ST-04, the EAST
// Buffering and Tampering cases.
var clientDialogSeeds = []struct {
	plain, inTLS string
	mode         uint8
}{
	// Normal dialogs: caps in the greeting; CAPABILITY, AUTHENTICATE with
	// a continuation; implicit TLS; plain; a safe and a vulnerable server
	// under the probe; an 8-bit user name sent as a literal.
	{greetCaps + goAheadA1, afterTLS, uint8(starttls.ModeRequired)},
	{greetCaps + goAheadA1, capsTLS + "a2 OK done\r\na3 OK logged in\r\n" + listTLS + "a4 OK\r\n* BYE bye\r\na5 OK\r\n", uint8(starttls.ModeRequired)},
	{greetNoCaps + "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na1 OK\r\na2 OK go\r\n", "* CAPABILITY IMAP4rev2 LOGINDISABLED AUTH=PLAIN\r\na3 OK\r\n+ \r\na4 OK\r\n" + listTLS + "a5 OK\r\na6 OK\r\n", uint8(starttls.ModeOpportunistic)},
	{"", "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\na1 OK\r\n" + listTLS + "a2 OK\r\na3 OK\r\n", uint8(starttls.ModeImplicit)},
	{"", "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\na1 OK\r\n" + listTLS + "a2 OK\r\na3 OK\r\n", uint8(starttls.ModeAuto) | 0x40},
	{"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\na1 OK\r\n" + listTLS + "a2 OK\r\n* BYE x\r\na3 OK\r\n", "", uint8(starttls.ModePlain)},
	{"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] hi\r\n+ go\r\na1 OK\r\n", "", uint8(starttls.ModePlain)},
	{greetCaps + goAheadA1, afterProbe, uint8(starttls.ModeRequired) | 0x80},
	{greetCaps + goAheadA1, "", uint8(starttls.ModeRequired) | 0x80},
	{greetCaps + goAheadA1, "a2 OK NOOP completed\r\n" + pause + capsTLS + "a3 OK\r\n" + pause + "a4 OK\r\n" + pause + "a5 OK\r\n", uint8(starttls.ModeRequired) | 0x80},
	{greetCaps + goAheadA1, "* 1 EXISTS\r\na2 OK NOOP completed\r\n" + pause + capsTLS + "a3 OK\r\n", uint8(starttls.ModeOpportunistic) | 0x80},
	{greetCaps + goAheadA1 + "a2 OK NOOP in plaintext\r\n", afterProbe, uint8(starttls.ModeRequired) | 0x80},
	{greetCaps + goAheadA1, pause + "* CAPABILITY IMAP4rev1\r\na2 OK\r\n" + pause + "+ go\r\n" + pause + "a3 OK\r\n" + pause + "a4 OK\r\n" + pause + "a5 OK\r\n", uint8(starttls.ModeRequired) | 0x20},
	{greetCaps + goAheadA1, pause + "* CAPABILITY IMAP4rev1\r\na2 OK\r\n" + pause + "a3 NO [ALERT] wrong\r\n", uint8(starttls.ModeRequired) | 0x20},
	// Refusals: opportunistic goes on in plaintext, required stops.
	{greetCaps + "a1 NO [UNAVAILABLE] TLS not available\r\n" + listTLS + "a2 OK\r\n", "", uint8(starttls.ModeOpportunistic)},
	{greetCaps + "a1 NO [UNAVAILABLE] TLS not available\r\na2 OK\r\na3 OK\r\n", "", uint8(starttls.ModeOpportunistic) | 0x80},
	{greetCaps + "a1 BAD unknown command\r\n", "", uint8(starttls.ModeRequired)},
	{greetNoCaps + "a1 BAD unknown command\r\na2 BAD unknown command\r\n", "", uint8(starttls.ModeRequired)},
	{"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n", "", uint8(starttls.ModeOpportunistic)},
	{"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS MAILBOX-REFERRALS] hi\r\n", "", uint8(starttls.ModeRequired)},
	{"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS MAILBOX-REFERRALS] hi\r\n" + listTLS + "a1 OK\r\n", "", uint8(starttls.ModeOpportunistic)},
	// CL-13, EAST Tampering/untagged/before_starttls.
	{greetCaps + "* 54321 EXISTS\r\na1 OK ready for starttls\r\n", afterTLS, uint8(starttls.ModeRequired)},
	{greetCaps + "* 1 FETCH (BODY[] {28}\r\nFrom: Injected\r\n\r\nInjected\r\n)\r\na1 OK go\r\n", afterTLS, uint8(starttls.ModeRequired)},
	{greetCaps + "* FLAGS (\\Flagged)\r\n* 1 EXPUNGE\r\n* STATUS INBOX (MESSAGES 718001 UIDNEXT 1)\r\n* CAPABILITY IDLE\r\na1 OK go\r\n", afterTLS, uint8(starttls.ModeRequired)},
	// CL-14, EAST Tampering/untagged/after_greeting.
	{greetCaps + `* LIST () "/" "Click me! <Payload>"` + "\r\n* CAPABILITY IDLE\r\n" + goAheadA1, afterTLS, uint8(starttls.ModeRequired)},
	{greetNoCaps + `* LIST () "/" "Click me! <Payload>"` + "\r\n* CAPABILITY IDLE\r\na1 OK\r\n", "", uint8(starttls.ModeOpportunistic)},
	// CL-15, EAST UI Spoofing.
	{"* OK [ALERT] bAjdyeKO\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK\r\n* OK [ALERT] Attacker-controlled text\r\na2 OK go\r\n", "* OK [ALERT] after TLS\r\n" + capsTLS + "a3 OK\r\n", uint8(starttls.ModeRequired)},
	{greetCaps + "* OK [BADCHARSET (US-ASCII)] x\r\n* OK [PARSE] x\r\n" + goAheadA1, afterTLS, uint8(starttls.ModeRequired)},
	// CL-16, EAST Buffering/B_3; ST-04; CL-11, CL-12.
	{greetCaps + "a1 OK begin STARTTLS now.\r\n* BYE close the connection please.\r\n", afterTLS, uint8(starttls.ModeRequired)},
	{greetCaps + "a1 OK begin STARTTLS now.\r\n* BYE close the connection please.\r\n", afterProbe, uint8(starttls.ModeRequired) | 0x80},
	{greetCaps + "A OK Begin TLS\r\n* 1 EXISTS\r\n", "", uint8(starttls.ModeRequired)},
	{greetCaps + "a1 OK Begin TLS\r\n* 1 EXISTS\r\n", afterTLS, uint8(starttls.ModeOpportunistic)},
	{greetCaps + "a1 OK go\r\n* CAPABILITY IMAP4rev1 AUTH=XOAUTH2", afterTLS, uint8(starttls.ModeRequired)},
	{greetCaps + "a1 OK go\r\n\xb9\xb3\xb9\xb2\xb3", "", uint8(starttls.ModeRequired)},
	{greetCaps + "a1 OK go\r\n\x16\x03\x03\x00\x05hello", afterProbe, uint8(starttls.ModeRequired) | 0x80},
	// CL-17: capabilities from before TLS, in the tagged OK or untagged.
	{greetCaps + "a1 OK [CAPABILITY IMAP4rev1 AUTH=EVIL] go\r\n", afterTLS, uint8(starttls.ModeRequired)},
	{"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED AUTH=LOGIN] hi\r\n* CAPABILITY IMAP4rev1 AUTH=INJECTED\r\n* 54321 EXISTS\r\na1 OK [CAPABILITY IMAP4rev1 AUTH=EVIL] go\r\n", "* CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN AUTH=SCRAM-SHA-256\r\na2 OK\r\n+\r\na3 OK\r\n", uint8(starttls.ModeRequired)},
	{greetCaps + goAheadA1, pause + "a2 OK no capabilities\r\n" + pause + "a3 OK\r\n", uint8(starttls.ModeRequired)},
	// CL-27, PR-10: bad greetings.
	{"OK IMAP2 Server Ready\r\n", "", uint8(starttls.ModeRequired)},
	{"1Gdo00V4 wFaIW2WP\r\n", "", uint8(starttls.ModeOpportunistic)},
	{"Ac3cXIo1 rJzgnVlo\r\n* OK DHYw9lXw\r\n", "", uint8(starttls.ModePlain)},
	{"a1 OK hi\r\n", "", uint8(starttls.ModeRequired)},
	{"* BYE [UNAVAILABLE] maintenance\r\n", "", uint8(starttls.ModeRequired)},
	{"", "* BYE [UNAVAILABLE] maintenance\r\n", uint8(starttls.ModeImplicit)},
	{"", "OK IMAP2 Server Ready\r\n", uint8(starttls.ModeImplicit)},
	// PR-09: literals, before and after TLS.
	{greetNoCaps + "* 1 FETCH (BODY[] {4294967296}\r\n", "", uint8(starttls.ModeRequired)},
	{greetNoCaps + "* 1 FETCH (BODY[] {99999999999999999999}\r\n", "", uint8(starttls.ModeRequired)},
	{greetNoCaps + "* 1 FETCH (BODY[] {-1}\r\n", "", uint8(starttls.ModeRequired)},
	{greetCaps + goAheadA1, "* CAPABILITY {10+}\r\nIMAP4rev1 \r\na2 OK\r\n", uint8(starttls.ModeRequired)},
	{greetCaps + goAheadA1, capsTLS + "a2 OK\r\na3 OK\r\n* LIST () \"/\" {4294967296}\r\n", uint8(starttls.ModeRequired)},
	// PR-08: too many responses and capabilities.
	{greetNoCaps + strings.Repeat("* 1 EXISTS\r\n", 100), "", uint8(starttls.ModeRequired)},
	{"* OK [CAPABILITY" + strings.Repeat(" X", 100) + "] hi\r\n", "", uint8(starttls.ModePlain)},
	{greetCaps + goAheadA1, "* CAPABILITY" + strings.Repeat(" X", 100) + "\r\na2 OK\r\n", uint8(starttls.ModeRequired)},
	// TLS in reply to a plaintext greeting; a handshake alert.
	{"\x16\x03\x01\x00\x05hello", "", uint8(starttls.ModeRequired)},
	{"\x15\x03\x03\x00\x02\x02\x28", "", uint8(starttls.ModeImplicit)},
}

// FuzzClientDialog feeds hostile server bytes to the whole client: Upgrade
// in every mode, with and without the injection probe, then Login, List
// and Close. The scripted server can do a real TLS handshake, so the bytes
// of the second argument reach the dialog inside TLS. It must end with a
// Result, never panic or hang, bound what it keeps, never fall back to
// plaintext in required mode, never send credentials in plaintext outside
// plain mode, and trust after an upgrade only what it read inside TLS.
func FuzzClientDialog(f *testing.F) {
	for _, s := range clientDialogSeeds {
		f.Add([]byte(s.plain), []byte(s.inTLS), s.mode)
	}
	for _, s := range hostile {
		f.Add([]byte(s+"\r\n"), []byte(nil), uint8(starttls.ModeRequired))
		f.Add([]byte("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\na1 OK\r\n"+s+"\r\na2 OK\r\n"), []byte(nil), uint8(starttls.ModePlain))
		f.Add([]byte(greetCaps+goAheadA1), []byte(capsTLS+"a2 OK\r\na3 OK\r\n"+s+"\r\na4 OK\r\n"), uint8(starttls.ModeRequired))
	}
	// The client resumes TLS sessions and the peer uses X25519 alone: the
	// handshake, which is not what is fuzzed, then costs less than half.
	st, ct := linetest.TLSPair(f)
	ct = ct.Clone()
	ct.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	st = st.Clone()
	st.CurvePreferences = []tls.CurveID{tls.X25519}
	f.Fuzz(func(t *testing.T, plain, inTLS []byte, mode uint8) {
		const maxLines = 64
		opts := &starttls.ClientOptions{
			Mode:           starttls.Mode(mode & 0x1f % 5),
			TLSConfig:      ct,
			ServerName:     "localhost",
			Transcript:     &starttls.Transcript{},
			MaxLines:       maxLines,
			InjectionWait:  time.Millisecond,
			ProbeInjection: mode&0x80 != 0,
		}
		port := 143
		if mode&0x40 != 0 {
			port = 993
		}
		user, pass := "alice", "secret pw"
		if mode&0x20 != 0 {
			user = "Jürgen"
		}
		conn := newPeerConn(plain, port, isClientHello, true, func(c net.Conn) {
			tlsPeer(tls.Server(c, st), inTLS)
		})
		var (
			c     *Client
			res   *starttls.Result
			err   error
			names []string
		)
		watchdog(t, 5*time.Second, "client dialog", func() {
			defer conn.finish()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			c, res, err = Upgrade(ctx, conn, opts)
			if err != nil || c == nil {
				return
			}
			c.Login(ctx, user, pass)
			names, _ = c.List(ctx)
			c.Close()
		})
		if res == nil {
			t.Fatal("nil Result")
		}
		if err != nil && c != nil {
			t.Fatalf("non-nil Client with the error %v", err)
		}
		if err == nil && c == nil {
			t.Fatal("nil Client without an error")
		}
		if len(res.CapsBefore) > maxLines || len(res.CapsAfter) > maxLines {
			t.Errorf("capabilities not bounded: %d, %d", len(res.CapsBefore), len(res.CapsAfter))
		}
		m := opts.ResolveMode(conn)
		if res.Mode != m {
			t.Errorf("Result.Mode = %v, want %v", res.Mode, m)
		}
		if err == nil {
			if (m == starttls.ModeRequired || m == starttls.ModeImplicit) && !res.Upgraded {
				t.Errorf("mode %v succeeded without TLS", m)
			}
			if opts.ProbeInjection && res.Injection == nil {
				t.Error("ProbeInjection set, no Injection result")
			}
		}
		if m == starttls.ModePlain && res.Upgraded {
			t.Error("plain mode upgraded")
		}
		// No credentials in plaintext outside plain mode, in any form, and
		// never in the transcript.
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
		if sent := conn.plaintext(); m != starttls.ModePlain && (strings.Contains(sent, pass) || strings.Contains(sent, ir)) {
			t.Errorf("credentials sent in plaintext in mode %v: %q", m, sent)
		}
		for _, e := range opts.Transcript.Events() {
			fromClient := e.Dir == starttls.FromClient || e.Dir == starttls.Note && strings.HasPrefix(e.Text, "(literal")
			if fromClient && (strings.Contains(e.Text, pass) || strings.Contains(e.Text, ir)) {
				t.Errorf("transcript shows the password: %q", e.Text)
			}
		}
		// CL-13, CL-14, CL-17: after an upgrade, what the client keeps came
		// from inside TLS.
		if res.Upgraded {
			wire := strings.ReplaceAll(string(inTLS), pause, "") // what the peer sent
			up := strings.ToUpper(wire)
			for _, cp := range res.CapsAfter {
				if !strings.Contains(up, cp) {
					t.Errorf("capability %q after TLS was not sent inside TLS", cp)
				}
			}
			for _, n := range names {
				if !strings.ContainsAny(n, `\"`) && !strings.Contains(wire, n) {
					t.Errorf("mailbox %q after TLS was not sent inside TLS", n)
				}
			}
		}
	})
}

// serverSessionSeeds are client dialogs: the plaintext part, the part
// inside TLS (sent by a real TLS client after the go ahead to STARTTLS, or
// from the first byte with Implicit; it waits for the server at each
// pause), and the flags (1
// AllowPlaintextLogin, 2 InsecureKeepPipelined, 4 Implicit, 8
// RefuseUpgrade, 16 Server.Handshake instead of ServeConn).
var serverSessionSeeds = []struct {
	plain, inTLS string
	flags        uint8
}{
	// Normal sessions, the client waiting for each answer or sending all
	// at once.
	{"a1 CAPABILITY\r\na2 STARTTLS\r\n", "a3 CAPABILITY\r\n" + pause + "a4 LOGIN alice \"secret pw\"\r\n" + pause + "a5 SELECT INBOX\r\n" + pause + "a6 FETCH 1 BODY[]\r\n" + pause + "a7 LOGOUT\r\n", 0},
	{"", pause + "a1 CAPABILITY\r\n" + pause + "a2 LOGIN alice \"secret pw\"\r\n" + pause + "a3 SELECT INBOX\r\n" + pause + "a4 FETCH 1 BODY[]\r\n" + pause + "a5 LOGOUT\r\n", 4},
	{"a1 CAPABILITY\r\na2 STARTTLS\r\n", "a3 CAPABILITY\r\na4 LOGIN alice \"secret pw\"\r\na5 LIST \"\" \"*\"\r\na6 SELECT INBOX\r\na7 FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])\r\na8 FETCH 2 BODY[]<0.10>\r\na9 SEARCH UNSEEN\r\nb1 CLOSE\r\nb2 LOGOUT\r\n", 0},
	{"a1 STARTTLS\r\n", "a2 AUTHENTICATE PLAIN\r\n" + pause + "AGFsaWNlAHNlY3JldCBwdw==\r\n" + pause + "a3 EXAMINE {5}\r\n" + pause + "INBOX\r\n" + pause + "a4 UID FETCH 1:* BODY[TEXT]\r\na5 UID SEARCH UID 2:*\r\na6 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT)\r\na7 LSUB \"\" %\r\na8 UNSELECT\r\na9 LOGOUT\r\n", 0},
	{"a1 STARTTLS\r\n", "a2 AUTHENTICATE PLAIN\r\n*\r\na3 AUTHENTICATE PLAIN =\r\na4 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldCBwdw==\r\na5 ID (\"name\" \"x\")\r\na6 ENABLE CONDSTORE\r\na7 SELECT Archive/2024\r\na8 FETCH * FLAGS\r\na9 LOGOUT\r\n", 0},
	{"a1 STARTTLS\r\n", "a2 LOGIN {5}\r\n" + pause + "alice {9+}\r\nsecret pw\r\na3 SELECT inbox\r\na4 FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT BODY[1])\r\na5 STORE 1 +FLAGS (\\Seen)\r\na6 IDLE\r\na7 STARTTLS\r\n", 0},
	{"", "a1 CAPABILITY\r\na2 LOGIN alice \"secret pw\"\r\na3 SELECT INBOX\r\na4 FETCH * BODY[]\r\na5 LOGOUT\r\n", 4},
	{"a1 LOGIN {5}\r\nalice {9+}\r\nsecret pw\r\na2 SELECT INBOX\r\na3 FETCH 1 RFC822\r\na4 STARTTLS\r\na5 LOGOUT\r\n", "", 1},
	{"a1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldCBwdw==\r\na2 LIST \"\" *\r\n", "", 1},
	{"a1 CAPABILITY\r\na2 STARTTLS\r\n", "a3 CAPABILITY\r\n", 16},
	{"", "a1 NOOP\r\n", 16 | 4},
	{"a1 LOGOUT\r\n", "", 16},
	// CVE-2011-0411, SV-06: commands pipelined after STARTTLS, dropped or
	// (InsecureKeepPipelined) executed inside TLS.
	{"a1 STARTTLS\r\na2 NOOP\r\n", "a3 CAPABILITY\r\n", 0},
	{"a1 STARTTLS\r\na2 NOOP\r\n", "a3 CAPABILITY\r\n", 2},
	{"a1 STARTTLS\r\na2 LOGIN alice \"secret pw\"\r\n", "a3 LIST \"\" *\r\n", 2},
	{"a1 STARTTLS\r\na2 LOGIN {5}\r\n", "alice x\r\n", 2},
	{"a1 STARTTLS\r\na2 NOOP\r\n", "", 16 | 2},
	{"a1 STARTTLS\r\n\x16\x03\x01\x00\x05hello", "", 2},
	// SV-10, SV-11, SV-12, refusals.
	{"a1 STARTTLS foo\r\na2 STARTTLS\r\n", "a3 STARTTLS\r\n", 0},
	{"a1 LOGIN alice \"secret pw\"\r\na2 STARTTLS\r\n", "", 1},
	{"a1 STARTTLS\r\na2 LOGIN alice x\r\n", "", 8},
	{"a1 LOGIN alice \"secret pw\"\r\na2 AUTHENTICATE PLAIN\r\na3 AUTHENTICATE LOGIN\r\n", "", 0},
	{"a1 STARTTLS\r\n", "a2 LOGIN alice wrong\r\na3 AUTHENTICATE PLAIN AGJvYgBib2I=\r\na4 AUTHENTICATE PLAIN AGFsaWNl\r\na5 AUTHENTICATE PLAIN !!\r\n", 0},
	// PR-09: literals, before and after login.
	{"a1 LOGIN {4294967296}\r\n", "", 0},
	{"a1 LOGIN {99999999999999999999}\r\n", "", 1},
	{"a1 LOGIN {-1}\r\n", "", 0},
	{"a1 LOGIN {10+}\r\n0123456789 x\r\n", "", 1},
	{"a1 LOGIN {1000+}\r\n", "", 1},
	{"a1 STARTTLS\r\n", "a2 LOGIN alice \"secret pw\"\r\na3 SELECT {4294967296}\r\na4 SELECT {100000+}\r\n", 0},
	// Grammar edges: bare LF, NUL, long line, ClientHello on the
	// plaintext port, odd tags.
	{"a1 NOOP\na2 NOOP\r\na\x00 NOOP\r\na3 NOOP\r\n", "", 0},
	{"a1 NOOP " + strings.Repeat("x", 5000) + "\r\n", "", 0},
	{"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "", 0},
	{"a1 NOOP\r\n\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "", 4},
	{"* NOOP\r\n+ x\r\na1\r\na1 UID\r\na1 UID FOO\r\nA1 noop\r\n", "", 0},
	{"a1 STARTTLS\r\n", "a2 LOGIN alice \"secret pw\"\r\na3 SELECT INBOX\r\na4 FETCH 4294967296 FLAGS\r\na5 FETCH 1:0 BODY[HEADER.FIELDS.NOT (X)]<0.0>\r\na6 SEARCH CHARSET UTF-8 ALL UNSEEN 1:*\r\na7 LIST {1}\r\nx *%*%*%*%*%\r\na8 ID (" + strings.Repeat("(", 40) + ")\r\n", 0},
}

// FuzzServerSession feeds hostile client bytes to a whole server session:
// several commands with literals, STARTTLS with a real handshake so that
// the second argument is read inside TLS, and AUTHENTICATE continuations,
// under varied flags. A panic (recovered and logged at error level) or a
// hang fails; so does a login in plaintext without AllowPlaintextLogin, or
// an answer inside TLS to a command pipelined in plaintext without
// InsecureKeepPipelined (CVE-2011-0411).
func FuzzServerSession(f *testing.F) {
	for _, s := range serverSessionSeeds {
		f.Add([]byte(s.plain), []byte(s.inTLS), s.flags)
	}
	// The peer resumes TLS sessions and uses X25519 alone: the handshake,
	// which is not what is fuzzed, then costs less than half.
	_, ct := linetest.TLSPair(f)
	ct = ct.Clone()
	ct.ServerName = "localhost"
	ct.CurvePreferences = []tls.CurveID{tls.X25519}
	ct.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	f.Fuzz(func(t *testing.T, plain, inTLS []byte, flags uint8) {
		srv := newServer(t)
		srv.AllowPlaintextLogin = flags&1 != 0
		srv.InsecureKeepPipelined = flags&2 != 0
		srv.Implicit = flags&4 != 0
		srv.RefuseUpgrade = flags&8 != 0
		srv.MaxErrors = 1000
		srv.ReadTimeout = time.Second
		srv.Logger = slog.New(failOnError{t})
		var gotTLS []byte
		conn := newPeerConn(plain, 143, isGoAhead, false, func(c net.Conn) {
			gotTLS = tlsPeer(tls.Client(c, ct), inTLS)
		})
		if srv.Implicit {
			conn.mu.Lock()
			conn.startTLS()
			conn.mu.Unlock()
		}
		watchdog(t, 5*time.Second, "server session", func() {
			defer conn.finish()
			if flags&16 != 0 {
				if tc, err := srv.Handshake(context.Background(), conn); err == nil {
					tc.Close()
				}
				return
			}
			srv.ServeConn(context.Background(), conn)
		})
		if sent := conn.plaintext(); !srv.AllowPlaintextLogin && strings.Contains(sent, "] Logged in\r\n") {
			t.Errorf("login in plaintext without AllowPlaintextLogin:\n%s", sent)
		}
		if !srv.InsecureKeepPipelined && !srv.Implicit && len(bytes.ReplaceAll(inTLS, []byte(pause), nil)) == 0 && len(gotTLS) > 0 {
			t.Errorf("answer inside TLS with nothing sent inside TLS: %q", gotTLS)
		}
	})
}
