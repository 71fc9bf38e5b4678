package telnet_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/telnet"
)

type users struct{}

func (users) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "wonderland" {
		return nil
	}
	return errors.New("invalid credentials")
}

// ExampleDial starts a Telnet server offering START_TLS on loopback,
// connects with TLS required and logs in.
func ExampleDial() {
	serverTLS, clientTLS, err := certs.TestPair()
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &telnet.Server{ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS, Hostname: "lab"}, Backend: users{}}
	go srv.Serve(l)
	defer srv.Close()

	ctx := context.Background()
	c, res, err := telnet.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{
		Mode:      starttls.ModeRequired,
		TLSConfig: clientTLS,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(res.Greeting, "/", res.UpgradeReply)
	fmt.Printf("over TLS: %q\n", c.Text())
	if err := c.Login(ctx, "alice", "wonderland"); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", c.Text())
	// Output:
	// IAC DO START_TLS / IAC SB START_TLS FOLLOWS IAC SE
	// over TLS: "lab starttls lab telnet server (over TLS)\r\n\r\nlogin: "
	// "\r\nWelcome alice\r\n$ "
}
