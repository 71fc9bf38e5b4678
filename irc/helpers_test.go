package irc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

var errBadLogin = errors.New("bad login")

// memBackend accepts alice / "secret pw".
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
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "irc.test"}, Backend: &memBackend{}}
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

// until reads lines up to one containing s and returns it.
func until(t testing.TB, c *linetest.Raw, s string) string {
	t.Helper()
	for i := 0; i < 50; i++ {
		if l := c.Line(); strings.Contains(l, s) {
			return l
		}
	}
	t.Fatalf("no line containing %q", s)
	return ""
}

// dump renders a transcript for failure messages.
func dump(tr *starttls.Transcript) string {
	var b strings.Builder
	for _, e := range tr.Events() {
		b.WriteString(e.Dir.String())
		if e.TLS {
			b.WriteString(" [tls]")
		}
		b.WriteString(" ")
		b.WriteString(starttls.Escape(e.Text))
		b.WriteString("\n")
	}
	return b.String()
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
