package check_test

import (
	"context"
	"fmt"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/check"
	"github.com/starttls/starttls/lab"
)

// Check a server whose certificate has expired: here one of the lab's
// broken endpoints.
func ExampleRun() {
	l, err := lab.Start(nil)
	if err != nil {
		panic(err)
	}
	defer l.Close()
	ep, _ := l.Endpoint("smtp-expired")
	target, _ := starttls.ParseTarget(ep.URL)

	r := check.Run(context.Background(), target, &check.Options{Roots: l.CA.Pool(), SkipInjection: true})
	fmt.Println(r.Verdict, r.STARTTLS.Upgraded, r.Cert.Trusted, r.Cert.Expired)
	for _, f := range r.Findings {
		if f.Severity != check.Info {
			fmt.Println(f.Severity, f.ID)
		}
	}
	// Output:
	// fail true true true
	// fail cert-expired
}
