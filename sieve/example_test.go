package sieve_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/sieve"
)

type users struct{}

func (users) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "wonderland" {
		return nil
	}
	return errors.New("invalid credentials")
}

// ExampleDial starts a ManageSieve server on loopback, connects to it with
// TLS required, logs in, stores a script and lists the scripts.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &sieve.Server{ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS}, Backend: users{}}
	go srv.Serve(l)
	defer srv.Close()

	ctx := context.Background()
	c, res, err := sieve.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode:      starttls.ModeRequired,
		TLSConfig: clientTLS,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("offered:", res.Offered, "upgraded:", res.Upgraded, "caps re-read:", res.CapsReread)
	fmt.Println("SASL before TLS:", res.AuthBefore, "after:", res.AuthAfter)

	if err := c.Login(ctx, "alice", "wonderland"); err != nil {
		log.Fatal(err)
	}
	if err := c.PutScript(ctx, "vacation", []byte("require \"vacation\";\r\nvacation \"Away.\";\r\n")); err != nil {
		log.Fatal(err)
	}
	scripts, err := c.ListScripts(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("scripts:", scripts)
	// Output:
	// offered: true upgraded: true caps re-read: true
	// SASL before TLS: [] after: [PLAIN]
	// scripts: [{vacation false}]
}
