package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
)

// row is one line of the comparison table.
type row struct {
	label  string
	higher bool // higher is better
	format string
	value  func(*Result) (float64, bool) // false: not measured
}

func rows(results []*Result) []row {
	conns, clients, idle := 64, 16, 5000
	if len(results) > 0 {
		conns, clients, idle = results[0].BulkConns, results[0].HandshakeClients, results[0].IdleWanted
	}
	mbps := func(f func(*Result) float64) func(*Result) (float64, bool) {
		return func(r *Result) (float64, bool) { v := f(r); return v, v > 0 }
	}
	return []row{
		{"bulk backend→client, 1 connection (MB/s)", true, "%.0f", mbps(func(r *Result) float64 { return r.Down1 })},
		{"bulk client→backend, 1 connection (MB/s)", true, "%.0f", mbps(func(r *Result) float64 { return r.Up1 })},
		{fmt.Sprintf("bulk backend→client, %d connections (MB/s)", conns), true, "%.0f", mbps(func(r *Result) float64 { return r.DownN })},
		{fmt.Sprintf("bulk client→backend, %d connections (MB/s)", conns), true, "%.0f", mbps(func(r *Result) float64 { return r.UpN })},
		{"CPU per GB relayed, bulk phases (s/GB)", false, "%.2f", func(r *Result) (float64, bool) { return r.CPUPerGB, r.BulkCPUSeconds > 0 }},
		{fmt.Sprintf("full TLS handshakes/s, %d clients", clients), true, "%.0f", mbps(func(r *Result) float64 { return r.Handshakes })},
		{"added latency p50, small echo (µs)", false, "%.0f", func(r *Result) (float64, bool) { return r.AddedP50, r.LatencySamples > 0 }},
		{"added latency p99, small echo (µs)", false, "%.0f", func(r *Result) (float64, bool) { return r.AddedP99, r.LatencySamples > 0 }},
		{fmt.Sprintf("memory per idle connection, %d held (KiB)", idle), false, "%.1f", func(r *Result) (float64, bool) {
			return r.IdleBytesPerCon / 1024, r.RSSAfter > 0 && r.IdleOpened > 0
		}},
	}
}

