package pop3

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
)

// interopServer starts a Server whose certificate chains to a CA written
// to a PEM file, for third-party clients.
func interopServer(t *testing.T) (addr, caFile string) {
	t.Helper()
	ca, err := certs.NewCA("pop3 interop CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(certs.Leaf{Names: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := &Server{
		ServerOptions: starttls.ServerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf}}},
		Backend:       &memBackend{},
	}
	return startServer(t, srv), caFile
}

func runTool(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

const poplibScript = `
import poplib, ssl, sys
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
p = poplib.POP3(host, port, timeout=10)
print(p.stls(context=ctx).decode())
print("STLS" in p.capa())
print(p.user("alice").decode())
print(p.pass_("secret pw").decode())
print(p.stat())
resp, lines, octets = p.retr(1)
print(lines)
print(p.quit().decode())
`

// TestInteropPythonPoplib drives Python's poplib against the Server.
func TestInteropPythonPoplib(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not on PATH")
	}
	addr, caFile := interopServer(t)
	host, port, _ := strings.Cut(addr, ":")
	out := runTool(t, "", "python3", "-c", poplibScript, host, port, caFile)
	want := "+OK Begin TLS negotiation now\n" +
		"False\n" +
		"+OK send PASS\n" +
		"+OK maildrop has 2 messages (120 octets)\n" +
		"(2, 120)\n" +
		"[b'From: a@example.org', b'Subject: hi', b'', b'line one', b'.dot line', b'..two dots', b'last']\n" +
		"+OK localhost POP3 server signing off\n"
	if out != want {
		t.Errorf("poplib output:\n%s\nwant:\n%s", out, want)
	}
}

// TestInteropCurl fetches the listing and a message with curl --ssl-reqd.
func TestInteropCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not on PATH")
	}
	addr, caFile := interopServer(t)
	base := "pop3://" + addr + "/"
	args := []string{"-sS", "--ssl-reqd", "--cacert", caFile, "-u", "alice:secret pw", "--max-time", "10"}
	if out := runTool(t, "", "curl", append(args, base)...); out != "1 75\r\n2 45\r\n" {
		t.Errorf("curl LIST = %q", out)
	}
	if out := runTool(t, "", "curl", append(args, base+"1")...); out != testMessage {
		t.Errorf("curl RETR 1 = %q, want %q", out, testMessage)
	}
}

// TestInteropOpenSSL runs openssl s_client -starttls pop3.
func TestInteropOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not on PATH")
	}
	addr, caFile := interopServer(t)
	out := runTool(t, "CAPA\nQUIT\n", "openssl", "s_client", "-starttls", "pop3", "-connect", addr,
		"-CAfile", caFile, "-verify_return_error", "-crlf", "-ign_eof")
	for _, want := range []string{"Verify return code: 0 (ok)", "+OK Capability list follows", "USER", "SASL PLAIN", "+OK localhost POP3 server signing off"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl output lacks %q:\n%s", want, out)
		}
	}
}
