package check_test

import (
	"context"
	"fmt"
	"os"

	"github.com/starttls/starttls/check"
	"github.com/starttls/starttls/resolver"
)

// Audit a mail domain through a validating resolver on loopback, quickly
// (one handshake per MX host), and print the report for people.
func ExampleRunDomain() {
	d := check.RunDomain(context.Background(), "example.org", &check.DomainOptions{
		Options:  check.Options{Quick: true},
		Resolver: &resolver.Resolver{Addr: "127.0.0.1:53"},
	})
	d.WriteText(os.Stdout)
	fmt.Println(d.Verdict.Result, d.Verdict.STRIPTLSPossible, d.Has("dane-tlsa-mismatch"))
	fmt.Println("exit code", d.Verdict.Result.ExitCode())
}

// Write a mail domain's audit, with the checks of its MX hosts, as one
// HTML page for a ticket.
func ExampleWriteHTMLDomains() {
	d := check.RunDomain(context.Background(), "example.org", &check.DomainOptions{
		Options:  check.Options{Quick: true},
		Resolver: &resolver.Resolver{Addr: "127.0.0.1:53"},
	})
	f, err := os.Create("example.org.html")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	if err := check.WriteHTMLDomains(f, []*check.DomainReport{d}, nil); err != nil {
		fmt.Println(err)
	}
}
