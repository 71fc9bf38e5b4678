package ldap_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/ldap"
)

// users is a Backend with one user.
type users struct{}

func (users) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "wonderland" {
		return nil
	}
	return errors.New("invalid credentials")
}

// ExampleDial starts an LDAP server offering StartTLS on loopback, then
// connects to it with TLS required, binds and asks who it is.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &ldap.Server{
		ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS},
		Backend:       users{},
		BaseDN:        "dc=example,dc=org",
	}
	go srv.Serve(l)
	defer srv.Close()

	ctx := context.Background()
	c, res, err := ldap.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode:      starttls.ModeRequired,
		TLSConfig: clientTLS,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("offered:", res.Offered, "upgraded:", res.Upgraded)
	fmt.Println("login before TLS:", res.AuthBefore, "after:", res.AuthAfter)

	if err := c.Login(ctx, "uid=alice,dc=example,dc=org", "wonderland"); err != nil {
		log.Fatal(err)
	}
	who, err := c.WhoAmI(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(who)
	// Output:
	// offered: true upgraded: true
	// login before TLS: [] after: [PLAIN]
	// dn:uid=alice,dc=example,dc=org
}
