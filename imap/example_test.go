package imap_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/imap"
	"github.com/starttls/starttls/internal/certs"
)

// store is a one-user read-only mail store.
type store struct{}

func (store) Login(_ context.Context, user, pass string) error {
	if user != "alice" || pass != "wonderland" {
		return errors.New("bad credentials")
	}
	return nil
}

func (store) Mailboxes(context.Context, string) ([]string, error) {
	return []string{"INBOX", "Archive"}, nil
}

func (store) Messages(context.Context, string, string) ([][]byte, error) {
	return [][]byte{[]byte("Subject: hi\r\n\r\nhello\r\n")}, nil
}

// ExampleDial starts a server on loopback, then connects with STARTTLS
// required, logs in and lists the mailboxes.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		log.Fatal(err)
	}
	srv := &imap.Server{
		ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS, Hostname: "imap.example"},
		Backend:       store{},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	ctx := context.Background()
	c, res, err := imap.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode:      starttls.ModeRequired,
		TLSConfig: clientTLS,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("upgraded:", res.Upgraded)
	fmt.Println("login before TLS:", res.AuthBefore)
	fmt.Println("login after TLS:", res.AuthAfter)
	if err := c.Login(ctx, "alice", "wonderland"); err != nil {
		log.Fatal(err)
	}
	boxes, err := c.List(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("mailboxes:", boxes)
	// Output:
	// upgraded: true
	// login before TLS: []
	// login after TLS: [LOGIN PLAIN]
	// mailboxes: [INBOX Archive]
}
