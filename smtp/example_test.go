package smtp_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/smtp"
)

type printBackend struct{}

func (printBackend) Login(ctx context.Context, username, password string) error {
	if username == "alice" && password == "wonderland" {
		return nil
	}
	return smtp.ErrAuthFailed
}

func (printBackend) Deliver(ctx context.Context, from string, to []string, data []byte) error {
	fmt.Printf("delivered %d bytes from %s to %v\n", len(data), from, to)
	return nil
}

// ExampleDial runs a submission server on loopback and sends a message
// through it with TLS required.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		log.Fatal(err)
	}
	srv := &smtp.Server{Backend: printBackend{}, RequireAuth: true}
	srv.TLSConfig = serverTLS
	srv.Hostname = "mx.example.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := smtp.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode:      starttls.ModeRequired,
		TLSConfig: clientTLS,
		LocalName: "client.example.test",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("offered:", res.Offered, "upgraded:", res.Upgraded)
	fmt.Println("login before TLS:", res.AuthBefore, "after:", res.AuthAfter)
	if err := c.Login(ctx, "alice", "wonderland"); err != nil {
		log.Fatal(err)
	}
	msg := []byte("Subject: hello\n\nHello over TLS.\n")
	if err := c.SendMail(ctx, "alice@example.test", []string{"bob@example.test"}, msg); err != nil {
		log.Fatal(err)
	}
	// Output:
	// offered: true upgraded: true
	// login before TLS: [] after: [PLAIN LOGIN]
	// delivered 35 bytes from alice@example.test to [bob@example.test]
}
