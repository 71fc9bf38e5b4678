package proxy

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
)

// TestEveryProtocolServerSide puts a STARTTLS listener in front of each
// protocol's own server running in plaintext (no TLS configured: a legacy
// backend) and runs the protocol's client through it in ModeRequired: the
// upgrade happens at the proxy and the dialog after TLS (capabilities
// again, or the stream restarted) reaches the backend. A protocol added
// to the tables is tested here without changes.
func TestEveryProtocolServerSide(t *testing.T) {
	for _, s := range starttls.Schemes() {
		if s.Implicit {
			continue
		}
		g, err := dial.Gateways(s.Protocol)
		if err != nil || g.NewServer == nil {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			backend, ok := g.NewServer(starttls.ServerOptions{Hostname: "localhost"}).(interface {
				Serve(net.Listener) error
				Close() error
			})
			if !ok {
				t.Skip("the server has no Serve")
			}
			l := listen(t)
			go backend.Serve(l)
			t.Cleanup(func() { backend.Close() })
			addr, _ := startProxy(t, Listener{Protocol: s.Protocol, Backend: l.Addr().String(), TLS: serverTLS, Hostname: "localhost"}, nil)
			target, err := starttls.ParseTarget(s.Name + "://" + addr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			sess, res, err := dial.Dial(ctx, target, &dial.Options{Client: starttls.ClientOptions{
				Mode: starttls.ModeRequired, TLSConfig: clientTLS, ServerName: "localhost",
			}})
			if err != nil {
				t.Fatalf("%s through the gateway: %v", s.Name, err)
			}
			defer sess.Close()
			if !res.Upgraded || res.OfferedAfterTLS {
				t.Errorf("upgraded %v, offered after TLS %v", res.Upgraded, res.OfferedAfterTLS)
			}
		})
	}
}

// TestEveryProtocolClientSide: each protocol's own server with STARTTLS
// as the upstream, and the protocol's client in ModePlain (a legacy
// client) on the gateway's plaintext listener: its whole plaintext dialog
// works against the upstream's answers, which travel over TLS.
func TestEveryProtocolClientSide(t *testing.T) {
	for _, s := range starttls.Schemes() {
		if s.Implicit {
			continue
		}
		g, err := dial.Gateways(s.Protocol)
		if err != nil || g.ClientGreeting == nil || g.NewServer == nil {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			up, ok := g.NewServer(starttls.ServerOptions{Hostname: "localhost", TLSConfig: serverTLS}).(interface {
				Serve(net.Listener) error
				Close() error
			})
			if !ok {
				t.Skip("the server has no Serve")
			}
			l := listen(t)
			go up.Serve(l)
			t.Cleanup(func() { up.Close() })
			addr, _ := startProxy(t, Listener{Protocol: s.Protocol, Upstream: l.Addr().String(), ServerName: "localhost", ClientTLS: clientTLS}, nil)
			target, err := starttls.ParseTarget(s.Name + "://" + addr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			sess, res, err := dial.Dial(ctx, target, &dial.Options{Client: starttls.ClientOptions{Mode: starttls.ModePlain}})
			if err != nil {
				t.Fatalf("legacy %s client through the gateway: %v", s.Name, err)
			}
			defer sess.Close()
			if res.Offered {
				t.Errorf("the legacy client was offered the upgrade: its session is TLS upstream already")
			}
		})
	}
}
