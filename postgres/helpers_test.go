package postgres

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
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

const (
	testUser = "alice"
	testPass = "secret pw"
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

// plainBackend checks cleartext passwords only.
type plainBackend struct{}

func (plainBackend) Login(_ context.Context, user, pass string) error {
	if user == testUser && pass == testPass {
		return nil
	}
	return errBadLogin
}

// scramBackend adds SCRAM-SHA-256 for alice.
type scramBackend struct{ plainBackend }

var (
	secretOnce sync.Once
	secret     *SCRAMSecret
)

func (scramBackend) SCRAMSecret(_ context.Context, user string) (*SCRAMSecret, error) {
	if user != testUser {
		return nil, errBadLogin
	}
	secretOnce.Do(func() { secret, _ = NewSCRAMSecret(testPass, []byte("0123456789abcdef"), 4096) })
	return secret, nil
}

// newServer returns a server with TLS and the SCRAM backend.
func newServer(t testing.TB) *Server {
	st, _ := tlsPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, ReadTimeout: testTimeout}, Backend: scramBackend{}}
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

func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := tlsPair(t)
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, Transcript: &starttls.Transcript{}}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rawClient speaks the protocol by hand to a server.
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
	return &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *rawClient) write(b ...[]byte) {
	c.t.Helper()
	var all []byte
	for _, x := range b {
		all = append(all, x...)
	}
	if _, err := c.conn.Write(all); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) byte1() byte {
	c.t.Helper()
	b, err := c.r.ReadByte()
	if err != nil {
		c.t.Fatalf("reading one byte: %v", err)
	}
	return b
}

// msg reads one message, or fails.
func (c *rawClient) msg() (byte, []byte) {
	c.t.Helper()
	typ, body, err := readMessage(c.r, MaxMessageSize)
	if err != nil {
		c.t.Fatalf("reading a message: %v", err)
	}
	return typ, body
}

// readErr reads one message and expects an ErrorResponse with code.
func (c *rawClient) expectError(code string) *Error {
	c.t.Helper()
	typ, body := c.msg()
	if typ != 'E' {
		c.t.Fatalf("got message %q %q, want ErrorResponse %s", typ, body, code)
	}
	e, err := parseError(body)
	if err != nil || e.Code != code {
		c.t.Fatalf("ErrorResponse %v (%v), want code %s", e, err, code)
	}
	return e
}

// startTLS shakes hands over the raw connection.
func (c *rawClient) startTLS() {
	c.t.Helper()
	if n := c.r.Buffered(); n > 0 {
		c.t.Fatalf("%d bytes buffered before the handshake", n)
	}
	_, ct := tlsPair(c.t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// expectEOF expects the server to close the connection.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	b, err := c.r.ReadByte()
	if err == nil {
		c.t.Fatalf("read %q, want the connection closed", b)
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		c.t.Fatalf("read error %v, want EOF", err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func startup(user string) []byte {
	return startupMessage([][2]string{{"user", user}, {"database", user}})
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
