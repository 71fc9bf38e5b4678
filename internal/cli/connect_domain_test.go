package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/starttls/starttls"

	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/internal/dnstest"
	"github.com/starttls/starttls/maildomain"
	"github.com/starttls/starttls/smtp"
)

// TestConnectDomain: `starttls connect smtp://DOMAIN --mode mta-sts|dane|policy`
// delivers only where the domain's policy is met, and otherwise refuses
// before any mail command reaches a server.
func TestConnectDomain(t *testing.T) {
	ca, err := certs.NewCA("cli connect domain CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(certs.Leaf{Names: []string{"mx.dane.test", "mx.danebad.test", "mx.unusable.test", "mx.sts.test", "mx.stsmismatch.test"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.Issue(certs.Leaf{Names: []string{"other.example"}})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The TLS server on 127.0.0.1 and a plaintext-only one on 127.0.0.2,
	// same port (--smtp-port is one port for every MX host).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	pl, err := net.Listen("tcp", "127.0.0.2:"+port)
	if err != nil {
		l.Close()
		t.Skipf("no second loopback address: %v", err)
	}
	srv := &smtp.Server{ServerOptions: starttls.ServerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, Hostname: "mx.test"}}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	plainSeen := &recorder{} // what the plaintext server was sent
	plainSrv := &smtp.Server{ServerOptions: starttls.ServerOptions{Hostname: "mx.plain.test"}}
	go plainSrv.Serve(recordingListener{pl, plainSeen})
	t.Cleanup(func() { plainSrv.Close() })

	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.Split(r.Host, ":")[0]
		mx := map[string]string{"mta-sts.sts.test": "mx.sts.test", "mta-sts.stsplain.test": "mx.stsplain.test", "mta-sts.stsmismatch.test": "mail.other.example"}[host]
		if mx == "" || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "version: STSv1\nmode: enforce\nmx: %s\nmax_age: 86400\n", mx)
	}))
	pcert, err := ca.Issue(certs.Leaf{Names: []string{"mta-sts.sts.test", "mta-sts.stsplain.test", "mta-sts.stsmismatch.test"}})
	if err != nil {
		t.Fatal(err)
	}
	web.TLS = &tls.Config{Certificates: []tls.Certificate{pcert}}
	web.StartTLS()
	t.Cleanup(web.Close)
	webPort := strconv.Itoa(web.Listener.Addr().(*net.TCPAddr).Port)

	digest := func(c tls.Certificate) string {
		sum := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
		return hex.EncodeToString(sum[:])
	}
	dns := dnstest.Start(t,
		"dane.test. 60 IN MX 10 mx.dane.test.", "mx.dane.test. 60 IN A 127.0.0.1",
		"_"+port+"._tcp.mx.dane.test. 60 IN TLSA 3 1 1 "+digest(cert),
		"danebad.test. 60 IN MX 10 mx.danebad.test.", "mx.danebad.test. 60 IN A 127.0.0.1",
		"_25._tcp.mx.danebad.test. 60 IN TLSA 3 1 1 "+digest(other),
		"unusable.test. 60 IN MX 10 mx.unusable.test.", "mx.unusable.test. 60 IN A 127.0.0.1",
		"_25._tcp.mx.unusable.test. 60 IN TLSA 1 1 1 "+digest(cert),
		"bogus.test. 60 IN MX 10 mx.bogus.test.", "mx.bogus.test. 60 IN A 127.0.0.1",
		"_25._tcp.mx.bogus.test. 60 IN TLSA 3 1 1 "+digest(cert),
		"plain.test. 60 IN MX 10 mx.plain.test.", "mx.plain.test. 60 IN A 127.0.0.2",
		"sts.test. 60 IN MX 10 mx.sts.test.", "mx.sts.test. 60 IN A 127.0.0.1",
		`_mta-sts.sts.test. 60 IN TXT "v=STSv1; id=1"`, "mta-sts.sts.test. 60 IN A 127.0.0.1",
		"stsplain.test. 60 IN MX 10 mx.stsplain.test.", "mx.stsplain.test. 60 IN A 127.0.0.2",
		`_mta-sts.stsplain.test. 60 IN TXT "v=STSv1; id=1"`, "mta-sts.stsplain.test. 60 IN A 127.0.0.1",
		"stsmismatch.test. 60 IN MX 10 mx.stsmismatch.test.", "mx.stsmismatch.test. 60 IN A 127.0.0.1",
		`_mta-sts.stsmismatch.test. 60 IN TXT "v=STSv1; id=1"`, "mta-sts.stsmismatch.test. 60 IN A 127.0.0.1",
	)
	for _, z := range []string{"dane.test", "danebad.test", "unusable.test", "bogus.test"} {
		dns.Secure(z)
	}
	dns.Bogus("_25._tcp.mx.bogus.test")
	common := []string{"--resolver", dns.Addr, "--ca", caFile, "--smtp-port", port, "--mta-sts-port", webPort, "--timeout", "5s", "--linger", "1s", "--trace"}

	tests := []struct {
		name, url, mode string
		code            int
		want            []string // in stderr
		wantOut         []string // in stdout (the server's replies)
	}{
		{"dane ok", "smtp://dane.test", "dane", 0, []string{"security dane", "certificate authenticated by DANE", "_" + port + "._tcp.mx.dane.test"}, []string{"250 ", "221 "}},
		{"dane mismatch", "smtp://danebad.test", "dane", 2, []string{"refusing (--mode dane)", "tlsa-invalid"}, nil},
		{"dane unusable", "smtp://unusable.test", "dane", 2, []string{"refusing (--mode dane)", "none is usable"}, nil},
		{"unusable under policy", "smtp://unusable.test", "policy", 0, []string{"security dane-unauthenticated", "NOT authenticated"}, []string{"221 "}},
		{"dane bogus", "smtp://bogus.test", "dane", 2, []string{"refusing (--mode dane)", "dnssec-invalid"}, nil},
		{"dane absent", "smtp://plain.test", "dane", 2, []string{"no DNSSEC-secure TLSA"}, nil},
		{"no policy for mta-sts", "smtp://plain.test", "mta-sts", 2, []string{"no MTA-STS policy"}, nil},
		{"opportunistic", "smtp://plain.test", "policy", 0, []string{"security opportunistic", "PLAINTEXT"}, []string{"221 "}},
		{"mta-sts in the URL", "smtp://sts.test?mode=mta-sts", "", 0, []string{"security mta-sts", `chain and name "mx.sts.test" OK`}, []string{"221 "}},
		{"mta-sts no STARTTLS", "smtp://stsplain.test", "mta-sts", 2, []string{"refusing (--mode mta-sts)", "starttls-not-supported"}, nil},
		{"mta-sts mismatch", "smtp://stsmismatch.test", "mta-sts", 2, []string{"refusing (--mode mta-sts)", "matches no mx pattern"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plainSeen.Reset()
			args := append([]string{"connect"}, common...)
			if tt.mode != "" {
				args = append(args, "--mode", tt.mode)
			}
			args = append(args, tt.url)
			var out, errb bytes.Buffer
			code := RunContext(context.Background(), args, strings.NewReader("MAIL FROM:<a@example.org>\nNOOP\nQUIT\n"), &out, &errb)
			t.Logf("%v: exit %d\n%s", args[len(args)-3:], code, errb.String())
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, tt.code, errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr has no %q:\n%s", w, errb.String())
				}
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout has no %q:\n%s", w, out.String())
				}
			}
			if tt.code != 0 {
				// Refused: nothing of stdin was sent, to either server.
				if strings.Contains(errb.String(), "MAIL FROM") || strings.Contains(plainSeen.String(), "MAIL FROM") || out.Len() != 0 {
					t.Errorf("refused, yet MAIL was sent or the server answered:\nstderr:\n%s\nplaintext server saw:\n%s\nstdout:\n%s", errb.String(), plainSeen.String(), out.String())
				}
			}
		})
	}
}

