package tlsrpt

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		in   string
		want *Record
	}{
		{"v=TLSRPTv1; rua=mailto:tls@example.org", &Record{RUA: []string{"mailto:tls@example.org"}}},
		{"v=TLSRPTv1;rua=mailto:tls@example.org;", &Record{RUA: []string{"mailto:tls@example.org"}}},
		{"v=TLSRPTv1 ;\trua=mailto:a@example.org , https://reports.example.org/tlsrpt ; ", &Record{RUA: []string{"mailto:a@example.org", "https://reports.example.org/tlsrpt"}}},
		{"v=TLSRPTv1; rua=https://r.example:8443/x?y=1", &Record{RUA: []string{"https://r.example:8443/x?y=1"}}},
		{"v=TLSRPTv1; rua=mailto:tls%2Breports@example.org", &Record{RUA: []string{"mailto:tls%2Breports@example.org"}}},
		{"v=TLSRPTv1; ext-1.x=val:ue/1; rua=mailto:a@b.example; RUA=other", &Record{
			RUA:        []string{"mailto:a@b.example"},
			Extensions: []Extension{{"ext-1.x", "val:ue/1"}, {"RUA", "other"}},
		}},
	}
	for _, tt := range tests {
		got, err := ParseRecord(tt.in)
		if err != nil {
			t.Errorf("ParseRecord(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRecord(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		// The canonical form parses to the same record.
		again, err := ParseRecord(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("ParseRecord(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}
}

func TestParseRecordErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "must begin with"},
		{"rua=mailto:a@b.example; v=TLSRPTv1", "must begin with"},
		{" v=TLSRPTv1; rua=mailto:a@b.example", "must begin with"},
		{"v=TLSRPTv2; rua=mailto:a@b.example", "must begin with"},
		{"V=TLSRPTv1; rua=mailto:a@b.example", "must begin with"},
		{"v=TLSRPTv1", "no rua"},
		{"v=TLSRPTv1;", "no rua"},
		{"v=TLSRPTv1; foo=bar", "no rua"},
		{"v=TLSRPTv10; rua=mailto:a@b.example", "after the version"},
		{"v=TLSRPTv1 rua=mailto:a@b.example", "after the version"},
		{"v=TLSRPTv1; rua=mailto:a@b.example;; x=y", "empty field"},
		{"v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example", `"rua" appears twice`},
		{"v=TLSRPTv1; v=TLSRPTv1; rua=mailto:a@b.example", "version field repeated"},
		{"v=TLSRPTv1; rua=mailto:a@b.example; x=1; x=2", `"x" appears twice`},
		{"v=TLSRPTv1; rua", "no '='"},
		{"v=TLSRPTv1; rua=", "empty URI"},
		{"v=TLSRPTv1; rua=mailto:a@b.example,", "empty URI"},
		{"v=TLSRPTv1; rua=mailto:a@b.example,,https://x.example", "empty URI"},
		{"v=TLSRPTv1; rua=http://reports.example/", `scheme "http"`},
		{"v=TLSRPTv1; rua=ftp://reports.example/", `scheme "ftp"`},
		{"v=TLSRPTv1; rua=tls@example.org", "no scheme"},
		{"v=TLSRPTv1; rua=mailto:", "no address"},
		{"v=TLSRPTv1; rua=mailto:not-an-address", "not a mail address"},
		{"v=TLSRPTv1; rua=mailto:Name <a@b.example>", "contains the byte"},
		{"v=TLSRPTv1; rua=https:///path", "no host"},
		{"v=TLSRPTv1; rua=https:opaque", "no host"},
		{"v=TLSRPTv1; rua=https://a.example/%zz", "invalid URL escape"},
		{"v=TLSRPTv1; rua=mailto:a@b.example\x00", "contains the byte"},
		{"v=TLSRPTv1; rua=mailto:a@b.example; -x=1", "invalid field name"},
		{"v=TLSRPTv1; rua=mailto:a@b.example; " + strings.Repeat("n", 33) + "=1", "invalid field name"},
		{"v=TLSRPTv1; rua=mailto:a@b.example; x=", "empty value"},
		{"v=TLSRPTv1; rua=mailto:a@b.example; x=a=b", "invalid byte"},
		{"v=TLSRPTv1; rua=mailto:a@b.example; x=a b", "invalid byte"},
		{"v=TLSRPTv1; rua=mailto:a@b.example; x=\xff", "invalid byte"},
		{"v=TLSRPTv1; rua=mailto:a@b.example; " + strings.Repeat("x", maxRecord), "bytes long"},
	}
	for _, tt := range tests {
		rec, err := ParseRecord(tt.in)
		if err == nil {
			t.Errorf("ParseRecord(%q) = %+v, want an error containing %q", clip(tt.in), rec, tt.want)
			continue
		}
		if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "tlsrpt: ") {
			t.Errorf("ParseRecord(%q) error = %q, want ErrInvalidRecord containing %q", clip(tt.in), err, tt.want)
		}
	}
}

