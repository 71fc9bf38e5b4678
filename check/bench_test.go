package check_test

import (
	"context"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/check"
	"github.com/starttls/starttls/lab"
)

// Benchmarks of the audit against the built-in lab on loopback, in the same
// process: time and allocations count the lab's servers as well. None of
// them asserts a time.
//
//	go test -run '^$' -bench . -benchmem ./check

// BenchmarkRunLab is one audit of the lab's correct SMTP endpoint per
// iteration, without the injection probe: one connection, EHLO, STARTTLS,
// the handshake, EHLO over TLS, the certificate judged against the lab CA.
func BenchmarkRunLab(b *testing.B) { benchRunLab(b, true) }

// BenchmarkRunLabInjection is BenchmarkRunLab with the command-injection
// probe (a second connection), as `starttls check` runs by default.
func BenchmarkRunLabInjection(b *testing.B) { benchRunLab(b, false) }

func benchRunLab(b *testing.B, skipInjection bool) {
	l, err := lab.Start(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	ep, ok := l.Endpoint("smtp")
	if !ok {
		b.Fatal(`lab has no "smtp" endpoint`)
	}
	target, err := starttls.ParseTarget(ep.URL)
	if err != nil {
		b.Fatal(err)
	}
	opts := &check.Options{Roots: l.CA.Pool(), Timeout: 10 * time.Second, SkipInjection: skipInjection}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r := check.Run(ctx, target, opts)
		if r.Verdict != check.Pass {
			b.Fatalf("check %s: verdict %s, findings %+v, error %q", ep.URL, r.Verdict, r.Findings, r.Error)
		}
		if tested := r.Injection != nil && r.Injection.Tested; tested == skipInjection {
			b.Fatalf("check %s: injection probe %+v with SkipInjection %v", ep.URL, r.Injection, skipInjection)
		}
	}
}
