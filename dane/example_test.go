package dane_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/starttls/starttls/dane"
	"github.com/starttls/starttls/resolver"
)

// Check a server's certificate against the "3 1 1" record its zone
// publishes: a DANE-EE record ignores names and dates.
func ExampleVerify() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not-the-mx.example"},
		NotBefore: time.Now().AddDate(-2, 0, 0), NotAfter: time.Now().AddDate(-1, 0, 0)} // expired
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)

	published := dane.Record(cert, dane.UsageDANEEE, dane.SelectorSPKI, dane.MatchSHA256)
	err := dane.Verify([]*x509.Certificate{cert}, []resolver.TLSA{published}, []string{"mx.example.org"}, time.Now())
	fmt.Println("3 1 1:", err)

	pkixEE := dane.Record(cert, dane.UsagePKIXEE, dane.SelectorSPKI, dane.MatchSHA256)
	err = dane.Verify([]*x509.Certificate{cert}, []resolver.TLSA{pkixEE}, []string{"mx.example.org"}, time.Now())
	fmt.Println("1 1 1:", errors.Is(err, dane.ErrNoUsable))
	// Output:
	// 3 1 1: <nil>
	// 1 1 1: true
}

// Connect to an MX host with its DNSSEC-validated TLSA records as the only
// trust: a certificate they do not match fails the handshake.
func ExampleConfig() {
	r := &resolver.Resolver{Addr: "127.0.0.1:53"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mx := "mx.example.org"
	// RFC 7672 §2.2.2: when the MX host is a DNSSEC-secure CNAME, the TLSA
	// base domain is the name it expands to, and both names are accepted.
	names := []string{mx}
	base := mx
	if ips, err := r.IPs(ctx, mx); err == nil && ips.Security == resolver.Secure && ips.Canonical != "" {
		base = ips.Canonical
		names = append(names, base)
	}
	tlsa, err := r.TLSA(ctx, "_25._tcp."+base)
	if err != nil || tlsa.Security != resolver.Secure || len(tlsa.Records) == 0 {
		fmt.Println("no DANE for", mx)
		return
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(mx, "465"), 10*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	tc := tls.Client(conn, dane.Config(nil, tlsa.Records, names))
	defer tc.Close()
	if err := tc.HandshakeContext(ctx); err != nil {
		fmt.Println("DANE authentication failed:", err)
	}
}
