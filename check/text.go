package check

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes the report for people: a verdict line, the facts, then
// the findings with their fixes.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s  (%s, mode %s)  %s\n", r.Target, r.Protocol, r.Mode, strings.ToUpper(verdictWord(r.Verdict)))
	row := func(k, v string) { fmt.Fprintf(w, "  %-10s %s\n", k, v) }
	if r.Verdict == Error {
		row("Error", r.Error)
		return
	}
	switch {
	case r.STARTTLS.Implicit:
		if r.STARTTLS.Upgraded {
			row("TLS", "implicit (TLS from the first byte)")
		} else {
			row("TLS", "implicit TLS failed")
		}
	case r.STARTTLS.Offered != nil && !*r.STARTTLS.Offered:
		row("STARTTLS", "NOT offered")
	default:
		s := "offered"
		if r.STARTTLS.Upgraded {
			s += ", upgraded"
		} else {
			s += ", upgrade FAILED"
		}
		if r.STARTTLS.UpgradeReply != "" {
			s += fmt.Sprintf(" (%q)", r.STARTTLS.UpgradeReply)
		}
		row("STARTTLS", s)
	}
	if t := r.TLS; t != nil {
		fs := "forward secrecy"
		if !t.ForwardSecrecy {
			fs = "NO forward secrecy"
		}
		row("Protocol", fmt.Sprintf("%s, %s, %s", t.Version, t.Cipher, fs))
	}
	if c := r.Cert; c != nil {
		row("Cert", c.Subject)
		row("", "issuer "+c.Issuer)
		row("", fmt.Sprintf("names %s", strings.Join(c.Names, ", ")))
		row("", fmt.Sprintf("valid until %s (%d days), %s %d bits, %s", c.NotAfter.Format("2006-01-02"), c.DaysLeft, c.KeyType, c.KeyBits, c.Signature))
		trust := "chain trusted"
		if !c.Trusted {
			trust = "chain NOT trusted"
		}
		name := "name matches " + r.TLS.ServerName
		if !c.NameMatch {
			name = "name does NOT match " + r.TLS.ServerName
		}
		row("", trust+", "+name)
	}
	if !r.STARTTLS.Implicit {
		after := list(r.Auth.AfterTLS)
		if r.TLS == nil {
			after = "n/a (no TLS)"
		}
		row("Login", fmt.Sprintf("before TLS: %s; after TLS: %s", list(r.Auth.BeforeTLS), after))
	} else {
		row("Login", list(r.Auth.AfterTLS))
	}
	if in := r.Injection; in != nil {
		switch {
		case in.Vulnerable:
			row("Injection", "VULNERABLE: "+in.Note)
		case in.Tested:
			row("Injection", "not vulnerable: "+in.Note)
		default:
			row("Injection", "not tested: "+in.Note)
		}
	}
	if len(r.Findings) == 0 {
		row("Findings", "none")
		return
	}
	fmt.Fprintf(w, "  Findings\n")
	for _, f := range r.Findings {
		fmt.Fprintf(w, "    %-4s %-26s %s\n", strings.ToUpper(string(f.Severity)), f.ID, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(w, "         %-26s fix: %s\n", "", f.Fix)
		}
	}
}

func verdictWord(v Verdict) string {
	switch v {
	case Pass:
		return "pass"
	case Warns:
		return "warn"
	case Fails:
		return "fail"
	}
	return "could not check"
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
