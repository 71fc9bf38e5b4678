package check

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/certs"
)

func TestVerify(t *testing.T) {
	ca, err := certs.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	issue := func(l certs.Leaf) *x509.Certificate {
		c, err := ca.Issue(l)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	self, err := certs.SelfSigned(certs.Leaf{Names: []string{"mx.example"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                        string
		leaf                        *x509.Certificate
		serverName                  string
		trusted, match, expired, ss bool
	}{
		{"good", issue(certs.Leaf{Names: []string{"mx.example"}}), "mx.example", true, true, false, false},
		{"good IP", issue(certs.Leaf{Names: []string{"127.0.0.1"}}), "127.0.0.1", true, true, false, false},
		{"trailing dot", issue(certs.Leaf{Names: []string{"mx.example"}}), "mx.example.", true, true, false, false},
		{"wrong name", issue(certs.Leaf{Names: []string{"other.example"}}), "mx.example", true, false, false, false},
		{"expired but trusted", issue(certs.Leaf{Names: []string{"mx.example"}, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(0, 0, -1)}), "mx.example", true, true, true, false},
		{"self-signed", self.Leaf, "mx.example", false, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tt.leaf}}
			c := verify(st, tt.serverName, ca.Pool(), now)
			if c.Trusted != tt.trusted || c.NameMatch != tt.match || c.Expired != tt.expired || c.SelfSigned != tt.ss {
				t.Errorf("verify = trusted %v match %v expired %v self-signed %v (%s), want %v %v %v %v",
					c.Trusted, c.NameMatch, c.Expired, c.SelfSigned, c.TrustError, tt.trusted, tt.match, tt.expired, tt.ss)
			}
			if c.KeyType != "ECDSA" || c.KeyBits != 256 {
				t.Errorf("key %s %d", c.KeyType, c.KeyBits)
			}
		})
	}
}

func TestForwardSecrecy(t *testing.T) {
	tests := []struct {
		version uint16
		suite   uint16
		want    bool
	}{
		{tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, true},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, true},
		{tls.VersionTLS12, tls.TLS_RSA_WITH_AES_128_GCM_SHA256, false},
		{tls.VersionTLS10, tls.TLS_RSA_WITH_AES_128_CBC_SHA, false},
	}
	for _, tt := range tests {
		if got := forwardSecret(&tls.ConnectionState{Version: tt.version, CipherSuite: tt.suite}); got != tt.want {
			t.Errorf("forwardSecret(%s, %s) = %v", tls.VersionName(tt.version), tls.CipherSuiteName(tt.suite), got)
		}
	}
}
