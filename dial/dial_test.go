package dial_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
	"github.com/starttls/starttls/lab"
)

// TestEverySchemeHasAClient keeps the scheme table and the client table in
// step.
func TestEverySchemeHasAClient(t *testing.T) {
	for _, s := range starttls.Schemes() {
		if _, err := dial.Upgrader(s.Protocol); err != nil {
			t.Errorf("scheme %s: %v", s.Name, err)
		}
	}
	if _, err := dial.Upgrader("gopher"); err == nil {
		t.Error("Upgrader(gopher) = nil error")
	}
}

func TestDialLab(t *testing.T) {
	l, err := lab.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, ep := range l.Endpoints {
		if ep.Broken {
			continue
		}
		t.Run(ep.Name, func(t *testing.T) {
			tg, err := starttls.ParseTarget(ep.URL)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, res, err := dial.Dial(ctx, tg, &dial.Options{
				Client: starttls.ClientOptions{TLSConfig: &tls.Config{RootCAs: l.CA.Pool()}},
				Source: "127.0.0.1",
			})
			if err != nil {
				t.Fatalf("Dial(%s) = %v", ep.URL, err)
			}
			defer s.Close()
			if !res.Upgraded || res.TLS == nil || res.Protocol != ep.Protocol {
				t.Errorf("Dial(%s): upgraded %v, protocol %q", ep.URL, res.Upgraded, res.Protocol)
			}
			if tg.Scheme.Implicit != (res.Mode == starttls.ModeImplicit) {
				t.Errorf("Dial(%s): mode %s", ep.URL, res.Mode)
			}
			if err := s.Login(ctx, l.User, l.Password); err != nil && ep.Protocol != "lmtp" && ep.Protocol != "xmpp-server" { // no password login on these
				t.Errorf("Login on %s: %v", ep.URL, err)
			}
		})
	}
}

func TestDialRequiredNotOffered(t *testing.T) {
	l, err := lab.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ep, _ := l.Endpoint("pop3-no-starttls")
	tg, _ := starttls.ParseTarget(ep.URL)
	s, res, err := dial.Dial(context.Background(), tg, nil)
	if !errors.Is(err, starttls.ErrUpgradeNotOffered) || s != nil {
		t.Fatalf("Dial = %v, %v; want ErrUpgradeNotOffered and no session", s, err)
	}
	if res == nil || res.Offered || res.Upgraded {
		t.Fatalf("result %+v", res)
	}
}

// Dial any URL; the protocol comes from the scheme.
func ExampleDial() {
	l, err := lab.Start(nil)
	if err != nil {
		panic(err)
	}
	defer l.Close()
	ep, _ := l.Endpoint("imap")
	target, _ := starttls.ParseTarget(ep.URL)

	ctx := context.Background()
	s, res, err := dial.Dial(ctx, target, &dial.Options{
		Client: starttls.ClientOptions{TLSConfig: &tls.Config{RootCAs: l.CA.Pool()}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	fmt.Println(res.Protocol, res.Mode, res.Offered, res.Upgraded, tls.VersionName(res.TLS.Version))
	fmt.Println("login before TLS:", res.AuthBefore)
	fmt.Println("login after TLS:", res.AuthAfter)
	// Output:
	// imap required true true TLS 1.3
	// login before TLS: []
	// login after TLS: [LOGIN PLAIN]
}

// TestInterceptEveryScheme: ClientOptions.Intercept receives the raw
// connection where TLS starts, for every protocol, with the server's first
// TLS bytes still to come (it sends none before the client's ClientHello),
// and the dialog ends with ErrIntercepted.
func TestInterceptEveryScheme(t *testing.T) {
	l, err := lab.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, sc := range starttls.Schemes() {
		t.Run(sc.Name, func(t *testing.T) {
			ep, _ := l.Endpoint(sc.Name)
			tg, err := starttls.ParseTarget(ep.URL)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			calls := 0
			var hsErr error
			o := &dial.Options{Client: starttls.ClientOptions{Intercept: func(ctx context.Context, conn net.Conn) error {
				calls++
				// The interceptor owns the TLS start: a handshake of
				// its own completes.
				tc := tls.Client(conn, &tls.Config{RootCAs: l.CA.Pool(), ServerName: "127.0.0.1"})
				hsErr = tc.HandshakeContext(ctx)
				return nil
			}}}
			s, _, err := dial.Dial(ctx, tg, o)
			if s != nil {
				s.Close()
			}
			if !errors.Is(err, starttls.ErrIntercepted) {
				t.Fatalf("Dial: %v, want ErrIntercepted", err)
			}
			if calls != 1 || hsErr != nil {
				t.Fatalf("Intercept called %d times; its handshake: %v", calls, hsErr)
			}
		})
	}
}
