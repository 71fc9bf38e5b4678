package check_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/check"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/internal/dnstest"
	"github.com/starttls/starttls/resolver"
	"github.com/starttls/starttls/smtp"
)

const okPolicy = "version: STSv1\nmode: enforce\nmx: mx.%[1]s\nmax_age: 86400\n"

// scenario is one test domain: its DNS data, its policy host's answer and
// its MX server's certificate names; want are the finding ids the audit
// must report (and no other non-info finding unless listed in also).
type scenario struct {
	name    string   // domain under test
	records []string // zone lines; %[1]s is the domain
	secure  bool     // the whole domain is DNSSEC-secure
	bogus   []string // names whose answers fail validation
	policy  func(w http.ResponseWriter, r *http.Request)
	// certNames are the names in the MX server's certificate; nil means
	// mx.DOMAIN.
	certNames []string
	// tlsa adds a "3 1 1" record of the server's key at _25._tcp.mx.DOMAIN,
	// with this usage (0 means none).
	tlsaUsage  int
	wrongTLSA  bool   // the TLSA record is of another key
	tlsaHost   string // where the TLSA record goes instead of mx.DOMAIN
	noServer   bool
	also       []string // ids an MX report must have
	want       []string
	check      func(t *testing.T, d *check.DomainReport)
	wantResult check.Verdict
}

func text(s string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, strings.ReplaceAll(s, "%[1]s", strings.TrimPrefix(strings.Split(r.Host, ":")[0], "mta-sts.")))
	}
}

func base(records ...string) []string {
	return append([]string{
		"%[1]s. 60 IN MX 10 mx.%[1]s.",
		"mx.%[1]s. 60 IN A 127.0.0.1",
		"mta-sts.%[1]s. 60 IN A 127.0.0.1",
		`_smtp._tls.%[1]s. 60 IN TXT "v=TLSRPTv1; rua=mailto:tls@%[1]s"`,
	}, records...)
}

const stsTXT = `_mta-sts.%[1]s. 60 IN TXT "v=STSv1; id=1"`

