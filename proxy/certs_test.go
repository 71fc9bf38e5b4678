package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/certs"
)

// writePair issues a certificate for names and writes it to dir/base.{crt,key}.
func writePair(t *testing.T, ca *certs.CA, dir, base string, names ...string) KeyPair {
	t.Helper()
	crt, err := ca.Issue(certs.Leaf{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, der := range crt.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(crt.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	p := KeyPair{CertFile: filepath.Join(dir, base+".crt"), KeyFile: filepath.Join(dir, base+".key")}
	// Written as certificate tools do: a new file renamed over the old.
	for f, b := range map[string][]byte{p.CertFile: chain, p.KeyFile: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})} {
		if err := os.WriteFile(f+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f+".tmp", f); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// peerNames dials addr with SNI name and returns the certificate's names.
func peerNames(t *testing.T, addr, name string, roots *x509.CertPool) []string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		t.Fatalf("dial with SNI %q: %v", name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].DNSNames
}

func TestSNISelection(t *testing.T) {
	ca, err := certs.NewCA("sni test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := LoadCertificates(
		writePair(t, ca, dir, "default", "mail.example.org"),
		writePair(t, ca, dir, "imap", "imap.example.org"),
		writePair(t, ca, dir, "wild", "*.example.net"),
	)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tcpTLS(echoBackend(t))
	cfg.TLS = store.Config()
	addr, _ := startProxy(t, cfg, nil)
	for sni, want := range map[string]string{
		"mail.example.org": "mail.example.org",
		"IMAP.example.org": "imap.example.org",
		"a.example.net":    "*.example.net",
	} {
		if got := peerNames(t, addr, sni, ca.Pool()); got[0] != want {
			t.Errorf("SNI %q: got %v, want %s", sni, got, want)
		}
	}
	// No match (or a name the wildcard does not cover): the default, which
	// then fails verification for that name.
	for _, sni := range []string{"other.example.com", "a.b.example.net"} {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, RootCAs: ca.Pool()})
		if err == nil {
			c.Close()
			t.Errorf("SNI %q: verified, want the default certificate", sni)
		}
	}
}

func TestReloadKeepsConnections(t *testing.T) {
	ca, err := certs.NewCA("reload test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pair := writePair(t, ca, dir, "srv", "old.example.org", "new.example.org")
	store, err := LoadCertificates(pair)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tcpTLS(echoBackend(t))
	cfg.TLS = store.Config()
	addr, _ := startProxy(t, cfg, nil)

	old, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "old.example.org", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	serial := old.ConnectionState().PeerCertificates[0].SerialNumber

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloaded := make(chan error, 1)
	go store.Watch(ctx, 20*time.Millisecond, func(err error) { reloaded <- err })
	time.Sleep(50 * time.Millisecond) // file times have a granularity
	writePair(t, ca, dir, "srv", "new.example.org")
	// The watcher may look between the two renames: that reload fails
	// (key and certificate do not match yet), keeps the old pair, and the
	// next change of the files is tried again.
	for ok := false; !ok; {
		select {
		case err := <-reloaded:
			ok = err == nil
		case <-time.After(10 * time.Second):
			t.Fatal("file change not noticed")
		}
	}
	if got := peerNames(t, addr, "new.example.org", ca.Pool()); len(got) != 1 {
		t.Errorf("after the reload: %v, want only new.example.org", got)
	}
	// The connection made before the reload still works.
	old.Write([]byte("ping"))
	b := make([]byte, 4)
	old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(old, b); err != nil || string(b) != "ping" {
		t.Fatalf("old connection after reload: %q, %v", b, err)
	}
	if s := old.ConnectionState().PeerCertificates[0].SerialNumber; s.Cmp(serial) != 0 {
		t.Error("old connection changed certificate")
	}

	// A broken file keeps the old set, and says so.
	os.WriteFile(pair.KeyFile, []byte("garbage"), 0o600)
	if err := store.Reload(); err == nil {
		t.Error("Reload of a broken key succeeded")
	}
	if got := peerNames(t, addr, "new.example.org", ca.Pool()); len(got) != 1 {
		t.Errorf("after a failed reload: %v", got)
	}
}
