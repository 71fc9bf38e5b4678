package lab

import (
	"context"
	"errors"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/nntp"
)

// nntpGroup is the lab's one newsgroup: the shared INBOX, so that mail
// sent to a lab SMTP endpoint can be read back over NNTP too.
const nntpGroup = "starttls.lab"

// nntpBackend adapts the store to nntp.Backend.
type nntpBackend struct{ s *store }

func (b nntpBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }

func (b nntpBackend) Groups(context.Context, string) ([]string, error) {
	return []string{nntpGroup}, nil
}

func (b nntpBackend) Articles(_ context.Context, _, group string) ([][]byte, error) {
	if group != nntpGroup {
		return nil, errors.New("lab: no such group")
	}
	return b.s.messages(), nil
}

// nntpKinds are the NNTP endpoints: STARTTLS (RFC 4642) on nntp://, with
// every variant, and implicit TLS on nntps://.
func nntpKinds() []kind {
	serve := serveWith(func(o starttls.ServerOptions, st *store) *nntp.Server {
		return &nntp.Server{ServerOptions: o, Backend: nntpBackend{st}}
	})
	return []kind{
		{"nntp", true, serve, nil},
		{"nntps", false, serve, nil},
	}
}
