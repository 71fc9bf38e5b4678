package sieve

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

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
)

var (
	tlsOnce              sync.Once
	serverTLS, clientTLS *tls.Config
	errTLSPair           error
	testTimeout          = 10 * time.Second
	errBadLogin          = errors.New("bad login")
)

// tlsPair returns a server and a client config that trust each other.
func tlsPair(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	tlsOnce.Do(func() { serverTLS, clientTLS, errTLSPair = certs.TestPair() })
	if errTLSPair != nil {
		t.Fatal(errTLSPair)
	}
	return serverTLS, clientTLS
}

// memBackend is a Backend with one user "alice", password "secret pw".
type memBackend struct {
	panicOnLogin bool
}

func (b *memBackend) Login(ctx context.Context, user, pass string) error {
	if b.panicOnLogin {
		panic("backend bug")
	}
	if user == "alice" && pass == "secret pw" {
		return nil
	}
	return errBadLogin
}

// newServer returns a server with TLS and the test backend.
func newServer(t testing.TB) *Server {
	st, _ := tlsPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "sieve.test"}, Backend: &memBackend{}}
}

// startServer serves srv on a loopback listener and returns its address.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return l.Addr().String()
}

// clientOpts returns options trusting the test CA.
func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := tlsPair(t)
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, Transcript: &starttls.Transcript{}}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rawClient speaks ManageSieve by hand to a server.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.until(); !strings.HasPrefix(g[len(g)-1], "OK ") {
		t.Fatalf("greeting = %q, want OK", g)
	}
	return c
}

func (c *rawClient) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// until reads lines up to and including the completing OK, NO or BYE.
func (c *rawClient) until() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		out = append(out, l)
		if strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE") {
			return out
		}
	}
}

// cmd sends one command and returns the completing line.
func (c *rawClient) cmd(s string) string {
	c.t.Helper()
	c.write(s + "\r\n")
	l := c.until()
	return l[len(l)-1]
}

// startTLS switches to TLS after an OK to STARTTLS.
func (c *rawClient) startTLS() {
	c.t.Helper()
	if c.r.Buffered() > 0 {
		c.t.Fatalf("%d bytes buffered before the handshake", c.r.Buffered())
	}
	_, ct := tlsPair(c.t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// expectEOF checks that the server closed the connection without sending
// anything more.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	b, err := io.ReadAll(c.r)
	if len(b) > 0 {
		c.t.Errorf("server sent %q before closing", b)
	}
	if err != nil && !isClosedErr(err) {
		c.t.Errorf("read: %v, want EOF", err)
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset by peer")
}

// fake is one side of a scripted fake server.
type fake struct {
	t     testing.TB
	conn  net.Conn
	r     *bufio.Reader
	plain bytes.Buffer // bytes the client sent in plaintext
	tls   bytes.Buffer // bytes the client sent inside TLS
	inTLS bool
}

func (f *fake) send(s string) {
	if _, err := io.WriteString(f.conn, s); err != nil {
		f.t.Errorf("fake: write: %v", err)
	}
}

// expect reads one line from the client and checks it.
func (f *fake) expect(want string) bool {
	l, err := f.r.ReadString('\n')
	if f.inTLS {
		f.tls.WriteString(l)
	} else {
		f.plain.WriteString(l)
	}
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

// startTLS runs the server handshake; it returns false when it failed.
func (f *fake) startTLS(cfg *tls.Config) bool {
	if f.r.Buffered() > 0 {
		f.t.Errorf("fake: client pipelined %d bytes after STARTTLS", f.r.Buffered())
	}
	tc := tls.Server(f.conn, cfg)
	if err := tc.Handshake(); err != nil {
		return false
	}
	f.conn, f.r, f.inTLS = tc, bufio.NewReader(tc), true
	return true
}

// drain reads until the client closes and records what it sent.
func (f *fake) drain() {
	b, _ := io.ReadAll(f.r)
	if f.inTLS {
		f.tls.Write(b)
	} else {
		f.plain.Write(b)
	}
}

// fakeServer runs script on the first connection to a loopback listener.
// The returned function waits for the script and returns the fake.
func fakeServer(t testing.TB, script func(f *fake)) (addr string, wait func() *fake) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *fake, 1)
	go func() {
		defer l.Close()
		conn, err := l.Accept()
		if err != nil {
			done <- nil
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(testTimeout))
		f := &fake{t: t, conn: conn, r: bufio.NewReader(conn)}
		script(f)
		done <- f
	}()
	var f *fake
	var once sync.Once
	return l.Addr().String(), func() *fake {
		once.Do(func() { f = <-done })
		if f == nil {
			t.Fatal("fake server: no connection")
		}
		return f
	}
}
