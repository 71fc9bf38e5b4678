package mysql

import (
	"context"
	"crypto/tls"
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
	errNoUser            = errors.New("no such user")
)

const (
	testUser     = "alice"
	testPassword = "secret pw"
)

func tlsPair(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	tlsOnce.Do(func() { serverTLS, clientTLS, errTLSPair = certs.TestPair() })
	if errTLSPair != nil {
		t.Fatal(errTLSPair)
	}
	return serverTLS, clientTLS
}

// memBackend knows one user, alice, with the password "secret pw".
type memBackend struct{ panics bool }

func (b *memBackend) Password(_ context.Context, user string) (string, error) {
	if b.panics {
		panic("backend bug")
	}
	if user == testUser {
		return testPassword, nil
	}
	return "", errNoUser
}

func newServer(t testing.TB) *Server {
	st, _ := tlsPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st}, Backend: &memBackend{}}
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

// pkt frames a payload as a packet with sequence id seq.
func pkt(seq byte, payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// testScramble is the fixed scramble of scripted servers.
var testScramble = []byte("abcdefghijklmnopqrst")

// greetingBytes is a scripted server's greeting (sequence id 0).
func greetingBytes(caps uint32) []byte {
	g := &Greeting{ProtocolVersion: 10, ServerVersion: "8.0.36-fake", ConnectionID: 42, Scramble: testScramble,
		Capabilities: caps, Charset: charsetUTF8MB4, Status: statusAutocommit, AuthPlugin: PluginNativePassword}
	return pkt(0, g.marshal())
}

// fakeServer accepts one connection on loopback and runs script on it; the
// returned channel delivers the script's error when it is done.
func fakeServer(t testing.TB, script func(c net.Conn) error) (addr string, done <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() {
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			ch <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		ch <- script(c)
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String(), ch
}

// readPkt reads one packet from r and returns its sequence id and payload.
func readPkt(r io.Reader) (byte, []byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return h[3], p, err
}
