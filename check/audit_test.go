package check_test

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/check"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/smtp"
)

// auditServer runs an SMTP server with STARTTLS and the given TLS settings
// on loopback and returns its target.
func auditServer(t *testing.T, cfg func(*tls.Config)) (*starttls.Target, *certs.CA) {
	t.Helper()
	ca, err := certs.NewCA("audit test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(certs.Leaf{Names: []string{"127.0.0.1", "localhost"}, RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}}
	cfg(tc)
	s := &smtp.Server{ServerOptions: starttls.ServerOptions{TLSConfig: tc, Hostname: "audit.test"}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	tg, err := starttls.ParseTarget("smtp://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return tg, ca
}

func hasFinding(r *check.Report, id string) bool {
	return slices.ContainsFunc(r.Findings, func(f check.Finding) bool { return f.ID == id })
}

// TestAuditLegacyServer: a server that still accepts TLS 1.0 and 1.1, RSA
// key exchange, CBC with SHA-1 and 3DES is reported exactly so, through the
// SMTP upgrade on every probe.
func TestAuditLegacyServer(t *testing.T) {
	tg, ca := auditServer(t, func(c *tls.Config) {
		c.MinVersion = tls.VersionTLS10
		c.MaxVersion = tls.VersionTLS12
		c.CipherSuites = []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_RSA_WITH_AES_128_CBC_SHA,
			tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
		}
	})
	r := check.Run(context.Background(), tg, &check.Options{Roots: ca.Pool(), Timeout: 10 * time.Second, SkipInjection: true})
	if r.TLS == nil || r.TLS.Scan == nil {
		t.Fatalf("no scan: %+v", r)
	}
	want := map[string]bool{"SSLv2": false, "SSLv3": false, "TLS1.0": true, "TLS1.1": true, "TLS1.2": true, "TLS1.3": false}
	for v, w := range want {
		if b := r.TLS.Versions[v]; b == nil || *b != w {
			t.Errorf("versions[%s] = %v, want %v", v, b, w)
		}
	}
	var names []string
	for _, c := range r.TLS.Ciphers {
		if c.Version == "TLS1.2" {
			names = append(names, c.Name)
		}
	}
	for _, n := range []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"} {
		if !slices.Contains(names, n) {
			t.Errorf("TLS 1.2 suites %v lack %s", names, n)
		}
	}
	for _, id := range []string{"tls-version-obsolete", "cipher-obsolete", "no-tls13", "cipher-no-forward-secrecy"} {
		if !hasFinding(r, id) {
			t.Errorf("no %s in %+v", id, r.Findings)
		}
	}
	if r.Verdict != check.Fails {
		t.Errorf("verdict %s", r.Verdict)
	}
}

// TestAuditModernServer: TLS 1.2 with ECDHE AEAD and TLS 1.3 pass with no
// finding above info; --quick knows only the negotiated version.
func TestAuditModernServer(t *testing.T) {
	tg, ca := auditServer(t, func(c *tls.Config) {
		c.MinVersion = tls.VersionTLS12
		c.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	})
	r := check.Run(context.Background(), tg, &check.Options{Roots: ca.Pool(), Timeout: 10 * time.Second, SkipInjection: true})
	if r.Verdict != check.Pass {
		t.Fatalf("verdict %s: %+v", r.Verdict, r.Findings)
	}
	if b := r.TLS.Versions["TLS1.3"]; b == nil || !*b {
		t.Errorf("TLS 1.3 not seen: %v", b)
	}
	if b := r.TLS.Versions["TLS1.1"]; b == nil || *b {
		t.Errorf("TLS 1.1 seen: %v", b)
	}
	q := check.Run(context.Background(), tg, &check.Options{Roots: ca.Pool(), Timeout: 10 * time.Second, SkipInjection: true, Quick: true})
	if q.TLS.Scan != nil || q.TLS.Versions["TLS1.3"] == nil || q.TLS.Versions["TLS1.2"] != nil {
		t.Errorf("quick: scan %+v versions %v", q.TLS.Scan, q.TLS.Versions)
	}
}
