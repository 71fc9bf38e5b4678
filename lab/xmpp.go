package lab

import (
	"context"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/xmpp"
)

// xmppBackend adapts the store to xmpp.Backend.
type xmppBackend struct{ s *store }

func (b xmppBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }

// xmppKinds are the XMPP endpoints: client-to-server STARTTLS (RFC 6120
// §5) on xmpp://, with every variant; direct TLS (XEP-0368) on xmpps://;
// server-to-server STARTTLS on xmpp-server://, with every variant but
// "-auth-before-tls" (an s2s stream has no password login). The servers
// accept any domain in the stream's 'to'.
func xmppKinds() []kind {
	serve := func(s2s bool) func(starttls.ServerOptions, *store, net.Listener) func() error {
		return serveWith(func(o starttls.ServerOptions, st *store) *xmpp.Server {
			return &xmpp.Server{ServerOptions: o, Backend: xmppBackend{st}, ServerToServer: s2s}
		})
	}
	return []kind{
		{"xmpp", true, serve(false), nil},
		{"xmpps", false, serve(false), nil},
		{"xmpp-server", true, serve(true), []string{"-auth-before-tls"}},
	}
}
