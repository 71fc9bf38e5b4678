package check

import (
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/starttls/starttls/tlsscan"
)

// WriteHTML writes the reports as one self-contained page (inline style,
// no scripts, nothing fetched), for a ticket or an e-mail.
func WriteHTML(w io.Writer, reports []*Report) error {
	return WriteHTMLDomains(w, nil, reports)
}

// WriteHTMLDomains writes mail domain audits and reports as one page like
// WriteHTML's: each domain's MX hosts, MTA-STS, TLS-RPT, DANE, verdict and
// findings, followed by the checks of its MX hosts; then the reports.
func WriteHTMLDomains(w io.Writer, domains []*DomainReport, reports []*Report) error {
	return htmlPage.Execute(w, struct {
		Domains  []*DomainReport
		Reports  []*Report
		Targets  int
		Versions []string
		Made     string
	}{domains, reports, len(domains) + len(reports), tlsscan.Versions, time.Now().UTC().Format(time.RFC1123)})
}

var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"yn": func(b *bool) string {
		switch {
		case b == nil:
			return "not tested"
		case *b:
			return "yes"
		}
		return "no"
	},
	"ver": func(m map[string]*bool, v string) *bool { return m[v] },
	"opt": func(b *bool) string {
		switch {
		case b == nil:
			return "no policy"
		case *b:
			return "yes"
		}
		return "no"
	},
	"join": strings.Join,
	// ctx passes the page's data into a nested template with one item.
	"ctx": func(page any, item any) map[string]any { return map[string]any{"Page": page, "It": item} },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>starttls check</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
