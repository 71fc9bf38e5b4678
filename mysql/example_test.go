package mysql_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/mysql"
)

type onePassword string

func (p onePassword) Password(_ context.Context, user string) (string, error) {
	if user != "alice" {
		return "", fmt.Errorf("no user %q", user)
	}
	return string(p), nil
}

// Start a Server on loopback, upgrade with the SSLRequest, log in over TLS
// and ask which cipher protects the session.
func ExampleDial() {
	server, client, err := certs.TestPair()
	if err != nil {
		panic(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &mysql.Server{ServerOptions: starttls.ServerOptions{TLSConfig: server}, Backend: onePassword("s3cret")}
	go srv.Serve(l)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := mysql.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: client})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println(res.Greeting)
	fmt.Println("offered:", res.Offered, "upgraded:", res.Upgraded, tls.VersionName(res.TLS.Version))
	if err := c.Login(ctx, "alice", "s3cret"); err != nil {
		panic(err)
	}
	rows, err := c.Query(ctx, "SHOW STATUS LIKE 'Ssl_cipher'")
	if err != nil {
		panic(err)
	}
	fmt.Println(rows.Rows[0][0], rows.Rows[0][1] != "")
	// Output:
	// 5.5.5-10.11.0-MariaDB-starttls-lab (connection id 1)
	// offered: true upgraded: true TLS 1.3
	// Ssl_cipher true
}
