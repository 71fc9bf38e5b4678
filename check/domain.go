package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dane"
	"github.com/starttls/starttls/maildomain"
	"github.com/starttls/starttls/mtasts"
	"github.com/starttls/starttls/resolver"
	"github.com/starttls/starttls/tlsrpt"
)

// DomainOptions configure the audit of a mail domain. The embedded Options
// apply to the SMTP check of every MX host (Roots also verify the MTA-STS
// policy host), except ServerName (each MX host's own name is checked) and
// Transcript (the MX hosts are checked concurrently; each report has its
// own transcript).
type DomainOptions struct {
	Options
	// Resolver answers every lookup (MX, TXT, TLSA and the addresses of the
	// MX hosts and of the policy host). Its DNSSEC verdicts are the AD bit
	// of that resolver, which must be trusted (loopback). nil means a
	// resolver.Resolver with the first nameserver of /etc/resolv.conf.
	Resolver *resolver.Resolver
	// SMTPPort is the port the MX hosts are checked on; 0 means 25. TLSA
	// records are then looked up at _PORT._tcp as well as _25._tcp.
	SMTPPort int
	// MTASTSPort is the HTTPS port of the MTA-STS policy host; 0 means 443
	// (other ports are for test labs).
	MTASTSPort int
}

// MaxMX bounds the MX hosts audited for one domain (a hostile domain may
// list hundreds); the report says when some were left out.
const MaxMX = 16

// DomainReport is the audit of a mail domain: its MX hosts, MTA-STS,
// TLS-RPT and DANE, the SMTP check of every MX host and a verdict. Its
// JSON form is the "domain" object of `starttls check DOMAIN --json`.
type DomainReport struct {
	Name     string          `json:"name"`
	MX       []MXInfo        `json:"mx"`
	NullMX   bool            `json:"null_mx"`
	MTASTS   MTASTSInfo      `json:"mta_sts"`
	TLSRPT   TLSRPTInfo      `json:"tlsrpt"`
	DANE     DANEInfo        `json:"dane"`
	Verdict  DomainVerdict   `json:"verdict"`
	Findings []DomainFinding `json:"findings"`
	// Reports are the SMTP checks of the MX hosts, in the order of MX
	// (one per MX host with an address).
	Reports []*Report `json:"reports"`
	// Error says why the audit could not run (Verdict.Result Error).
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_seconds"`

	mu    sync.Mutex // guards Findings, notes and bogus while the parts run
	notes []string   // what could not be checked, for the summary
	// bogus are the answers that failed DNSSEC validation, by MX host
	// ("" for the domain's own names): one dnssec-bogus finding each.
	bogus map[string][]string
	noMX  bool // no MX host and no address: mail cannot be delivered
}

// MXInfo is one mail exchanger.
type MXInfo struct {
	Host       string   `json:"host"`
	Preference uint16   `json:"preference"`
	Address    []string `json:"address"`
	// Implicit: the domain has no MX and this is its own A/AAAA (RFC 5321
	// §5.1).
	Implicit bool `json:"implicit"`
	// DNSSEC is the validation state of the address answer.
	DNSSEC string `json:"dnssec"`
	Error  string `json:"error,omitempty"`
}

// MTASTSInfo is the domain's MTA-STS record and policy (RFC 8461).
type MTASTSInfo struct {
	TXT    string   `json:"txt"`
	ID     string   `json:"id,omitempty"`
	URL    string   `json:"url,omitempty"`
	Policy string   `json:"policy"`
	Mode   string   `json:"mode"`
	MaxAge int64    `json:"max_age"`
	MX     []string `json:"mx"`
	// Valid: a record and a policy were found and both parse.
	Valid bool   `json:"valid"`
	Error string `json:"error"`
}

// TLSRPTInfo is the domain's TLS-RPT record (RFC 8460).
type TLSRPTInfo struct {
	Record string   `json:"record"`
	RUA    []string `json:"rua"`
	Valid  bool     `json:"valid"`
	Error  string   `json:"error"`
}

// DANEInfo sums up DANE (RFC 7672) for the domain.
type DANEInfo struct {
	// DNSSEC is the validation state of the MX answer (of the address
	// answer for an implicit MX).
	DNSSEC string     `json:"dnssec"`
	TLSA   []TLSAInfo `json:"tlsa"`
	// Valid: every MX host has secure TLSA records that match the
	// certificate it presented.
	Valid bool `json:"valid"`
}

