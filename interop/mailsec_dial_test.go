//go:build interop

package interop

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/maildomain"
	"github.com/starttls/starttls/mtasts"
	"github.com/starttls/starttls/resolver"
	"github.com/starttls/starttls/tlsrpt"
)

// mailsecDialCases are the test domains of the mailsec module as a
// sending MTA meets them: whether a client that enforces the domain's
// policy delivers to the real Postfix behind them, and with which security.
var mailsecDialCases = []struct {
	domain, mode string // mode: the CLI's --mode
	deliver      bool
	security     maildomain.Security // of the session when delivered
	refusal      string              // in the error (library) when refused
	result       tlsrpt.ResultType   // a TLS-RPT failure Dial must record ("" none)
}{
	{domain: "dane-ok.sec.test", mode: "dane", deliver: true, security: maildomain.DANE},
	{domain: "dane-bad.sec.test", mode: "dane", refusal: "TLSA", result: tlsrpt.TLSAInvalid},
	{domain: "bogus.sec.test", mode: "dane", refusal: "no MX host", result: tlsrpt.DNSSECInvalid},
	{domain: "enforce.sts.test", mode: "mta-sts", deliver: true, security: maildomain.WebPKI},
	{domain: "mismatch.sts.test", mode: "mta-sts", refusal: "no MX host", result: tlsrpt.ValidationFailure},
	{domain: "testing.sts.test", mode: "mta-sts", deliver: true, security: maildomain.Testing},
}

