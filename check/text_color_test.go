package check

import (
	"bytes"
	"strings"
	"testing"
)

// TestWriteTextColor: verdicts and severities are painted in colour only
// when asked, in both the target and the mail domain report.
func TestWriteTextColor(t *testing.T) {
	r := &Report{Target: "smtp://mx.example.org", Protocol: "smtp", Mode: "required", Verdict: Fails,
		Findings: []Finding{{ID: "cert-expired", Severity: Fail, Message: "expired"}}}
	d := &DomainReport{Name: "example.org"}
	d.Verdict.Result = Warns
	for _, c := range []struct {
		name  string
		write func(*bytes.Buffer, bool)
		want  []string // in colour
	}{
		{"target", func(b *bytes.Buffer, color bool) { r.WriteTextColor(b, color) }, []string{red + "FAIL" + reset, red + strings.ToUpper(verdictWord(Fails)) + reset}},
		{"domain", func(b *bytes.Buffer, color bool) { d.WriteTextColor(b, color) }, []string{yellow + strings.ToUpper(verdictWord(Warns)) + reset}},
	} {
		var plain, colored bytes.Buffer
		c.write(&plain, false)
		c.write(&colored, true)
		if strings.Contains(plain.String(), "\x1b[") {
			t.Errorf("%s: escape sequences without colour:\n%s", c.name, plain.String())
		}
		for _, w := range c.want {
			if !strings.Contains(colored.String(), w) {
				t.Errorf("%s: colour output lacks %q:\n%q", c.name, w, colored.String())
			}
		}
	}
}
