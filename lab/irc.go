package lab

import (
	"context"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/irc"
)

// ircBackend adapts the store to irc.Backend (SASL PLAIN).
type ircBackend struct{ s *store }

func (b ircBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }

// ircKinds are the IRC endpoints: STARTTLS per the IRCv3 tls extension on
// irc://, with every variant, and implicit TLS on ircs://.
func ircKinds() []kind {
	serve := func(o starttls.ServerOptions, st *store, l net.Listener) func() error {
		s := &irc.Server{ServerOptions: o, Backend: ircBackend{st}}
		go s.Serve(l)
		return s.Close
	}
	return []kind{
		{"irc", true, serve, nil},
		{"ircs", false, serve, nil},
	}
}