// TLSAInfo is one TLSA lookup for one MX host.
type TLSAInfo struct {
	MX      string   `json:"mx"`
	Name    string   `json:"name"`
	Records []string `json:"records"`
	DNSSEC  string   `json:"dnssec"`
	// Used: these are the records a DANE sender applies to the MX host
	// (the first non-empty set of _PORT._tcp, then _25._tcp).
	Used bool `json:"used"`
	// Matched: the records authenticate the certificate the MX host
	// presented (null when not checked: no records, or no certificate).
	Matched *bool  `json:"matched"`
	Error   string `json:"error,omitempty"`
}

// DomainVerdict answers the questions of the audit.
type DomainVerdict struct {
	// Result sums up the findings and the MX checks like a Report's
	// verdict: pass, warn, fail, or error when the audit could not run.
	Result Verdict `json:"result"`
	// DANESenderDelivers: a sender that applies DANE would deliver to
	// some MX over authenticated TLS (null when no MX has secure TLSA
	// records).
	DANESenderDelivers *bool `json:"dane_sender_delivers"`
	// MTASTSSenderDelivers: a sender that applies the MTA-STS policy
	// would deliver (null without a policy in mode enforce or testing).
	MTASTSSenderDelivers *bool `json:"mta_sts_sender_delivers"`
	// STRIPTLSPossible: no enforced policy protects some MX, so a
	// man-in-the-middle can make senders fall back to plaintext.
	STRIPTLSPossible bool   `json:"striptls_possible"`
	Summary          string `json:"summary"`
}

// DomainFinding is one observation about the domain, with a stable id
// (documented in docs/mail-domain.md); MX names the host it concerns, ""
// for the domain.
type DomainFinding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	MX       string   `json:"mx"`
	Detail   string   `json:"detail"`
	Fix      string   `json:"fix,omitempty"`
}

// Has reports whether the report has a finding with id.
func (d *DomainReport) Has(id string) bool {
	return slices.ContainsFunc(d.Findings, func(f DomainFinding) bool { return f.ID == id })
}

// note records something that could not be checked: it makes the result
// at least a warning and goes into the summary.
func (d *DomainReport) note(msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notes = append(d.notes, msg)
}

// addBogus records an answer that failed DNSSEC validation: what was
// looked up and at which name. judge turns them into one dnssec-bogus
// finding per group (the domain's names, then each MX host's).
func (d *DomainReport) addBogus(mx, what, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bogus == nil {
		d.bogus = map[string][]string{}
	}
	d.bogus[mx] = append(d.bogus[mx], what+" at "+name)
}

// bogusFindings adds the dnssec-bogus findings, the domain's first and
// then one per MX host in MX order.
func (d *DomainReport) bogusFindings(audits []*mxAudit) {
	if what := d.bogus[""]; len(what) > 0 {
		d.add(Fail, "dnssec-bogus", "", "DNSSEC validation fails for "+strings.Join(what, ", ")+": validating resolvers (and every DANE sender) cannot use these answers, and mail to the domain is deferred where they are needed", "check the zone's signatures and the DS record in the parent zone (re-sign the zone)")
	}
	for _, a := range audits {
		if what := d.bogus[a.info.Host]; len(what) > 0 {
			d.add(Fail, "dnssec-bogus", a.info.Host, "DNSSEC validation fails for "+strings.Join(what, ", ")+": DANE senders will not deliver to this MX host", "check the zone's signatures (re-sign the zone)")
		}
	}
}

func (d *DomainReport) add(sev Severity, id, mx, detail, fix string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Findings = append(d.Findings, DomainFinding{ID: id, Severity: sev, MX: mx, Detail: detail, Fix: fix})
}

// mxAudit is what was learnt about one MX host.
type mxAudit struct {
	info   MXInfo
	tlsa   []TLSAInfo
	used   *TLSAInfo // the set a DANE sender applies, nil without
	secure bool      // the used set and the host's address are DNSSEC-secure
	usable bool      // some used record is usable (DANE-TA or DANE-EE, known selector and type)
	bogus  bool      // an address or TLSA answer failed validation
	report *Report
	daneOK bool // the used records matched the presented chain
}