// renderTable writes the Markdown table: one column per result, then the
// ratio of the first result to each other one, then what every result
// negotiated and noted.
func renderTable(w io.Writer, results []*Result, notes []string) error {
	if len(results) == 0 {
		return errors.New("no results")
	}
	var b strings.Builder
	head := []string{"metric", "better"}
	for _, r := range results {
		head = append(head, r.Name)
	}
	for _, r := range results[1:] {
		head = append(head, results[0].Name+" / "+r.Name)
	}
	line := func(cells []string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	line(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---"
		if i >= 2 {
			sep[i] = "---:"
		}
	}
	line(sep)
	for _, rw := range rows(results) {
		cells := []string{rw.label, "lower"}
		if rw.higher {
			cells[1] = "higher"
		}
		vals := make([]float64, len(results))
		oks := make([]bool, len(results))
		for i, r := range results {
			vals[i], oks[i] = rw.value(r)
			if oks[i] {
				cells = append(cells, fmt.Sprintf(rw.format, vals[i]))
			} else {
				cells = append(cells, "n/a")
			}
		}
		for i := 1; i < len(results); i++ {
			cells = append(cells, ratio(vals[0], oks[0], vals[i], oks[i]))
		}
		line(cells)
	}
	b.WriteString("\n")
	for _, r := range results {
		fmt.Fprintf(&b, "- %s", r.Name)
		if r.Version != "" {
			fmt.Fprintf(&b, " (%s)", r.Version)
		}
		if r.Rounds > 1 {
			fmt.Fprintf(&b, ", median of %d rounds", r.Rounds)
		}
		fmt.Fprintf(&b, ": %s; latency %d samples of %d B, direct to the backend p50 %.0f µs p99 %.0f µs, through the proxy p50 %.0f µs p99 %.0f µs; "+
			"idle %d/%d opened, RSS %.1f → %.1f MiB over %d process(es), %d/%d sampled still echoing; bulk %.2f GB in %.2f CPU s; %d handshake errors",
			r.TLS, r.LatencySamples, r.LatencyBytes, r.DirectP50, r.DirectP99, r.ProxyP50, r.ProxyP99,
			r.IdleOpened, r.IdleWanted, float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20), r.Procs, r.IdleAlive, r.IdleSampled,
			float64(r.BulkBytes)/1e9, r.BulkCPUSeconds, r.HandshakeErrors)
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "; NOTE: %s", n)
		}
		b.WriteString("\n")
	}
	for _, r := range results[1:] {
		if r.TLS != results[0].TLS {
			fmt.Fprintf(&b, "- WARNING: %s negotiated %q, %s %q: not the same workload\n", results[0].Name, results[0].TLS, r.Name, r.TLS)
		}
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mergeRounds groups results by name (in the order names first appear)
// and returns, per name, the median of every number over its rounds; text
// comes from the first round, notes from all of them (each once).
func mergeRounds(all []*Result) []*Result {
	var names []string
	byName := map[string][]*Result{}
	for _, r := range all {
		if _, ok := byName[r.Name]; !ok {
			names = append(names, r.Name)
		}
		byName[r.Name] = append(byName[r.Name], r)
	}
	var out []*Result
	for _, n := range names {
		rs := byName[n]
		m := *rs[0]
		m.Notes = nil
		mv := reflect.ValueOf(&m).Elem()
		for i := range mv.NumField() {
			f := mv.Field(i)
			var vals []float64
			for _, r := range rs {
				v := reflect.ValueOf(r).Elem().Field(i)
				switch v.Kind() {
				case reflect.Float64:
					vals = append(vals, v.Float())
				case reflect.Int, reflect.Int64:
					vals = append(vals, float64(v.Int()))
				}
			}
			if vals == nil {
				continue
			}
			med := median(vals)
			if f.Kind() == reflect.Float64 {
				f.SetFloat(med)
			} else {
				f.SetInt(int64(math.Round(med)))
			}
		}
		for _, r := range rs {
			for _, note := range r.Notes {
				if !slices.Contains(m.Notes, note) {
					m.Notes = append(m.Notes, note)
				}
			}
		}
		m.Rounds = len(rs)
		out = append(out, &m)
	}
	return out
}

// median of vals (sorted in place); the mean of the middle two for an even
// count.
func median(vals []float64) float64 {
	slices.Sort(vals)
	n := len(vals)
	if n%2 == 1 {
		return vals[n/2]
	}
	return (vals[n/2-1] + vals[n/2]) / 2
}

// ratio is a/b as "1.23×", or n/a when either is missing or b is not
// positive (an added latency at or below zero is noise, not a divisor).
func ratio(a float64, aok bool, b float64, bok bool) string {
	if !aok || !bok || b <= 0 || a < 0 || math.IsInf(a/b, 0) || math.IsNaN(a/b) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// stringsFlag collects a repeated flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, "; ") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func tableCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "also write the table to this Markdown file")
	title := fs.String("title", "", "a heading above the table")
	var notes stringsFlag
	fs.Var(&notes, "note", "a line under the table (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("no result files")
	}
	var all []*Result
	for _, f := range fs.Args() {
		r, err := readResult(f)
		if err != nil {
			return err
		}
		all = append(all, r)
	}
	results := mergeRounds(all)
	var b strings.Builder
	if *title != "" {
		fmt.Fprintf(&b, "# %s\n\n", *title)
	}
	if err := renderTable(&b, results, notes); err != nil {
		return err
	}
	if _, err := io.WriteString(stdout, b.String()); err != nil {
		return err
	}
	if *out != "" {
		return os.WriteFile(*out, []byte(b.String()), 0o644)
	}
	return nil
}

// readResult reads one bench result (at most 1 MiB of JSON).
func readResult(file string) (*Result, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r Result
	dec := json.NewDecoder(io.LimitReader(f, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if r.Name == "" {
		return nil, fmt.Errorf("%s: a result without a name", file)
	}
	return &r, nil
}
