package check_test

import (
	"context"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/check"
	"github.com/starttls/starttls/lab"
)

// TestLabFindings is the checker's acceptance test: every broken lab
// endpoint must draw the findings it declares, every correct one must pass.
func TestLabFindings(t *testing.T) {
	l, err := lab.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Subtests run in parallel after this function returns.
	t.Cleanup(func() { l.Close() })
	for _, ep := range l.Endpoints {
		t.Run(ep.Name, func(t *testing.T) {
			t.Parallel()
			tg, err := starttls.ParseTarget(ep.URL)
			if err != nil {
				t.Fatal(err)
			}
			r := check.Run(context.Background(), tg, &check.Options{Roots: l.CA.Pool(), Timeout: 10 * time.Second, InjectionWait: 500 * time.Millisecond})
			var got []string
			for _, f := range r.Findings {
				got = append(got, f.ID)
			}
			for _, want := range ep.Expect {
				if !slices.Contains(got, want) {
					t.Errorf("check %s: findings %v, missing %q", ep.URL, got, want)
				}
			}
			if !ep.Broken && r.Verdict != check.Pass {
				t.Errorf("check %s (correct endpoint): verdict %s, findings %+v", ep.URL, r.Verdict, r.Findings)
			}
			if ep.Broken && r.Verdict == check.Pass {
				t.Errorf("check %s (broken endpoint): verdict pass", ep.URL)
			}
			if r.Verdict == check.Error {
				t.Errorf("check %s: could not run: %s", ep.URL, r.Error)
			}
			if !ep.Broken {
				if r.TLS == nil || r.Cert == nil || !r.Cert.Trusted || !r.Cert.NameMatch {
					t.Errorf("check %s: TLS %+v cert %+v", ep.URL, r.TLS, r.Cert)
				}
				if len(r.Auth.BeforeTLS) != 0 {
					t.Errorf("check %s: login before TLS %v", ep.URL, r.Auth.BeforeTLS)
				}
				// A protocol whose lab has no -injection variant has no
				// command stream to inject into (LDAP, MySQL, …).
				_, variants := l.Endpoint(ep.Name + "-no-starttls")
				_, injectable := l.Endpoint(ep.Name + "-injection")
				probed := injectable || !variants
				if !r.STARTTLS.Implicit && (r.Injection == nil || (probed && !r.Injection.Tested) || r.Injection.Vulnerable) {
					t.Errorf("check %s: injection probe %+v", ep.URL, r.Injection)
				}
			}
		})
	}
}

// TestCouldNotCheck: a server that is not one (garbage, silence, a refused
// connection, a temporary refusal) gives verdict error, never a false
// "STARTTLS not offered".
func TestCouldNotCheck(t *testing.T) {
	tests := []struct {
		name  string
		serve func(c net.Conn)
		want  string
	}{
		{"garbage greeting", func(c net.Conn) { c.Write([]byte("\x16\x03\x01garbage\r\n")) }, "could not check"},
		{"silence", func(c net.Conn) { time.Sleep(3 * time.Second) }, "no answer in time"},
		{"421 greeting", func(c net.Conn) { c.Write([]byte("421 4.3.2 busy, try later\r\n")) }, "temporary"},
		{"greylisted EHLO", func(c net.Conn) {
			c.Write([]byte("220 mx ESMTP\r\n"))
			buf := make([]byte, 512)
			c.Read(buf)
			c.Write([]byte("450 4.7.1 greylisted, come back later\r\n"))
		}, "temporary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				tt.serve(c)
			}()
			tg, _ := starttls.ParseTarget("smtp://" + l.Addr().String())
			start := time.Now()
			r := check.Run(context.Background(), tg, &check.Options{Timeout: time.Second})
			if time.Since(start) > 5*time.Second {
				t.Errorf("check took %v, beyond its timeout", time.Since(start))
			}
			if r.Verdict != check.Error || r.Verdict.ExitCode() != 3 {
				t.Fatalf("verdict %s, findings %+v", r.Verdict, r.Findings)
			}
			if r.Has("starttls-not-offered") {
				t.Error("reported starttls-not-offered for a server that could not be checked")
			}
			if !strings.Contains(r.Error, tt.want) {
				t.Errorf("error %q does not mention %q", r.Error, tt.want)
			}
		})
	}
	// A port nobody listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	tg, _ := starttls.ParseTarget("smtp://" + addr)
	if r := check.Run(context.Background(), tg, &check.Options{Timeout: time.Second}); r.Verdict != check.Error {
		t.Errorf("refused connection: verdict %s", r.Verdict)
	}
}

// TestUntrustedWithoutCA: the lab's correct server is untrusted for a
// checker that uses the system roots, and says so without failing the
// handshake.
func TestUntrustedWithoutCA(t *testing.T) {
	l, err := lab.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ep, _ := l.Endpoint("imaps")
	tg, _ := starttls.ParseTarget(ep.URL)
	r := check.Run(context.Background(), tg, &check.Options{Roots: x509.NewCertPool(), Timeout: 5 * time.Second})
	if !r.Has("cert-untrusted") || r.Has("cert-self-signed") || r.TLS == nil {
		t.Fatalf("findings %+v", r.Findings)
	}
	if r.Cert.NameMatch != true || r.Cert.Expired {
		t.Errorf("cert %+v", r.Cert)
	}
}

// TestOpportunisticModeStillReports: with ?mode=opportunistic the client
// goes on in plaintext, and the checker still reports why.
func TestOpportunisticModeStillReports(t *testing.T) {
	l, err := lab.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for name, want := range map[string]string{"smtp-no-starttls": "starttls-not-offered", "imap-refused": "starttls-refused", "pop3-no-starttls": "starttls-not-offered"} {
		ep, _ := l.Endpoint(name)
		tg, err := starttls.ParseTarget(ep.URL + "?mode=opportunistic")
		if err != nil {
			t.Fatal(err)
		}
		r := check.Run(context.Background(), tg, &check.Options{Roots: l.CA.Pool(), Timeout: 5 * time.Second})
		if !r.Has(want) || r.Verdict != check.Fails {
			t.Errorf("%s opportunistic: verdict %s findings %+v, want %s", name, r.Verdict, r.Findings, want)
		}
	}
}