// RunDomain audits a mail domain. It never returns nil.
func RunDomain(ctx context.Context, domain string, o *DomainOptions) *DomainReport {
	if o == nil {
		o = &DomainOptions{}
	}
	start := time.Now()
	d := &DomainReport{
		Name:     strings.ToLower(strings.TrimSuffix(domain, ".")),
		MX:       []MXInfo{},
		Findings: []DomainFinding{},
		Reports:  []*Report{},
		Started:  start.UTC(),
		MTASTS:   MTASTSInfo{MX: []string{}},
		TLSRPT:   TLSRPTInfo{RUA: []string{}},
		DANE:     DANEInfo{TLSA: []TLSAInfo{}},
	}
	defer func() { d.Duration = time.Since(start).Seconds() }()
	fail := func(msg string) *DomainReport {
		d.Error = msg
		d.Verdict.Result = Error
		d.Verdict.Summary = "could not check: " + msg
		return d
	}
	if !maildomain.ValidDomain(d.Name) {
		return fail(fmt.Sprintf("%q is not a domain name", domain))
	}
	r := o.Resolver
	if r == nil {
		r = &resolver.Resolver{}
	}
	port := cmp.Or(o.SMTPPort, 25)
	timeout := cmp.Or(o.Timeout, 15*time.Second)

	mxs, ok := d.lookupMX(ctx, r)
	if !ok {
		return fail(d.Error)
	}
	if len(mxs) > MaxMX {
		d.note(fmt.Sprintf("only the first %d of %d MX hosts were checked", MaxMX, len(mxs)))
		mxs = mxs[:MaxMX]
	}
	// MTA-STS and TLS-RPT do not depend on the MX hosts: they run while
	// the MX hosts are checked.
	var wg sync.WaitGroup
	fetcher := &mtasts.Fetcher{Resolver: r, Roots: o.Roots, Port: o.MTASTSPort, Timeout: timeout}
	if !o.Now.IsZero() {
		fetcher.Now = func() time.Time { return o.Now }
	}
	var policy *mtasts.Policy
	wg.Go(func() { policy = d.auditMTASTS(ctx, fetcher) })
	wg.Go(func() { d.auditTLSRPT(ctx, r) })
	audits := make([]*mxAudit, len(mxs))
	for i, mx := range mxs {
		audits[i] = &mxAudit{info: mx}
		wg.Go(func() { d.auditMX(ctx, r, audits[i], port, o) })
	}
	wg.Wait()

	for _, a := range audits {
		d.MX = append(d.MX, a.info)
		d.DANE.TLSA = append(d.DANE.TLSA, a.tlsa...)
		if a.report != nil {
			d.Reports = append(d.Reports, a.report)
		}
	}
	d.judge(audits, policy)
	return d
}

// lookupMX finds the mail exchangers: the MX records, a null MX (RFC 7505)
// or, without MX records, the domain itself (RFC 5321 §5.1). ok is false
// when the audit cannot go on (d.Error says why).
func (d *DomainReport) lookupMX(ctx context.Context, r *resolver.Resolver) (mxs []MXInfo, ok bool) {
	ans, err := r.MX(ctx, d.Name)
	d.DANE.DNSSEC = ans.Security.String()
	switch {
	case errors.Is(err, resolver.ErrBogus):
		d.addBogus("", "the MX answer", d.Name)
	case err != nil:
		d.Error = "MX lookup failed: " + err.Error()
		return nil, false
	}
	if len(ans.Records) == 1 && ans.Records[0].Host == "" {
		d.NullMX = true
		d.add(Info, "mx-null", "", "the domain publishes a null MX (RFC 7505): it accepts no mail", "")
		return nil, true
	}
	for _, m := range ans.Records {
		if m.Host == "" {
			continue // a null MX among others is meaningless (RFC 7505 §3)
		}
		mxs = append(mxs, MXInfo{Host: m.Host, Preference: m.Preference, Address: []string{}})
	}
	if len(mxs) > 0 {
		return mxs, true
	}
	ips, err := r.IPs(ctx, d.Name)
	if err != nil && !errors.Is(err, resolver.ErrBogus) {
		d.Error = "no MX records, and the address lookup failed: " + err.Error()
		return nil, false
	}
	if len(ips.Records) == 0 {
		why := "the domain has no MX records and no address"
		if ans.NXDomain {
			why = "the domain does not exist (NXDOMAIN)"
		}
		d.noMX = true
		d.add(Fail, "mx-none", "", why+": mail to it cannot be delivered", "publish MX records (or a null MX, RFC 7505, if the domain takes no mail)")
		return nil, true
	}
	d.DANE.DNSSEC = ips.Security.String()
	d.add(Warn, "mx-implicit", d.Name, "the domain has no MX records: senders fall back to its own address (RFC 5321 §5.1)", "publish an MX record naming the mail server")
	return []MXInfo{{Host: d.Name, Address: []string{}, Implicit: true}}, true
}

