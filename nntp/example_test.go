package nntp_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/nntp"
)

// spool is a Backend with one user and one group of one article.
type spool struct{}

func (spool) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "wonderland" {
		return nil
	}
	return errors.New("invalid credentials")
}

func (spool) Groups(context.Context, string) ([]string, error) {
	return []string{"local.test"}, nil
}

func (spool) Articles(context.Context, string, string) ([][]byte, error) {
	return [][]byte{[]byte("Subject: hello\r\nMessage-ID: <1@example.org>\r\n\r\nHi Alice.\r\n")}, nil
}

// ExampleDial starts an NNTP server offering STARTTLS on loopback, then
// connects to it with TLS required, logs in and reads an article.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &nntp.Server{ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS}, Backend: spool{}}
	go srv.Serve(l)
	defer srv.Close()

	ctx := context.Background()
	c, res, err := nntp.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode:      starttls.ModeRequired,
		TLSConfig: clientTLS,
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
	g, err := c.Group(ctx, "local.test")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("articles:", g.Count)
	body, err := c.Body(ctx, "<1@example.org>")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", body)
	// Output:
	// offered: true upgraded: true
	// login before TLS: [] after: [USER PLAIN]
	// articles: 1
	// "Hi Alice.\r\n"
}
