package imap

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crypto/tls"
	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
)

// interopServer starts a server with a CA written to a PEM file, for
// external clients.
func interopServer(t *testing.T) (addr, caFile string) {
	t.Helper()
	ca, err := certs.NewCA("imap interop CA")
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
	srv := &Server{ServerOptions: starttls.ServerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf}}, Hostname: "imap.test"}, Backend: &memBackend{}}
	return startServer(t, srv), caFile
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

const imaplibScript = `
import imaplib, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4(host, port)
assert 'LOGINDISABLED' in m.capabilities, m.capabilities
try:
    m.login('alice', 'secret pw')
    raise SystemExit('login before TLS accepted')
except imaplib.IMAP4.error as e:
    assert 'PRIVACYREQUIRED' in str(e), e
m.starttls(ssl_context=ctx)
assert 'STARTTLS' not in m.capabilities and 'AUTH=PLAIN' in m.capabilities, m.capabilities
m.login('alice', 'secret pw')
typ, boxes = m.list()
assert typ == 'OK', (typ, boxes)
print('LIST', [b.decode() for b in boxes])
typ, data = m.select('INBOX')
assert typ == 'OK' and data == [b'2'], (typ, data)
typ, data = m.search(None, 'ALL')
assert data == [b'1 2'], data
typ, data = m.fetch('1', '(RFC822)')
assert typ == 'OK' and data[0][1].startswith(b'From: alice@example.org'), data
typ, data = m.uid('FETCH', '1:*', '(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
assert typ == 'OK' and b'Subject: second' in data[2][1], data
print('FETCH', data)
typ, data = m.status('INBOX', '(MESSAGES UIDNEXT)')
print('STATUS', data)
m.close()
m.logout()
print('done')
`

// TestPythonImaplib drives Python's imaplib against the server: STARTTLS,
// login, list, select, search, fetch.
func TestPythonImaplib(t *testing.T) {
	addr, ca := interopServer(t)
	host, port, _ := net.SplitHostPort(addr)
	out := run(t, "python3", "-c", imaplibScript, host, port, ca)
	if !strings.Contains(out, "done") || !strings.Contains(out, `'() "/" INBOX'`) {
		t.Errorf("imaplib output:\n%s", out)
	}
}

// TestCurl lists mailboxes and fetches a message with curl --ssl-reqd.
func TestCurl(t *testing.T) {
	addr, ca := interopServer(t)
	out := run(t, "curl", "-sS", "--ssl-reqd", "--cacert", ca, "-u", "alice:secret pw", "imap://"+addr+"/")
	if !strings.Contains(out, `* LIST () "/" INBOX`) || !strings.Contains(out, `"Sent Items"`) {
		t.Errorf("curl list output:\n%s", out)
	}
	out = run(t, "curl", "-sS", "--ssl-reqd", "--cacert", ca, "-u", "alice:secret pw", "imap://"+addr+"/INBOX;UID=1")
	if out != testMessage1 {
		t.Errorf("curl fetch = %q, want %q", out, testMessage1)
	}
}

// TestOpenSSLStartTLS: openssl s_client -starttls imap gets through the
// upgrade and can talk IMAP inside TLS.
func TestOpenSSLStartTLS(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not on PATH")
	}
	addr, ca := interopServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", "s_client", "-quiet", "-starttls", "imap", "-connect", addr, "-CAfile", ca, "-verify_return_error")
	cmd.Stdin = strings.NewReader("x1 CAPABILITY\r\nx2 LOGOUT\r\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "* CAPABILITY IMAP4rev1 AUTH=PLAIN") || !strings.Contains(string(out), "x2 OK LOGOUT completed") {
		t.Errorf("openssl output:\n%s", out)
	}
}