// auditMX resolves one MX host, looks up its TLSA records, checks its SMTP
// server and verifies the records against the certificate it presented.
func (d *DomainReport) auditMX(ctx context.Context, r *resolver.Resolver, a *mxAudit, port int, o *DomainOptions) {
	host := a.info.Host
	ips, err := r.IPs(ctx, host)
	a.info.DNSSEC = ips.Security.String()
	for _, ip := range ips.Records {
		a.info.Address = append(a.info.Address, ip.String())
	}
	switch {
	case errors.Is(err, resolver.ErrBogus):
		a.bogus = true
		d.addBogus(host, "the address answer", host)
	case err != nil:
		a.info.Error = err.Error()
	case len(ips.Records) == 0:
		a.info.Error = "the MX host has no address"
	}
	// TLSA base names: the CNAME target first, then the host (RFC 7672
	// §2.2.2), each at _PORT._tcp, then at _25._tcp.
	bases := []string{host}
	if ips.Canonical != "" && ips.Canonical != host && ips.Security == resolver.Secure {
		bases = []string{ips.Canonical, host}
	}
	ports := []int{port}
	if port != 25 {
		ports = append(ports, 25)
	}
	type tlsaSet struct {
		records []resolver.TLSA
		base    string
	}
	var sets []tlsaSet // parallel to a.tlsa
	used := -1
	for _, p := range ports {
		for _, b := range bases {
			name := "_" + strconv.Itoa(p) + "._tcp." + b
			ans, err := r.TLSA(ctx, name)
			ti := TLSAInfo{MX: host, Name: name, Records: []string{}, DNSSEC: ans.Security.String()}
			for _, rec := range ans.Records {
				ti.Records = append(ti.Records, rec.String())
			}
			switch {
			case errors.Is(err, resolver.ErrBogus):
				ti.Error = err.Error()
				a.bogus = true
				d.addBogus(host, "the TLSA answer", name)
			case err != nil:
				ti.Error = err.Error()
			}
			if len(ans.Records) == 0 && err == nil && (p != port || b != host) {
				continue // only the first name is shown when empty
			}
			if used < 0 && len(ans.Records) > 0 && err == nil {
				used = len(a.tlsa)
				ti.Used = true
			}
			a.tlsa = append(a.tlsa, ti)
			sets = append(sets, tlsaSet{ans.Records, cmp.Or(ans.Canonical, b)})
		}
	}
	if used >= 0 {
		a.used = &a.tlsa[used]
	}
	if len(a.info.Address) == 0 {
		return
	}
	t := &starttls.Target{Scheme: mustScheme("smtp"), Host: a.info.Address[0], Port: port}
	co := o.Options
	co.ServerName = host
	co.Transcript = nil
	rep := Run(ctx, t, &co)
	rep.Target = "smtp://" + host + ":" + strconv.Itoa(port)
	a.report = rep
	// Every record set found is checked against the chain, so that the
	// report says which matched; the used one decides.
	now := cmp.Or(o.Now, time.Now())
	var usedErr error
	for i := range a.tlsa {
		ti := &a.tlsa[i]
		if len(sets[i].records) == 0 || ti.DNSSEC == resolver.Bogus.String() || len(rep.peerChain) == 0 {
			continue
		}
		names := []string{host}
		if sets[i].base != host {
			names = append(names, sets[i].base)
		}
		err := dane.Verify(rep.peerChain, sets[i].records, names, now)
		ok := err == nil
		ti.Matched = &ok
		if i == used {
			usedErr = err
		}
	}
	if a.used == nil || a.bogus {
		return
	}
	if a.used.DNSSEC != resolver.Secure.String() || a.info.DNSSEC != resolver.Secure.String() {
		what := "TLSA records"
		if a.used.DNSSEC == resolver.Secure.String() {
			what = "TLSA records, but the MX host's address is insecure,"
		}
		d.add(Warn, "dnssec-insecure", host, fmt.Sprintf("%s at %s are in a zone without DNSSEC: senders ignore them (RFC 7672 §2.2)", what, a.used.Name), "sign the zone (and its parent's DS) or remove the TLSA records")
		return
	}
	a.secure = true
	for _, rec := range sets[used].records {
		if dane.CheckRecord(rec) == nil {
			a.usable = true
		}
	}
	if !a.usable {
		d.add(Warn, "dane-tlsa-unusable", host, fmt.Sprintf("no TLSA record at %s is usable for SMTP (only DANE-TA(2) and DANE-EE(3) with a known selector and matching type and a digest of the right length are, RFC 7672 §3.1): senders require TLS but cannot authenticate the server", a.used.Name), "publish a 3 1 1 record of the server's key")
		return
	}
	if a.used.Matched == nil {
		return // no certificate: the MX check reports why
	}
	a.daneOK = *a.used.Matched
	if !a.daneOK {
		d.add(Fail, "dane-tlsa-mismatch", host, fmt.Sprintf("no TLSA record at %s matches the certificate the server presented: %v", a.used.Name, usedErr), "publish records for the current certificate (and the next one before a rollover), or serve the certificate the records name")
	}
}

