package xmpp

import (
	"bufio"
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

// tlsPair returns a server and a client config that trust each other
// (certificate for localhost, 127.0.0.1, ::1).
func tlsPair(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	tlsOnce.Do(func() { serverTLS, clientTLS, errTLSPair = certs.TestPair() })
	if errTLSPair != nil {
		t.Fatal(errTLSPair)
	}
	return serverTLS, clientTLS
}

// memBackend has one user "alice", password "secret pw".
type memBackend struct{ panicOnLogin bool }

func (b *memBackend) Login(ctx context.Context, user, pass string) error {
	if b.panicOnLogin {
		panic("backend bug")
	}
	if user == "alice" && pass == "secret pw" {
		return nil
	}
	return errBadLogin
}

func newServer(t testing.TB) *Server {
	st, _ := tlsPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "xmpp.test"}, Backend: &memBackend{}}
}

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

func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := tlsPair(t)
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, ServerName: "localhost", InjectionWait: 300 * time.Millisecond}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rawClient speaks bytes to a server.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *rawClient) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// until reads until the text contains want and returns all of it.
func (c *rawClient) until(want string) string {
	c.t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(b.String(), want) {
		n, err := c.r.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			c.t.Fatalf("reading until %q: %v (got %q)", want, err, b.String())
		}
	}
	return b.String()
}

// readAll reads until EOF or an error and returns what came.
func (c *rawClient) readAll() (string, error) {
	b, err := io.ReadAll(c.r)
	return string(b), err
}

const testHeader = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

// fake is a scripted server on one connection.
type fake struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	got  strings.Builder // every byte the client sent
	err  error
}

func (f *fake) send(s string) {
	if f.err == nil {
		_, f.err = io.WriteString(f.conn, s)
	}
}

// expect reads until the client's bytes so far end with want.
func (f *fake) expect(want string) bool {
	if f.err != nil {
		return false
	}
	for !strings.HasSuffix(f.got.String(), want) {
		b, err := f.r.ReadByte()
		if err != nil {
			f.err = err
			return false
		}
		f.got.WriteByte(b)
	}
	return true
}

func (f *fake) startTLS(cfg *tls.Config) bool {
	if f.err != nil {
		return false
	}
	tc := tls.Server(f.conn, cfg)
	if f.err = tc.Handshake(); f.err != nil {
		return false
	}
	f.conn = tc
	f.r = bufio.NewReader(tc)
	return true
}

// drain reads what the client still sends until it closes.
func (f *fake) drain() {
	f.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(f.r)
	f.got.Write(b)
}

// fakeServer runs script on the first connection to a new listener.
func fakeServer(t testing.TB, script func(f *fake)) (addr string, wait func() *fake) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *fake, 1)
	go func() {
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			done <- &fake{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		f := &fake{t: t, conn: c, r: bufio.NewReader(c)}
		script(f)
		done <- f
	}()
	return l.Addr().String(), func() *fake { return <-done }
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset")
}

// trText renders a transcript for messages and searches.
func trText(tr *starttls.Transcript) string {
	var b strings.Builder
	for _, e := range tr.Events() {
		b.WriteString(e.Dir.String() + " " + e.Text + "\n")
	}
	return b.String()
}

// closeStream answers the client's </stream:stream> and drains.
func (f *fake) closeStream() {
	if f.expect("</stream:stream>") {
		f.send("</stream:stream>")
	}
	f.drain()
}
