package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

var errBadLogin = errors.New("bad login")

const (
	testUser = "alice"
	testPass = "secret pw"
)

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
	st, _ := linetest.TLSPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, ReadTimeout: linetest.Timeout}, Backend: scramBackend{}}
}

// startServer serves srv on a loopback listener until the test ends.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	return linetest.Serve(t, srv.Serve, srv.Close)
}

func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := linetest.TLSPair(t)
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, Transcript: &starttls.Transcript{}}
}

// rawClient speaks the protocol by hand to a server.
type rawClient struct {
	*linetest.Raw
	t testing.TB
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	return &rawClient{Raw: linetest.Dial(t, addr), t: t}
}

func (c *rawClient) write(b ...[]byte) {
	c.t.Helper()
	var all []byte
	for _, x := range b {
		all = append(all, x...)
	}
	if _, err := c.Conn().Write(all); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) byte1() byte {
	c.t.Helper()
	b, err := c.Reader().ReadByte()
	if err != nil {
		c.t.Fatalf("reading one byte: %v", err)
	}
	return b
}

// msg reads one message, or fails.
func (c *rawClient) msg() (byte, []byte) {
	c.t.Helper()
	typ, body, err := readMessage(c.Reader(), MaxMessageSize)
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

// expectEOF expects the server to close the connection.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	b, err := c.Reader().ReadByte()
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