// auditMTASTS looks up the MTA-STS record and fetches the policy; it
// returns the policy when it is valid.
func (d *DomainReport) auditMTASTS(ctx context.Context, f *mtasts.Fetcher) *mtasts.Policy {
	m := &d.MTASTS
	txts, rec, err := f.LookupRecord(ctx, d.Name)
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1") {
			m.TXT = t
		}
	}
	switch {
	case errors.Is(err, mtasts.ErrNoRecord):
		d.add(Info, "mta-sts-missing", "", "the domain publishes no MTA-STS policy (no v=STSv1 TXT record at "+mtasts.RecordName(d.Name)+")", "")
		return nil
	case errors.Is(err, mtasts.ErrDuplicateRecord):
		m.TXT = strings.Join(stsRecords(txts), "\n")
		m.Error = err.Error()
		d.add(Fail, "mta-sts-txt-duplicate", "", fmt.Sprintf("%d MTA-STS TXT records at %s: senders then assume there is no policy (RFC 8461 §3.1)", len(stsRecords(txts)), mtasts.RecordName(d.Name)), "publish exactly one v=STSv1 record")
		return nil
	case errors.Is(err, mtasts.ErrInvalidRecord):
		m.Error = err.Error()
		d.add(Fail, "mta-sts-txt-invalid", "", fmt.Sprintf("the MTA-STS TXT record %q is invalid: %v", clip(m.TXT, 80), err), "publish \"v=STSv1; id=YYYYMMDDhhmmss\"")
		return nil
	case errors.Is(err, resolver.ErrBogus):
		m.Error = err.Error()
		d.addBogus("", "the MTA-STS TXT answer", mtasts.RecordName(d.Name))
		return nil
	case err != nil:
		m.Error = err.Error()
		d.note("the MTA-STS TXT lookup failed: " + err.Error())
		return nil
	}
	m.ID = rec.ID
	m.URL = f.PolicyURL(d.Name)
	body, p, err := f.FetchPolicy(ctx, d.Name)
	m.Policy = body
	if err != nil {
		m.Error = err.Error()
		switch {
		case errors.Is(err, mtasts.ErrRedirect):
			d.add(Fail, "mta-sts-policy-redirect", "", "the policy host answered with a redirect, which senders must not follow (RFC 8461 §3.3): "+err.Error(), "serve the policy directly at "+m.URL)
		case errors.Is(err, mtasts.ErrTooLarge):
			d.add(Fail, "mta-sts-policy-too-large", "", "the policy is larger than 64 KiB: "+err.Error(), "serve only the policy's few lines")
		case errors.Is(err, mtasts.ErrInvalidPolicy):
			d.add(Fail, "mta-sts-policy-invalid", "", err.Error(), "fix the policy file: version, mode, mx and max_age (at most 31557600) lines")
		default:
			d.add(Fail, "mta-sts-policy-fetch-failed", "", "the policy could not be fetched from "+m.URL+": "+err.Error(), "serve the policy over HTTPS with a valid certificate for mta-sts."+d.Name+", status 200 and Content-Type text/plain")
		}
		return nil
	}
	m.Valid = true
	m.Mode = string(p.Mode)
	m.MaxAge = int64(p.MaxAge / time.Second)
	m.MX = append(m.MX, p.MX...)
	if p.Mode == mtasts.ModeTesting {
		d.add(Info, "mta-sts-testing", "", "the MTA-STS policy is in testing mode: senders report failures but still deliver, so it does not stop STRIPTLS", "switch to mode: enforce once the reports are clean")
	}
	return p
}

