package lab

import (
	"context"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/sieve"
)

// sieveBackend adapts the store to sieve.Backend.
type sieveBackend struct{ s *store }

func (b sieveBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }

// sieveKinds is the ManageSieve endpoint (RFC 5804), STARTTLS only (the
// protocol has no implicit-TLS port), with every variant. Each endpoint
// keeps its own scripts in memory, bounded per user by the sieve package.
func sieveKinds() []kind {
	serve := serveWith(func(o starttls.ServerOptions, st *store) *sieve.Server {
		return &sieve.Server{ServerOptions: o, Backend: sieveBackend{st}}
	})
	return []kind{{"sieve", true, serve, nil}}
}
