package lab

import (
	"context"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/httpupgrade"
)

// httpBackend checks the Basic credentials of the lab site's /private page.
type httpBackend struct{ s *store }

func (b httpBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }

// httpupgradeKinds are the HTTP endpoints: the RFC 2817 upgrade with the
// broken variants, and https. HTTP offers no login before the client asks
// for a protected page, so "-auth-before-tls" does not apply: the
// upgrade dialog (one OPTIONS request) cannot see a Basic challenge.
func httpupgradeKinds() []kind {
	serve := serveWith(func(o starttls.ServerOptions, st *store) *httpupgrade.Server {
		return &httpupgrade.Server{ServerOptions: o, Backend: httpBackend{st}}
	})
	return []kind{
		{"http-upgrade", true, serve, []string{"-auth-before-tls"}},
		{"https", false, serve, nil},
	}
}