func stsRecords(txts []string) []string {
	var out []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1") {
			out = append(out, t)
		}
	}
	return out
}

// auditTLSRPT looks up and parses the TLS-RPT record (RFC 8460 §3).
func (d *DomainReport) auditTLSRPT(ctx context.Context, r *resolver.Resolver) {
	name := "_smtp._tls." + d.Name
	ans, err := r.TXT(ctx, name)
	t := &d.TLSRPT
	if err != nil {
		t.Error = err.Error()
		if errors.Is(err, resolver.ErrBogus) {
			d.addBogus("", "the TLS-RPT TXT answer", name)
		} else {
			d.note("the TLS-RPT TXT lookup failed: " + err.Error())
		}
		return
	}
	// tlsrpt.Select decides as a sender would (RFC 8460 §3); the records
	// it considered are shown.
	var recs []string
	for _, txt := range ans.Records {
		if tlsrpt.IsRecord(txt) {
			recs = append(recs, txt)
		}
	}
	t.Record = strings.Join(recs, "\n")
	rec, err := tlsrpt.Select(ans.Records)
	switch {
	case errors.Is(err, tlsrpt.ErrNoRecord):
		if d.NullMX || d.noMX {
			return // a domain that takes no mail has nothing to report
		}
		d.add(Warn, "tlsrpt-missing", "", "no TLS-RPT record at "+name+": senders cannot report TLS failures to the domain", "publish \"v=TLSRPTv1; rua=mailto:tls-reports@"+d.Name+"\"")
		return
	case errors.Is(err, tlsrpt.ErrMultipleRecords):
		t.Error = err.Error()
		d.add(Fail, "tlsrpt-invalid", "", fmt.Sprintf("%d TLS-RPT records at %s: senders ignore them all (RFC 8460 §3)", len(recs), name), "publish exactly one v=TLSRPTv1 record")
		return
	case err != nil:
		t.Error = err.Error()
		d.add(Fail, "tlsrpt-invalid", "", fmt.Sprintf("the TLS-RPT record %q is invalid: %v", clip(t.Record, 80), err), "publish \"v=TLSRPTv1; rua=mailto:…\" (mailto: or https: URIs, comma-separated)")
		return
	}
	t.Valid = true
	t.RUA = append(t.RUA, rec.RUA...)
}

