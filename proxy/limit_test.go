package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
)

func TestLimiter(t *testing.T) {
	l := newLimiter(2, 3)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if !l.allow("a", now) {
			t.Fatalf("burst: refused #%d", i)
		}
	}
	if l.allow("a", now) {
		t.Fatal("allowed past the burst")
	}
	if !l.allow("b", now) {
		t.Fatal("another address was limited")
	}
	if !l.allow("a", now.Add(500*time.Millisecond)) {
		t.Fatal("no token after 1/rate")
	}
}

func TestMaxConns(t *testing.T) {
	m := NewMetrics()
	cfg := tcpTLS(echoBackend(t))
	cfg.MaxConns = 1
	addr, s := startProxy(t, cfg, m)
	first, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(second); err != nil {
		t.Fatalf("second connection: %v, want closed", err)
	}
	waitFor(t, func() bool {
		return m.Get(`starttls_proxy_connections_refused_total{`+s.labels+`,reason="max_conns"}`) == 1
	})
	// The first still works.
	first.Write([]byte("a"))
	b := make([]byte, 1)
	if _, err := io.ReadFull(first, b); err != nil {
		t.Fatal(err)
	}
}

func TestRatePerIP(t *testing.T) {
	m := NewMetrics()
	cfg := tcpTLS(echoBackend(t))
	cfg.RatePerIP, cfg.RateBurst = 0.01, 2
	addr, s := startProxy(t, cfg, m)
	for i := range 3 {
		c, err := tls.Dial("tcp", addr, clientTLS)
		if i < 2 && err != nil {
			t.Fatalf("connection %d refused: %v", i, err)
		}
		if i == 2 && err == nil {
			t.Fatal("third connection within the burst got through")
		}
		if c != nil {
			c.Close()
		}
	}
	waitFor(t, func() bool {
		return m.Get(`starttls_proxy_connections_refused_total{`+s.labels+`,reason="rate"}`) == 1
	})
}

// TestSlowLorisPreTLS: a client that reads the greeting and then says
// nothing is closed at the handshake timeout, in the pre-TLS dialog too.
func TestSlowLorisPreTLS(t *testing.T) {
	addr, _ := startProxy(t, Listener{Protocol: "smtp", Backend: echoBackend(t), TLS: serverTLS, HandshakeTimeout: 300 * time.Millisecond}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	greeting, _ := r.ReadString('\n')
	if !strings.HasPrefix(greeting, "220 ") {
		t.Fatalf("greeting %q", greeting)
	}
	c.Write([]byte("EHLO x\r\nNOOP")) // a line that never ends
	_, err = io.ReadAll(r)
	if isTimeout(err) {
		t.Fatal("the slow client was not dropped")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("dropped after %v", d)
	}
}

func TestLongLinePreTLS(t *testing.T) {
	addr, _ := startProxy(t, Listener{Protocol: "smtp", Backend: echoBackend(t), TLS: serverTLS, MaxLineLength: 100}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	c.Write([]byte("EHLO " + strings.Repeat("x", 500) + "\r\n"))
	line, _ := r.ReadString('\n')
	if !strings.HasPrefix(line, "500") && !strings.HasPrefix(line, "421") {
		t.Fatalf("a 505-byte line got %q, want a 500 or 421 error", line)
	}
}

// TestClientSideTCPImplicit: a plaintext client, TLS to the upstream,
// verified; an upstream with a certificate for another name is refused.
func TestClientSideTCPImplicit(t *testing.T) {
	up := listen(t)
	addr := up.Addr().String()
	tl := tls.NewListener(up, serverTLS)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() { echo(c); c.Close() }()
		}
	}()
	good, _ := startProxy(t, Listener{Protocol: "tcp", Mode: starttls.ModeImplicit, Upstream: addr, ServerName: "localhost", ClientTLS: clientTLS}, nil)
	c, err := net.Dial("tcp", good)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello"))
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "hello" {
		t.Fatalf("echo through TLS upstream: %q, %v", b, err)
	}
	c.Close()

	bad, _ := startProxy(t, Listener{Protocol: "tcp", Mode: starttls.ModeImplicit, Upstream: addr, ServerName: "wrong.example", ClientTLS: clientTLS}, nil)
	c, err = net.Dial("tcp", bad)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello"))
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Fatalf("relayed %q to an upstream that failed verification", got)
	}
}

func TestSlowLorisReason(t *testing.T) {
	m := NewMetrics()
	addr, s := startProxy(t, Listener{Protocol: "imap", Backend: echoBackend(t), TLS: serverTLS, HandshakeTimeout: 200 * time.Millisecond}, m)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(c)
	waitFor(t, func() bool {
		return m.Get(`starttls_proxy_handshake_failures_total{`+s.labels+`,reason="timeout"}`) == 1
	})
}

func TestHostnameChecked(t *testing.T) {
	l := Listener{Listen: "127.0.0.1:1", Protocol: "smtp", Backend: "127.0.0.1:2", TLS: serverTLS, Hostname: "mx\r\n250 injected"}
	if err := l.Check(); err == nil || !strings.Contains(err.Error(), "not a host name") {
		t.Fatalf("Check = %v", err)
	}
}

func TestMetricsExposition(t *testing.T) {
	m := NewMetrics()
	addr, s := startProxy(t, tcpTLS(echoBackend(t)), m)
	c, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	io.ReadFull(c, make([]byte, 5))
	c.Close()
	waitFor(t, func() bool { return m.Get(`starttls_proxy_connections_closed_total{`+s.labels+`}`) == 1 })
	var b strings.Builder
	m.WriteTo(&b)
	out := b.String()
	for _, want := range []string{
		"# TYPE starttls_proxy_handshake_duration_seconds histogram\n",
		`starttls_proxy_handshake_duration_seconds_bucket{` + s.labels + `,le="+Inf"} 1` + "\n",
		`starttls_proxy_handshake_duration_seconds_count{` + s.labels + `} 1` + "\n",
		`starttls_proxy_bytes_total{` + s.labels + `,direction="up"} 5` + "\n",
		`starttls_proxy_bytes_total{` + s.labels + `,direction="down"} 5` + "\n",
		`starttls_proxy_connections_open{` + s.labels + `} 0` + "\n",
		"# TYPE starttls_proxy_upgrades_total counter\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}
}
