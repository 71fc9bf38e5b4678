//go:build interop

package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// Mail-domain security (issue 5): `starttls check DOMAIN` against test
// domains served by the module "mailsec" (scripts/interop/modules/mailsec.sh):
// a validating unbound on loopback whose only trust anchor is the zone
// sec.test (signed by the module with ldns-signzone), knotd serving the
// zones, and an HTTPS server for the MTA-STS policies; every MX is the mail
// module's Postfix (certificate names 127.0.0.1, localhost,
// mx.interop.test). The zone files and the policy server's behaviour per
// host are in scripts/interop/mailsec/.
//
// TestMailsecOracles first proves the fixtures with tools that are not
// ours: dig shows the AD bit on the signed zone, SERVFAIL on the bogus ones
// and no AD on the insecure one; curl fetches each policy the way the RFC
// says a sender must not accept; openssl s_client's DANE verification
// accepts the published TLSA record against Postfix and refuses the wrong
// one. TestMailsecCheck then asserts what our binary reports per domain.

// mailsecDomain is the `domain` object of `starttls check DOMAIN --json`
// (the issue-5 spec). Fields that the spec allows to be null are raw, so
// that null, absent, true and false stay four different things.
type mailsecDomain struct {
	Name string `json:"name"`
	MX   []struct {
		Host       string   `json:"host"`
		Preference int      `json:"preference"`
		Address    []string `json:"address"`
		Implicit   bool     `json:"implicit"`
	} `json:"mx"`
	NullMX *bool `json:"null_mx"`
	MTASTS *struct {
		TXT    string   `json:"txt"`
		Policy string   `json:"policy"`
		Mode   string   `json:"mode"`
		MaxAge int64    `json:"max_age"`
		MX     []string `json:"mx"`
		Valid  *bool    `json:"valid"`
		Error  string   `json:"error"`
	} `json:"mta_sts"`
	TLSRPT *struct {
		Record string `json:"record"`
		Valid  *bool  `json:"valid"`
		Error  string `json:"error"`
	} `json:"tlsrpt"`
	DANE *struct {
		DNSSEC string `json:"dnssec"`
		TLSA   []struct {
			MX      string   `json:"mx"`
			Name    string   `json:"name"`
			Records []string `json:"records"`
			DNSSEC  string   `json:"dnssec"`
			Matched *bool    `json:"matched"`
		} `json:"tlsa"`
		Valid *bool `json:"valid"`
	} `json:"dane"`
	Verdict *struct {
		DANESenderDelivers   json.RawMessage `json:"dane_sender_delivers"`
		MTASTSSenderDelivers json.RawMessage `json:"mta_sts_sender_delivers"`
		StriptlsPossible     json.RawMessage `json:"striptls_possible"`
		Summary              string          `json:"summary"`
	} `json:"verdict"`
	Findings []mailsecFinding  `json:"findings"`
	Reports  []json.RawMessage `json:"reports"`
}

type mailsecFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	MX       string `json:"mx"`
	Detail   string `json:"detail"`
}

// The finding ids of spec5.md; a case lists those it must hold and those
// it must not (every id of the spec that contradicts the fixture).
var mailsecIDs = []string{
	"mx-none", "mx-null", "mx-implicit",
	"mta-sts-missing", "mta-sts-txt-invalid", "mta-sts-txt-duplicate",
	"mta-sts-policy-fetch-failed", "mta-sts-policy-redirect", "mta-sts-policy-too-large",
	"mta-sts-policy-invalid", "mta-sts-testing", "mta-sts-mx-mismatch", "mta-sts-mx-cert-invalid",
	"tlsrpt-missing", "tlsrpt-invalid",
	"dane-missing", "dane-tlsa-mismatch", "dane-tlsa-unusable", "dnssec-insecure", "dnssec-bogus",
	"striptls-possible",
}

// tri is an expectation on a JSON boolean that may be null: "" not
// asserted, else the exact JSON text ("true", "false", "null").
type tri string

const (
	triAny   tri = ""
	triTrue  tri = "true"
	triFalse tri = "false"
	triNull  tri = "null"
)

type mailsecCase struct {
	domain string
	why    string            // what the fixture is
	want   map[string]string // finding id -> severity ("" any)
	// absent: ids that must not be reported (those the fixture rules out).
	absent []string
	exit   int
	dane   tri // verdict.dane_sender_delivers
	sts    tri // verdict.mta_sts_sender_delivers
	strip  tri // verdict.striptls_possible
	check  func(t *testing.T, d *mailsecDomain, tlsa string)
}

