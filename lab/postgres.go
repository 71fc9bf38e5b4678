package lab

import (
	"context"
	"sync"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/postgres"
)

// postgresKinds is the PostgreSQL endpoint and its broken variants.
//
// How the variants map: "-no-starttls" answers 'N' to the SSLRequest;
// "-refused" is skipped, because PostgreSQL cannot offer TLS and then
// refuse it ('N' is its only refusal, which is "-no-starttls");
// "-handshake-failure", the certificate and TLS-version variants answer
// 'S' and break the handshake; "-auth-before-tls" accepts a
// StartupMessage without TLS and asks for a password (the plaintext-login
// probe sees it); "-injection" reads a StartupMessage pipelined after the
// SSLRequest as if it came over TLS (CVE-2021-23214).
func postgresKinds() []kind {
	serve := serveWith(func(o starttls.ServerOptions, st *store) *postgres.Server {
		return &postgres.Server{ServerOptions: o, Backend: &postgresBackend{st: st}}
	})
	return []kind{{"postgres", true, serve, []string{"-refused"}}}
}

// postgresBackend adapts the store: SCRAM-SHA-256 with a secret derived
// once from the lab password.
type postgresBackend struct {
	st     *store
	once   sync.Once
	secret *postgres.SCRAMSecret
	err    error
}

func (b *postgresBackend) Login(_ context.Context, user, pass string) error {
	return b.st.login(user, pass)
}

func (b *postgresBackend) SCRAMSecret(_ context.Context, user string) (*postgres.SCRAMSecret, error) {
	if user != b.st.user {
		return nil, ErrBadCredentials
	}
	b.once.Do(func() { b.secret, b.err = postgres.NewSCRAMSecret(b.st.password, nil, 4096) })
	return b.secret, b.err
}