// TestMailsecDial drives maildomain.Dial, then `starttls connect smtp://DOMAIN
// --mode dane|mta-sts`, against the real Postfix through the validating
// unbound: where the policy is met the mail is accepted (MAIL, RCPT, DATA
// over TLS); where it is not, the attempt ends before any mail command.
func TestMailsecDial(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mail")
	e.needModule(t, "mailsec")
	bin := e.needBinary(t)
	resolverAddr := needEnv(t, "INTEROP_MAILSEC_RESOLVER")
	stsPort := needEnv(t, "INTEROP_MAILSEC_STS_PORT")
	_, smtpPort := hostPort(t, e.PostfixSMTP)
	var port, webPort int
	fmt.Sscan(smtpPort, &port)
	fmt.Sscan(stsPort, &webPort)
	r := &resolver.Resolver{Addr: resolverAddr, Timeout: 3 * time.Second}
	ca := roots(t, e.CA)

	for _, c := range mailsecDialCases {
		t.Run("maildomain.Dial→"+c.domain, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			tr := &starttls.Transcript{}
			o := &maildomain.Options{Resolver: r, Roots: ca, Port: port, MTASTSPort: webPort, DialTimeout: 20 * time.Second, Transcript: tr}
			if c.security == maildomain.Testing {
				// The policy host is trusted, the MX's CA is not: a
				// failure a testing-mode sender reports and delivers
				// anyway (RFC 8461 §5).
				o.Roots = x509.NewCertPool()
				o.MTASTS = &mtasts.Cache{Fetcher: &mtasts.Fetcher{Resolver: r, Roots: ca, Port: webPort}}
			}
			s, err := maildomain.Dial(ctx, c.domain, o)
			defer func() {
				if t.Failed() {
					for _, ev := range tr.Events() {
						t.Log(ev.Format(time.Time{}))
					}
				}
			}()
			var failures []maildomain.Failure
			if !c.deliver {
				if err == nil {
					s.Close()
					t.Fatalf("Dial(%s) = session with %s (%s), want a refusal", c.domain, s.MX.Host, s.MX.Security)
				}
				t.Logf("refused: %v", err)
				if !errors.Is(err, maildomain.ErrNoMX) || !strings.Contains(err.Error(), c.refusal) {
					t.Errorf("error %q: want ErrNoMX and %q", err, c.refusal)
				}
				var de *maildomain.DialError
				if errors.As(err, &de) {
					failures = de.Failures
				} else if p, perr := maildomain.Resolve(ctx, c.domain, o); perr == nil {
					failures = p.Failures
				}
				for _, ev := range tr.Events() {
					if ev.Dir == starttls.FromClient && (strings.HasPrefix(ev.Text, "MAIL") || strings.HasPrefix(ev.Text, "RCPT")) {
						t.Errorf("refused, yet sent %q", ev.Text)
					}
				}
			} else {
				if err != nil {
					t.Fatalf("Dial(%s): %v", c.domain, err)
				}
				defer s.Close()
				t.Logf("session with %s at %s, security %s, TLS %v", s.MX.Host, s.Addr, s.MX.Security, s.Result.TLS != nil)
				if s.MX.Security != c.security || !s.Result.Upgraded || s.Result.TLS == nil {
					t.Errorf("session security %s, upgraded %v: want %s over TLS", s.MX.Security, s.Result.Upgraded, c.security)
				}
				tok := fmt.Sprintf("maildomain-%s-%d", c.domain, time.Now().UnixNano())
				msg := fmt.Sprintf("From: <bob@example.org>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nDelivered by maildomain.Dial under the policy of %s.\r\n", e.Rcpt, tok, c.domain)
				if err := s.SendMail(ctx, "bob@example.org", []string{e.Rcpt}, []byte(msg)); err != nil {
					t.Fatalf("SendMail over %s: %v", s.MX.Security, err)
				}
				for _, ev := range tr.Events() {
					if ev.Dir == starttls.FromClient && strings.HasPrefix(ev.Text, "MAIL") && !ev.TLS {
						t.Errorf("MAIL sent outside TLS: %q", ev.Text)
					}
				}
				waitDelivered(t, e.Maildir, tok, 30*time.Second)
				failures = s.Failures
			}
			var got []string
			for _, f := range failures {
				got = append(got, fmt.Sprintf("%s(%s,enforced=%v)", f.ResultType, f.Policy, f.Enforced))
			}
			t.Logf("TLS-RPT failures: %v", got)
			if c.result != "" {
				found := false
				for _, f := range failures {
					found = found || f.ResultType == c.result
				}
				if !found {
					t.Errorf("failures %v: want %s", got, c.result)
				}
			}
			if c.security == maildomain.Testing {
				if len(failures) == 0 || failures[len(failures)-1].ResultType != tlsrpt.CertificateNotTrusted || failures[len(failures)-1].Enforced {
					t.Errorf("testing mode: failures %v, want certificate-not-trusted, not enforced", got)
				}
			} else if c.deliver && len(failures) != 0 {
				t.Errorf("delivered under %s, yet failures %v", c.security, got)
			}
		})
	}

	for _, c := range mailsecDialCases {
		t.Run("starttls-connect→"+c.domain, func(t *testing.T) {
			tok := fmt.Sprintf("connect-%s-%d", c.domain, time.Now().UnixNano())
			stdin := fmt.Sprintf("MAIL FROM:<bob@example.org>\nRCPT TO:<%s>\nDATA\nSubject: %s\n\nDelivered by starttls connect --mode %s.\n.\nQUIT\n", e.Rcpt, tok, c.mode)
			res := run(t, 90*time.Second, stdin, bin, "connect", "smtp://"+c.domain, "--mode", c.mode, "--resolver", resolverAddr, "--ca", e.CA,
				"--smtp-port", smtpPort, "--mta-sts-port", stsPort, "--timeout", "20s", "--linger", "5s", "--trace")
			defer func() {
				if t.Failed() {
					res.dump(t)
				}
			}()
			if !c.deliver {
				if res.Code != 2 || !strings.Contains(res.Stderr, "refusing (--mode "+c.mode+")") {
					t.Errorf("exit %d: want 2 and a refusal", res.Code)
				}
				if strings.Contains(res.Stderr, "MAIL FROM") || res.Stdout != "" {
					t.Errorf("refused, yet MAIL was sent or the server answered: stdout %q", res.Stdout)
				}
				if c.result != "" && !strings.Contains(res.Stderr, string(c.result)) {
					t.Errorf("stderr does not show the TLS-RPT failure %s", c.result)
				}
				return
			}
			if res.Code != 0 || !strings.Contains(res.Stderr, "security "+c.security.String()) || !strings.Contains(res.Stderr, "upgraded with STARTTLS") {
				t.Errorf("exit %d: want 0, security %s, upgraded", res.Code, c.security)
			}
			// 250 for MAIL and RCPT, 354 for DATA, 250 queued, 221.
			for _, want := range []string{"250 2.1.0", "250 2.1.5", "354 ", "250 2.0.0", "221 "} {
				if !strings.Contains(res.Stdout, want) {
					t.Errorf("Postfix did not answer %q", want)
				}
			}
			waitDelivered(t, e.Maildir, tok, 30*time.Second)
		})
	}
}
