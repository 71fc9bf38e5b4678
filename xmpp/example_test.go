package xmpp_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/xmpp"
)

type exampleBackend struct{}

func (exampleBackend) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "secret" {
		return nil
	}
	return fmt.Errorf("bad login")
}

// ExampleDial starts a server on loopback, upgrades a client stream with
// STARTTLS, logs in and binds a resource.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		panic(err)
	}
	srv := &xmpp.Server{ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS, Hostname: "localhost"}, Backend: exampleBackend{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := xmpp.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode: starttls.ModeRequired, ServerName: "localhost", TLSConfig: clientTLS,
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println("before TLS:", res.CapsBefore, res.AuthBefore, "required:", res.UpgradeRequired)
	fmt.Println("after TLS:", res.CapsAfter, res.AuthAfter, tls.VersionName(res.TLS.Version))
	if err := c.Login(ctx, "alice", "secret"); err != nil {
		panic(err)
	}
	fmt.Println("bound:", c.JID())
	fmt.Println("ping:", c.Ping(ctx))
	// Output:
	// before TLS: [starttls] [] required: true
	// after TLS: [mechanisms] [PLAIN] TLS 1.3
	// bound: alice@localhost/starttls
	// ping: <nil>
}
