package cli

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/internal/dnstest"
	"github.com/starttls/starttls/smtp"
)

// TestCheckDomain runs `starttls check DOMAIN` against a DNSSEC-secure
// domain with DANE and an unsigned one without any policy, through the
// flags a test lab uses.
func TestCheckDomain(t *testing.T) {
	ca, err := certs.NewCA("cli domain CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(certs.Leaf{Names: []string{"mx.dane.test", "mx.plain.test"}})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &smtp.Server{ServerOptions: starttls.ServerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	dns := dnstest.Start(t,
		"dane.test. 60 IN MX 10 mx.dane.test.",
		"mx.dane.test. 60 IN A 127.0.0.1",
		fmt.Sprintf("_%s._tcp.mx.dane.test. 60 IN TLSA 3 1 1 %s", port, hex.EncodeToString(sum[:])),
		`_smtp._tls.dane.test. 60 IN TXT "v=TLSRPTv1; rua=mailto:tls@dane.test"`,
		"plain.test. 60 IN MX 10 mx.plain.test.",
		"mx.plain.test. 60 IN A 127.0.0.1",
	)
	dns.Secure("dane.test")
	common := []string{"--resolver", dns.Addr, "--ca", caFile, "--smtp-port", port, "--quick", "--no-injection"}

	code, out, stderr := run(append([]string{"check", "--json"}, append(common, "dane.test")...)...)
	if code != 0 {
		t.Fatalf("check dane.test: exit %d, stderr %q, out %s", code, stderr, out)
	}
	var top struct {
		Domain struct {
			Name string `json:"name"`
			MX   []struct {
				Host    string   `json:"host"`
				Address []string `json:"address"`
			} `json:"mx"`
			DANE struct {
				DNSSEC string `json:"dnssec"`
				Valid  bool   `json:"valid"`
				TLSA   []struct {
					Name    string `json:"name"`
					Matched *bool  `json:"matched"`
				} `json:"tlsa"`
			} `json:"dane"`
			Verdict struct {
				DANE  *bool `json:"dane_sender_delivers"`
				STS   *bool `json:"mta_sts_sender_delivers"`
				Strip bool  `json:"striptls_possible"`
			} `json:"verdict"`
			Reports []json.RawMessage `json:"reports"`
		} `json:"domain"`
	}
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	d := top.Domain
	if d.Name != "dane.test" || len(d.MX) != 1 || d.MX[0].Host != "mx.dane.test" || d.DANE.DNSSEC != "secure" || !d.DANE.Valid ||
		d.Verdict.DANE == nil || !*d.Verdict.DANE || d.Verdict.STS != nil || d.Verdict.Strip || len(d.Reports) != 1 {
		t.Errorf("check dane.test --json: %+v", d)
	}
	if len(d.DANE.TLSA) == 0 || d.DANE.TLSA[0].Name != "_"+port+"._tcp.mx.dane.test" || d.DANE.TLSA[0].Matched == nil || !*d.DANE.TLSA[0].Matched {
		t.Errorf("TLSA entries %+v: want _%s._tcp first and matched", d.DANE.TLSA, port)
	}

	htmlFile := filepath.Join(t.TempDir(), "report.html")
	code, out, _ = run(append([]string{"check", "--html", htmlFile}, append(common, "plain.test")...)...)
	if code != 1 || !strings.Contains(out, "striptls-possible") || !strings.Contains(out, "tlsrpt-missing") || !strings.Contains(out, "── MX smtp://mx.plain.test:"+port) {
		t.Errorf("check plain.test: exit %d, want 1 with striptls-possible:\n%s", code, out)
	}
	page, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Mail domain plain.test", "<code>striptls-possible</code>", "<code>tlsrpt-missing</code>", ">MTA-STS<", "smtp://mx.plain.test:" + port} {
		if !strings.Contains(string(page), want) {
			t.Errorf("--html page has no %q", want)
		}
	}
}

func TestCheckDomainBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad resolver", []string{"check", "--resolver", "127.0.0.1", "example.org"}, "--resolver"},
		{"bad port", []string{"check", "--smtp-port", "70000", "example.org"}, "--smtp-port"},
		{"bad policy port", []string{"check", "--mta-sts-port", "-1", "example.org"}, "--mta-sts-port"},
		{"mode with domain", []string{"check", "--mode", "required", "example.org"}, "--mode"},
		{"trace with domain", []string{"check", "--trace", "example.org"}, "--trace"},
		{"address literal", []string{"check", "127.0.0.1"}, "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(tt.args...)
			if code != 3 || !strings.Contains(stderr, tt.want) {
				t.Errorf("%v: exit %d, stderr %q; want 3 and %q", tt.args, code, stderr, tt.want)
			}
		})
	}
	// A resolver that does not answer: exit 3 within the timeouts.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	code, _, stderr := run("check", "--resolver", pc.LocalAddr().String(), "silent.test")
	if code != 3 || !strings.Contains(stderr, "MX") {
		t.Errorf("silent resolver: exit %d, stderr %q; want 3 and the MX lookup error", code, stderr)
	}
}
