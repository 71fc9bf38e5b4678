package irc_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/irc"
)

// Start a Server on loopback and dial it with STARTTLS required: the
// client reads the capabilities, upgrades, reads them again over TLS and
// registers.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		panic(err)
	}
	srv := &irc.Server{ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS, Hostname: "irc.example"}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := irc.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode:      starttls.ModeRequired,
		TLSConfig: &tls.Config{RootCAs: clientTLS.RootCAs},
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println("offered:", res.Offered, "upgraded:", res.Upgraded)
	fmt.Println("before TLS:", res.CapsBefore, "after TLS:", res.CapsAfter)
	if err := c.Register(ctx, "gopher"); err != nil {
		panic(err)
	}
	fmt.Println("registered as", c.Nick())
	// Output:
	// offered: true upgraded: true
	// before TLS: [tls] after TLS: [sasl=PLAIN]
	// registered as gopher
}
