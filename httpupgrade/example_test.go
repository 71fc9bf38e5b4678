package httpupgrade_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/httpupgrade"
	"github.com/starttls/starttls/internal/certs"
)

type users struct{}

func (users) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "wonderland" {
		return nil
	}
	return errors.New("invalid credentials")
}

// ExampleDial starts an HTTP server offering the RFC 2817 upgrade on
// loopback, connects with TLS required, logs in and fetches a page.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &httpupgrade.Server{ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS}, Backend: users{}}
	go srv.Serve(l)
	defer srv.Close()

	ctx := context.Background()
	c, res, err := httpupgrade.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode:      starttls.ModeRequired,
		TLSConfig: clientTLS,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(res.UpgradeReply)
	fmt.Println("upgraded:", res.Upgraded, "ALPN:", res.TLS.NegotiatedProtocol == "" || res.TLS.NegotiatedProtocol == "http/1.1")
	if err := c.Login(ctx, "alice", "wonderland"); err != nil {
		log.Fatal(err)
	}
	code, body, err := c.Get(ctx, "/private")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d %q\n", code, body)
	// Output:
	// HTTP/1.1 101 Switching Protocols
	// upgraded: true ALPN: true
	// 200 "Welcome alice\n"
}
