package httpupgrade

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
)

func tlsPair(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	tlsOnce.Do(func() { serverTLS, clientTLS, errTLSPair = certs.TestPair() })
	if errTLSPair != nil {
		t.Fatal(errTLSPair)
	}
	return serverTLS, clientTLS
}

// memBackend knows alice with the password "secret pw".
type memBackend struct{}

func (memBackend) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "secret pw" {
		return nil
	}
	return errors.New("bad login")
}

func newServer(t testing.TB) *Server {
	st, _ := tlsPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st}, Backend: memBackend{}}
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
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, Transcript: &starttls.Transcript{}}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// fakeServer runs script on the first connection to a loopback listener
// and returns its address and a channel with everything the client sent
// (closed when the script returns and the client closed).
func fakeServer(t testing.TB, script func(c net.Conn, r *bufio.Reader)) (string, <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			close(got)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		rec := &recorder{Conn: c}
		script(rec, bufio.NewReader(rec))
		// Collect what the client still sends until it closes.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, rec)
		got <- rec.String()
	}()
	return l.Addr().String(), got
}

// recorder records what is read from a connection.
type recorder struct {
	net.Conn
	mu sync.Mutex
	b  strings.Builder
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.b.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.String()
}

// readHead reads one request head (up to the empty line).
func readHead(r *bufio.Reader) string {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil || line == "\r\n" {
			return b.String()
		}
	}
}

// rawConn speaks HTTP by hand to a server.
type rawConn struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// head reads a status line and headers; "" on EOF.
func (c *rawConn) head() string {
	var b strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		b.WriteString(line)
		if err != nil || line == "\r\n" {
			return b.String()
		}
	}
}

// eof reports whether the server closed the connection.
func (c *rawConn) eof() bool {
	c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := io.Copy(io.Discard, c.r)
	return err == nil || strings.Contains(err.Error(), "reset")
}

const upgradeReq = "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n"

// upgradeReqFor is the client's upgrade request to addr.
func upgradeReqFor(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return strings.Replace(upgradeReq, "127.0.0.1", "127.0.0.1:"+port, 1)
}

// transcript renders a transcript for messages and searches.
func transcript(tr *starttls.Transcript) string {
	evs := tr.Events()
	if len(evs) == 0 {
		return ""
	}
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Format(evs[0].Time))
		b.WriteString("\n")
	}
	return b.String()
}
