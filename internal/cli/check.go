package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/check"
	"github.com/starttls/starttls/lab"
	"github.com/starttls/starttls/maildomain"
)

func runCheck(e *env, args []string) (worst int) {
	fs := flagSet("check", e, "check [flags] URL|DOMAIN... | check --lab")
	var cf clientFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per target (JSON Lines) instead of text")
	trace := fs.Bool("trace", false, "print the plaintext dialog as it happens (stderr)")
	noInjection := fs.Bool("no-injection", false, "skip the STARTTLS command-injection probe (one extra connection)")
	withLab := fs.Bool("lab", false, "start the built-in lab and check every endpoint against what it expects")
	quick := fs.Bool("quick", false, "one handshake only: skip the enumeration of versions, cipher suites and groups")
	maxConns := fs.Int("max-conns", 0, "enumeration connections in flight per server (default 4)")
	htmlFile := fs.String("html", "", "also write a self-contained HTML report to `FILE`")
	var df domainFlags
	df.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return flagError(err)
	}
	if err := cf.validate(); err != nil {
		fmt.Fprintln(e.stderr, "starttls check:", err)
		return exitCantRun
	}
	if *maxConns < 0 || *maxConns > 64 {
		fmt.Fprintln(e.stderr, "starttls check: --max-conns must be 0 to 64 (0: the default, 4)")
		return exitCantRun
	}
	if *withLab {
		if *htmlFile != "" || *trace || cf.serverName != "" || cf.source != "" || cf.mode != "" {
			fmt.Fprintln(e.stderr, "starttls check: --lab checks the lab with its own CA, names and modes; --html, --trace, --server-name, --source and --mode do not apply")
			return exitCantRun
		}
		if len(pos) > 0 {
			fmt.Fprintln(e.stderr, "starttls check: --lab takes no URL")
			return exitCantRun
		}
		return checkLab(e, &cf, *asJSON, *noInjection, *quick, *maxConns)
	}
	if len(pos) == 0 {
		fmt.Fprintln(e.stderr, "starttls check: no target (give a URL such as smtp://mx.example.org, a mail domain such as example.org, or --lab)")
		return exitCantRun
	}
	// A bare domain (no scheme) is audited as a mail destination.
	var targets []*starttls.Target
	domains := map[int]string{}
	for i, raw := range pos {
		if isDomainArg(raw) {
			if !maildomain.ValidDomain(raw) {
				fmt.Fprintf(e.stderr, "starttls check: %q is not a URL (scheme://host[:port], e.g. smtp://mx.example.org) nor a mail domain (e.g. example.org)\n", raw)
				return exitCantRun
			}
			if err := df.validate(&cf, *trace); err != nil {
				fmt.Fprintln(e.stderr, "starttls check:", err)
				return exitCantRun
			}
			domains[i] = raw
			targets = append(targets, nil)
			continue
		}
		t, err := cf.target(raw)
		if err != nil {
			fmt.Fprintln(e.stderr, "starttls check:", err)
			return exitCantRun
		}
		targets = append(targets, t)
	}
	roots, err := cf.roots()
	if err != nil {
		fmt.Fprintln(e.stderr, "starttls check:", err)
		return exitCantRun
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	worst = exitOK
	var reports []*check.Report
	var domainReports []*check.DomainReport
	defer func() {
		if *htmlFile == "" {
			return
		}
		if err := writeHTML(*htmlFile, domainReports, reports); err != nil {
			fmt.Fprintln(e.stderr, "starttls check:", err)
			worst = exitCantRun
		}
	}()
	for i, t := range targets {
		if domain, ok := domains[i]; ok {
			if i > 0 && !*asJSON {
				fmt.Fprintln(e.stdout)
			}
			o := &check.DomainOptions{
				Options:  check.Options{Roots: roots, LocalName: cf.ehlo, Source: cf.source, Timeout: cf.timeout, SkipInjection: *noInjection, Quick: *quick, MaxConns: *maxConns},
				Resolver: df.resolver(), SMTPPort: df.smtpPort, MTASTSPort: df.mtaSTSPort,
			}
			d := check.RunDomain(ctx, domain, o)
			if *asJSON {
				if err := json.NewEncoder(e.stdout).Encode(struct {
					Domain *check.DomainReport `json:"domain"`
				}{d}); err != nil {
					fmt.Fprintln(e.stderr, "starttls check:", err)
					return exitCantRun
				}
			} else {
				d.WriteTextColor(e.stdout, useColor(e.stdout))
			}
			domainReports = append(domainReports, d)
			if d.Verdict.Result == check.Error {
				fmt.Fprintf(e.stderr, "starttls check: %s: %s\n", domain, d.Error)
			}
			worst = max(worst, d.Verdict.Result.ExitCode())
			continue
		}
		o := &check.Options{Roots: roots, ServerName: cf.serverName, LocalName: cf.ehlo, Source: cf.source, Timeout: cf.timeout, SkipInjection: *noInjection, Quick: *quick, MaxConns: *maxConns}
		if *trace {
			o.Transcript = &starttls.Transcript{Live: e.stderr}
		}
		r := check.Run(ctx, t, o)
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			if err := enc.Encode(r); err != nil {
				fmt.Fprintln(e.stderr, "starttls check:", err)
				return exitCantRun
			}
		} else {
			if i > 0 {
				fmt.Fprintln(e.stdout)
			}
			r.WriteTextColor(e.stdout, useColor(e.stdout))
		}
		reports = append(reports, r)
		if r.Verdict == check.Error {
			fmt.Fprintf(e.stderr, "starttls check: %s: %s\n", t, r.Error)
		}
		worst = max(worst, r.Verdict.ExitCode())
	}
	return worst
}

