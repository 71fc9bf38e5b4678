package check

import (
	"fmt"
	"io"
	"strings"

	"github.com/starttls/starttls/tlsscan"
)

// WriteText writes the report for people: a verdict line, the facts, then
// the findings with their fixes.
func (r *Report) WriteText(w io.Writer) { r.WriteTextColor(w, false) }

// ANSI colours for a terminal.
const (
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	green  = "\x1b[32m"
	dim    = "\x1b[2m"
	reset  = "\x1b[0m"
)

// painter colours the verdict and severity words of a text report, or,
// false, leaves them plain.
type painter bool

var (
	verdictColor = map[Verdict]string{Pass: green, Warns: yellow, Fails: red, Error: red}
	sevColor     = map[Severity]string{Fail: red, Warn: yellow, Info: dim}
)

func (p painter) paint(c, s string) string {
	if !p {
		return s
	}
	return c + s + reset
}

// verdict is the verdict's word in capitals.
func (p painter) verdict(v Verdict) string {
	return p.paint(verdictColor[v], strings.ToUpper(verdictWord(v)))
}

// severity is the severity's word in capitals, four columns wide.
func (p painter) severity(s Severity) string {
	return p.paint(sevColor[s], fmt.Sprintf("%-4s", strings.ToUpper(string(s))))
}

// WriteTextColor is WriteText with verdicts and severities in colour.
func (r *Report) WriteTextColor(w io.Writer, color bool) {
	p := painter(color)
	fmt.Fprintf(w, "%s  (%s, mode %s)  %s\n", r.Target, r.Protocol, r.Mode, p.verdict(r.Verdict))
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
		r.writeScan(w, row)
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
		rev := "no OCSP responder or CRL named"
		if len(c.OCSPServers)+len(c.CRLs) > 0 {
			rev = "revocation via " + list(append(append([]string{}, c.OCSPServers...), c.CRLs...))
		}
		staple := "no OCSP staple"
		if c.OCSPStapled {
			staple = "OCSP stapled"
		}
		if c.MustStaple {
			staple += " (must-staple)"
		}
		row("", staple+"; "+rev)
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
		fmt.Fprintf(w, "    %s %-26s %s\n", p.severity(f.Severity), f.ID, f.Message)
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

// writeScan writes what the enumeration found: versions, suites per
// version, groups and the downgrade protections.
func (r *Report) writeScan(w io.Writer, row func(k, v string)) {
	t := r.TLS
	var vs []string
	for _, v := range tlsscan.Versions {
		switch b := t.Versions[v]; {
		case b == nil:
			vs = append(vs, v+" ?")
		case *b:
			vs = append(vs, v+" yes")
		default:
			vs = append(vs, v+" no")
		}
	}
	row("Versions", strings.Join(vs, ", "))
	if t.Scan == nil {
		row("", "(quick check: only the negotiated version is known)")
		return
	}
	for _, v := range tlsscan.Versions {
		var names []string
		for _, c := range t.Ciphers {
			if c.Version != v {
				continue
			}
			var flags []string
			if !c.ForwardSecrecy {
				flags = append(flags, "no FS")
			}
			if !c.AEAD {
				flags = append(flags, "not AEAD")
			}
			if c.Anonymous {
				flags = append(flags, "ANONYMOUS")
			}
			if c.Obsolete {
				flags = append(flags, "obsolete")
			}
			n := c.Name
			if len(flags) > 0 {
				n += " (" + strings.Join(flags, ", ") + ")"
			}
			names = append(names, n)
		}
		if len(names) > 0 {
			row("Suites "+v, strings.Join(names, "\n"+strings.Repeat(" ", 13)))
		}
	}
	order := "unknown"
	if t.ServerCipherOrder != nil {
		order = map[bool]string{true: "server's", false: "client's"}[*t.ServerCipherOrder]
	}
	row("Order", order)
	g := list(t.Groups)
	if t.DHBits > 0 {
		g += fmt.Sprintf("; finite-field DH %d bits", t.DHBits)
	}
	row("Groups", g)
	yn := func(b *bool, yes, no string) string {
		switch {
		case b == nil:
			return "n/a"
		case *b:
			return yes
		}
		return no
	}
	row("Downgrade", fmt.Sprintf("fallback SCSV %s; renegotiation %s; compression %s",
		yn(t.FallbackSCSV, "honoured", "IGNORED"), yn(t.SecureRenegotiation, "secure (RFC 5746)", "INSECURE"), yn(t.Compression, "ON (CRIME)", "off")))
	row("Resumption", fmt.Sprintf("session ids %s, tickets %s", yn(t.SessionIDs, "yes", "no"), yn(t.SessionTickets, "yes", "no")))
	row("Scan", fmt.Sprintf("%d connections in %.2fs", t.Scan.Connections, t.Scan.Seconds))
}
