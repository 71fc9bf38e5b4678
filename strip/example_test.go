package strip_test

import (
	"context"
	"fmt"
	"net"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/smtp"
	"github.com/starttls/starttls/strip"
)

// ExamplePlan shows the attacks --attack all cycles through, one per
// connection.
func ExamplePlan() {
	steps, err := strip.Plan("all")
	if err != nil {
		panic(err)
	}
	for i, s := range steps {
		fmt.Println(i+1, s)
	}
	// Output:
	// 1 strip-capability
	// 2 reject-upgrade/temporary
	// 3 reject-upgrade/permanent
	// 4 untrusted-cert/self-signed
	// 5 untrusted-cert/wrong-name
	// 6 response-injection
	// 7 command-injection
	// 8 downgrade
	// 9 pass
}

// ExampleSimulator strips STARTTLS from one SMTP connection and reports
// what a client that logs in anyway gave away.
func ExampleSimulator() {
	sim, err := strip.New(strip.Config{Protocol: "smtp", Upstream: "127.0.0.1:25", Attack: strip.StripCapability})
	if err != nil {
		panic(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	entry := make(chan strip.Entry)
	go func() {
		conn, err := l.Accept()
		if err == nil {
			entry <- sim.ServeConn(context.Background(), conn)
		}
	}()

	// The client under test: it logs in whether or not STARTTLS is offered.
	ctx := context.Background()
	c, _, err := smtp.Dial(ctx, l.Addr().String(), &starttls.ClientOptions{Mode: starttls.ModePlain})
	if err != nil {
		panic(err)
	}
	c.Login(ctx, "bob", "hunter2")
	c.Close()

	e := <-entry
	fmt.Println(e.Attack+":", e.Verdict)
	for _, cr := range e.CredentialsSeen {
		fmt.Println(cr.Mechanism, cr.User, cr.Secret)
	}
	// Output:
	// strip-capability: vulnerable
	// AUTH PLAIN bob h…2 (7 chars)
}
