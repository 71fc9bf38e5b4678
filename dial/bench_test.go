package dial_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
	"github.com/starttls/starttls/lab"
)

// BenchmarkDial is one complete client session set-up per iteration, for
// every scheme, against the lab's correct endpoint in the same process:
// TCP connect, the protocol's plaintext dialog, the upgrade, the TLS 1.3
// handshake with chain and name verification, the capabilities again over
// TLS, then Close. Time and allocations count both sides. The sub-benchmarks
// compare the protocols' dialogs with one another; none asserts a time.
//
//	go test -run '^$' -bench Dial -benchmem ./dial
func BenchmarkDial(b *testing.B) {
	l, err := lab.Start(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for _, sc := range starttls.Schemes() {
		ep, ok := l.Endpoint(sc.Name)
		if !ok {
			b.Fatalf("no lab endpoint %s", sc.Name)
		}
		tg, err := starttls.ParseTarget(ep.URL)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(sc.Name, func(b *testing.B) {
			o := &dial.Options{Client: starttls.ClientOptions{TLSConfig: &tls.Config{RootCAs: l.CA.Pool()}}}
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				s, res, err := dial.Dial(ctx, tg, o)
				if err != nil {
					cancel()
					b.Fatalf("Dial(%s): %v", ep.URL, err)
				}
				if res.TLS == nil {
					b.Fatalf("Dial(%s): no TLS", ep.URL)
				}
				s.Close()
				cancel()
			}
		})
	}
}
