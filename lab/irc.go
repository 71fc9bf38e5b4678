package lab

import (
	"context"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/irc"
)

// ircBackend adapts the store to irc.Backend (SASL PLAIN).
type ircBackend struct{ s *store }

func (b ircBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }

// ircKinds are the IRC endpoints: STARTTLS per the IRCv3 tls extension on
// irc://, with every variant, and implicit TLS on ircs://.
func ircKinds() []kind {
	serve := serveWith(func(o starttls.ServerOptions, st *store) *irc.Server {
		return &irc.Server{ServerOptions: o, Backend: ircBackend{st}}
	})
	return []kind{
		{"irc", true, serve, nil},
		{"ircs", false, serve, nil},
	}
}