// Every MTA-STS failure id: a case with a healthy policy has none.
var stsFailures = []string{
	"mta-sts-txt-invalid", "mta-sts-txt-duplicate", "mta-sts-policy-fetch-failed", "mta-sts-policy-redirect",
	"mta-sts-policy-too-large", "mta-sts-policy-invalid", "mta-sts-mx-mismatch", "mta-sts-mx-cert-invalid",
}

// Every DANE/DNSSEC failure id.
var daneFailures = []string{"dane-tlsa-mismatch", "dane-tlsa-unusable", "dnssec-bogus"}

var mxFindings = []string{"mx-none", "mx-null", "mx-implicit"}

func concat(lists ...[]string) []string { return slices.Concat(lists...) }

var mailsecCases = []mailsecCase{
	{
		domain: "dane-ok.sec.test", why: "signed, DS in sec.test, TLSA 3 1 1 of the Postfix key at _25 and _10025",
		want:   map[string]string{"mta-sts-missing": "info"},
		absent: concat(daneFailures, mxFindings, []string{"dane-missing", "dnssec-insecure", "tlsrpt-missing", "tlsrpt-invalid", "striptls-possible"}),
		exit:   0, dane: triTrue, sts: triNull, strip: triFalse,
		check: func(t *testing.T, d *mailsecDomain, tlsa string) {
			wantMX(t, d, "mx.dane-ok.sec.test", 10, false)
			wantDANE(t, d, "secure", true)
			wantTLSA(t, d, "mx.dane-ok.sec.test", "secure", true, "3 1 1 "+tlsa)
			wantTLSRPT(t, d, true)
		},
	},
	{
		domain: "dane-bad.sec.test", why: "signed, TLSA 3 1 1 of the CA's key (not the one Postfix presents)",
		want:   map[string]string{"dane-tlsa-mismatch": "fail"},
		absent: concat(mxFindings, []string{"dnssec-bogus", "dnssec-insecure", "dane-missing"}),
		exit:   2, dane: triFalse, sts: triNull,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			wantDANE(t, d, "secure", false)
			wantTLSA(t, d, "mx.dane-bad.sec.test", "secure", false, "")
		},
	},
	{
		domain: "unusable.sec.test", why: "signed, DS in sec.test, TLSA 1 1 1 (PKIX-EE) of the Postfix key: unusable for SMTP (RFC 7672 3.1.3)",
		want:   map[string]string{"dane-tlsa-unusable": "warn"},
		absent: concat(mxFindings, []string{"dane-tlsa-mismatch", "dnssec-bogus", "dnssec-insecure", "dane-missing"}),
		exit:   1,
		check: func(t *testing.T, d *mailsecDomain, tlsa string) {
			wantMX(t, d, "mx.unusable.sec.test", 10, false)
			wantTLSA(t, d, "mx.unusable.sec.test", "secure", false, "1 1 1 "+tlsa)
		},
	},
	{
		domain: "cname.sec.test", why: "signed, the MX host a CNAME to mx.dane-ok.sec.test, TLSA only at the target (RFC 7672 2.2.2)",
		want:   map[string]string{"mta-sts-missing": "info"},
		absent: concat(daneFailures, mxFindings, []string{"dane-missing", "dnssec-insecure", "striptls-possible"}),
		exit:   0, dane: triTrue, strip: triFalse,
		check: func(t *testing.T, d *mailsecDomain, tlsa string) {
			wantDANE(t, d, "secure", true)
			matched := false
			for _, e := range d.DANE.TLSA {
				if e.Matched != nil && *e.Matched && strings.HasSuffix(e.Name, "._tcp.mx.dane-ok.sec.test") && e.DNSSEC == "secure" {
					matched = true
				}
			}
			if !matched {
				t.Errorf("no secure, matched TLSA entry at the CNAME target _PORT._tcp.mx.dane-ok.sec.test: %+v", d.DANE.TLSA)
			}
		},
	},
	{
		domain: "bogus.sec.test", why: "signed, but sec.test holds the DS of another key: every answer SERVFAIL",
		want: map[string]string{"dnssec-bogus": "fail"},
		// The records are still there for reporting (a CD=1 retry): bogus is not "no MX".
		absent: []string{"dnssec-insecure", "dane-missing", "mx-none"},
		exit:   2, dane: triFalse,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			if d.DANE == nil || d.DANE.DNSSEC != "bogus" {
				t.Errorf("dane.dnssec = %v, want bogus", daneDNSSEC(d))
			}
		},
	},
	{
		domain: "bogus-tlsa.sec.test", why: "signed, DS in sec.test, the TLSA RRSIGs corrupted after signing (MX secure)",
		want:   map[string]string{"dnssec-bogus": "fail"},
		absent: concat(mxFindings, []string{"dnssec-insecure", "dane-missing", "dane-tlsa-mismatch"}),
		exit:   2, dane: triFalse,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			wantMX(t, d, "mx.bogus-tlsa.sec.test", 10, false)
			wantTLSA(t, d, "mx.bogus-tlsa.sec.test", "bogus", false, "")
		},
	},
	{
		domain: "insecure.sec.test", why: "unsigned child, no DS in sec.test (provably insecure), TLSA of the Postfix key",
		want:   map[string]string{"dnssec-insecure": "", "striptls-possible": "warn"},
		absent: concat(mxFindings, []string{"dnssec-bogus", "dane-tlsa-mismatch"}),
		exit:   1, dane: triNull, sts: triNull, strip: triTrue,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			if d.DANE == nil || d.DANE.DNSSEC != "insecure" {
				t.Errorf("dane.dnssec = %v, want insecure", daneDNSSEC(d))
			}
		},
	},
	{
		domain: "enforce.sts.test", why: "MTA-STS enforce, mx: mx.interop.test (the Postfix certificate's name), TLS-RPT mailto+https",
		want:   map[string]string{"dane-missing": "info"},
		absent: concat(stsFailures, mxFindings, []string{"mta-sts-missing", "mta-sts-testing", "tlsrpt-missing", "tlsrpt-invalid", "striptls-possible", "dnssec-bogus"}),
		exit:   0, dane: triNull, sts: triTrue, strip: triFalse,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			wantMX(t, d, "mx.interop.test", 10, false)
			wantSTS(t, d, true, "enforce", 86400, []string{"mx.interop.test"})
			if d.MTASTS != nil && d.MTASTS.TXT != "v=STSv1; id=20261123enforce" {
				t.Errorf("mta_sts.txt = %q", d.MTASTS.TXT)
			}
			if d.MTASTS != nil && !strings.Contains(d.MTASTS.Policy, "mode: enforce") {
				t.Errorf("mta_sts.policy = %q, want the raw policy", d.MTASTS.Policy)
			}
			wantTLSRPT(t, d, true)
		},
	},
	{
		domain: "wildcard.sts.test", why: "MTA-STS enforce, mx: *.interop.test; TLS-RPT rua=ftp:",
		want:   map[string]string{"tlsrpt-invalid": "fail"},
		absent: concat(stsFailures, mxFindings, []string{"mta-sts-missing", "tlsrpt-missing", "striptls-possible"}),
		exit:   2, sts: triTrue, strip: triFalse,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			wantSTS(t, d, true, "enforce", 604800, []string{"*.interop.test"})
			wantTLSRPT(t, d, false)
		},
	},
	{
		domain: "mismatch.sts.test", why: "MTA-STS enforce, mx: mx.other.test, MX mx.interop.test",
		want:   map[string]string{"mta-sts-mx-mismatch": "fail"},
		absent: []string{"mta-sts-missing", "mta-sts-policy-fetch-failed", "mta-sts-policy-invalid", "mta-sts-mx-cert-invalid"},
		exit:   2, sts: triFalse,
	},
	{
		domain: "certbad.sts.test", why: "MTA-STS enforce, MX mx.certbad.sts.test in the policy, certificate not valid for it",
		want:   map[string]string{"mta-sts-mx-cert-invalid": "fail"},
		absent: []string{"mta-sts-missing", "mta-sts-mx-mismatch", "mta-sts-policy-fetch-failed", "mta-sts-policy-invalid"},
		exit:   2, sts: triFalse,
	},
	{
		domain: "testing.sts.test", why: "MTA-STS testing, mx: mx.interop.test; no TLS-RPT record",
		want:   map[string]string{"mta-sts-testing": "info", "tlsrpt-missing": "warn", "striptls-possible": "warn"},
		absent: concat(stsFailures, []string{"mta-sts-missing", "tlsrpt-invalid"}),
		exit:   1, sts: triTrue, strip: triTrue,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			wantSTS(t, d, true, "testing", 86400, []string{"mx.interop.test"})
		},
	},
	{
		domain: "redirect.sts.test", why: "the policy URL answers 301 to a valid policy",
		want:   map[string]string{"mta-sts-policy-redirect": "fail"},
		absent: []string{"mta-sts-missing", "mta-sts-mx-mismatch", "mta-sts-policy-too-large"},
		exit:   2, strip: triTrue,
		check: func(t *testing.T, d *mailsecDomain, _ string) { wantSTSValid(t, d, false) },
	},
	{
		domain: "large.sts.test", why: "a valid policy of 70,006 bytes (> 64 KiB)",
		want:   map[string]string{"mta-sts-policy-too-large": "fail"},
		absent: []string{"mta-sts-missing", "mta-sts-policy-redirect", "mta-sts-mx-mismatch"},
		exit:   2, strip: triTrue,
		check: func(t *testing.T, d *mailsecDomain, _ string) { wantSTSValid(t, d, false) },
	},
	{
		domain: "maxage.sts.test", why: "max_age: 31557601 (RFC 8461 allows up to 31557600)",
		want:   map[string]string{"mta-sts-policy-invalid": "fail"},
		absent: []string{"mta-sts-missing", "mta-sts-policy-fetch-failed", "mta-sts-mx-mismatch"},
		exit:   2, strip: triTrue,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			wantSTSValid(t, d, false)
			if f := findFinding(d, "mta-sts-policy-invalid"); f != nil && !strings.Contains(f.Detail, "max_age") {
				t.Errorf("mta-sts-policy-invalid detail %q does not say max_age", f.Detail)
			}
		},
	},
	{
		domain: "mediatype.sts.test", why: "a valid policy served as text/html",
		want:   map[string]string{"mta-sts-policy-fetch-failed": "fail"},
		absent: []string{"mta-sts-missing", "mta-sts-policy-redirect", "mta-sts-mx-mismatch"},
		exit:   2, strip: triTrue,
		check: func(t *testing.T, d *mailsecDomain, _ string) { wantSTSValid(t, d, false) },
	},
	{
		domain: "webpki.sts.test", why: "a valid policy from a server whose certificate does not name mta-sts.webpki.sts.test",
		want:   map[string]string{"mta-sts-policy-fetch-failed": "fail"},
		absent: []string{"mta-sts-missing", "mta-sts-policy-redirect", "mta-sts-mx-mismatch"},
		exit:   2, strip: triTrue,
		check: func(t *testing.T, d *mailsecDomain, _ string) { wantSTSValid(t, d, false) },
	},
	{
		domain: "duptxt.sts.test", why: "two v=STSv1 TXT records at _mta-sts",
		want:   map[string]string{"mta-sts-txt-duplicate": "fail"},
		absent: []string{"mta-sts-missing", "mta-sts-mx-mismatch"},
		exit:   2, strip: triTrue,
	},
	{
		domain: "badtxt.sts.test", why: "_mta-sts TXT with id=not-an-id! (RFC 8461 3.1: 1*32 letters and digits)",
		want:   map[string]string{"mta-sts-txt-invalid": "fail"},
		absent: []string{"mta-sts-missing", "mta-sts-txt-duplicate", "mta-sts-mx-mismatch"},
		exit:   2, strip: triTrue,
	},
	{
		domain: "nomail.sts.test", why: "no MX and no address (a TXT record only)",
		want:   map[string]string{"mx-none": "fail"},
		absent: []string{"mx-null", "mx-implicit"},
		exit:   2,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			if len(d.MX) != 0 || len(d.Reports) != 0 {
				t.Errorf("no MX: %d mx entries and %d reports, want none", len(d.MX), len(d.Reports))
			}
		},
	},
	{
		domain: "nullmx.sts.test", why: "RFC 7505 null MX (MX 0 .)",
		want:   map[string]string{"mx-null": "info"},
		absent: []string{"mx-none", "mx-implicit", "striptls-possible"},
		exit:   0,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			if d.NullMX == nil || !*d.NullMX {
				t.Errorf("null_mx = %v, want true", d.NullMX)
			}
			if len(d.MX) != 0 || len(d.Reports) != 0 {
				t.Errorf("null MX: %d mx entries and %d reports, want none", len(d.MX), len(d.Reports))
			}
		},
	},
	{
		domain: "nomx.sts.test", why: "no MX, A 127.0.0.1: the RFC 5321 implicit MX",
		want:   map[string]string{"mx-implicit": "warn"},
		absent: []string{"mx-none", "mx-null"},
		exit:   1,
		check: func(t *testing.T, d *mailsecDomain, _ string) {
			wantMX(t, d, "nomx.sts.test", 0, true)
		},
	},
}

