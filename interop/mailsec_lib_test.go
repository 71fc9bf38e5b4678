//go:build interop

package interop

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dane"
	"github.com/starttls/starttls/resolver"
	"github.com/starttls/starttls/smtp"
	"github.com/starttls/starttls/tlsrpt"
)

// TestMailsecLibrary drives the library packages under `starttls check
// DOMAIN` directly against the mailsec module: package resolver against the
// validating unbound (AD bit, SERVFAIL then CD=1 for bogus data,
// authenticated denial), package dane against the real Postfix over implicit
// TLS and STARTTLS with the TLSA records unbound returns.
func TestMailsecLibrary(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mailsec")
	r := &resolver.Resolver{Addr: needEnv(t, "INTEROP_MAILSEC_RESOLVER"), Timeout: 3 * time.Second}
	raw, err := os.ReadFile(needEnv(t, "INTEROP_MAILSEC_TLSA"))
	if err != nil {
		t.Fatal(err)
	}
	serverSPKI, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("INTEROP_MAILSEC_TLSA: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	t.Run("resolver→unbound secure MX", func(t *testing.T) {
		a, err := r.MX(ctx, "dane-ok.sec.test")
		if err != nil || a.Security != resolver.Secure || len(a.Records) != 1 || a.Records[0] != (resolver.MX{Host: "mx.dane-ok.sec.test", Preference: 10}) {
			t.Errorf("MX(dane-ok.sec.test) = %+v, %v; want mx.dane-ok.sec.test 10, secure", a, err)
		}
	})
	t.Run("resolver→unbound secure TLSA", func(t *testing.T) {
		a, err := r.TLSA(ctx, "_25._tcp.mx.dane-ok.sec.test")
		if err != nil || a.Security != resolver.Secure || len(a.Records) != 1 {
			t.Fatalf("TLSA = %+v, %v; want one secure record", a, err)
		}
		if got := a.Records[0]; got.Usage != 3 || got.Selector != 1 || got.MatchingType != 1 || string(got.Data) != string(serverSPKI) {
			t.Errorf("TLSA = %v, want 3 1 1 %x", got, serverSPKI)
		}
	})
	t.Run("resolver→unbound secure addresses", func(t *testing.T) {
		a, err := r.IPs(ctx, "mx.dane-ok.sec.test")
		if err != nil || a.Security != resolver.Secure || len(a.Records) != 1 || a.Records[0] != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("IPs = %+v, %v; want 127.0.0.1, secure", a, err)
		}
	})
	t.Run("resolver→unbound authenticated NXDOMAIN", func(t *testing.T) {
		a, err := r.TLSA(ctx, "_25._tcp.nothere.dane-ok.sec.test")
		if err != nil || !a.NXDomain || a.Security != resolver.Secure || len(a.Records) != 0 {
			t.Errorf("TLSA(nothere) = %+v, %v; want NXDomain, secure", a, err)
		}
	})
	t.Run("resolver→unbound authenticated NODATA", func(t *testing.T) {
		a, err := r.TLSA(ctx, "mx.dane-ok.sec.test")
		if err != nil || a.NXDomain || a.Security != resolver.Secure || len(a.Records) != 0 {
			t.Errorf("TLSA(mx.dane-ok.sec.test) = %+v, %v; want NODATA, secure", a, err)
		}
	})
	t.Run("resolver→unbound TLS-RPT TXT", func(t *testing.T) {
		a, err := r.TXT(ctx, tlsrpt.RecordName("dane-ok.sec.test"))
		if err != nil || a.Security != resolver.Secure {
			t.Fatalf("TXT = %+v, %v", a, err)
		}
		rec, err := tlsrpt.Select(a.Records)
		if err != nil || len(rec.RUA) != 1 || rec.RUA[0] != "mailto:tlsrpt@dane-ok.sec.test" {
			t.Errorf("tlsrpt.Select(%q) = %+v, %v", a.Records, rec, err)
		}
	})
	t.Run("resolver→unbound bogus DS", func(t *testing.T) {
		a, err := r.MX(ctx, "bogus.sec.test")
		if !errors.Is(err, resolver.ErrBogus) || a.Security != resolver.Bogus || len(a.Records) != 1 {
			t.Errorf("MX(bogus.sec.test) = %+v, %v; want the CD=1 record, bogus, ErrBogus", a, err)
		}
	})
	t.Run("resolver→unbound bogus TLSA signature", func(t *testing.T) {
		a, err := r.TLSA(ctx, "_25._tcp.mx.bogus-tlsa.sec.test")
		if !errors.Is(err, resolver.ErrBogus) || a.Security != resolver.Bogus {
			t.Errorf("TLSA(bogus-tlsa) = %+v, %v; want bogus, ErrBogus", a, err)
		}
		mx, err := r.MX(ctx, "bogus-tlsa.sec.test")
		if err != nil || mx.Security != resolver.Secure {
			t.Errorf("MX(bogus-tlsa.sec.test) = %+v, %v; want secure (only the TLSA signatures are broken)", mx, err)
		}
	})
	t.Run("resolver→unbound insecure delegation", func(t *testing.T) {
		a, err := r.TLSA(ctx, "_25._tcp.mx.insecure.sec.test")
		if err != nil || a.Security != resolver.Insecure || len(a.Records) != 1 {
			t.Errorf("TLSA(insecure) = %+v, %v; want one record, insecure", a, err)
		}
	})

	tlsaOf := func(t *testing.T, domain string) []resolver.TLSA {
		a, err := r.TLSA(ctx, "_25._tcp.mx."+domain)
		if err != nil || a.Security != resolver.Secure {
			t.Fatalf("TLSA(%s) = %+v, %v; want secure", domain, a, err)
		}
		return a.Records
	}
	dialTLS := func(cfg *tls.Config) (*tls.Conn, error) {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
		c, err := d.DialContext(ctx, "tcp", e.PostfixSMTPS)
		if err != nil {
			return nil, err
		}
		return c.(*tls.Conn), nil
	}
	t.Run("dane→Postfix implicit TLS, DANE-EE match", func(t *testing.T) {
		c, err := dialTLS(dane.Config(nil, tlsaOf(t, "dane-ok.sec.test"), []string{"mx.dane-ok.sec.test"}))
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		c.Close()
	})
	t.Run("dane→Postfix implicit TLS, DANE-EE mismatch", func(t *testing.T) {
		c, err := dialTLS(dane.Config(nil, tlsaOf(t, "dane-bad.sec.test"), []string{"mx.dane-bad.sec.test"}))
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, dane.ErrMismatch) {
			t.Errorf("handshake error = %v, want dane.ErrMismatch", err)
		}
	})
	t.Run("dane→Postfix STARTTLS, DANE-EE match", func(t *testing.T) {
		opts := &starttls.ClientOptions{Mode: starttls.ModeRequired,
			TLSConfig: dane.Config(nil, tlsaOf(t, "dane-ok.sec.test"), []string{"mx.dane-ok.sec.test"})}
		c, res, err := smtp.Dial(ctx, e.PostfixSMTP, opts)
		if err != nil {
			t.Fatalf("smtp.Dial: %v", err)
		}
		defer c.Close()
		if res == nil || res.TLS == nil {
			t.Errorf("Result = %+v, want a TLS connection state", res)
		}
	})
	t.Run("dane→Postfix implicit TLS, DANE-TA of the suite CA", func(t *testing.T) {
		pemBytes, err := os.ReadFile(e.CA)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(pemBytes)
		if block == nil {
			t.Fatal("no PEM in INTEROP_CA")
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		// What Postfix presents decides the answer: RFC 7672 §3.1.2 needs
		// the trust anchor in the chain.
		probe, err := dialTLS(&tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		chain := probe.ConnectionState().PeerCertificates
		probe.Close()
		presentsCA := false
		for _, c := range chain[1:] {
			presentsCA = presentsCA || c.Equal(ca)
		}
		c, err := dialTLS(dane.Config(nil, []resolver.TLSA{dane.Record(ca, 2, 1, 1)}, []string{"mx.interop.test"}))
		if err == nil {
			c.Close()
		}
		switch {
		case presentsCA && err != nil:
			t.Errorf("Postfix presents the CA; DANE-TA handshake: %v", err)
		case !presentsCA && !errors.Is(err, dane.ErrMismatch):
			t.Errorf("Postfix presents no CA (%d certificates); DANE-TA handshake error = %v, want ErrMismatch", len(chain), err)
		}
		t.Logf("Postfix chain: %d certificates, CA included: %v", len(chain), presentsCA)
	})
}