.pass{color:#176c2c}.warn{color:#9a6700}.fail,.error{color:#b42318}.info{color:#666}
code{font-size:.95em}.small{color:#666;font-size:.9em}
</style></head><body>
<h1>starttls check</h1><p class="small">{{.Targets}} target(s), {{.Made}}</p>
{{range .Domains}}{{template "domain" .}}{{range .Reports}}{{template "target" (ctx $ .)}}{{end}}{{end}}
{{range .Reports}}{{template "target" (ctx $ .)}}{{end}}
</body></html>
{{define "domain"}}
<h2>Mail domain {{.Name}} <span class="{{.Verdict.Result}}">{{.Verdict.Result}}</span></h2>
<p>{{.Verdict.Summary}}</p>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<table>
<tr><th>MX</th><td>{{if .NullMX}}null MX (RFC 7505): the domain accepts no mail{{else}}{{range .MX}}{{.Preference}} <code>{{.Host}}</code>{{if .Implicit}} (no MX: the domain's own address){{end}} {{join .Address ", "}} <span class="small">DNSSEC {{.DNSSEC}}</span>{{if .Error}} <span class="error">{{.Error}}</span>{{end}}<br>{{else}}none{{end}}{{end}}</td></tr>
{{with .MTASTS}}<tr><th>MTA-STS</th><td>{{if .TXT}}<code>{{.TXT}}</code>{{else}}no record{{end}}{{if .Valid}}<br>mode {{.Mode}}, max_age {{.MaxAge}}, mx {{join .MX ", "}}{{end}}{{if .Error}}<br><span class="fail">{{.Error}}</span>{{end}}</td></tr>{{end}}
{{with .TLSRPT}}<tr><th>TLS-RPT</th><td>{{if .Record}}<code>{{.Record}}</code>{{else}}no record{{end}}{{if .Error}}<br><span class="fail">{{.Error}}</span>{{end}}</td></tr>{{end}}
{{with .DANE}}<tr><th>DANE</th><td>MX answer DNSSEC {{.DNSSEC}}, every MX authenticated: {{.Valid}}{{range .TLSA}}<br><code>{{.Name}}</code> ({{.DNSSEC}}){{if .Used}} used{{end}}{{if .Matched}}, matched: {{yn .Matched}}{{end}}{{range .Records}}<br>&nbsp;&nbsp;<code>{{.}}</code>{{end}}{{if .Error}} <span class="error">{{.Error}}</span>{{end}}{{end}}</td></tr>{{end}}
{{with .Verdict}}<tr><th>Verdict</th><td>DANE sender delivers: {{opt .DANESenderDelivers}}; MTA-STS sender delivers: {{opt .MTASTSSenderDelivers}}; STRIPTLS possible: {{if .STRIPTLSPossible}}<span class="warn">yes</span>{{else}}no{{end}}</td></tr>{{end}}
</table>
{{if .Findings}}<table><tr><th>severity</th><th>id</th><th>MX</th><th>finding</th><th>fix</th></tr>
{{range .Findings}}<tr><td class="{{.Severity}}">{{.Severity}}</td><td><code>{{.ID}}</code></td><td>{{.MX}}</td><td>{{.Detail}}</td><td>{{.Fix}}</td></tr>{{end}}
</table>{{else}}<p>No findings.</p>{{end}}
{{end}}
{{define "target"}}{{$v := .Page.Versions}}{{with .It}}
<h2>{{.Target}} <span class="{{.Verdict}}">{{.Verdict}}</span></h2>
<table>
<tr><th>Protocol</th><td>{{.Protocol}}, mode {{.Mode}}, address {{.Address}}</td></tr>
{{if .Error}}<tr><th>Error</th><td class="error">{{.Error}}</td></tr>{{end}}
<tr><th>Upgrade</th><td>{{if .STARTTLS.Implicit}}implicit TLS{{else}}offered: {{yn .STARTTLS.Offered}}, upgraded: {{.STARTTLS.Upgraded}}{{if .STARTTLS.UpgradeReply}} (<code>{{.STARTTLS.UpgradeReply}}</code>){{end}}{{end}}</td></tr>
{{with .TLS}}<tr><th>Negotiated</th><td>{{.Version}}, <code>{{.Cipher}}</code>, forward secrecy: {{.ForwardSecrecy}}</td></tr>
<tr><th>Versions</th><td>{{$t := .}}{{range $v}}{{.}}: {{yn (ver $t.Versions .)}}<br>{{end}}</td></tr>
{{if .Ciphers}}<tr><th>Suites</th><td><table><tr><th>version</th><th>suite</th><th>kex</th><th>bits</th><th>FS</th><th>AEAD</th><th>obsolete</th></tr>
{{range .Ciphers}}<tr><td>{{.Version}}</td><td><code>{{.Name}}</code></td><td>{{.Kex}}</td><td>{{.Bits}}</td><td>{{.ForwardSecrecy}}</td><td>{{.AEAD}}</td><td>{{if or .Obsolete .Anonymous}}<span class="fail">yes</span>{{else}}no{{end}}</td></tr>{{end}}
</table>server order: {{yn .ServerCipherOrder}}</td></tr>{{end}}
<tr><th>Groups</th><td>{{range .Groups}}{{.}} {{end}}{{if .DHBits}}(finite-field DH {{.DHBits}} bits){{end}}</td></tr>
<tr><th>Downgrade</th><td>fallback SCSV honoured: {{yn .FallbackSCSV}}; secure renegotiation: {{yn .SecureRenegotiation}}; compression: {{yn .Compression}}</td></tr>
{{with .Scan}}<tr><th>Scan</th><td>{{.Connections}} connections, {{printf "%.2f" .Seconds}} s</td></tr>{{end}}{{end}}
{{with .Cert}}<tr><th>Certificate</th><td>{{.Subject}}<br>issuer {{.Issuer}}<br>names {{range .Names}}{{.}} {{end}}<br>valid until {{.NotAfter.Format "2006-01-02"}} ({{.DaysLeft}} days), {{.KeyType}} {{.KeyBits}} bits, {{.Signature}}<br>trusted: {{.Trusted}}{{if .TrustError}} ({{.TrustError}}){{end}}, name matches: {{.NameMatch}}, OCSP stapled: {{.OCSPStapled}}</td></tr>{{end}}
<tr><th>Login</th><td>before TLS: {{range .Auth.BeforeTLS}}{{.}} {{else}}none{{end}}; after TLS: {{range .Auth.AfterTLS}}{{.}} {{else}}none{{end}}</td></tr>
{{with .Injection}}<tr><th>Injection</th><td>tested: {{.Tested}}, vulnerable: {{if .Vulnerable}}<span class="fail">yes</span>{{else}}no{{end}} {{.Note}}</td></tr>{{end}}
</table>
{{if .Findings}}<table><tr><th>severity</th><th>id</th><th>finding</th><th>fix</th></tr>
{{range .Findings}}<tr><td class="{{.Severity}}">{{.Severity}}</td><td><code>{{.ID}}</code></td><td>{{.Message}}</td><td>{{.Fix}}</td></tr>{{end}}
</table>{{else}}<p>No findings.</p>{{end}}
{{end}}{{end}}`))
