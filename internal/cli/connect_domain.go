package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/maildomain"
)

// The policy modes of `starttls connect smtp://DOMAIN` are
// maildomain.Requirement names: the client dials the domain's MX hosts
// through maildomain, which enforces the policy. They are not
// starttls.Mode values: they name a destination's policy, not an upgrade.
var policyModes = []string{maildomain.RequireMTASTS.String(), maildomain.RequireDANE.String(), maildomain.RequirePolicy.String()}

// domainPolicyMode returns the policy mode named by --mode or by the
// URL's ?mode=, "" and false when neither names one.
func domainPolicyMode(flagMode, raw string) (string, bool) {
	if slices.Contains(policyModes, flagMode) {
		return flagMode, true
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	if m := u.Query().Get("mode"); slices.Contains(policyModes, m) {
		return m, true
	}
	return "", false
}

// parseDomainURL checks smtp://DOMAIN[?mode=M] and returns the domain.
func parseDomainURL(raw, mode string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("bad URL %q: %v", raw, err)
	}
	if u.Scheme != "smtp" {
		return "", fmt.Errorf("--mode %s applies to smtp://DOMAIN (mail delivery to a domain's MX hosts), not to %s://", mode, u.Scheme)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return "", fmt.Errorf("%q: want smtp://DOMAIN", u.Redacted())
	}
	if u.Port() != "" {
		return "", fmt.Errorf("%q: the URL names the mail domain, not a server: give the MX hosts' port with --smtp-port", raw)
	}
	q := u.Query()
	for k, v := range q {
		if k != "mode" || len(v) != 1 {
			return "", fmt.Errorf("%q: the only URL parameter is one mode=", raw)
		}
	}
	if m := q.Get("mode"); m != "" && m != mode {
		return "", fmt.Errorf("--mode %s and the URL's mode=%s disagree", mode, m)
	}
	domain := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if !maildomain.ValidDomain(domain) {
		return "", fmt.Errorf("--mode %s needs a mail domain such as smtp://example.org, not %q (connect to a server with --mode required)", mode, u.Hostname())
	}
	return domain, nil
}