func TestRunDomain(t *testing.T) {
	scenarios := []scenario{
		{name: "sts-ok.test", records: base(stsTXT), policy: text(okPolicy), want: []string{"dane-missing"}, wantResult: check.Pass,
			check: func(t *testing.T, d *check.DomainReport) {
				v := d.Verdict
				if v.MTASTSSenderDelivers == nil || !*v.MTASTSSenderDelivers || v.STRIPTLSPossible || v.DANESenderDelivers != nil {
					t.Errorf("verdict %+v", v)
				}
				if !d.MTASTS.Valid || d.MTASTS.Mode != "enforce" || d.MTASTS.MaxAge != 86400 || !slices.Equal(d.MTASTS.MX, []string{"mx.sts-ok.test"}) {
					t.Errorf("mta_sts %+v", d.MTASTS)
				}
				if len(d.Reports) != 1 || !strings.HasPrefix(d.Reports[0].Target, "smtp://mx.sts-ok.test:") || d.Reports[0].Verdict != check.Pass {
					t.Errorf("reports %+v", d.Reports)
				}
			}},
		{name: "dane-ok.test", records: base(), secure: true, tlsaUsage: 3, want: []string{"mta-sts-missing"}, wantResult: check.Pass,
			// The certificate names another host and comes from no
			// trusted CA: DANE-EE ignores both.
			certNames: []string{"elsewhere.example"},
			check: func(t *testing.T, d *check.DomainReport) {
				v := d.Verdict
				if v.DANESenderDelivers == nil || !*v.DANESenderDelivers || v.STRIPTLSPossible || !d.DANE.Valid || d.DANE.DNSSEC != "secure" {
					t.Errorf("verdict %+v, dane %+v", v, d.DANE)
				}
				used := 0
				for _, ta := range d.DANE.TLSA {
					if ta.Used {
						used++
						if !strings.HasPrefix(ta.Name, "_25._tcp.") || ta.Matched == nil || !*ta.Matched {
							t.Errorf("used TLSA %+v", ta)
						}
					}
				}
				if used != 1 {
					t.Errorf("TLSA %+v: %d used, want 1", d.DANE.TLSA, used)
				}
			}},
		{name: "nx.test", records: []string{"other.test. 60 IN A 127.0.0.1"}, noServer: true, want: []string{"mx-none"}, wantResult: check.Fails},
		{name: "null.test", records: []string{"null.test. 60 IN MX 0 ."}, noServer: true, want: []string{"mx-null"}, wantResult: check.Pass},
		{name: "implicit.test", records: []string{"implicit.test. 60 IN A 127.0.0.1"}, certNames: []string{"implicit.test"}, want: []string{"mx-implicit", "striptls-possible", "tlsrpt-missing"}, wantResult: check.Warns,
			check: func(t *testing.T, d *check.DomainReport) {
				if len(d.MX) != 1 || !d.MX[0].Implicit || d.MX[0].Host != "implicit.test" || !slices.Equal(d.MX[0].Address, []string{"127.0.0.1"}) {
					t.Errorf("mx %+v", d.MX)
				}
			}},
		{name: "nosts.test", records: base(), want: []string{"mta-sts-missing", "striptls-possible"}, wantResult: check.Warns,
			check: func(t *testing.T, d *check.DomainReport) {
				if !d.Verdict.STRIPTLSPossible || d.Verdict.MTASTSSenderDelivers != nil {
					t.Errorf("verdict %+v", d.Verdict)
				}
			}},
		{name: "txt-invalid.test", records: base(`_mta-sts.%[1]s. 60 IN TXT "v=STSv1; id=not valid!"`), want: []string{"mta-sts-txt-invalid", "striptls-possible"}},
		{name: "txt-dup.test", records: base(stsTXT, `_mta-sts.%[1]s. 60 IN TXT "v=STSv1; id=2"`), want: []string{"mta-sts-txt-duplicate", "striptls-possible"}},
		{name: "fetch-failed.test", records: base(stsTXT), policy: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, want: []string{"mta-sts-policy-fetch-failed", "striptls-possible"}},
		{name: "redirect.test", records: base(stsTXT), policy: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/policy", http.StatusMovedPermanently)
		}, want: []string{"mta-sts-policy-redirect", "striptls-possible"}},
		{name: "large.test", records: base(stsTXT), policy: text(okPolicy + strings.Repeat("#", 70000)), want: []string{"mta-sts-policy-too-large", "striptls-possible"}},
		{name: "maxage.test", records: base(stsTXT), policy: text("version: STSv1\nmode: enforce\nmx: mx.%[1]s\nmax_age: 31557601\n"), want: []string{"mta-sts-policy-invalid", "striptls-possible"},
			check: func(t *testing.T, d *check.DomainReport) {
				if d.MTASTS.Valid || !strings.Contains(d.MTASTS.Error, "max_age") || d.MTASTS.Policy == "" {
					t.Errorf("mta_sts %+v", d.MTASTS)
				}
			}},
		{name: "testing.test", records: base(stsTXT), policy: text("version: STSv1\nmode: testing\nmx: mx.%[1]s\nmax_age: 86400\n"), want: []string{"mta-sts-testing", "striptls-possible"}},
		{name: "mismatch.test", records: base(stsTXT), policy: text("version: STSv1\nmode: enforce\nmx: mail.elsewhere.example\nmax_age: 86400\n"), want: []string{"mta-sts-mx-mismatch"},
			check: func(t *testing.T, d *check.DomainReport) {
				if v := d.Verdict.MTASTSSenderDelivers; v == nil || *v {
					t.Errorf("mta_sts_sender_delivers %v, want false", v)
				}
			}},
		{name: "sts-badcert.test", records: base(stsTXT), policy: text(okPolicy), certNames: []string{"wrong.example"}, want: []string{"mta-sts-mx-cert-invalid"}, also: []string{"cert-name-mismatch"}},
		{name: "nortp.test", records: append(base()[:3], stsTXT), policy: text(okPolicy), want: []string{"tlsrpt-missing"}},
		{name: "badrtp.test", records: append(base()[:3], stsTXT, `_smtp._tls.%[1]s. 60 IN TXT "v=TLSRPTv1; rua=ftp://x"`), policy: text(okPolicy), want: []string{"tlsrpt-invalid"}},
		{name: "dane-mismatch.test", records: base(), secure: true, tlsaUsage: 3, wrongTLSA: true, want: []string{"dane-tlsa-mismatch"}},
		{name: "dane-unusable.test", records: base(), secure: true, tlsaUsage: 1, want: []string{"dane-tlsa-unusable"},
			// RFC 7672 §2.2: TLS is required but cannot be authenticated.
			check: func(t *testing.T, d *check.DomainReport) {
				s := d.Verdict.Summary
				if v := d.Verdict.DANESenderDelivers; v == nil || !*v || !strings.Contains(s, "unauthenticated TLS") || strings.Contains(s, "authenticated by TLSA") {
					t.Errorf("dane_sender_delivers %v, summary %q: want true and unauthenticated", v, s)
				}
			}},
		{name: "rtp-dup.test", records: append(base(), `_smtp._tls.%[1]s. 60 IN TXT "v=TLSRPTv1; rua=mailto:other@%[1]s"`), want: []string{"tlsrpt-invalid", "mta-sts-missing", "striptls-possible"},
			check: func(t *testing.T, d *check.DomainReport) {
				if d.TLSRPT.Valid || !strings.Contains(d.TLSRPT.Error, "more than one") || strings.Count(d.TLSRPT.Record, "v=TLSRPTv1") != 2 {
					t.Errorf("tlsrpt %+v", d.TLSRPT)
				}
			}},
		// "v=TLSRPTv10" is not the version field (RFC 8460 §3): no record.
		{name: "rtp-v10.test", records: append(base()[:3], `_smtp._tls.%[1]s. 60 IN TXT "v=TLSRPTv10; rua=mailto:x@%[1]s"`, `_smtp._tls.%[1]s. 60 IN TXT "unrelated"`), want: []string{"tlsrpt-missing", "striptls-possible"},
			check: func(t *testing.T, d *check.DomainReport) {
				if d.Has("tlsrpt-invalid") || d.TLSRPT.Record != "" {
					t.Errorf("tlsrpt %+v", d.TLSRPT)
				}
			}},
		// Every answer of the domain fails validation: one dnssec-bogus
		// for the domain's names and one for the MX host's, no repeats.
		{name: "allbogus.test", records: base(stsTXT), secure: true, tlsaUsage: 3, policy: text(okPolicy),
			bogus: []string{"allbogus.test", "mx.allbogus.test", "_25._tcp.mx.allbogus.test", "_mta-sts.allbogus.test", "_smtp._tls.allbogus.test"},
			want:  []string{"dnssec-bogus"},
			check: func(t *testing.T, d *check.DomainReport) {
				var got []check.DomainFinding
				for _, f := range d.Findings {
					if f.ID == "dnssec-bogus" {
						got = append(got, f)
					}
				}
				if len(got) != 2 || got[0].MX != "" || got[1].MX != "mx.allbogus.test" {
					t.Fatalf("dnssec-bogus findings %+v: want one for the domain, one for the MX host", got)
				}
				for _, name := range []string{"the MX answer at allbogus.test", "_mta-sts.allbogus.test", "_smtp._tls.allbogus.test"} {
					if !strings.Contains(got[0].Detail, name) {
						t.Errorf("domain finding %q does not name %s", got[0].Detail, name)
					}
				}
				for _, name := range []string{"the address answer at mx.allbogus.test", "the TLSA answer at _25._tcp.mx.allbogus.test"} {
					if !strings.Contains(got[1].Detail, name) {
						t.Errorf("MX finding %q does not name %s", got[1].Detail, name)
					}
				}
			}},
		{name: "insecure.test", records: base(), tlsaUsage: 3, want: []string{"dnssec-insecure", "striptls-possible"}},
		{name: "bogus.test", records: base(), secure: true, tlsaUsage: 3, bogus: []string{"_25._tcp.mx.bogus.test"}, want: []string{"dnssec-bogus"},
			check: func(t *testing.T, d *check.DomainReport) {
				if v := d.Verdict.DANESenderDelivers; v == nil || *v || d.Has("dane-missing") {
					t.Errorf("dane_sender_delivers %v, dane-missing %v: want false and absent", v, d.Has("dane-missing"))
				}
			}},
		{name: "bogus-mx.test", records: base(), secure: true, bogus: []string{"bogus-mx.test"}, want: []string{"dnssec-bogus"},
			check: func(t *testing.T, d *check.DomainReport) {
				if v := d.Verdict.DANESenderDelivers; v == nil || *v || d.DANE.DNSSEC != "bogus" || len(d.MX) != 1 {
					t.Errorf("dane_sender_delivers %v, dane.dnssec %s, mx %+v: want false, bogus, the MX still checked", v, d.DANE.DNSSEC, d.MX)
				}
			}},
		{name: "mediatype.test", records: base(stsTXT), policy: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, okPolicy, "mediatype.test")
		}, want: []string{"mta-sts-policy-fetch-failed", "striptls-possible"}},
		// The MX host is a CNAME: its TLSA records are at the target
		// (RFC 7672 §2.2.2).
		{name: "cname.test", records: []string{"cname.test. 60 IN MX 10 mx.cname.test.", "mx.cname.test. 60 IN CNAME target.cname.test.", "target.cname.test. 60 IN A 127.0.0.1",
			`_smtp._tls.cname.test. 60 IN TXT "v=TLSRPTv1; rua=mailto:tls@cname.test"`}, secure: true, tlsaUsage: 3, tlsaHost: "target.cname.test", want: []string{"mta-sts-missing"}, wantResult: check.Pass,
			check: func(t *testing.T, d *check.DomainReport) {
				var used []string
				for _, ta := range d.DANE.TLSA {
					if ta.Used && ta.Matched != nil && *ta.Matched {
						used = append(used, ta.Name)
					}
				}
				if !slices.Equal(used, []string{"_25._tcp.target.cname.test"}) || !d.DANE.Valid {
					t.Errorf("matched TLSA %v (entries %+v), want the CNAME target's", used, d.DANE.TLSA)
				}
			}},
	}

	ca, err := certs.NewCA("domain test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.Issue(certs.Leaf{Names: []string{"other.example"}})
	if err != nil {
		t.Fatal(err)
	}
	dns := dnstest.Start(t)
	policies := map[string]func(http.ResponseWriter, *http.Request){}
	var policyNames []string
	for _, sc := range scenarios {
		policyNames = append(policyNames, "mta-sts."+sc.name)
		policies[sc.name] = sc.policy
	}
	pcert, err := ca.Issue(certs.Leaf{Names: policyNames})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := policies[strings.TrimPrefix(strings.Split(r.Host, ":")[0], "mta-sts.")]
		if h == nil || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	web.TLS = &tls.Config{Certificates: []tls.Certificate{pcert}}
	web.StartTLS()
	t.Cleanup(web.Close)
	webPort := web.Listener.Addr().(*net.TCPAddr).Port

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			names := sc.certNames
			if names == nil {
				names = []string{"mx." + sc.name}
			}
			cert, err := ca.Issue(certs.Leaf{Names: names})
			if err != nil {
				t.Fatal(err)
			}
			port := 0
			if !sc.noServer {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				srv := &smtp.Server{ServerOptions: starttls.ServerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, Hostname: "mx." + sc.name}}
				go srv.Serve(l)
				t.Cleanup(func() { srv.Close() })
				port = l.Addr().(*net.TCPAddr).Port
			}
			for _, r := range sc.records {
				dns.Add(t, strings.ReplaceAll(r, "%[1]s", sc.name))
			}
			if sc.tlsaUsage != 0 {
				key := cert.Leaf
				if sc.wrongTLSA {
					key = other.Leaf
				}
				sum := sha256.Sum256(key.RawSubjectPublicKeyInfo)
				host := "mx." + sc.name
				if sc.tlsaHost != "" {
					host = sc.tlsaHost
				}
				dns.Add(t, fmt.Sprintf("_25._tcp.%s. 60 IN TLSA %d 1 1 %s", host, sc.tlsaUsage, hex.EncodeToString(sum[:])))
			}
			if sc.secure {
				dns.Secure(sc.name)
			}
			for _, b := range sc.bogus {
				dns.Bogus(b)
			}
			o := &check.DomainOptions{
				Options:    check.Options{Roots: ca.Pool(), Quick: true, SkipInjection: true, Timeout: 5 * time.Second},
				Resolver:   &resolver.Resolver{Addr: dns.Addr, Timeout: time.Second},
				SMTPPort:   port,
				MTASTSPort: webPort,
			}
			d := check.RunDomain(context.Background(), sc.name, o)
			var got []string
			for _, f := range d.Findings {
				got = append(got, f.ID)
			}
			for _, w := range sc.want {
				if !d.Has(w) {
					t.Errorf("RunDomain(%s): findings %v, missing %q", sc.name, got, w)
				}
			}
			for _, f := range d.Findings {
				if f.Severity != check.Info && !slices.Contains(sc.want, f.ID) {
					t.Errorf("RunDomain(%s): unexpected finding %s %s: %s", sc.name, f.Severity, f.ID, f.Detail)
				}
			}
			for _, id := range sc.also {
				found := false
				for _, r := range d.Reports {
					found = found || r.Has(id)
				}
				if !found {
					t.Errorf("RunDomain(%s): no MX report has %q", sc.name, id)
				}
			}
			if sc.wantResult != "" && d.Verdict.Result != sc.wantResult {
				t.Errorf("RunDomain(%s): result %s, want %s (findings %v)", sc.name, d.Verdict.Result, sc.wantResult, got)
			}
			if sc.wantResult == "" && d.Verdict.Result == check.Pass {
				t.Errorf("RunDomain(%s): result pass, findings %v", sc.name, got)
			}
			if sc.check != nil {
				sc.check(t, d)
			}
			// The JSON has the spec's shape.
			b, err := json.Marshal(map[string]any{"domain": d})
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]map[string]any
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"name", "mx", "null_mx", "mta_sts", "tlsrpt", "dane", "verdict", "findings", "reports"} {
				if _, ok := back["domain"][k]; !ok {
					t.Errorf("JSON has no domain.%s", k)
				}
			}
			// The HTML page has the domain part and the MX checks.
			var page strings.Builder
			if err := check.WriteHTMLDomains(&page, []*check.DomainReport{d}, nil); err != nil {
				t.Fatal(err)
			}
			html := page.String()
			for _, want := range []string{"Mail domain " + sc.name, ">MX<", ">MTA-STS<", ">TLS-RPT<", ">DANE<", ">Verdict<", string(d.Verdict.Result)} {
				if !strings.Contains(html, want) {
					t.Errorf("HTML has no %q", want)
				}
			}
			for _, f := range d.Findings {
				if !strings.Contains(html, "<code>"+f.ID+"</code>") {
					t.Errorf("HTML has no finding %s", f.ID)
				}
			}
			for _, r := range d.Reports {
				if !strings.Contains(html, r.Target) {
					t.Errorf("HTML has no MX report %s", r.Target)
				}
			}
			var sb strings.Builder
			d.WriteText(&sb)
			if !strings.Contains(sb.String(), sc.name) {
				t.Errorf("text report does not name the domain:\n%s", sb.String())
			}
		})
	}
}