func TestSelect(t *testing.T) {
	one := "v=TLSRPTv1; rua=mailto:a@b.example"
	rec, err := Select([]string{"google-site-verification=xyz", one, "v=TLSRPTv10; rua=mailto:x@y.example"})
	if err != nil || rec.RUA[0] != "mailto:a@b.example" {
		t.Errorf("Select = %+v, %v; want the one record", rec, err)
	}
	if _, err := Select([]string{"v=spf1 -all"}); !errors.Is(err, ErrNoRecord) {
		t.Errorf("Select(no record) error = %v, want ErrNoRecord", err)
	}
	if _, err := Select(nil); !errors.Is(err, ErrNoRecord) {
		t.Errorf("Select(nil) error = %v, want ErrNoRecord", err)
	}
	if _, err := Select([]string{one, "v=TLSRPTv1;rua=https://r.example/"}); !errors.Is(err, ErrMultipleRecords) {
		t.Errorf("Select(two records) error = %v, want ErrMultipleRecords", err)
	}
	if _, err := Select([]string{"v=TLSRPTv1; rua=gopher://x"}); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("Select(invalid) error = %v, want ErrInvalidRecord", err)
	}
	if got := RecordName("example.org."); got != "_smtp._tls.example.org" {
		t.Errorf("RecordName = %q", got)
	}
}

func TestFailureJSON(t *testing.T) {
	f := Failure{
		ResultType:            CertificateExpired,
		SendingMTAIP:          "2001:db8:abcd:0012::1",
		ReceivingMXHostname:   "mx2.mail.company-y.example",
		ReceivingIP:           "203.0.113.56",
		FailedSessionCount:    100,
		AdditionalInformation: "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported",
		FailureReasonCode:     "X509_V_ERR_CERT_HAS_EXPIRED",
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	// The spelling of RFC 8460 §4.4 / Appendix B.
	want := `{"result-type":"certificate-expired","sending-mta-ip":"2001:db8:abcd:0012::1","receiving-mx-hostname":"mx2.mail.company-y.example",` +
		`"receiving-ip":"203.0.113.56","failed-session-count":100,"additional-information":"https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported",` +
		`"failure-reason-code":"X509_V_ERR_CERT_HAS_EXPIRED"}`
	if string(b) != want {
		t.Errorf("json.Marshal(Failure) =\n%s\nwant\n%s", b, want)
	}
	var back Failure
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	if b, _ := json.Marshal(Failure{ResultType: DANERequired}); string(b) != `{"result-type":"dane-required"}` {
		t.Errorf("minimal Failure = %s", b)
	}
}

func TestResultTypes(t *testing.T) {
	all := map[ResultType]string{
		STARTTLSNotSupported: "starttls-not-supported", CertificateHostMismatch: "certificate-host-mismatch",
		CertificateExpired: "certificate-expired", CertificateNotTrusted: "certificate-not-trusted",
		ValidationFailure: "validation-failure", TLSAInvalid: "tlsa-invalid", DNSSECInvalid: "dnssec-invalid",
		DANERequired: "dane-required", STSPolicyFetchError: "sts-policy-fetch-error",
		STSPolicyInvalid: "sts-policy-invalid", STSWebPKIInvalid: "sts-webpki-invalid",
	}
	for rt, s := range all {
		if string(rt) != s || !rt.Known() {
			t.Errorf("%q: want %q and Known", rt, s)
		}
	}
	if ResultType("tls-failure").Known() {
		t.Error(`ResultType("tls-failure").Known() = true`)
	}
	for pt, s := range map[PolicyType]string{PolicySTS: "sts", PolicyTLSA: "tlsa", PolicyNone: "no-policy-found"} {
		if string(pt) != s {
			t.Errorf("PolicyType %q, want %q", pt, s)
		}
	}
}

// FuzzParseRecord: any text gives a record or an ErrInvalidRecord, never a
// panic; a record's canonical form parses to the same record.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=TLSRPTv1; rua=mailto:tls@example.org",
		"v=TLSRPTv1;rua=mailto:a@b.example,https://r.example/x;ext=1;",
		"v=TLSRPTv1; rua=mailto:", "v=TLSRPTv1;;", "v=TLSRPTv1; rua=https://[::1]:8443/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := ParseRecord(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("ParseRecord(%q) error %v does not wrap ErrInvalidRecord", s, err)
			}
			return
		}
		if len(rec.RUA) == 0 {
			t.Fatalf("ParseRecord(%q) gave no RUA", s)
		}
		again, err := ParseRecord(rec.String())
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Fatalf("ParseRecord(%q) = %+v, %v; want %+v", rec.String(), again, err, rec)
		}
	})
}
