package dane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/resolver"
)

var now = time.Now()

// pki is a CA, an intermediate under it, and leaves, made once.
type pki struct {
	ca, other                *certs.CA
	inter                    *x509.Certificate
	interKey                 crypto.Signer
	leaf, expired, wrongName tls.Certificate // issued by ca
	viaInter                 *x509.Certificate
	forged                   tls.Certificate // same names, issued by other
	leafX, expiredX, wrongX  *x509.Certificate
	forgedX, caX, otherX     *x509.Certificate
}

var testPKI = func() *pki {
	p := &pki{}
	var err error
	must := func(e error) {
		if e != nil {
			panic(e)
		}
	}
	p.ca, err = certs.NewCA("DANE Test CA")
	must(err)
	p.other, err = certs.NewCA("Attacker CA")
	must(err)
	p.leaf, err = p.ca.Issue(certs.Leaf{Names: []string{"mx.example.org", "*.mail.example.org"}})
	must(err)
	p.expired, err = p.ca.Issue(certs.Leaf{Names: []string{"mx.example.org"}, NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(-1, 0, 0)})
	must(err)
	p.wrongName, err = p.ca.Issue(certs.Leaf{Names: []string{"other.example.net"}})
	must(err)
	p.forged, err = p.other.Issue(certs.Leaf{Names: []string{"mx.example.org"}})
	must(err)
	p.leafX, p.expiredX, p.wrongX, p.forgedX = p.leaf.Leaf, p.expired.Leaf, p.wrongName.Leaf, p.forged.Leaf
	p.caX, p.otherX = p.ca.Cert, p.other.Cert

	p.inter, p.interKey = mkCert(&x509.Certificate{
		Subject: pkix.Name{CommonName: "Intermediate"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, p.ca.Cert, p.ca.Key)
	p.viaInter, _ = mkCert(&x509.Certificate{
		Subject: pkix.Name{CommonName: "mx.example.org"}, DNSNames: []string{"mx.example.org"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, p.inter, p.interKey)
	return p
}()

func mkCert(tmpl, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl.SerialNumber = big.NewInt(now.UnixNano())
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.AddDate(0, 1, 0)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c, key
}

func TestVerify(t *testing.T) {
	p := testPKI
	ee := func(c *x509.Certificate, s, m uint8) resolver.TLSA { return Record(c, UsageDANEEE, s, m) }
	ta := func(c *x509.Certificate, s, m uint8) resolver.TLSA { return Record(c, UsageDANETA, s, m) }
	with := func(r resolver.TLSA, f func(*resolver.TLSA)) resolver.TLSA { f(&r); return r }
	mx := []string{"mx.example.org"}
	tests := []struct {
		name    string
		chain   []*x509.Certificate
		records []resolver.TLSA
		names   []string
		want    error // nil, ErrNoUsable or ErrMismatch
		reason  string
	}{
		{"EE 3 1 1", []*x509.Certificate{p.leafX, p.caX}, []resolver.TLSA{ee(p.leafX, 1, 1)}, mx, nil, ""},
		{"EE 3 0 1", []*x509.Certificate{p.leafX}, []resolver.TLSA{ee(p.leafX, 0, 1)}, mx, nil, ""},
		{"EE 3 1 2", []*x509.Certificate{p.leafX}, []resolver.TLSA{ee(p.leafX, 1, 2)}, mx, nil, ""},
		{"EE 3 0 0", []*x509.Certificate{p.leafX}, []resolver.TLSA{ee(p.leafX, 0, 0)}, mx, nil, ""},
		{"EE 3 1 0", []*x509.Certificate{p.leafX}, []resolver.TLSA{ee(p.leafX, 1, 0)}, mx, nil, ""},
		{"EE ignores expiry", []*x509.Certificate{p.expiredX}, []resolver.TLSA{ee(p.expiredX, 1, 1)}, mx, nil, ""},
		{"EE ignores names", []*x509.Certificate{p.wrongX}, []resolver.TLSA{ee(p.wrongX, 1, 1)}, mx, nil, ""},
		{"EE ignores names, none given", []*x509.Certificate{p.wrongX}, []resolver.TLSA{ee(p.wrongX, 1, 1)}, nil, nil, ""},
		{"EE of another cert", []*x509.Certificate{p.leafX, p.caX}, []resolver.TLSA{ee(p.wrongX, 1, 1)}, mx, ErrMismatch, "does not match the server's certificate"},
		{"EE matching the CA, not the leaf", []*x509.Certificate{p.leafX, p.caX}, []resolver.TLSA{ee(p.caX, 1, 1)}, mx, ErrMismatch, "does not match"},
		{"EE one of several matches", []*x509.Certificate{p.leafX}, []resolver.TLSA{ee(p.wrongX, 1, 1), {Usage: 1, Selector: 1, MatchingType: 1, Data: make([]byte, 32)}, ee(p.leafX, 1, 1)}, mx, nil, ""},

		{"TA 2 0 1 at the CA", []*x509.Certificate{p.leafX, p.caX}, []resolver.TLSA{ta(p.caX, 0, 1)}, mx, nil, ""},
		{"TA 2 1 1 at the CA", []*x509.Certificate{p.leafX, p.caX}, []resolver.TLSA{ta(p.caX, 1, 1)}, mx, nil, ""},
		{"TA 2 0 0 at the CA", []*x509.Certificate{p.leafX, p.caX}, []resolver.TLSA{ta(p.caX, 0, 0)}, mx, nil, ""},
		{"TA wildcard name", []*x509.Certificate{p.leafX, p.caX}, []resolver.TLSA{ta(p.caX, 1, 1)}, []string{"in.mail.example.org"}, nil, ""},
		{"TA second name (TLSA base after CNAME)", []*x509.Certificate{p.leafX, p.caX}, []resolver.TLSA{ta(p.caX, 1, 1)}, []string{"alias.example.net", "mx.example.org."}, nil, ""},
		{"TA at the intermediate", []*x509.Certificate{p.viaInter, p.inter, p.caX}, []resolver.TLSA{ta(p.inter, 1, 1)}, mx, nil, ""},
		{"TA at the root through the intermediate", []*x509.Certificate{p.viaInter, p.inter, p.caX}, []resolver.TLSA{ta(p.caX, 1, 1)}, mx, nil, ""},
		{"TA wrong name", []*x509.Certificate{p.wrongX, p.caX}, []resolver.TLSA{ta(p.caX, 1, 1)}, mx, ErrMismatch, "does not verify for mx.example.org"},
		{"TA expired leaf", []*x509.Certificate{p.expiredX, p.caX}, []resolver.TLSA{ta(p.caX, 1, 1)}, mx, ErrMismatch, "expired"},
		{"TA not in the chain", []*x509.Certificate{p.leafX}, []resolver.TLSA{ta(p.caX, 1, 1)}, mx, ErrMismatch, "must be among them"},
		{"TA appended to a forged chain", []*x509.Certificate{p.forgedX, p.otherX, p.caX}, []resolver.TLSA{ta(p.caX, 1, 1)}, mx, ErrMismatch, "does not verify"},
		{"TA without names", []*x509.Certificate{p.leafX, p.caX}, []resolver.TLSA{ta(p.caX, 1, 1)}, nil, ErrMismatch, "no name"},
		{"TA missing intermediate", []*x509.Certificate{p.viaInter, p.caX}, []resolver.TLSA{ta(p.caX, 1, 1)}, mx, ErrMismatch, "does not verify"},

		{"no records", []*x509.Certificate{p.leafX}, nil, mx, ErrNoUsable, ""},
		{"PKIX-TA unusable", []*x509.Certificate{p.leafX, p.caX}, []resolver.TLSA{Record(p.caX, UsagePKIXTA, 1, 1)}, mx, ErrNoUsable, "not for SMTP"},
		{"PKIX-EE unusable", []*x509.Certificate{p.leafX}, []resolver.TLSA{Record(p.leafX, UsagePKIXEE, 1, 1)}, mx, ErrNoUsable, "not for SMTP"},
		{"usage 4", []*x509.Certificate{p.leafX}, []resolver.TLSA{with(ee(p.leafX, 1, 1), func(r *resolver.TLSA) { r.Usage = 4 })}, mx, ErrNoUsable, "unknown certificate usage 4"},
		{"selector 2", []*x509.Certificate{p.leafX}, []resolver.TLSA{with(ee(p.leafX, 1, 1), func(r *resolver.TLSA) { r.Selector = 2 })}, mx, ErrNoUsable, "unknown selector 2"},
		{"matching type 3", []*x509.Certificate{p.leafX}, []resolver.TLSA{with(ee(p.leafX, 1, 1), func(r *resolver.TLSA) { r.MatchingType = 3 })}, mx, ErrNoUsable, "unknown matching type 3"},
		{"short SHA-256", []*x509.Certificate{p.leafX}, []resolver.TLSA{with(ee(p.leafX, 1, 1), func(r *resolver.TLSA) { r.Data = r.Data[:31] })}, mx, ErrNoUsable, "31 bytes"},
		{"SHA-512 length for SHA-256", []*x509.Certificate{p.leafX}, []resolver.TLSA{with(ee(p.leafX, 1, 2), func(r *resolver.TLSA) { r.MatchingType = 1 })}, mx, ErrNoUsable, "64 bytes"},
		{"empty full data", []*x509.Certificate{p.leafX}, []resolver.TLSA{{Usage: 3, Selector: 1, MatchingType: 0}}, mx, ErrNoUsable, "no data"},
		{"malformed record beside a good one", []*x509.Certificate{p.leafX}, []resolver.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{1}}, ee(p.leafX, 1, 1)}, mx, nil, ""},
		{"unusable and mismatching", []*x509.Certificate{p.leafX}, []resolver.TLSA{Record(p.leafX, UsagePKIXEE, 1, 1), ee(p.wrongX, 1, 1)}, mx, ErrMismatch, "unusable: usage 1"},
		{"no certificate", nil, []resolver.TLSA{ee(p.leafX, 1, 1)}, mx, ErrMismatch, "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.chain, tt.records, tt.names, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			other := ErrMismatch
			if tt.want == ErrMismatch {
				other = ErrNoUsable
			}
			if errors.Is(err, other) {
				t.Errorf("Verify error %v is also %v", err, other)
			}
			if !strings.Contains(err.Error(), tt.reason) || !strings.HasPrefix(err.Error(), "dane: ") {
				t.Errorf("Verify = %q, want it to say %q", err, tt.reason)
			}
			var verr *VerifyError
			if !errors.As(err, &verr) || len(verr.Records) != len(tt.records) {
				t.Errorf("Verify error %#v: want a *VerifyError with one entry per record", err)
			}
		})
	}
}

func TestRecord(t *testing.T) {
	leaf := testPKI.leafX
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	r := Record(leaf, 3, 1, 1)
	if r.Usage != 3 || r.Selector != 1 || r.MatchingType != 1 || string(r.Data) != string(spki[:]) {
		t.Errorf("Record(leaf, 3, 1, 1) = %v, want 3 1 1 %x", r, spki)
	}
	if full := Record(leaf, 3, 0, 0); string(full.Data) != string(leaf.Raw) {
		t.Error("Record(leaf, 3, 0, 0) is not the DER certificate")
	}
	for _, bad := range []resolver.TLSA{Record(leaf, 3, 2, 1), Record(leaf, 3, 1, 9)} {
		if bad.Data != nil || CheckRecord(bad) == nil {
			t.Errorf("Record with unknown parameters = %v, want no data and unusable", bad)
		}
	}
	if err := CheckRecord(r); err != nil {
		t.Errorf("CheckRecord(%v) = %v", r, err)
	}
}

// TestHandshake runs real TLS handshakes on loopback with Config.
func TestHandshake(t *testing.T) {
	p := testPKI
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.leaf}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var sni = make(chan string, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() == nil {
					sni <- tc.ConnectionState().ServerName
					tc.Write([]byte("ok"))
				}
			}()
		}
	}()
	dial := func(cfg *tls.Config) error {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2)
		_, err = c.Read(buf)
		return err
	}
	mx := []string{"mx.example.org"}

	if err := dial(Config(nil, []resolver.TLSA{Record(p.leafX, 3, 1, 1)}, mx)); err != nil {
		t.Errorf("DANE-EE handshake: %v", err)
	} else if got := <-sni; got != "mx.example.org" {
		t.Errorf("SNI = %q, want mx.example.org", got)
	}
	if err := dial(Config(nil, []resolver.TLSA{Record(p.caX, 2, 1, 1)}, mx)); err != nil {
		t.Errorf("DANE-TA handshake: %v", err)
	} else {
		<-sni
	}

	err = dial(Config(nil, []resolver.TLSA{Record(p.wrongX, 3, 1, 1)}, mx))
	var verr *VerifyError
	if !errors.As(err, &verr) || !errors.Is(err, ErrMismatch) {
		t.Errorf("mismatching record: handshake error = %v, want a *VerifyError", err)
	}
	err = dial(Config(nil, []resolver.TLSA{Record(p.caX, 2, 1, 1)}, []string{"elsewhere.example"}))
	if !errors.Is(err, ErrMismatch) {
		t.Errorf("DANE-TA with a wrong name: handshake error = %v, want ErrMismatch", err)
	}

	// The caller's config is copied, not changed, and its hook still runs.
	hookErr := errors.New("caller says no")
	base := &tls.Config{ServerName: "sni.example", VerifyConnection: func(tls.ConnectionState) error { return hookErr }}
	cfg := Config(base, []resolver.TLSA{Record(p.leafX, 3, 1, 1)}, mx)
	if err := dial(cfg); !errors.Is(err, hookErr) {
		t.Errorf("caller's VerifyConnection: handshake error = %v, want %v", err, hookErr)
	}
	if base.InsecureSkipVerify || cfg.ServerName != "sni.example" {
		t.Errorf("base changed (InsecureSkipVerify %v) or ServerName lost (%q)", base.InsecureSkipVerify, cfg.ServerName)
	}
	// Config's Time is the clock of DANE-TA validation.
	late := Config(&tls.Config{Time: func() time.Time { return now.AddDate(1, 0, 0) }}, []resolver.TLSA{Record(p.caX, 2, 1, 1)}, mx)
	if err := dial(late); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("DANE-TA a year later: handshake error = %v, want an expired chain", err)
	}
}

// FuzzVerify: any record data, usage, selector and matching type gives nil
// or a *VerifyError, never a panic; unusable records never authenticate.
func FuzzVerify(f *testing.F) {
	p := testPKI
	for _, r := range []resolver.TLSA{Record(p.leafX, 3, 1, 1), Record(p.caX, 2, 0, 2), Record(p.leafX, 3, 0, 0)} {
		f.Add(r.Usage, r.Selector, r.MatchingType, r.Data)
	}
	chain := []*x509.Certificate{p.leafX, p.caX}
	f.Fuzz(func(t *testing.T, usage, selector, mtype uint8, data []byte) {
		r := resolver.TLSA{Usage: usage, Selector: selector, MatchingType: mtype, Data: data}
		err := Verify(chain, []resolver.TLSA{r}, []string{"mx.example.org"}, now)
		if err == nil {
			if CheckRecord(r) != nil {
				t.Fatalf("unusable record %v authenticated the chain", r)
			}
			return
		}
		var verr *VerifyError
		if !errors.As(err, &verr) {
			t.Fatalf("Verify error %T is not a *VerifyError", err)
		}
	})
}