// connectDomain opens an SMTP session to the MX host of a domain that the
// policy mode allows, with the domain's policy enforced by maildomain, and
// then runs the session like connect. When the policy cannot be met it
// refuses with exit 2: no session, no mail command sent.
func connectDomain(e *env, cf *clientFlags, df *domainFlags, mode, raw string, insecure, trace, rawInput, quiet bool, linger time.Duration) int {
	fail := func(err error) int {
		fmt.Fprintln(e.stderr, "starttls connect:", err)
		return exitCantRun
	}
	domain, err := parseDomainURL(raw, mode)
	if err != nil {
		return fail(err)
	}
	req, err := maildomain.ParseRequirement(mode)
	if err != nil {
		return fail(err)
	}
	if cf.mode != "" && cf.mode != mode {
		return fail(fmt.Errorf("--mode %s and the URL's mode=%s disagree", cf.mode, mode))
	}
	switch {
	case insecure:
		return fail(errors.New("--insecure cannot be combined with a domain's policy: the policy says how certificates are verified"))
	case cf.serverName != "":
		return fail(errors.New("--server-name does not apply to a mail domain: each MX host is verified under its own name"))
	case cf.source != "":
		return fail(errors.New("--source is not supported with a domain's policy"))
	}
	plain := *cf
	plain.mode = ""
	if err := df.validate(&plain, false); err != nil {
		return fail(err)
	}
	roots, err := cf.roots()
	if err != nil {
		return fail(err)
	}
	tr := &starttls.Transcript{}
	if trace {
		tr.Live = e.stderr
	}
	o := &maildomain.Options{
		Resolver: df.resolver(), Roots: roots, MTASTSPort: df.mtaSTSPort, Port: df.smtpPort,
		LocalName: cf.ehlo, DialTimeout: cf.timeout, Transcript: tr,
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	rctx, rcancel := context.WithTimeout(ctx, cf.timeout)
	p, err := maildomain.Resolve(rctx, domain, o)
	rcancel()
	if err != nil {
		fmt.Fprintf(e.stderr, "starttls connect: %s: %v\n", domain, err)
		return exitFail
	}
	if err := p.Require(req); err != nil {
		fmt.Fprintf(e.stderr, "starttls connect: %s: refusing (--mode %s): %v\n", domain, mode, err)
		printPolicy(e, p)
		printFailures(e, p.Failures)
		return exitFail
	}
	if !quiet {
		printPolicy(e, p)
	}
	sess, err := p.Dial(ctx, o)
	if err != nil {
		fmt.Fprintf(e.stderr, "starttls connect: %s: refusing (--mode %s): the policy cannot be met: %v\n", domain, mode, err)
		var de *maildomain.DialError
		if errors.As(err, &de) {
			printFailures(e, de.Failures)
		} else {
			printFailures(e, p.Failures)
		}
		return exitFail
	}
	conn := sess.NetConn()
	defer conn.Close()
	if !quiet {
		fmt.Fprintf(e.stderr, "--- MX %s (preference %d) at %s, security %s\n", sess.MX.Host, sess.MX.Preference, sess.Addr, sess.MX.Security)
		printSession(e, sess.Result, verifiedBy(sess.MX))
		printFailures(e, sess.Failures)
	}
	return interact(e, ctx, conn, !rawInput, linger)
}

// printPolicy shows what the policy allows, on stderr.
func printPolicy(e *env, p *maildomain.Policy) {
	w := e.stderr
	sts := "none"
	if p.MTASTS != nil {
		sts = fmt.Sprintf("mode %s, mx %s", p.MTASTS.Policy.Mode, strings.Join(p.MTASTS.Policy.MX, " "))
	}
	fmt.Fprintf(w, "--- domain %s: MTA-STS %s\n", p.Domain, sts)
	for _, mx := range p.MX {
		tlsa := ""
		if mx.TLSAName != "" {
			tlsa = ", TLSA at " + mx.TLSAName
		}
		fmt.Fprintf(w, "---   MX %d %s: %s%s\n", mx.Preference, mx.Host, mx.Security, tlsa)
	}
	for _, x := range p.Excluded {
		fmt.Fprintf(w, "---   MX %s excluded: %s\n", x.Host, x.Reason)
	}
}

// printFailures shows TLS-RPT failures (RFC 8460 result types).
func printFailures(e *env, fs []maildomain.Failure) {
	for _, f := range fs {
		where := f.ReceivingMXHostname
		if f.ReceivingIP != "" {
			where += " [" + f.ReceivingIP + "]"
		}
		if where == "" {
			where = "the domain"
		}
		enforced := "enforced"
		if !f.Enforced {
			enforced = "reported only"
		}
		fmt.Fprintf(e.stderr, "--- TLS-RPT failure (%s, %s): %s at %s: %s\n", f.Policy, enforced, f.ResultType, where, f.AdditionalInformation)
	}
}

// verifiedBy says how the session's certificate was verified.
func verifiedBy(mx maildomain.MX) string {
	switch mx.Security {
	case maildomain.DANE:
		return "certificate authenticated by DANE (TLSA records at " + mx.TLSAName + ", DNSSEC-secure)"
	case maildomain.WebPKI:
		return fmt.Sprintf("certificate verified (MTA-STS enforce): chain and name %q OK", mx.Host)
	case maildomain.DANEUnauthenticated:
		return "WARNING: certificate NOT authenticated: the TLSA records at " + mx.TLSAName + " are unusable (RFC 7672 §2.2: TLS required, no authentication)"
	case maildomain.Testing:
		return "certificate checked as MTA-STS requires, but not enforced (mode testing): failures are listed below"
	}
	return "WARNING: certificate NOT verified: the domain publishes no policy (opportunistic TLS)"
}

// set reports whether a mail-domain flag was given.
func (d *domainFlags) set() bool {
	return d.resolverAddr != "" || d.smtpPort != 0 || d.mtaSTSPort != 0
}
