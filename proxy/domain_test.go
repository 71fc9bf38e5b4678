package proxy

import (
	"bufio"
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
	"github.com/starttls/starttls/maildomain"
	"github.com/starttls/starttls/resolver"
	"github.com/starttls/starttls/smtp"
)

// mxServer is an SMTP server on loopback that records every byte it reads
// and every message it takes.
type mxServer struct {
	port int
	rec  linetest.Recorder
	mu   sync.Mutex
	mail []string
}

func (m *mxServer) Login(context.Context, string, string) error { return errors.New("no") }

func (m *mxServer) Deliver(_ context.Context, from string, to []string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mail = append(m.mail, fmt.Sprintf("%s > %s: %s", from, strings.Join(to, ","), data))
	return nil
}

func (m *mxServer) read() (string, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rec.String(), append([]string(nil), m.mail...)
}

// startMX starts an SMTP server; with a certificate it offers STARTTLS,
// without one it is plaintext only (what a STRIPTLS attacker shows).
func startMX(t *testing.T, cert *tls.Certificate) *mxServer {
	t.Helper()
	m := &mxServer{}
	var conf *tls.Config
	if cert != nil {
		conf = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	l := listen(t)
	srv := &smtp.Server{ServerOptions: starttls.ServerOptions{TLSConfig: conf, Hostname: "mx.test"}, Backend: m}
	go srv.Serve(m.rec.Listener(l))
	t.Cleanup(func() { srv.Close() })
	m.port = l.Addr().(*net.TCPAddr).Port
	return m
}

// TestUpstreamDomain: a client-side SMTP listener for a mail domain
// delivers through the MX host that meets the domain's policy, greeted
// with that host's greeting, and closes the client with 421 when no host
// does: no mail command ever reaches a server that fails the policy, and
// no session is relayed without TLS, even where the domain publishes no
// policy.
func TestUpstreamDomain(t *testing.T) {
	ca, err := certs.NewCA("proxy domain CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(certs.Leaf{Names: []string{"mx.dane.test"}})
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	good := startMX(t, &cert) // STARTTLS, DANE-authenticated
	stripped := startMX(t, nil)
	dns := dnstest.Start(t,
		"dane.test. 60 IN MX 10 mx.dane.test.", "mx.dane.test. 60 IN A 127.0.0.1",
		"_25._tcp.mx.dane.test. 60 IN TLSA 3 1 1 "+hex.EncodeToString(spki[:]),
		"stripped.test. 60 IN MX 10 mx.stripped.test.", "mx.stripped.test. 60 IN A 127.0.0.1",
		"_25._tcp.mx.stripped.test. 60 IN TLSA 3 1 1 "+hex.EncodeToString(spki[:]),
		"nopolicy.test. 60 IN MX 10 mx.nopolicy.test.", "mx.nopolicy.test. 60 IN A 127.0.0.1",
	)
	dns.Secure("dane.test")
	dns.Secure("stripped.test")

	listener := func(domain string, mode DomainMode, port int) Listener {
		return Listener{
			Protocol: "smtp", UpstreamDomain: domain, DomainMode: mode, Hostname: "proxy.test",
			HandshakeTimeout: 10 * time.Second,
			DomainOptions: &maildomain.Options{
				Resolver: &resolver.Resolver{Addr: dns.Addr, Timeout: time.Second},
				Roots:    ca.Pool(), Port: port, MTASTSPort: 1, // no policy host: nothing listens on port 1
			},
		}
	}
	for _, tc := range []struct {
		name     string
		l        Listener
		mx       *mxServer
		delivers bool
		reason   string
	}{
		{"dane delivers", listener("dane.test", DomainDANE, good.port), good, true, ""},
		{"dane without STARTTLS", listener("stripped.test", DomainDANE, stripped.port), stripped, false, "upgrade_not_offered"},
		{"policy mode never plaintext", listener("nopolicy.test", DomainPolicy, stripped.port), stripped, false, "upgrade_not_offered"},
		{"mta-sts mode without a policy", listener("nopolicy.test", DomainMTASTS, good.port), good, false, "policy"},
		{"dane mode without TLSA", listener("nopolicy.test", DomainDANE, good.port), good, false, "policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			beforeGot, beforeMail := tc.mx.read()
			m := NewMetrics()
			addr, s := startProxy(t, tc.l, m)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(15 * time.Second))
			r := bufio.NewReader(c)
			line, err := r.ReadString('\n')
			if !tc.delivers {
				if !strings.HasPrefix(line, "421 ") || !strings.Contains(line, tc.l.UpstreamDomain) {
					t.Fatalf("greeting %q, %v; want 421 naming the domain", line, err)
				}
				// The client may try anyway: the connection is closed.
				fmt.Fprintf(c, "EHLO legacy.test\r\nMAIL FROM:<a@legacy.test>\r\n")
				if rest, _ := r.ReadString('\n'); rest != "" {
					t.Errorf("after 421: %q", rest)
				}
				got, mail := tc.mx.read()
				if len(mail) != len(beforeMail) || strings.Contains(strings.ToUpper(got[len(beforeGot):]), "MAIL FROM") {
					t.Errorf("the MX host was sent a mail command:\n%s", got[len(beforeGot):])
				}
				series := `starttls_proxy_handshake_failures_total{` + s.labels + `,reason="` + tc.reason + `"}`
				waitFor(t, func() bool { return m.Get(series) == 1 })
				return
			}
			if !strings.HasPrefix(line, "220 mx.test") {
				t.Fatalf("greeting %q, %v; want the MX host's", line, err)
			}
			send := func(cmd, want string) {
				t.Helper()
				fmt.Fprintf(c, "%s\r\n", cmd)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						t.Fatalf("%s: %v", cmd, err)
					}
					if len(l) < 4 || l[3] != '-' {
						if !strings.HasPrefix(l, want) {
							t.Fatalf("%s: %q, want %s", cmd, l, want)
						}
						return
					}
				}
			}
			send("EHLO legacy.test", "250")
			send("MAIL FROM:<a@legacy.test>", "250")
			send("RCPT TO:<b@dane.test>", "250")
			send("DATA", "354")
			send("Subject: hi\r\n\r\nthrough the proxy\r\n.", "250")
			send("QUIT", "221")
			waitFor(t, func() bool { _, mail := tc.mx.read(); return len(mail) == len(beforeMail)+1 })
			_, mail := tc.mx.read()
			if m := mail[len(mail)-1]; !strings.Contains(m, "a@legacy.test > b@dane.test") || !strings.Contains(m, "through the proxy") {
				t.Errorf("delivered %q", m)
			}
			got, _ := tc.mx.read()
			// Before TLS the server saw the proxy's EHLO and STARTTLS only.
			if pre := got[len(beforeGot):]; !strings.HasPrefix(pre, "EHLO proxy.test\r\nSTARTTLS\r\n") {
				t.Errorf("the MX host read first %q", pre[:min(len(pre), 60)])
			}
			if v := m.Get(`starttls_proxy_upgrades_total{` + s.labels + `}`); v != 1 {
				t.Errorf("upgrades = %v", v)
			}
		})
	}
}