// judge draws the findings that need every part, and the verdict.
func (d *DomainReport) judge(audits []*mxAudit, policy *mtasts.Policy) {
	d.bogusFindings(audits)
	enforced := policy != nil && policy.Mode == mtasts.ModeEnforce
	active := policy != nil && policy.Mode != mtasts.ModeNone
	mxBogus := d.DANE.DNSSEC == resolver.Bogus.String()
	// DANE concerns the domain when some MX host has secure TLSA records,
	// or when validation failed: a DANE sender then defers.
	daneApplies := mxBogus
	hasTLSA := false
	var stsDelivers, reachable bool
	var daneHow daneDelivery
	unprotected := false
	allDANE := len(audits) > 0
	for _, a := range audits {
		host := a.info.Host
		rep := a.report
		up := rep != nil && rep.Verdict != Error
		upgraded := rep != nil && rep.STARTTLS.Upgraded
		reachable = reachable || up
		daneApplies = daneApplies || a.secure || a.bogus
		hasTLSA = hasTLSA || a.bogus || slices.ContainsFunc(a.tlsa, func(t TLSAInfo) bool { return len(t.Records) > 0 })
		// RFC 7672 §2.2: a DANE sender skips an MX host whose answers
		// are bogus, requires authenticated TLS where the TLSA records
		// are usable, TLS where none is, and otherwise uses the host as
		// a non-DANE sender would.
		switch {
		case mxBogus || a.bogus:
		case a.secure && a.usable:
			daneHow.authenticated = daneHow.authenticated || (upgraded && a.daneOK)
		case a.secure:
			daneHow.unauthenticated = daneHow.unauthenticated || upgraded
		default:
			daneHow.opportunistic = daneHow.opportunistic || up
		}
		if !(a.secure && a.daneOK) {
			allDANE = false
		}
		// A bogus answer stops a DANE sender too: no plaintext there.
		if !a.secure && !a.bogus && !mxBogus && !enforced && up {
			unprotected = true
		}
		if active {
			match := policy.Match(host)
			if !match {
				d.add(Fail, "mta-sts-mx-mismatch", host, fmt.Sprintf("the MX host %s matches no mx pattern of the MTA-STS policy (%s): senders that enforce the policy never deliver to it", host, strings.Join(policy.MX, ", ")), "add the host to the policy's mx lines, or fix the MX record")
			}
			certOK := upgraded && rep.Cert != nil && rep.Cert.Trusted && rep.Cert.NameMatch && !rep.Cert.Expired
			if up && !certOK {
				why := "it did not upgrade to TLS"
				if upgraded && rep.Cert != nil {
					why = certProblem(rep.Cert)
				}
				d.add(Fail, "mta-sts-mx-cert-invalid", host, fmt.Sprintf("the MX host %s does not present a certificate valid for its name as MTA-STS requires (RFC 8461 §4.2): %s", host, why), "serve a certificate from a trusted CA that names "+host)
			}
			if policy.Mode == mtasts.ModeTesting {
				stsDelivers = stsDelivers || up
			} else {
				stsDelivers = stsDelivers || (match && certOK)
			}
		}
	}
	if len(audits) > 0 && !hasTLSA && !mxBogus {
		d.add(Info, "dane-missing", "", "no MX host publishes TLSA records: DANE senders use opportunistic TLS", "publish TLSA records (3 1 1) in a DNSSEC-signed zone")
		if d.DANE.DNSSEC == resolver.Insecure.String() {
			d.add(Info, "dnssec-insecure", "", "the MX answer is not DNSSEC-validated: DANE cannot protect this domain", "sign the zone")
		}
	}
	d.DANE.Valid = allDANE
	v := &d.Verdict
	if daneApplies {
		delivers := daneHow.any()
		v.DANESenderDelivers = &delivers
	}
	if active {
		v.MTASTSSenderDelivers = &stsDelivers
	}
	v.STRIPTLSPossible = unprotected
	if unprotected {
		d.add(Warn, "striptls-possible", "", "no enforced policy (MTA-STS enforce or DANE) protects every MX host: a man-in-the-middle can strip STARTTLS and senders fall back to plaintext", "publish an MTA-STS policy in mode enforce, or TLSA records in a signed zone")
	}
	// The result: the domain's findings and the MX checks. The MX checks'
	// certificate findings are left out: senders verify certificates only
	// under a policy, and the policy findings (mta-sts-mx-cert-invalid,
	// dane-tlsa-mismatch) say when that fails.
	v.Result = Pass
	worse := func(x Verdict) {
		rank := map[Verdict]int{Pass: 0, Warns: 1, Fails: 2}
		if rank[x] > rank[v.Result] {
			v.Result = x
		}
	}
	for _, f := range d.Findings {
		switch f.Severity {
		case Fail:
			worse(Fails)
		case Warn:
			worse(Warns)
		}
	}
	if len(d.notes) > 0 {
		worse(Warns)
	}
	for _, a := range audits {
		switch {
		case a.report != nil:
			worse(mxVerdict(a.report))
		case !d.NullMX:
			worse(Fails) // an MX host without an address cannot take mail
		}
	}
	v.Summary = d.summary(audits, policy, reachable, daneHow)
}