// checkLab starts the lab, checks every endpoint concurrently and compares
// the findings with what each endpoint expects.
func checkLab(e *env, cf *clientFlags, asJSON, noInjection, quick bool, maxConns int) int {
	l, err := lab.Start(&lab.Options{})
	if err != nil {
		fmt.Fprintln(e.stderr, "starttls check:", err)
		return exitCantRun
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	reports := make([]*check.Report, len(l.Endpoints))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, ep := range l.Endpoints {
		t, err := starttls.ParseTarget(ep.URL)
		if err != nil {
			fmt.Fprintln(e.stderr, "starttls check:", err)
			return exitCantRun
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			reports[i] = check.Run(ctx, t, &check.Options{Roots: l.CA.Pool(), LocalName: cf.ehlo, Timeout: cf.timeout, SkipInjection: noInjection, Quick: quick, MaxConns: maxConns})
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return exitCantRun
	}
	ok := true
	type row struct {
		name, verdict, expect, found string
		met                          bool
	}
	var rows []row
	for i, ep := range l.Endpoints {
		r := reports[i]
		got := ids(r)
		met := true
		for _, want := range ep.Expect {
			if !slices.Contains(got, want) {
				met = false
			}
		}
		if noInjection && slices.Contains(ep.Expect, "command-injection") {
			met = true
		}
		if !ep.Broken && r.Verdict != check.Pass {
			met = false
		}
		ok = ok && met
		rows = append(rows, row{ep.Name, string(r.Verdict), strings.Join(ep.Expect, ","), strings.Join(got, ","), met})
		if asJSON {
			json.NewEncoder(e.stdout).Encode(struct {
				Endpoint lab.Endpoint  `json:"endpoint"`
				Met      bool          `json:"expectations_met"`
				Report   *check.Report `json:"report"`
			}{ep, met, r})
		}
	}
	if asJSON {
		if !ok {
			return exitFail
		}
		return exitOK
	}
	color := useColor(e.stdout)
	for i, r := range reports {
		fmt.Fprintf(e.stdout, "── %s: %s\n", l.Endpoints[i].Name, l.Endpoints[i].About)
		r.WriteTextColor(e.stdout, color)
		fmt.Fprintln(e.stdout)
	}
	fmt.Fprintf(e.stdout, "Summary: %d lab endpoints (CA %s)\n\n", len(rows), l.CAFile)
	fmt.Fprintf(e.stdout, "  %-28s %-7s %-40s %s\n", "ENDPOINT", "VERDICT", "EXPECTED FINDINGS", "CHECK")
	for _, r := range rows {
		mark := "ok"
		if !r.met {
			mark = "MISSED (found: " + r.found + ")"
		}
		exp := r.expect
		if exp == "" {
			exp = "(none: correct server)"
		}
		fmt.Fprintf(e.stdout, "  %-28s %-7s %-40s %s\n", r.name, r.verdict, exp, mark)
	}
	if !ok {
		fmt.Fprintln(e.stdout, "\nThe checker missed an expected finding: that is a bug, please report it.")
		return exitFail
	}
	fmt.Fprintln(e.stdout, "\nEvery correct endpoint passed and every broken one was caught.")
	return exitOK
}

func ids(r *check.Report) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity != check.Info {
			out = append(out, f.ID)
		}
	}
	return out
}

// useColor: colour only on a terminal, and never with NO_COLOR set
// (no-color.org).
func useColor(w io.Writer) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	return isTerminal(w)
}

// writeHTML writes the domain audits and reports as one self-contained
// page.
func writeHTML(path string, domains []*check.DomainReport, reports []*check.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := check.WriteHTMLDomains(f, domains, reports); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