// TestUpstreamDomainCheck: a domain listener is refused at start-up for
// anything but SMTP and for settings that do not apply to it.
func TestUpstreamDomainCheck(t *testing.T) {
	base := Listener{Listen: "127.0.0.1:0", Protocol: "smtp", UpstreamDomain: "example.org", DomainMode: DomainPolicy}
	if err := base.Check(); err != nil {
		t.Fatalf("valid listener: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Listener)
		want string
	}{
		{"imap", func(l *Listener) { l.Protocol = "imap" }, "needs protocol smtp"},
		{"tcp", func(l *Listener) { l.Protocol = "tcp" }, "needs protocol smtp"},
		{"no mode", func(l *Listener) { l.DomainMode = "" }, "needs mode dane, mta-sts or policy"},
		{"bad mode", func(l *Listener) { l.DomainMode = "opportunistic" }, "want dane, mta-sts or policy"},
		{"starttls mode", func(l *Listener) { l.Mode = starttls.ModeImplicit }, "policy mode"},
		{"address", func(l *Listener) { l.UpstreamDomain = "127.0.0.1" }, "not a mail domain"},
		{"host:port", func(l *Listener) { l.UpstreamDomain = "example.org:25" }, "not a mail domain"},
		{"with upstream", func(l *Listener) { l.Upstream = "mx.example.org:25" }, "one of backend, upstream and upstream_domain"},
		{"server name", func(l *Listener) { l.ServerName = "mx.example.org" }, "server_name"},
		{"send proxy", func(l *Listener) { l.SendProxy = 1 }, "send_proxy"},
		{"client tls", func(l *Listener) { l.ClientTLS = &tls.Config{} }, "DomainOptions.Roots"},
		{"domain mode elsewhere", func(l *Listener) { l.UpstreamDomain, l.Upstream = "", "mx.example.org:25" }, "upstream_domain only"},
	} {
		l := base
		tc.edit(&l)
		err := l.Check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestUpstreamDomainMTASTS: under mode mta-sts the policy is fetched once
// for the listener and cached for its max_age (the second client causes
// no fetch), an MX host with a valid certificate is used and one whose
// certificate does not match its name gets no mail: 421.
func TestUpstreamDomainMTASTS(t *testing.T) {
	ca, err := certs.NewCA("proxy mta-sts CA")
	if err != nil {
		t.Fatal(err)
	}
	mxCert, err := ca.Issue(certs.Leaf{Names: []string{"mx.sts.test"}})
	if err != nil {
		t.Fatal(err)
	}
	webCert, err := ca.Issue(certs.Leaf{Names: []string{"mta-sts.sts.test", "mta-sts.stsbad.test"}})
	if err != nil {
		t.Fatal(err)
	}
	mx := startMX(t, &mxCert)
	var mu sync.Mutex
	fetches := map[string]int{}
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.Split(r.Host, ":")[0]
		mu.Lock()
		fetches[host]++
		mu.Unlock()
		// stsbad.test's MX host is served with mx.sts.test's certificate.
		fmt.Fprintf(w, "version: STSv1\nmode: enforce\nmx: mx.%s\nmax_age: 86400\n", strings.TrimPrefix(host, "mta-sts."))
	}))
	web.TLS = &tls.Config{Certificates: []tls.Certificate{webCert}}
	web.StartTLS()
	t.Cleanup(web.Close)
	dns := dnstest.Start(t)
	for _, d := range []string{"sts.test", "stsbad.test"} {
		dns.Add(t, d+". 60 IN MX 10 mx."+d+".", "mx."+d+". 60 IN A 127.0.0.1",
			"mta-sts."+d+". 60 IN A 127.0.0.1", `_mta-sts.`+d+`. 60 IN TXT "v=STSv1; id=1"`)
	}
	for _, tc := range []struct {
		domain, greeting, reason string
	}{
		{"sts.test", "220 mx.test", ""},
		{"stsbad.test", "421 ", "certificate"},
	} {
		m := NewMetrics()
		addr, s := startProxy(t, Listener{
			Protocol: "smtp", UpstreamDomain: tc.domain, DomainMode: DomainMTASTS,
			DomainOptions: &maildomain.Options{
				Resolver: &resolver.Resolver{Addr: dns.Addr, Timeout: time.Second},
				Roots:    ca.Pool(), Port: mx.port, MTASTSPort: web.Listener.Addr().(*net.TCPAddr).Port,
			},
		}, m)
		for i := range 2 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if !strings.HasPrefix(line, tc.greeting) {
				t.Fatalf("%s #%d: greeting %q, %v; want %q", tc.domain, i, line, err, tc.greeting)
			}
		}
		mu.Lock()
		n := fetches["mta-sts."+tc.domain]
		mu.Unlock()
		if n != 1 {
			t.Errorf("%s: policy fetched %d times for two clients, want 1 (cached for max_age)", tc.domain, n)
		}
		if tc.reason != "" {
			series := `starttls_proxy_handshake_failures_total{` + s.labels + `,reason="` + tc.reason + `"}`
			waitFor(t, func() bool { return m.Get(series) == 2 })
		}
	}
	if got, _ := mx.read(); strings.Contains(strings.ToUpper(got), "MAIL FROM") {
		t.Errorf("the MX host was sent a mail command:\n%s", got)
	}
}
