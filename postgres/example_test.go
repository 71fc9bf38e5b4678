package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/postgres"
)

// users is a Backend with one user; SCRAMSecret makes the server use
// SCRAM-SHA-256.
type users struct{ secret *postgres.SCRAMSecret }

func (users) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "wonderland" {
		return nil
	}
	return errors.New("invalid credentials")
}

func (u users) SCRAMSecret(_ context.Context, user string) (*postgres.SCRAMSecret, error) {
	if user != "alice" {
		return nil, errors.New("no such user")
	}
	return u.secret, nil
}

// ExampleDial starts a PostgreSQL server offering TLS on loopback, then
// connects to it with TLS required, logs in with SCRAM-SHA-256 and asks
// whether the session is encrypted.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		log.Fatal(err)
	}
	secret, err := postgres.NewSCRAMSecret("wonderland", nil, 4096)
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &postgres.Server{
		ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS},
		Backend:       users{secret},
	}
	go srv.Serve(l)
	defer srv.Close()

	ctx := context.Background()
	c, res, err := postgres.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode:      starttls.ModeRequired,
		TLSConfig: clientTLS,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("answer to SSLRequest:", res.UpgradeReply, "upgraded:", res.Upgraded)
	if err := c.Login(ctx, "alice", "wonderland"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("authentication:", res.AuthAfter)
	rows, err := c.SimpleQuery(ctx, "SHOW ssl")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ssl:", rows[0][0])
	// Output:
	// answer to SSLRequest: S upgraded: true
	// authentication: [SCRAM-SHA-256]
	// ssl: on
}