// TestRunDomainManyMX: a domain listing more MX hosts than MaxMX gets only
// the first MaxMX checked, and the summary says so.
func TestRunDomainManyMX(t *testing.T) {
	dns := dnstest.Start(t)
	for i := range check.MaxMX + 4 {
		dns.Add(t, fmt.Sprintf("many.test. 60 IN MX %d mx%d.many.test.", i, i))
	}
	d := check.RunDomain(context.Background(), "many.test", &check.DomainOptions{
		Options:  check.Options{Quick: true, SkipInjection: true, Timeout: time.Second},
		Resolver: &resolver.Resolver{Addr: dns.Addr, Timeout: time.Second},
	})
	if len(d.MX) != check.MaxMX || d.MX[0].Host != "mx0.many.test" || !strings.Contains(d.Verdict.Summary, fmt.Sprintf("only the first %d of %d", check.MaxMX, check.MaxMX+4)) {
		t.Errorf("%d MX, summary %q", len(d.MX), d.Verdict.Summary)
	}
	if d.Verdict.Result != check.Fails || d.MX[0].Error == "" || len(d.Reports) != 0 {
		t.Errorf("MX hosts without addresses: result %s, mx[0] %+v, %d reports", d.Verdict.Result, d.MX[0], len(d.Reports))
	}
}
