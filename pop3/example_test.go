package pop3_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/pop3"
)

// maildrop is a Backend with one user and one message.
type maildrop struct{}

func (maildrop) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "wonderland" {
		return nil
	}
	return errors.New("invalid credentials")
}

func (maildrop) Messages(context.Context, string) ([][]byte, error) {
	return [][]byte{[]byte("Subject: hello\r\n\r\nHi Alice.\r\n")}, nil
}

// ExampleDial starts a POP3 server offering STLS on loopback, then
// connects to it with TLS required, logs in and fetches a message.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &pop3.Server{
		ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS},
		Backend:       maildrop{},
	}
	go srv.Serve(l)
	defer srv.Close()

	ctx := context.Background()
	c, res, err := pop3.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
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
	n, size, err := c.Stat(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("messages:", n, "octets:", size)
	msg, err := c.Retr(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", msg)
	// Output:
	// offered: true upgraded: true
	// login before TLS: [] after: [USER PLAIN]
	// messages: 1 octets: 29
	// "Subject: hello\r\n\r\nHi Alice.\r\n"
}