// recorder keeps what a server read, for the assertion that nothing of a
// refused session reached it.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

func (r *recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Reset()
}

type recordingListener struct {
	net.Listener
	r *recorder
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return recordingConn{c, l.r}, nil
}

type recordingConn struct {
	net.Conn
	r *recorder
}

func (c recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.Write(p[:n])
	return n, err
}

func TestConnectDomainBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"not smtp", []string{"connect", "--mode", "dane", "imap://example.org"}, "smtp://DOMAIN"},
		{"address", []string{"connect", "--mode", "dane", "smtp://127.0.0.1"}, "mail domain"},
		{"port in URL", []string{"connect", "--mode", "mta-sts", "smtp://example.org:2525"}, "--smtp-port"},
		{"modes disagree", []string{"connect", "--mode", "dane", "smtp://example.org?mode=mta-sts"}, "disagree"},
		{"insecure", []string{"connect", "--mode", "policy", "--insecure", "smtp://example.org"}, "--insecure"},
		{"server name", []string{"connect", "--mode", "policy", "--server-name", "x", "smtp://example.org"}, "--server-name"},
		{"bad resolver", []string{"connect", "--mode", "dane", "--resolver", "nope", "smtp://example.org"}, "--resolver"},
		{"domain flags on a URL", []string{"connect", "--smtp-port", "25", "smtp://127.0.0.1:1"}, "--mode mta-sts, dane or policy"},
		{"extra parameter", []string{"connect", "smtp://example.org?mode=dane&x=1"}, "mode="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(tt.args...)
			if code != 3 || !strings.Contains(stderr, tt.want) {
				t.Errorf("%v: exit %d, stderr %q; want 3 and %q", tt.args, code, stderr, tt.want)
			}
		})
	}
}

// FuzzParseDomainURL: any input gets a domain check accepts, or an error;
// never a panic.
func FuzzParseDomainURL(f *testing.F) {
	for _, s := range []string{"smtp://example.org", "smtp://example.org?mode=dane", "smtp://Example.ORG.?mode=mta-sts", "smtp://127.0.0.1", "imap://x.org", "smtp://a.b:25", "smtp://u@a.b", "smtp://a.b/x", "smtp://%zz"} {
		f.Add(s, "dane")
	}
	f.Fuzz(func(t *testing.T, raw, mode string) {
		d, err := parseDomainURL(raw, mode)
		if err == nil && (!maildomain.ValidDomain(d) || d != strings.ToLower(d)) {
			t.Errorf("parseDomainURL(%q) = %q, not a lower-case domain", raw, d)
		}
	})
}