// daneDelivery says how a DANE sender can deliver: to some MX host over
// TLS authenticated by usable TLSA records, over TLS it may not
// authenticate (only unusable records: RFC 7672 §2.2), or as a non-DANE
// sender would (an MX host without secure TLSA records).
type daneDelivery struct {
	authenticated, unauthenticated, opportunistic bool
}

func (h daneDelivery) any() bool { return h.authenticated || h.unauthenticated || h.opportunistic }

// String is the summary's phrase for a DANE sender that delivers.
func (h daneDelivery) String() string {
	var how []string
	if h.authenticated {
		how = append(how, "over TLS authenticated by TLSA records")
	}
	if h.unauthenticated {
		how = append(how, "over unauthenticated TLS (TLSA records exist but none is usable, RFC 7672 §2.2)")
	}
	if h.opportunistic {
		how = append(how, "with opportunistic TLS to MX hosts without secure TLSA records")
	}
	if len(how) == 1 {
		return "DANE senders deliver " + how[0]
	}
	return "DANE senders deliver " + strings.Join(how[:len(how)-1], ", ") + " or " + how[len(how)-1] + ", depending on the MX host"
}

// certProblem says in a few words why a certificate does not verify.
func certProblem(c *CertInfo) string {
	var p []string
	if !c.Trusted {
		p = append(p, "chain not trusted ("+c.TrustError+")")
	}
	if !c.NameMatch {
		p = append(p, "name mismatch (it names "+strings.Join(c.Names, ", ")+")")
	}
	if c.Expired {
		p = append(p, "expired")
	}
	return strings.Join(p, ", ")
}

// certIdentity are the MX checks' certificate findings that only matter
// under a policy (see judge).
var certIdentity = []string{"cert-untrusted", "cert-self-signed", "cert-name-mismatch", "cert-expired", "cert-expires-soon", "cert-not-yet-valid"}

// mxVerdict is an MX check's verdict without the certificate identity
// findings; a check that could not run is a failure of the MX.
func mxVerdict(r *Report) Verdict {
	if r.Verdict == Error {
		return Fails
	}
	v := Pass
	for _, f := range r.Findings {
		if slices.Contains(certIdentity, f.ID) {
			continue
		}
		switch f.Severity {
		case Fail:
			return Fails
		case Warn:
			v = Warns
		}
	}
	return v
}

func (d *DomainReport) summary(audits []*mxAudit, policy *mtasts.Policy, reachable bool, dane daneDelivery) string {
	switch {
	case d.NullMX:
		return "the domain accepts no mail (null MX)"
	case len(audits) == 0:
		return "mail to this domain cannot be delivered: no MX host"
	case !reachable:
		return strings.Join(append([]string{"no MX host could be checked"}, d.notes...), "; ")
	}
	var s []string
	v := d.Verdict
	if v.DANESenderDelivers != nil {
		if *v.DANESenderDelivers {
			s = append(s, dane.String())
		} else {
			s = append(s, "DANE senders cannot deliver (TLSA records do not match, DNSSEC fails, or TLS fails)")
		}
	}
	if v.MTASTSSenderDelivers != nil {
		switch {
		case policy.Mode == mtasts.ModeTesting:
			s = append(s, "MTA-STS is in testing mode (failures reported, mail delivered)")
		case *v.MTASTSSenderDelivers:
			s = append(s, "MTA-STS senders deliver over verified TLS")
		default:
			s = append(s, "MTA-STS senders cannot deliver (no MX matches the policy with a valid certificate)")
		}
	}
	if len(s) == 0 {
		s = append(s, "no MTA-STS or DANE policy: senders use opportunistic TLS")
	}
	s = append(s, d.notes...)
	if v.STRIPTLSPossible {
		s = append(s, "a STRIPTLS attacker can force plaintext")
	} else {
		s = append(s, "STRIPTLS is prevented for senders that apply the policy")
	}
	return strings.Join(s, "; ")
}

func mustScheme(name string) starttls.Scheme {
	s, ok := starttls.LookupScheme(name)
	if !ok {
		panic("check: no scheme " + name)
	}
	return s
}
