package sieve

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

var errBadLogin = errors.New("bad login")

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
	st, _ := linetest.TLSPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "sieve.test"}, Backend: &memBackend{}}
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

// dialRaw connects to a server and reads its greeting up to the OK.
func dialRaw(t testing.TB, addr string) *linetest.Raw {
	t.Helper()
	c := linetest.Dial(t, addr)
	if g := until(c); !strings.HasPrefix(g[len(g)-1], "OK ") {
		t.Fatalf("greeting = %q, want OK", g)
	}
	return c
}

// until reads lines up to and including the completing OK, NO or BYE.
func until(c *linetest.Raw) []string {
	var out []string
	for {
		l := c.Line()
		out = append(out, l)
		if strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE") {
			return out
		}
	}
}

// cmd sends one command and returns the completing line.
func cmd(c *linetest.Raw, s string) string {
	c.Write(s + "\r\n")
	l := until(c)
	return l[len(l)-1]
}
