package xmpp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

var errBadLogin = errors.New("bad login")

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
	st, _ := linetest.TLSPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "xmpp.test"}, Backend: &memBackend{}}
}

// startServer serves srv on a loopback listener until the test ends.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	return linetest.Serve(t, srv.Serve, srv.Close)
}

func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := linetest.TLSPair(t)
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, ServerName: "localhost", InjectionWait: 300 * time.Millisecond}
}

// rawClient speaks XMPP by hand to a server: linetest's raw client, read
// by chunks since an XML stream has no lines.
type rawClient struct {
	*linetest.Raw
	t testing.TB
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	return &rawClient{Raw: linetest.Dial(t, addr), t: t}
}

// until reads until the text contains want and returns all of it.
func (c *rawClient) until(want string) string {
	c.t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(b.String(), want) {
		n, err := c.Reader().Read(buf)
		b.Write(buf[:n])
		if err != nil {
			c.t.Fatalf("reading until %q: %v (got %q)", want, err, b.String())
		}
	}
	return b.String()
}

// readAll reads until EOF or an error and returns what came.
func (c *rawClient) readAll() (string, error) {
	b, err := io.ReadAll(c.Reader())
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
	var f *fake
	addr, waitConn := linetest.FakeServer(t, func(lf *linetest.Fake) {
		f = &fake{t: t, conn: lf.Conn(), r: bufio.NewReader(lf.Conn())}
		script(f)
	})
	return addr, func() *fake { waitConn(); return f }
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
