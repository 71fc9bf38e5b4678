package proxy_test

import (
	"context"
	"fmt"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/proxy"
	"github.com/starttls/starttls/smtp"
)

// A legacy SMTP server that knows nothing of TLS gets STARTTLS in front
// of it: the proxy serves the pre-TLS dialog (STARTTLS advertised, AUTH
// hidden), then relays the TLS session to the backend.
func ExampleServer_starttls() {
	serverTLS, clientTLS, _ := certs.TestPair()

	// The plaintext backend (here the library's own SMTP server without
	// TLS, accepting AUTH in plaintext as legacy servers do).
	bl, _ := net.Listen("tcp", "127.0.0.1:0")
	backend := &smtp.Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: true}}
	go backend.Serve(bl)
	defer backend.Close()

	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	gw, err := proxy.New(proxy.Listener{
		Listen:   pl.Addr().String(),
		Protocol: "smtp",
		Backend:  bl.Addr().String(),
		TLS:      serverTLS,
	}, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	go gw.Serve(pl)
	defer gw.Close()

	c, res, err := smtp.Dial(context.Background(), pl.Addr().String(), &starttls.ClientOptions{
		Mode: starttls.ModeRequired, TLSConfig: clientTLS, ServerName: "localhost",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println("upgraded:", res.Upgraded)
	fmt.Println("AUTH before TLS:", res.AuthBefore)
	fmt.Println("AUTH over TLS (the backend's):", res.AuthAfter)
	// Output:
	// upgraded: true
	// AUTH before TLS: []
	// AUTH over TLS (the backend's): [PLAIN LOGIN]
}

// A protocol whose dialog cannot be proxied fails when the listener is
// created, not at the first client.
func ExampleListener_Check() {
	l := proxy.Listener{Listen: "127.0.0.1:3307", Protocol: "mysql", Upstream: "db.example.org:3306"}
	fmt.Println(l.Check())
	// Output:
	// listener "127.0.0.1:3307": proxy: not supported: client side for mysql: the client dialog answers the upstream's greeting before TLS, which the plaintext client would answer again
}
