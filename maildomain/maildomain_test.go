package maildomain

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/internal/dnstest"
	"github.com/starttls/starttls/internal/linetest"
	"github.com/starttls/starttls/mtasts"
	"github.com/starttls/starttls/resolver"
	"github.com/starttls/starttls/smtp"
	"github.com/starttls/starttls/tlsrpt"
)

// world is a DNS server, an MTA-STS policy host and a CA on loopback.
type world struct {
	ca       *certs.CA
	dns      *dnstest.Server
	webPort  int
	mu       sync.Mutex
	policies map[string]string
}

func newWorld(t *testing.T, domains ...string) *world {
	t.Helper()
	ca, err := certs.NewCA("maildomain test CA")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{ca: ca, dns: dnstest.Start(t), policies: map[string]string{}}
	var names []string
	for _, d := range domains {
		names = append(names, "mta-sts."+d)
		w.dns.Add(t, "mta-sts."+d+". 60 IN A 127.0.0.1")
	}
	cert, err := ca.Issue(certs.Leaf{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		body, ok := w.policies[strings.TrimPrefix(strings.Split(r.Host, ":")[0], "mta-sts.")]
		w.mu.Unlock()
		if !ok {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(rw, body)
	}))
	web.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	web.StartTLS()
	t.Cleanup(web.Close)
	w.webPort = web.Listener.Addr().(*net.TCPAddr).Port
	return w
}

func (w *world) policy(t *testing.T, domain, mode, mx string) {
	w.mu.Lock()
	w.policies[domain] = fmt.Sprintf("version: STSv1\nmode: %s\nmx: %s\nmax_age: 86400\n", mode, mx)
	w.mu.Unlock()
	w.dns.Add(t, fmt.Sprintf(`_mta-sts.%s. 60 IN TXT "v=STSv1; id=1"`, domain))
}

// recorder is an SMTP server on loopback that records every byte it
// reads, so that a test can tell what a client sent before TLS.
type recorder struct {
	srv  *smtp.Server
	port int
	rec  linetest.Recorder
	mu   sync.Mutex
	mail int
}

func (r *recorder) Login(context.Context, string, string) error { return errors.New("no") }
func (r *recorder) Deliver(context.Context, string, []string, []byte) error {
	r.mu.Lock()
	r.mail++
	r.mu.Unlock()
	return nil
}

func (r *recorder) sent() string { return r.rec.String() }

