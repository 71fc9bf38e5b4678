package strip

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
	"github.com/starttls/starttls/internal/certs"
)

// lab is an upstream server of a protocol with TLS, and the client config
// that trusts it (and the attacker's --cert, issued by the same CA).
type lab struct {
	addr      string
	clientTLS *tls.Config
	attacker  tls.Certificate // trusted, for the name "attacker.invalid"
	ca        *certs.CA
}

func startLab(t *testing.T, protocol string) *lab {
	t.Helper()
	return startLabOpts(t, protocol, nil)
}

func startLabOpts(t *testing.T, protocol string, mod func(*starttls.ServerOptions)) *lab {
	t.Helper()
	ca, err := certs.NewCA("strip test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(certs.Leaf{Names: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	att, err := ca.Issue(certs.Leaf{Names: []string{"attacker.invalid"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := dial.MITMFor(protocol)
	if err != nil {
		t.Fatal(err)
	}
	o := starttls.ServerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf}}}
	if mod != nil {
		mod(&o)
	}
	srv := m.Server(o)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(ctx, c)
		}
	}()
	t.Cleanup(func() { cancel(); l.Close() })
	return &lab{addr: l.Addr().String(), clientTLS: &tls.Config{RootCAs: ca.Pool()}, attacker: att, ca: ca}
}

// startStrip runs a simulator in front of lb and returns its address.
func startStrip(t *testing.T, lb *lab, protocol, attack string, mod func(*Config)) (*Simulator, string) {
	t.Helper()
	cfg := Config{
		Protocol: protocol, Upstream: lb.addr, Attack: attack,
		UpstreamTLS: lb.clientTLS, Wait: 300 * time.Millisecond,
		ClientTimeout: 5 * time.Second, SessionTimeout: 10 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sim.Serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return sim, l.Addr().String()
}

// waitEntries waits until the simulator has n entries.
func waitEntries(t *testing.T, sim *Simulator, n int) []Entry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if es := sim.Entries(); len(es) >= n {
			return es
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %d entries, have %d", n, len(sim.Entries()))
	return nil
}

func startLabWith(t *testing.T, protocol string, mod func(*starttls.ServerOptions)) *lab {
	t.Helper()
	return startLabOpts(t, protocol, mod)
}

func startImplicitLab(t *testing.T, protocol string) *lab {
	t.Helper()
	return startLabOpts(t, protocol, func(o *starttls.ServerOptions) { o.Implicit = true })
}

// startGarbage is an upstream that answers anything with binary noise.
func startGarbage(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				c.Write([]byte("\x16\x03\x01\x00\x02\xff\xff\x00garbage\r\n\x00\x01"))
				buf := make([]byte, 1024)
				c.Read(buf)
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

func mustScheme(t *testing.T, name string) starttls.Scheme {
	sc, ok := starttls.LookupScheme(name)
	if !ok {
		t.Fatal(name)
	}
	return sc
}

func port(t *testing.T, addr string) int {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.Port
}

// schemeFor returns the STARTTLS scheme of a protocol.
func schemeFor(t *testing.T, protocol string) string {
	for _, sc := range starttls.Schemes() {
		if sc.Protocol == protocol && !sc.Implicit {
			return sc.Name
		}
	}
	t.Fatalf("no scheme for %s", protocol)
	return ""
}
