package strip

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Verdicts.
const (
	Safe          = "safe"
	Vulnerable    = "vulnerable"
	NotApplicable = "not applicable"
)

// Credential is a login the client sent, with the secret masked.
type Credential struct {
	Mechanism string `json:"mechanism"`
	User      string `json:"user"`
	Secret    string `json:"secret"` // masked: first and last character, length
	TLS       bool   `json:"tls"`    // sent inside TLS (a relayed or accepted session)
}

// Entry is the record of one client connection: the report has one per
// connection. The first fields are the ones the command line documents.
type Entry struct {
	Attack             string       `json:"attack"`
	Client             string       `json:"client"`
	PlaintextContinued bool         `json:"plaintext_continued"`
	CredentialsSeen    []Credential `json:"credentials_seen"`
	AcceptedBadCert    bool         `json:"accepted_bad_cert"`
	ActedOnInjection   bool         `json:"acted_on_injection"`
	Verdict            string       `json:"verdict"`
	Evidence           []string     `json:"evidence"`

	// Variant is the form of the attack (reject-upgrade: temporary or
	// permanent; untrusted-cert: self-signed or wrong-name).
	Variant  string `json:"variant,omitempty"`
	Protocol string `json:"protocol"`
	// Subject is what the verdict is about: "client", or "server" for
	// command-injection.
	Subject string `json:"subject"`
	// Findings say in words why the verdict is what it is.
	Findings []string `json:"findings"`
	// Note explains a verdict the attack could not fully establish: not
	// applicable, or not exercised (the client refused an earlier step).
	Note     string    `json:"note,omitempty"`
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration_seconds"`
}

// Name is the attack with its variant, as in summaries.
func (e *Entry) Name() string { return Step{e.Attack, e.Variant}.String() }

// decide sets Verdict from the evidence fields.
func (e *Entry) decide() {
	if e.Verdict == NotApplicable {
		return
	}
	e.Verdict = Safe
	if e.PlaintextContinued || len(e.CredentialsSeen) > 0 || e.AcceptedBadCert || e.ActedOnInjection {
		e.Verdict = Vulnerable
	}
}

// Summary is the verdict on one attack over every connection it saw.
type Summary struct {
	Attack      string   `json:"attack"`
	Connections int      `json:"connections"`
	Verdict     string   `json:"verdict"`
	Evidence    []string `json:"evidence"`
}

// Summarize groups entries by attack (and variant): vulnerable when any
// connection was, not applicable when every connection was, else safe.
func Summarize(entries []Entry) []Summary {
	var out []Summary
	index := map[string]int{}
	for _, e := range entries {
		name := e.Name()
		i, ok := index[name]
		if !ok {
			i = len(out)
			index[name] = i
			out = append(out, Summary{Attack: name, Verdict: NotApplicable})
		}
		s := &out[i]
		s.Connections++
		switch {
		case e.Verdict == Vulnerable:
			if s.Verdict != Vulnerable {
				s.Evidence = nil
			}
			s.Verdict = Vulnerable
			s.Evidence = append(s.Evidence, e.Client+": "+strings.Join(e.Findings, "; "))
		case e.Verdict == Safe && s.Verdict != Vulnerable:
			s.Verdict = Safe
			s.Evidence = append(s.Evidence, e.Client+": "+strings.Join(e.Findings, "; "))
		case e.Verdict == NotApplicable && s.Verdict == NotApplicable:
			s.Evidence = append(s.Evidence, e.Note)
		}
		if e.Note != "" && e.Verdict != NotApplicable {
			s.Evidence = append(s.Evidence, e.Client+": note: "+e.Note)
		}
	}
	return out
}

// WriteText writes the summary for people: one block per attack.
func WriteText(w io.Writer, entries []Entry) error {
	sums := Summarize(entries)
	if len(sums) == 0 {
		_, err := fmt.Fprintln(w, "no client connected")
		return err
	}
	for _, s := range sums {
		fmt.Fprintf(w, "%-32s %-14s (%d connection%s)\n", s.Attack, s.Verdict, s.Connections, plural(s.Connections))
		for _, ev := range s.Evidence {
			fmt.Fprintf(w, "    %s\n", ev)
		}
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Report is the JSON document --report writes.
type Report struct {
	Protocol    string    `json:"protocol"`
	Listen      string    `json:"listen"`
	Upstream    string    `json:"upstream"`
	Connections []Entry   `json:"connections"`
	Summary     []Summary `json:"summary"`
}

// NewReport builds the report document, its entries in the order the
// connections began (they end, and are recorded, in any order).
func NewReport(protocol, listen, upstream string, entries []Entry) *Report {
	entries = slices.Clone(entries)
	if entries == nil {
		entries = []Entry{}
	}
	slices.SortStableFunc(entries, func(a, b Entry) int { return a.Start.Compare(b.Start) })
	return &Report{Protocol: protocol, Listen: listen, Upstream: upstream, Connections: entries, Summary: Summarize(entries)}
}

// WriteFile writes the report as JSON to path, atomically (a temporary
// file renamed), readable by the owner only: it names the users seen.
func (r *Report) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".strip-report-*")
	if err != nil {
		return fmt.Errorf("strip: report: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("strip: report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("strip: report: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("strip: report: %w", err)
	}
	return nil
}
