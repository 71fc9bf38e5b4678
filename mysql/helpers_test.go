package mysql

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

var errNoUser = errors.New("no such user")

const (
	testUser     = "alice"
	testPassword = "secret pw"
)

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
	st, _ := linetest.TLSPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st}, Backend: &memBackend{}}
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
	ch := make(chan error, 1)
	addr, _ = linetest.FakeServer(t, func(f *linetest.Fake) { ch <- script(f.Conn()) })
	return addr, ch
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
