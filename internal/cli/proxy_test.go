package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/certs"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proxyCerts writes a CA-signed certificate for localhost and returns the
// paths and the CA pool.
func proxyCerts(t *testing.T) (string, string, *x509.CertPool) {
	ca, err := certs.NewCA("cli proxy test")
	if err != nil {
		t.Fatal(err)
	}
	crt, err := ca.Issue(certs.Leaf{Names: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(crt.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: crt.Certificate[0]}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	return cf, kf, ca.Pool()
}

func TestProxyBadInput(t *testing.T) {
	cf, kf, _ := proxyCerts(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[[listener]]\nlisten = \"127.0.0.1:1\"\nprotocol = \"mysql\"\nbackend = \"127.0.0.1:2\"\ncert = \""+cf+"\"\nkey = \""+kf+"\"\n"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"proxy"}, "--listen and --protocol are required"},
		{[]string{"proxy", "--listen", "127.0.0.1:1", "--protocol", "tcp", "--backend", "127.0.0.1:2"}, "needs a certificate and key"},
		{[]string{"proxy", "--listen", "127.0.0.1:1", "--protocol", "tcp", "--backend", "127.0.0.1:2", "--cert", cf, "--key", kf}, "has no STARTTLS dialog: set implicit"},
		{[]string{"proxy", "--listen", "127.0.0.1:1", "--protocol", "smtp", "--upstream", "x:25", "--mode", "opportunistic"}, "never plaintext or opportunistic"},
		{[]string{"proxy", "--listen", "127.0.0.1:1", "--protocol", "imap", "--upstream-domain", "example.org", "--mode", "dane"}, "needs protocol smtp"},
		{[]string{"proxy", "--listen", "127.0.0.1:1", "--protocol", "smtp", "--upstream-domain", "example.org", "--mode", "required"}, "want dane, mta-sts or policy"},
		{[]string{"proxy", "--listen", "127.0.0.1:1", "--protocol", "smtp", "--upstream-domain", "example.org", "--mode", "dane", "--resolver", "nowhere"}, "want HOST:PORT"},
		{[]string{"proxy", "--listen", "127.0.0.1:1", "--protocol", "smtp", "--upstream", "x:25", "--smtp-port", "2525"}, "apply to upstream_domain only"},
		{[]string{"proxy", "--config", bad, "--check"}, bad + ":1: listener \"127.0.0.1:1\": proxy: not supported"},
		{[]string{"proxy", "--config", bad, "--listen", "127.0.0.1:1"}, "do not mix"},
		{[]string{"proxy", "--listen", "127.0.0.1:1", "--protocol", "tcp", "--implicit", "--backend", "127.0.0.1:2", "--cert", cf, "--key", kf, "--log-level", "loud"}, `log level "loud"`},
	}
	for _, tt := range tests {
		code, _, stderr := run(tt.args...)
		if code != exitCantRun || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v = %d, %q; want 3 and %q", tt.args, code, stderr, tt.want)
		}
	}
}

// TestProxyCommand runs the command from a config file: a TLS-terminating
// listener and the metrics endpoint, then a clean shutdown.
func TestProxyCommand(t *testing.T) {
	cf, kf, pool := proxyCerts(t)
	bl, _ := net.Listen("tcp", "127.0.0.1:0")
	defer bl.Close()
	go func() {
		for {
			c, err := bl.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	listen, metrics := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "proxy.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, `log_format = "json"
metrics = %q
shutdown_timeout = "2s"

[[listener]]
name = "tls"
listen = %q
protocol = "tcp"
implicit = true
backend = %q
cert = %q
key = %q
`, metrics, listen, bl.Addr().String(), cf, kf), 0o644)
	if code, out, stderr := run("proxy", "--config", cfg, "--check"); code != 0 || !strings.Contains(out, "OK (1 listeners)") {
		t.Fatalf("--check = %d, %q, %q", code, out, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- RunContext(ctx, []string{"proxy", "--config", cfg}, strings.NewReader(""), io.Discard, &stderr)
	}()
	var c *tls.Conn
	var err error
	for range 100 {
		if c, err = tls.Dial("tcp", listen, &tls.Config{RootCAs: pool, ServerName: "localhost"}); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		cancel()
		t.Fatalf("proxy not up: %v\n%s", err, stderr.String())
	}
	c.Write([]byte("ping"))
	b := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		t.Fatalf("relay: %q, %v", b, err)
	}
	c.Close()
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `starttls_proxy_upgrades_total{listener="tls",protocol="tcp"} 1`) {
		t.Errorf("metrics:\n%s", body)
	}
	// SIGHUP reloads the certificates ("listening" is logged after the
	// handler is installed, so the signal cannot kill the test binary).
	if !strings.Contains(stderr.String(), `"msg":"proxy: listening"`) {
		t.Fatalf("no listening line:\n%s", stderr.String())
	}
	// os.Process.Signal rather than syscall.Kill, so that the test builds
	// everywhere; where there is no SIGHUP (Windows) it fails and the
	// reload is not checked.
	if p, err := os.FindProcess(os.Getpid()); err == nil && p.Signal(syscall.SIGHUP) == nil {
		for i := 0; i < 100 && !strings.Contains(stderr.String(), `"why":"SIGHUP"`); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(stderr.String(), `"msg":"proxy: certificates reloaded","why":"SIGHUP"`) {
			t.Errorf("no reload on SIGHUP:\n%s", stderr.String())
		}
	} else {
		t.Logf("no SIGHUP on %s", runtime.GOOS)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown")
	}
	if !strings.Contains(stderr.String(), `"msg":"proxy: stopped"`) {
		t.Errorf("log:\n%s", stderr.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
