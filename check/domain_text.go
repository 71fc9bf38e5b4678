package check

import (
	"fmt"
	"io"
)

// WriteText writes the domain report for people: the verdict, the MX hosts,
// MTA-STS, TLS-RPT and DANE, the findings, then each MX host's check.
func (d *DomainReport) WriteText(w io.Writer) { d.WriteTextColor(w, false) }

// WriteTextColor is WriteText with verdicts and severities in colour.
func (d *DomainReport) WriteTextColor(w io.Writer, color bool) {
	p := painter(color)
	fmt.Fprintf(w, "%s  (mail domain)  %s\n", d.Name, p.verdict(d.Verdict.Result))
	row := func(k, v string) { fmt.Fprintf(w, "  %-10s %s\n", k, v) }
	if d.Verdict.Result == Error {
		row("Error", d.Error)
		return
	}
	switch {
	case d.NullMX:
		row("MX", "null MX (RFC 7505): no mail accepted")
	case len(d.MX) == 0:
		row("MX", "none")
	}
	for i, m := range d.MX {
		k := ""
		if i == 0 {
			k = "MX"
		}
		addr := list(m.Address)
		if m.Error != "" {
			addr = m.Error
		}
		s := fmt.Sprintf("%d %s (%s; DNSSEC %s)", m.Preference, m.Host, addr, m.DNSSEC)
		if m.Implicit {
			s = fmt.Sprintf("%s (no MX: the domain's own address, %s; DNSSEC %s)", m.Host, addr, m.DNSSEC)
		}
		row(k, s)
	}
	m := d.MTASTS
	switch {
	case m.TXT == "" && m.Error == "":
		row("MTA-STS", "none")
	case !m.Valid:
		row("MTA-STS", fmt.Sprintf("%q: INVALID: %s", m.TXT, m.Error))
	default:
		row("MTA-STS", fmt.Sprintf("%q; policy mode %s, max_age %d, mx %s", m.TXT, m.Mode, m.MaxAge, list(m.MX)))
	}
	t := d.TLSRPT
	switch {
	case t.Record == "" && t.Error == "":
		row("TLS-RPT", "none")
	case !t.Valid:
		row("TLS-RPT", fmt.Sprintf("%q: INVALID: %s", t.Record, t.Error))
	default:
		row("TLS-RPT", fmt.Sprintf("%q", t.Record))
	}
	row("DNSSEC", "MX answer "+d.DANE.DNSSEC)
	first := true
	for _, ta := range d.DANE.TLSA {
		if len(ta.Records) == 0 && ta.Error == "" {
			continue
		}
		k := ""
		if first {
			k = "DANE"
			first = false
		}
		s := fmt.Sprintf("%s: %s (DNSSEC %s", ta.Name, list(clipAll(ta.Records, 40)), ta.DNSSEC)
		switch {
		case ta.Error != "":
			s += "; " + ta.Error
		case ta.Matched != nil && *ta.Matched:
			s += "; matches the certificate"
		case ta.Matched != nil:
			s += "; does NOT match the certificate"
		case !ta.Used:
			s += "; not used"
		}
		row(k, s+")")
	}
	if first {
		row("DANE", "no TLSA records")
	}
	v := d.Verdict
	row("Verdict", v.Summary)
	if len(d.Findings) == 0 {
		row("Findings", "none")
	} else {
		fmt.Fprintf(w, "  Findings\n")
		for _, f := range d.Findings {
			detail := f.Detail
			if f.MX != "" && f.MX != d.Name {
				detail = f.MX + ": " + detail
			}
			fmt.Fprintf(w, "    %s %-26s %s\n", p.severity(f.Severity), f.ID, detail)
			if f.Fix != "" {
				fmt.Fprintf(w, "         %-26s fix: %s\n", "", f.Fix)
			}
		}
	}
	if len(d.Reports) > 0 {
		fmt.Fprintf(w, "  %-10s %s\n", "", "(each MX check follows; its certificate findings weigh only under a policy: mta-sts-mx-cert-invalid, dane-tlsa-mismatch)")
	}
	for _, r := range d.Reports {
		fmt.Fprintf(w, "\n── MX %s\n", r.Target)
		r.WriteTextColor(w, color)
	}
}

func clipAll(s []string, n int) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = clip(x, n)
	}
	return out
}
