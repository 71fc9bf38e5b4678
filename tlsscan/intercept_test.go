package tlsscan_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
	"github.com/starttls/starttls/lab"
	"github.com/starttls/starttls/tlsscan"
)

// TestScanThroughEveryScheme scans the lab's servers through each
// protocol's upgrade, with ClientOptions.Intercept handing the raw
// connection to the probe: the scanner never knows the protocol.
func TestScanThroughEveryScheme(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
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
			dialer := func(ctx context.Context, probe func(context.Context, net.Conn) error) error {
				var perr error
				o := &dial.Options{Client: starttls.ClientOptions{Intercept: func(ctx context.Context, conn net.Conn) error {
					perr = probe(ctx, conn)
					return perr
				}}}
				s, _, err := dial.Dial(ctx, tg, o)
				if s != nil {
					s.Close()
				}
				if errors.Is(err, starttls.ErrIntercepted) {
					return perr
				}
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := tlsscan.Scan(ctx, dialer, &tlsscan.Options{ServerName: "127.0.0.1", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatalf("Scan() error = %v", err)
			}
			if b := res.Versions[tlsscan.TLS12]; b == nil || !*b {
				t.Errorf("TLS1.2 accepted = %v, want true", b)
			}
			if len(res.Ciphers) == 0 || len(res.Errors) > 0 {
				t.Errorf("Ciphers = %d, Errors = %q", len(res.Ciphers), res.Errors)
			}
			t.Logf("%d connections, %d suites, groups %q", res.Connections, len(res.Ciphers), res.Groups)
		})
	}
}
