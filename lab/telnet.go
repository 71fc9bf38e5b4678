package lab

import (
	"context"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/telnet"
)

// telnetBackend checks the lab user's login at the Telnet prompt.
type telnetBackend struct{ s *store }

func (b telnetBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }

// telnetKinds are the Telnet endpoints: START_TLS (option 46) with every
// broken variant, and telnets. "-auth-before-tls" prompts for login in
// plaintext next to the DO START_TLS; "-injection" processes Telnet bytes
// pipelined after the client's FOLLOWS inside TLS (the checker's probe
// pipelines IAC DO TIMING-MARK).
func telnetKinds() []kind {
	serve := serveWith(func(o starttls.ServerOptions, st *store) *telnet.Server {
		return &telnet.Server{ServerOptions: o, Backend: telnetBackend{st}}
	})
	return []kind{
		{"telnet", true, serve, nil},
		{"telnets", false, serve, nil},
	}
}
