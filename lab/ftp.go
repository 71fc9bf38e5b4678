package lab

import (
	"context"
	"fmt"
	"io/fs"
	"testing/fstest"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/ftp"
)

// ftpBackend serves the lab user a small read-only tree: a README and the
// shared INBOX, one file per message.
type ftpBackend struct{ s *store }

func (b ftpBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }

func (b ftpBackend) FS(context.Context, string) (fs.FS, error) {
	now := time.Now().UTC().Truncate(time.Second)
	tree := fstest.MapFS{
		"README.txt": {Data: []byte("This file was read over a data connection the lab secured (AUTH TLS, PROT P).\n"), ModTime: now, Mode: 0o444},
	}
	for i, m := range b.s.messages() {
		tree[fmt.Sprintf("inbox/%d.eml", i+1)] = &fstest.MapFile{Data: m, ModTime: now, Mode: 0o444}
	}
	return tree, nil
}

// ftpKinds are the lab's FTP endpoints: ftp with AUTH TLS and every
// broken variant (FTP has USER/PASS and a command stream, so all apply),
// and ftps with implicit TLS.
func ftpKinds() []kind {
	serve := serveWith(func(o starttls.ServerOptions, st *store) *ftp.Server {
		return &ftp.Server{ServerOptions: o, Backend: ftpBackend{st}}
	})
	return []kind{
		{"ftp", true, serve, nil},
		{"ftps", false, serve, nil},
	}
}
