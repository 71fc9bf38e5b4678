package ftp_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io/fs"
	"net"
	"testing/fstest"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/ftp"
	"github.com/starttls/starttls/internal/certs"
)

// files is a Backend with one user and one file.
type files struct{}

func (files) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "secret" {
		return nil
	}
	return fmt.Errorf("bad credentials")
}

func (files) FS(context.Context, string) (fs.FS, error) {
	return fstest.MapFS{"hello.txt": {Data: []byte("hello over TLS\n")}}, nil
}

// ExampleDial starts a server on loopback, upgrades with AUTH TLS, logs in
// and fetches a file over a protected data connection.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		panic(err)
	}
	srv := &ftp.Server{ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS}, Backend: files{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	ctx := context.Background()
	c, res, err := ftp.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode:      starttls.ModeRequired,
		TLSConfig: &tls.Config{RootCAs: clientTLS.RootCAs},
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println("offered:", res.Offered, "upgraded:", res.Upgraded, "data protected:", c.DataProtected())
	if err := c.Login(ctx, "alice", "secret"); err != nil {
		panic(err)
	}
	data, err := c.Retr(ctx, "hello.txt")
	if err != nil {
		panic(err)
	}
	fmt.Print(string(data))
	// Output:
	// offered: true upgraded: true data protected: true
	// hello over TLS
}
