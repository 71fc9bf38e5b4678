package nntp

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

var (
	errBadLogin           = errors.New("bad login")
	testMessage           = "From: a@example.org\r\nSubject: hi\r\nMessage-ID: <one@example.org>\r\n\r\nline one\r\n.dot line\r\n..two dots\r\nlast\r\n"
	testMessageLF         = "From: b@example.org\nSubject: lf\n\nbody\n.\n"
	testMessageLFAsOnWire = "From: b@example.org\r\nSubject: lf\r\n\r\nbody\r\n.\r\n"
)

// memBackend is a Backend with one user "alice", password "secret pw", and
// one group "test.group" with two articles.
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

func (b *memBackend) Groups(ctx context.Context, user string) ([]string, error) {
	return []string{"test.group", "test.empty"}, nil
}

func (b *memBackend) Articles(ctx context.Context, user, group string) ([][]byte, error) {
	switch group {
	case "test.group":
		return [][]byte{[]byte(testMessage), []byte(testMessageLF)}, nil
	case "test.empty":
		return nil, nil
	}
	return nil, errors.New("no such group")
}

// newServer returns a server with TLS and the test backend.
func newServer(t testing.TB) *Server {
	st, _ := linetest.TLSPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "news.test"}, Backend: &memBackend{}}
}

// startServer serves srv on a loopback listener and returns its address.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	return linetest.Serve(t, srv.Serve, srv.Close)
}

// clientOpts returns options trusting the test CA.
func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := linetest.TLSPair(t)
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, Transcript: &starttls.Transcript{}}
}

// dialRaw connects to a server and checks its 201 greeting.
func dialRaw(t testing.TB, addr string) *linetest.Raw {
	t.Helper()
	c := linetest.Dial(t, addr)
	if g := c.Line(); !strings.HasPrefix(g, "201 ") {
		t.Fatalf("greeting = %q, want 201", g)
	}
	return c
}
