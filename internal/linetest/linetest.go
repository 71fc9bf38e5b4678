// Package linetest holds the test doubles every line-based protocol
// package uses: a certificate pair, a loopback server runner, a raw client
// that speaks a protocol by hand to a server under test, and a scripted
// fake server that a client under test talks to. Only tests import it.
//
// Everything runs on 127.0.0.1 with deadlines (Timeout), so that a test of
// a misbehaving peer fails instead of hanging.
package linetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/certs"
)

// Timeout bounds every connection and context the package makes.
const Timeout = 10 * time.Second

var (
	pairOnce          sync.Once
	pairServer, pairC *tls.Config
	pairErr           error
)

// TLSPair returns a server and a client configuration that trust each
// other (certificate for 127.0.0.1, ::1 and localhost), made once per test
// binary.
func TLSPair(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	pairOnce.Do(func() { pairServer, pairC, pairErr = certs.TestPair() })
	if pairErr != nil {
		t.Fatal(pairErr)
	}
	return pairServer, pairC
}

// Ctx returns a context that ends after Timeout or with the test.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Serve runs serve on a new loopback listener and returns its address;
// when the test ends, stop is called and Serve waits for serve to return.
func Serve(t testing.TB, serve func(net.Listener) error, stop func() error) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { serve(l); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	return l.Addr().String()
}

// IsClosed reports whether err means the peer closed the connection.
func IsClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset by peer")
}

// Raw speaks a line protocol by hand to a server under test.
type Raw struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to addr with a deadline of Timeout; the connection is
// closed when the test ends.
func Dial(t testing.TB, addr string) *Raw {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(Timeout))
	t.Cleanup(func() { conn.Close() })
	return &Raw{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// Conn is the connection (the *tls.Conn after StartTLS).
func (c *Raw) Conn() net.Conn { return c.conn }

// Reader is the buffered reader over Conn.
func (c *Raw) Reader() *bufio.Reader { return c.r }

// Write sends s as it is (in one write: pipelining tests rely on it).
func (c *Raw) Write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// Line reads one line and returns it without its CRLF. A line ending in
// a bare LF fails the test: every server here must send CRLF.
func (c *Raw) Line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// Cmd sends s with CRLF and returns the first line of the answer.
func (c *Raw) Cmd(s string) string {
	c.t.Helper()
	c.Write(s + "\r\n")
	return c.Line()
}

// UntilDot reads the lines of a dot-terminated answer, not unstuffed,
// without the final ".".
func (c *Raw) UntilDot() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.Line()
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

// StartTLS runs the client handshake (server name localhost, the
// TLSPair's client configuration) after the server's go-ahead; nothing may
// be buffered before it.
func (c *Raw) StartTLS() {
	c.t.Helper()
	if err := c.TryStartTLS(); err != nil {
		c.t.Fatal(err)
	}
}

// TryStartTLS is StartTLS returning the handshake error.
func (c *Raw) TryStartTLS() error {
	c.t.Helper()
	if n := c.r.Buffered(); n > 0 {
		c.t.Fatalf("%d bytes buffered before the handshake", n)
	}
	_, ct := TLSPair(c.t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	return nil
}

// ExpectEOF checks that the server closes the connection without sending
// anything more.
func (c *Raw) ExpectEOF() {
	c.t.Helper()
	b, err := io.ReadAll(c.r)
	if len(b) > 0 {
		c.t.Errorf("server sent %q before closing", b)
	}
	if err != nil && !IsClosed(err) {
		c.t.Errorf("read: %v, want EOF", err)
	}
}

// ExpectSilence checks that the server sends nothing for d (the answer to
// a command it must not execute) and keeps the connection open.
func (c *Raw) ExpectSilence(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	b, err := c.r.ReadByte()
	if err == nil {
		rest, _ := c.r.Peek(c.r.Buffered())
		c.t.Errorf("server sent %q, want silence", append([]byte{b}, rest...))
	}
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		c.t.Errorf("read: %v, want a timeout", err)
	}
	c.conn.SetReadDeadline(time.Now().Add(Timeout))
}

// Fake is one connection of a scripted fake server: the script sends
// exact bytes and checks what the client under test sends.
type Fake struct {
	t     testing.TB
	conn  net.Conn
	r     *bufio.Reader
	plain bytes.Buffer
	tls   bytes.Buffer
	inTLS bool
}

// Conn is the connection (the *tls.Conn after StartTLS).
func (f *Fake) Conn() net.Conn { return f.conn }

// Reader is the buffered reader over Conn (bytes read from it directly
// are not recorded in Plain or TLS).
func (f *Fake) Reader() *bufio.Reader { return f.r }

// Plain is what the client sent before TLS.
func (f *Fake) Plain() string { return f.plain.String() }

// TLS is what the client sent inside TLS.
func (f *Fake) TLS() string { return f.tls.String() }

// Send writes s as it is.
func (f *Fake) Send(s string) {
	if _, err := io.WriteString(f.conn, s); err != nil {
		f.t.Errorf("fake: write: %v", err)
	}
}

// Expect reads one line from the client and checks that it is want+CRLF.
func (f *Fake) Expect(want string) bool {
	l, err := f.ReadLine()
	if err != nil {
		f.t.Errorf("fake: waiting for %q: %v (got %q)", want, err, l)
		return false
	}
	if l != want+"\r\n" {
		f.t.Errorf("fake: client sent %q, want %q", l, want+"\r\n")
		return false
	}
	return true
}

// ReadLine reads one line from the client, CRLF included, and records it.
func (f *Fake) ReadLine() (string, error) {
	l, err := f.r.ReadString('\n')
	f.record(l)
	return l, err
}

func (f *Fake) record(s string) {
	if f.inTLS {
		f.tls.WriteString(s)
	} else {
		f.plain.WriteString(s)
	}
}

// StartTLS runs the server handshake with cfg; false when it failed. A
// client that pipelined bytes after its upgrade command is an error.
func (f *Fake) StartTLS(cfg *tls.Config) bool {
	if n := f.r.Buffered(); n > 0 {
		f.t.Errorf("fake: client pipelined %d bytes after the upgrade command", n)
	}
	tc := tls.Server(f.conn, cfg)
	if err := tc.Handshake(); err != nil {
		return false
	}
	f.conn, f.r, f.inTLS = tc, bufio.NewReader(tc), true
	return true
}

// Drain reads until the client closes and records what it sent.
func (f *Fake) Drain() {
	b, _ := io.ReadAll(f.r)
	f.record(string(b))
}

// FakeServer runs script on the first connection to a new loopback
// listener. The returned function waits for the script to end and returns
// the Fake, for checking what the client sent.
func FakeServer(t testing.TB, script func(f *Fake)) (addr string, wait func() *Fake) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A client that never connects must not hang the test: Accept has a
	// deadline, and the listener goes with the test.
	l.(*net.TCPListener).SetDeadline(time.Now().Add(Timeout))
	t.Cleanup(func() { l.Close() })
	done := make(chan *Fake, 1)
	go func() {
		defer l.Close()
		conn, err := l.Accept()
		if err != nil {
			done <- nil
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(Timeout))
		f := &Fake{t: t, conn: conn, r: bufio.NewReader(conn)}
		script(f)
		done <- f
	}()
	var f *Fake
	var once sync.Once
	return l.Addr().String(), func() *Fake {
		once.Do(func() { f = <-done })
		if f == nil {
			t.Fatal("fake server: no connection")
		}
		return f
	}
}