// server starts an SMTP server with a certificate for names (nil: no
// STARTTLS at all).
func (w *world) server(t *testing.T, names ...string) (*recorder, []byte) {
	t.Helper()
	r := &recorder{}
	var conf *tls.Config
	var spki []byte
	if names != nil {
		cert, err := w.ca.Issue(certs.Leaf{Names: names})
		if err != nil {
			t.Fatal(err)
		}
		conf = &tls.Config{Certificates: []tls.Certificate{cert}}
		sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
		spki = sum[:]
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv = &smtp.Server{ServerOptions: starttls.ServerOptions{TLSConfig: conf, Hostname: "mx.test"}, Backend: r}
	go r.srv.Serve(r.rec.Listener(l))
	t.Cleanup(func() { r.srv.Close() })
	r.port = l.Addr().(*net.TCPAddr).Port
	return r, spki
}

func (w *world) options(port int) *Options {
	return &Options{
		Resolver:    &resolver.Resolver{Addr: w.dns.Addr, Timeout: time.Second},
		Roots:       w.ca.Pool(),
		MTASTSPort:  w.webPort,
		Port:        port,
		DialTimeout: 5 * time.Second,
		LocalName:   "sender.test",
	}
}

func (w *world) mx(t *testing.T, domain string, hosts ...string) {
	for i, h := range hosts {
		w.dns.Add(t, fmt.Sprintf("%s. 60 IN MX %d %s.", domain, 10*(i+1), h), h+". 60 IN A 127.0.0.1")
	}
}

func hasFailure(fs []Failure, rt tlsrpt.ResultType, enforced bool) bool {
	for _, f := range fs {
		if f.ResultType == rt && f.Enforced == enforced {
			return true
		}
	}
	return false
}

// TestEnforcedPolicyCannotBeStripped: under MTA-STS enforce and under
// DANE, an MX host that does not offer STARTTLS (a STRIPTLS attacker's
// view of it) gets no mail command: Dial fails after EHLO.
func TestEnforcedPolicyCannotBeStripped(t *testing.T) {
	w := newWorld(t, "sts.test")
	stripped, _ := w.server(t) // no STARTTLS
	ctx := context.Background()

	w.mx(t, "sts.test", "mx.sts.test")
	w.policy(t, "sts.test", "enforce", "mx.sts.test")
	_, spki := w.server(t, "mx.dane.test")
	w.mx(t, "dane.test", "mx.dane.test")
	w.dns.Add(t, "_25._tcp.mx.dane.test. 60 IN TLSA 3 1 1 "+hex.EncodeToString(spki))
	w.dns.Secure("dane.test")

	for _, tc := range []struct {
		domain string
		sec    Security
		policy tlsrpt.PolicyType
	}{{"sts.test", WebPKI, tlsrpt.PolicySTS}, {"dane.test", DANE, tlsrpt.PolicyTLSA}} {
		t.Run(tc.domain, func(t *testing.T) {
			o := w.options(stripped.port)
			p, err := Resolve(ctx, tc.domain, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.MX) != 1 || p.MX[0].Security != tc.sec || !p.MX[0].Security.RequiresTLS() {
				t.Fatalf("Resolve(%s) = %+v", tc.domain, p.MX)
			}
			before := len(stripped.sent())
			s, err := p.Dial(ctx, o)
			if err == nil {
				s.Close()
				t.Fatalf("Dial to a server without STARTTLS under %s succeeded", tc.sec)
			}
			if !errors.Is(err, ErrNoMX) || !errors.Is(err, starttls.ErrUpgradeNotOffered) {
				t.Errorf("Dial error %v: want ErrNoMX and ErrUpgradeNotOffered", err)
			}
			var de *DialError
			if !errors.As(err, &de) || !hasFailure(de.Failures, tlsrpt.STARTTLSNotSupported, true) || de.Failures[len(de.Failures)-1].Policy != tc.policy ||
				de.Failures[len(de.Failures)-1].SendingMTAIP != "127.0.0.1" || de.Failures[len(de.Failures)-1].ReceivingIP != "127.0.0.1" {
				t.Errorf("failures %+v: want an enforced starttls-not-supported of policy %s", de, tc.policy)
			}
			sent := stripped.sent()[before:]
			if !strings.HasPrefix(sent, "EHLO sender.test\r\n") || strings.Contains(strings.ToUpper(sent), "MAIL") || strings.Contains(strings.ToUpper(sent), "AUTH") {
				t.Errorf("the client sent %q in plaintext", sent)
			}
		})
	}
}

func TestDial(t *testing.T) {
	w := newWorld(t, "good.test", "badname.test", "testing.test", "mismatch.test")
	ctx := context.Background()
	good, spki := w.server(t, "mx.good.test", "mx.dane.test", "mx2.testing.test")
	plain, _ := w.server(t)
	w.mx(t, "good.test", "mx.good.test")
	w.policy(t, "good.test", "enforce", "*.good.test")
	w.mx(t, "badname.test", "mx.badname.test")
	w.policy(t, "badname.test", "enforce", "mx.badname.test")
	w.mx(t, "testing.test", "mx.testing.test")
	w.policy(t, "testing.test", "testing", "mx2.testing.test")
	w.mx(t, "mismatch.test", "mx.mismatch.test", "mx.good.test")
	w.policy(t, "mismatch.test", "enforce", "mx.good.test")
	w.mx(t, "dane.test", "mx.dane.test")
	w.dns.Add(t, "_25._tcp.mx.dane.test. 60 IN TLSA 3 1 1 "+hex.EncodeToString(spki))
	w.dns.Secure("dane.test")
	w.mx(t, "danebad.test", "mx.danebad.test")
	w.dns.Add(t, "_25._tcp.mx.danebad.test. 60 IN TLSA 3 1 1 "+strings.Repeat("ab", 32))
	w.dns.Secure("danebad.test")
	w.mx(t, "bogus.test", "mx.bogus.test", "mx.good.test")
	w.dns.Add(t, "_25._tcp.mx.bogus.test. 60 IN TLSA 3 1 1 "+hex.EncodeToString(spki))
	w.dns.Secure("bogus.test")
	w.dns.Bogus("_25._tcp.mx.bogus.test")
	w.mx(t, "none.test", "mx.none.test")
	w.dns.Add(t, "null.test. 60 IN MX 0 .")

	tests := []struct {
		domain   string
		port     int
		ok       bool
		tls      bool
		failure  tlsrpt.ResultType
		enforced bool
		mx       string
	}{
		{domain: "good.test", port: good.port, ok: true, tls: true, mx: "mx.good.test"},
		{domain: "dane.test", port: good.port, ok: true, tls: true, mx: "mx.dane.test"},
		{domain: "badname.test", port: good.port, failure: tlsrpt.CertificateHostMismatch, enforced: true},
		{domain: "danebad.test", port: good.port, failure: tlsrpt.TLSAInvalid, enforced: true},
		// Testing mode: the MX does not match and its certificate names
		// another host: both reported, delivery goes on.
		{domain: "testing.test", port: good.port, ok: true, tls: true, failure: tlsrpt.CertificateHostMismatch, mx: "mx.testing.test"},
		{domain: "testing.test", port: plain.port, ok: true, failure: tlsrpt.STARTTLSNotSupported, mx: "mx.testing.test"},
		// Enforce: the MX that does not match is never used, the next one is.
		{domain: "mismatch.test", port: good.port, ok: true, tls: true, failure: tlsrpt.ValidationFailure, enforced: true, mx: "mx.good.test"},
		{domain: "bogus.test", port: good.port, ok: true, tls: true, failure: tlsrpt.DNSSECInvalid, enforced: true, mx: "mx.good.test"},
		// No policy: opportunistic, plaintext allowed.
		{domain: "none.test", port: plain.port, ok: true, mx: "mx.none.test"},
		{domain: "null.test", port: good.port},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s:%d", tc.domain, tc.port), func(t *testing.T) {
			o := w.options(tc.port)
			p, err := Resolve(ctx, tc.domain, o)
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.Dial(ctx, o)
			var fs []Failure
			if err == nil {
				defer s.Close()
				fs = s.Failures
				if !tc.ok {
					t.Fatalf("Dial(%s) succeeded with %s", tc.domain, s.MX.Host)
				}
				if s.MX.Host != tc.mx || s.Result.Upgraded != tc.tls {
					t.Errorf("Dial(%s): MX %s upgraded %v, want %s %v", tc.domain, s.MX.Host, s.Result.Upgraded, tc.mx, tc.tls)
				}
				if err := s.SendMail(ctx, "a@sender.test", []string{"b@" + tc.domain}, []byte("Subject: x\r\n\r\nhi\r\n")); err != nil {
					t.Errorf("SendMail: %v", err)
				}
			} else {
				if tc.ok {
					t.Fatalf("Dial(%s) = %v", tc.domain, err)
				}
				if !errors.Is(err, ErrNoMX) {
					t.Errorf("Dial(%s) = %v, want ErrNoMX", tc.domain, err)
				}
				var de *DialError
				if errors.As(err, &de) {
					fs = de.Failures
				}
			}
			if tc.failure != "" && !hasFailure(fs, tc.failure, tc.enforced) {
				t.Errorf("Dial(%s): failures %+v, want %s (enforced %v)", tc.domain, fs, tc.failure, tc.enforced)
			}
			if tc.failure == "" && len(fs) > 0 {
				t.Errorf("Dial(%s): unexpected failures %+v", tc.domain, fs)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.dns.Add(t, "multi.test. 60 IN MX 20 b.multi.test.", "multi.test. 60 IN MX 10 a.multi.test.",
		"a.multi.test. 60 IN A 127.0.0.1", "b.multi.test. 60 IN A 127.0.0.2",
		"implicit.test. 60 IN A 127.0.0.3",
		"unusable.test. 60 IN MX 10 mx.unusable.test.", "mx.unusable.test. 60 IN A 127.0.0.1",
		"_25._tcp.mx.unusable.test. 60 IN TLSA 1 1 1 "+strings.Repeat("cd", 32),
		"insecure.test. 60 IN MX 10 mx.insecure.test.", "mx.insecure.test. 60 IN A 127.0.0.1",
		"_25._tcp.mx.insecure.test. 60 IN TLSA 3 1 1 "+strings.Repeat("cd", 32))
	w.dns.Secure("unusable.test")
	o := w.options(0)
	p, err := Resolve(ctx, "multi.test", o)
	if err != nil || len(p.MX) != 2 || p.MX[0].Host != "a.multi.test" || p.MX[1].Host != "b.multi.test" || p.MX[0].Security != Opportunistic {
		t.Errorf("Resolve(multi.test) = %+v, %v", p, err)
	}
	p, err = Resolve(ctx, "implicit.test", o)
	if err != nil || len(p.MX) != 1 || !p.MX[0].Implicit || p.MX[0].Addrs[0].String() != "127.0.0.3" {
		t.Errorf("Resolve(implicit.test) = %+v, %v", p, err)
	}
	p, err = Resolve(ctx, "nxdomain.test", o)
	if err != nil || len(p.MX) != 0 || p.NullMX {
		t.Errorf("Resolve(nxdomain.test) = %+v, %v", p, err)
	}
	p, err = Resolve(ctx, "unusable.test", o)
	if err != nil || len(p.MX) != 1 || p.MX[0].Security != DANEUnauthenticated || !p.MX[0].Security.RequiresTLS() {
		t.Errorf("Resolve(unusable.test) = %+v, %v", p, err)
	}
	p, err = Resolve(ctx, "insecure.test", o)
	if err != nil || len(p.MX) != 1 || p.MX[0].Security != Opportunistic || p.MX[0].TLSA != nil {
		t.Errorf("Resolve(insecure.test): TLSA in an unsigned zone must not count: %+v, %v", p, err)
	}
}

// TestCachedPolicySurvives: with a Cache, a policy seen once keeps being
// enforced when an attacker removes the TXT record and blocks the policy
// host.
func TestCachedPolicySurvives(t *testing.T) {
	w := newWorld(t, "tofu.test")
	ctx := context.Background()
	plain, _ := w.server(t)
	w.mx(t, "tofu.test", "mx.tofu.test")
	w.policy(t, "tofu.test", "enforce", "mx.tofu.test")
	o := w.options(plain.port)
	o.MTASTS = &mtasts.Cache{Fetcher: &mtasts.Fetcher{Resolver: o.Resolver, Roots: o.Roots, Port: w.webPort}}
	if p, err := Resolve(ctx, "tofu.test", o); err != nil || p.MTASTS == nil {
		t.Fatalf("first Resolve = %+v, %v", p, err)
	}
	w.dns.Remove("_mta-sts.tofu.test", "TXT")
	w.mu.Lock()
	delete(w.policies, "tofu.test")
	w.mu.Unlock()
	p, err := Resolve(ctx, "tofu.test", o)
	if err != nil || p.MTASTS == nil || !p.MTASTS.Cached || p.MX[0].Security != WebPKI {
		t.Fatalf("second Resolve = %+v, %v: want the cached policy enforced", p, err)
	}
	if _, err := p.Dial(ctx, o); err == nil || !errors.Is(err, starttls.ErrUpgradeNotOffered) {
		t.Fatalf("Dial = %v, want a refusal to go on without STARTTLS", err)
	}
	// The one-call form applies the same cached policy.
	if s, err := Dial(ctx, "tofu.test", o); err == nil || !errors.Is(err, ErrNoMX) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("maildomain.Dial = %v, want ErrNoMX", err)
	}
	plain.mu.Lock()
	defer plain.mu.Unlock()
	if plain.mail != 0 {
		t.Fatalf("%d messages reached the server that does not offer STARTTLS", plain.mail)
	}
}
