package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/certs"
)

var serverTLS, clientTLS = mustPair()

func mustPair() (*tls.Config, *tls.Config) {
	s, c, err := certs.TestPair()
	if err != nil {
		panic(err)
	}
	return s, c
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// echoBackend echoes every connection, half-closing after EOF.
func echoBackend(t testing.TB) string {
	l := listen(t)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				echo(c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return l.Addr().String()
}

// echo copies c to itself with a plain buffer: io.Copy would splice
// through a pipe, two more descriptors per idle connection.
func echo(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// startProxy runs a Server for cfg on a free port and returns its address.
func startProxy(t testing.TB, cfg Listener, m *Metrics) (string, *Server) {
	t.Helper()
	l := listen(t)
	cfg.Listen = l.Addr().String()
	s, err := New(cfg, testLogger(), m)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String(), s
}

func tcpTLS(backend string) Listener {
	return Listener{Protocol: "tcp", Implicit: true, Backend: backend, TLS: serverTLS}
}

func TestRelayLargePayloadsManyConnections(t *testing.T) {
	addr, _ := startProxy(t, tcpTLS(echoBackend(t)), nil)
	conns, size := 16, 2<<20
	if raceEnabled {
		conns, size = 8, 1<<20
	}
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tls.Dial("tcp", addr, clientTLS)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			payload := make([]byte, size+i*977)
			rand.Read(payload)
			go func() {
				// Odd-sized writes, so that records and reads do not line up.
				for p := payload; len(p) > 0; {
					n := min(len(p), 1+len(p)%70001)
					if _, err := c.Write(p[:n]); err != nil {
						t.Error(err)
						return
					}
					p = p[n:]
				}
				c.CloseWrite()
			}()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil {
				t.Error(err)
				return
			}
			if sha256.Sum256(got) != sha256.Sum256(payload) {
				t.Errorf("conn %d: got %d bytes back, want %d identical", i, len(got), len(payload))
			}
		}()
	}
	wg.Wait()
}

// TestHalfCloseBothWays: the backend speaks after the client's EOF, and
// the client sees the backend's EOF after that.
func TestHalfCloseBothWays(t *testing.T) {
	l := listen(t)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		in, _ := io.ReadAll(c)
		c.Write(append([]byte("got:"), in...))
	}()
	addr, _ := startProxy(t, tcpTLS(l.Addr().String()), nil)
	c, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got:hello" {
		t.Fatalf("ReadAll = %q, %v; want \"got:hello\"", got, err)
	}
}

func TestBackendAbruptClose(t *testing.T) {
	l := listen(t)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 5)
		io.ReadFull(c, buf)
		c.(*net.TCPConn).SetLinger(0) // RST
		c.Close()
	}()
	addr, _ := startProxy(t, tcpTLS(l.Addr().String()), nil)
	c, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil && isTimeout(err) {
		t.Fatal("the client was not closed after the backend reset")
	}
}

func TestClientAbruptClose(t *testing.T) {
	closed := make(chan struct{})
	l := listen(t)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)
		close(closed)
	}()
	addr, _ := startProxy(t, tcpTLS(l.Addr().String()), nil)
	c, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(bytes.Repeat([]byte("x"), 100000))
	c.NetConn().(*net.TCPConn).SetLinger(0)
	c.NetConn().Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend connection stayed open after the client vanished")
	}
}

func TestIdleTimeout(t *testing.T) {
	cfg := tcpTLS(echoBackend(t))
	cfg.IdleTimeout = 300 * time.Millisecond
	addr, _ := startProxy(t, cfg, nil)
	c, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err = c.Read(make([]byte, 1))
	if isTimeout(err) {
		t.Fatal("idle connection not closed")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
}

func TestSlowLorisHandshakeTimeout(t *testing.T) {
	m := NewMetrics()
	cfg := tcpTLS(echoBackend(t))
	cfg.HandshakeTimeout = 300 * time.Millisecond
	addr, s := startProxy(t, cfg, m)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0x16, 0x03}) // the start of a ClientHello, then nothing
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c)
	if isTimeout(err) {
		t.Fatal("slow client not dropped at the handshake timeout")
	}
	waitFor(t, func() bool {
		return m.Get(`starttls_proxy_handshake_failures_total{`+s.labels+`,reason="timeout"}`) == 1
	})
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("condition not met within 5s")
}

func TestBackendDown(t *testing.T) {
	dead := listen(t)
	addr := dead.Addr().String()
	dead.Close()
	p, _ := startProxy(t, tcpTLS(addr), nil)
	c, err := tls.Dial("tcp", p, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); isTimeout(err) {
		t.Fatal("client kept open with the backend down")
	}
}

func TestShutdownDrains(t *testing.T) {
	addr, s := startProxy(t, tcpTLS(echoBackend(t)), nil)
	c, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	c.Read(make([]byte, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	time.Sleep(50 * time.Millisecond)
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
	// The open connection still works until the deadline…
	c.Write([]byte("y"))
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil || b[0] != 'y' {
		t.Fatalf("relay during the drain: %q, %v", b, err)
	}
	// …and is closed at it.
	if err := <-done; err == nil {
		t.Error("Shutdown = nil with a connection left at the deadline")
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("PROXY_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