// TestMailsecCheck runs `starttls check DOMAIN --json` per test domain.
func TestMailsecCheck(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mail")
	e.needModule(t, "mailsec")
	bin := e.needBinary(t)
	resolverAddr := needEnv(t, "INTEROP_MAILSEC_RESOLVER")
	stsPort := needEnv(t, "INTEROP_MAILSEC_STS_PORT")
	_, smtpPort := hostPort(t, e.PostfixSMTP)
	tlsa := readTLSAHex(t)
	for _, c := range mailsecCases {
		t.Run("starttls-check→"+c.domain, func(t *testing.T) {
			t.Logf("fixture: %s", c.why)
			r := run(t, 90*time.Second, "", bin, "check", c.domain, "--resolver", resolverAddr, "--ca", e.CA,
				"--smtp-port", smtpPort, "--mta-sts-port", stsPort, "--json", "--quick")
			d := parseMailsecDomain(t, r)
			defer func() {
				if t.Failed() {
					r.dump(t)
				}
			}()
			t.Logf("exit %d, findings %s, verdict %s", r.Code, findingIDs(d), verdictText(d))
			if d.Name != c.domain {
				t.Errorf("domain.name = %q, want %q", d.Name, c.domain)
			}
			for id, sev := range c.want {
				f := findFinding(d, id)
				switch {
				case f == nil:
					t.Errorf("finding %s missing (have %s)", id, findingIDs(d))
				case sev != "" && f.Severity != sev:
					t.Errorf("finding %s has severity %q, want %q", id, f.Severity, sev)
				}
			}
			for _, id := range c.absent {
				if f := findFinding(d, id); f != nil {
					t.Errorf("finding %s (%s: %s) reported, but the fixture does not have it", id, f.Severity, f.Detail)
				}
			}
			for _, f := range d.Findings {
				if !slices.Contains(mailsecIDs, f.ID) {
					t.Errorf("finding id %q is not one of spec5.md's", f.ID)
				}
			}
			if d.Verdict == nil {
				t.Error("no verdict")
			} else {
				wantTri(t, "dane_sender_delivers", d.Verdict.DANESenderDelivers, c.dane)
				wantTri(t, "mta_sts_sender_delivers", d.Verdict.MTASTSSenderDelivers, c.sts)
				wantTri(t, "striptls_possible", d.Verdict.StriptlsPossible, c.strip)
			}
			if c.check != nil {
				c.check(t, d, tlsa)
			}
			if r.Code != c.exit {
				t.Errorf("exit code %d, want %d (findings %s)", r.Code, c.exit, findingIDs(d))
			}
		})
	}
}

func parseMailsecDomain(t *testing.T, r result) *mailsecDomain {
	t.Helper()
	var top struct {
		Domain *mailsecDomain `json:"domain"`
	}
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	if err := dec.Decode(&top); err != nil {
		r.dump(t)
		t.Fatalf("stdout is not JSON: %v", err)
	}
	if top.Domain == nil {
		r.dump(t)
		t.Fatal("JSON without a domain object")
	}
	return top.Domain
}

func verdictText(d *mailsecDomain) string {
	if d.Verdict == nil {
		return "(none)"
	}
	v := d.Verdict
	return fmt.Sprintf("dane_sender_delivers=%s mta_sts_sender_delivers=%s striptls_possible=%s (%s)",
		v.DANESenderDelivers, v.MTASTSSenderDelivers, v.StriptlsPossible, v.Summary)
}

func readTLSAHex(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(needEnv(t, "INTEROP_MAILSEC_TLSA"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(strings.TrimSpace(string(b)))
}

func findFinding(d *mailsecDomain, id string) *mailsecFinding {
	for i := range d.Findings {
		if d.Findings[i].ID == id {
			return &d.Findings[i]
		}
	}
	return nil
}

func findingIDs(d *mailsecDomain) string {
	var s []string
	for _, f := range d.Findings {
		s = append(s, f.ID+"("+f.Severity+")")
	}
	return "[" + strings.Join(s, " ") + "]"
}

func wantTri(t *testing.T, name string, got json.RawMessage, want tri) {
	t.Helper()
	if want == triAny {
		return
	}
	g := strings.TrimSpace(string(got))
	if g == "" {
		g = "(absent)"
	}
	if g != string(want) {
		t.Errorf("verdict.%s = %s, want %s", name, g, want)
	}
}

func wantMX(t *testing.T, d *mailsecDomain, host string, pref int, implicit bool) {
	t.Helper()
	if len(d.MX) != 1 {
		t.Errorf("mx = %+v, want one entry %s", d.MX, host)
		return
	}
	m := d.MX[0]
	if m.Host != host || m.Preference != pref || m.Implicit != implicit || !slices.Contains(m.Address, "127.0.0.1") {
		t.Errorf("mx[0] = %+v, want host %s preference %d implicit %v address 127.0.0.1", m, host, pref, implicit)
	}
	// One SMTP report per MX, each for that host on the suite's Postfix port.
	if len(d.Reports) != 1 {
		t.Errorf("%d per-MX reports, want 1", len(d.Reports))
	} else if !strings.Contains(string(d.Reports[0]), host) {
		t.Errorf("the per-MX report does not name %s: %.300s", host, d.Reports[0])
	}
}

func daneDNSSEC(d *mailsecDomain) string {
	if d.DANE == nil {
		return "(no dane object)"
	}
	return fmt.Sprintf("%q", d.DANE.DNSSEC)
}

func wantDANE(t *testing.T, d *mailsecDomain, dnssec string, valid bool) {
	t.Helper()
	if d.DANE == nil {
		t.Error("no dane object")
		return
	}
	if d.DANE.DNSSEC != dnssec {
		t.Errorf("dane.dnssec = %q, want %q", d.DANE.DNSSEC, dnssec)
	}
	if d.DANE.Valid == nil || *d.DANE.Valid != valid {
		t.Errorf("dane.valid = %v, want %v", d.DANE.Valid, valid)
	}
}

// wantTLSA: the TLSA entries of mx hold at least one with the given DNSSEC
// status; matched says whether one of them matched (every one of them must
// then be secure); record, when set, must be among that entry's records.
func wantTLSA(t *testing.T, d *mailsecDomain, mx, dnssec string, matched bool, record string) {
	t.Helper()
	if d.DANE == nil {
		t.Error("no dane object")
		return
	}
	var seen, anyMatch, hasRecord bool
	for _, e := range d.DANE.TLSA {
		if e.MX != mx {
			continue
		}
		if e.DNSSEC == dnssec {
			seen = true
		}
		if e.Matched != nil && *e.Matched {
			anyMatch = true
		}
		for _, r := range e.Records {
			if strings.EqualFold(strings.Join(strings.Fields(r), " "), record) {
				hasRecord = true
			}
		}
		if e.Name != "_25._tcp."+mx && e.Name != "_10025._tcp."+mx && !strings.HasSuffix(e.Name, "._tcp."+mx) {
			t.Errorf("tlsa entry name %q is not a _PORT._tcp name of %s", e.Name, mx)
		}
	}
	if !seen {
		t.Errorf("no tlsa entry for %s with dnssec %q: %+v", mx, dnssec, d.DANE.TLSA)
	}
	if anyMatch != matched {
		t.Errorf("tlsa of %s matched = %v, want %v", mx, anyMatch, matched)
	}
	if record != "" && !hasRecord {
		t.Errorf("tlsa of %s lacks the record %q: %+v", mx, record, d.DANE.TLSA)
	}
}

func wantTLSRPT(t *testing.T, d *mailsecDomain, valid bool) {
	t.Helper()
	if d.TLSRPT == nil || d.TLSRPT.Valid == nil || *d.TLSRPT.Valid != valid {
		t.Errorf("tlsrpt = %+v, want valid %v", d.TLSRPT, valid)
	}
	if d.TLSRPT != nil && !strings.HasPrefix(d.TLSRPT.Record, "v=TLSRPTv1;") {
		t.Errorf("tlsrpt.record = %q", d.TLSRPT.Record)
	}
}

func wantSTSValid(t *testing.T, d *mailsecDomain, valid bool) {
	t.Helper()
	if d.MTASTS == nil || d.MTASTS.Valid == nil || *d.MTASTS.Valid != valid {
		t.Errorf("mta_sts = %+v, want valid %v", d.MTASTS, valid)
	}
}

func wantSTS(t *testing.T, d *mailsecDomain, valid bool, mode string, maxAge int64, mx []string) {
	t.Helper()
	wantSTSValid(t, d, valid)
	if d.MTASTS == nil {
		return
	}
	if d.MTASTS.Mode != mode || d.MTASTS.MaxAge != maxAge || !slices.Equal(d.MTASTS.MX, mx) {
		t.Errorf("mta_sts mode %q max_age %d mx %q, want %q %d %q", d.MTASTS.Mode, d.MTASTS.MaxAge, d.MTASTS.MX, mode, maxAge, mx)
	}
}

// ---------------------------------------------------------------------------
// Oracles: the fixtures as tools that are not ours see them.
// ---------------------------------------------------------------------------

// digRow is one query to the validating resolver.
type digRow struct {
	name, qtype string
	cd          bool   // +cd: checking disabled
	status      string // NOERROR, SERVFAIL, ...
	ad          bool   // the AD flag
	answer      string // a substring of the answer section ("" none required)
}

var mailsecDigRows = []digRow{
	{name: "dane-ok.sec.test", qtype: "MX", status: "NOERROR", ad: true, answer: "10 mx.dane-ok.sec.test."},
	{name: "_25._tcp.mx.dane-ok.sec.test", qtype: "TLSA", status: "NOERROR", ad: true, answer: "3 1 1"},
	{name: "_10025._tcp.mx.dane-ok.sec.test", qtype: "TLSA", status: "NOERROR", ad: true, answer: "3 1 1"},
	{name: "mx.cname.sec.test", qtype: "A", status: "NOERROR", ad: true, answer: "CNAME mx.dane-ok.sec.test."},
	{name: "bogus.sec.test", qtype: "MX", status: "SERVFAIL"},
	{name: "bogus.sec.test", qtype: "MX", cd: true, status: "NOERROR", answer: "10 mx.bogus.sec.test."},
	{name: "bogus-tlsa.sec.test", qtype: "MX", status: "NOERROR", ad: true},
	{name: "_25._tcp.mx.bogus-tlsa.sec.test", qtype: "TLSA", status: "SERVFAIL"},
	{name: "_25._tcp.mx.insecure.sec.test", qtype: "TLSA", status: "NOERROR", ad: false, answer: "3 1 1"},
	{name: "enforce.sts.test", qtype: "MX", status: "NOERROR", ad: false, answer: "10 mx.interop.test."},
	{name: "nullmx.sts.test", qtype: "MX", status: "NOERROR", answer: "0 ."},
	{name: "example.com", qtype: "A", status: "REFUSED"}, // nothing outside the lab
}

// policyRow is one fetch of a policy with curl.
type policyRow struct {
	domain   string
	code     string // HTTP status, "000" when TLS fails
	ctype    string // Content-Type prefix
	minSize  int
	curlExit int
}

var mailsecPolicyRows = []policyRow{
	{domain: "enforce.sts.test", code: "200", ctype: "text/plain", minSize: 60},
	{domain: "redirect.sts.test", code: "301", ctype: "text/plain"},
	{domain: "large.sts.test", code: "200", ctype: "text/plain", minSize: 65537},
	{domain: "mediatype.sts.test", code: "200", ctype: "text/html", minSize: 60},
	{domain: "webpki.sts.test", code: "000", curlExit: 60}, // CURLE_PEER_FAILED_VERIFICATION
}

func TestMailsecOracles(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mailsec")
	resolverAddr := needEnv(t, "INTEROP_MAILSEC_RESOLVER")
	rh, rp := hostPort(t, resolverAddr)
	stsPort := needEnv(t, "INTEROP_MAILSEC_STS_PORT")

	for _, row := range mailsecDigRows {
		// "dig [+cd] TYPE NAME: STATUS[+AD]→unbound"
		label := "dig " + row.qtype + " " + row.name + ": " + row.status
		if row.cd {
			label = "dig +cd " + label[len("dig "):]
		}
		if row.ad {
			label += "+AD"
		}
		t.Run(label+"→unbound", func(t *testing.T) {
			args := []string{"+dnssec", "+time=5", "+tries=1", "@" + rh, "-p", rp, row.qtype, row.name}
			if row.cd {
				args = append([]string{"+cd"}, args...)
			}
			r := run(t, 20*time.Second, "", "dig", args...)
			if r.Code != 0 {
				t.Fatalf("dig exit %d", r.Code)
			}
			status, flags, answer := parseDig(r.Stdout)
			if status != row.status {
				t.Errorf("status %s, want %s", status, row.status)
			}
			if hasAD := slices.Contains(flags, "ad"); hasAD != row.ad {
				t.Errorf("flags %v: AD %v, want %v", flags, hasAD, row.ad)
			}
			if row.answer != "" && !strings.Contains(answer, row.answer) {
				t.Errorf("answer %q lacks %q", answer, row.answer)
			}
		})
	}

	for _, row := range mailsecPolicyRows {
		t.Run("curl mta-sts."+row.domain+": "+row.code+"→policy-server", func(t *testing.T) {
			host := "mta-sts." + row.domain
			r := run(t, 20*time.Second, "", "curl", "-sS", "-o", "/dev/null", "--max-time", "10",
				"-w", "%{http_code} %{size_download} %{content_type}",
				"--cacert", e.CA, "--resolve", host+":"+stsPort+":127.0.0.1",
				"https://"+host+":"+stsPort+"/.well-known/mta-sts.txt")
			if r.Code != row.curlExit {
				t.Fatalf("curl exit %d, want %d", r.Code, row.curlExit)
			}
			var code, ctype string
			var size int
			fmt.Sscanf(r.Stdout, "%s %d %s", &code, &size, &ctype)
			if code != row.code || !strings.HasPrefix(ctype, row.ctype) || size < row.minSize {
				t.Errorf("got %s %d %q, want %s, >= %d bytes, %q", code, size, ctype, row.code, row.minSize, row.ctype)
			}
		})
	}

	// openssl's own DANE verification (RFC 7671 rules) of the records the
	// resolver serves, against the live Postfix: the published record of
	// dane-ok matches, dane-bad's does not.
	if e.PostfixSMTP == "" {
		return
	}
	for _, c := range []struct {
		domain string
		ok     bool
	}{{"dane-ok.sec.test", true}, {"dane-bad.sec.test", false}} {
		want := map[bool]string{true: "verified", false: "refused"}[c.ok]
		t.Run("openssl s_client -dane_tlsa_rrdata of "+c.domain+": "+want+"→postfix", func(t *testing.T) {
			e.needModule(t, "mail")
			mx := "mx." + c.domain
			r := run(t, 20*time.Second, "", "dig", "+short", "+time=5", "+tries=1", "@"+rh, "-p", rp, "TLSA", "_25._tcp."+mx)
			rdata := strings.TrimSpace(r.Stdout)
			if r.Code != 0 || !strings.HasPrefix(rdata, "3 1 1 ") {
				t.Fatalf("TLSA of %s: %q (exit %d)", mx, rdata, r.Code)
			}
			// dig splits long hex into words; openssl wants one.
			f := strings.Fields(rdata)
			rdata = strings.Join(f[:3], " ") + " " + strings.Join(f[3:], "")
			s := run(t, 20*time.Second, "QUIT\n", "openssl", "s_client", "-brief", "-starttls", "smtp",
				"-connect", e.PostfixSMTP, "-servername", mx, "-dane_tlsa_domain", mx, "-dane_tlsa_rrdata", rdata,
				"-dane_ee_no_namechecks", "-verify_return_error") // RFC 7672 3.1.1: DANE-EE ignores names
			out := s.Stdout + s.Stderr
			verified := s.Code == 0 && strings.Contains(out, "Verification: OK") && strings.Contains(out, "DANE TLSA 3 1 1") && strings.Contains(out, "matched EE certificate")
			if verified != c.ok {
				t.Errorf("openssl DANE verification ok = %v, want %v", verified, c.ok)
			}
		})
	}
}

// parseDig returns the status, the header flags and the answer section of
// dig's default output.
func parseDig(out string) (status string, flags []string, answer string) {
	var ans []string
	inAnswer := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, "status: "):
			s := line[strings.Index(line, "status: ")+len("status: "):]
			status, _, _ = strings.Cut(s, ",")
		case strings.HasPrefix(line, ";; flags: "):
			f, _, _ := strings.Cut(strings.TrimPrefix(line, ";; flags: "), ";")
			flags = strings.Fields(f)
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			inAnswer = true
		case inAnswer && strings.TrimSpace(line) == "":
			inAnswer = false
		case inAnswer:
			ans = append(ans, strings.Join(strings.Fields(line), " "))
		}
	}
	return status, flags, strings.Join(ans, "\n")
}
