package maildomain_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/starttls/starttls/maildomain"
	"github.com/starttls/starttls/mtasts"
	"github.com/starttls/starttls/resolver"
)

// Deliver a message to example.org under its MTA-STS and DANE policy: a
// validating resolver on loopback answers the lookups, a cache keeps the
// MTA-STS policies between deliveries, and Dial refuses any MX host that
// cannot be reached as the policy demands.
func Example() {
	r := &resolver.Resolver{Addr: "127.0.0.1:53"}
	o := &maildomain.Options{
		Resolver:  r,
		MTASTS:    &mtasts.Cache{Fetcher: &mtasts.Fetcher{Resolver: r}},
		LocalName: "mail.sender.example",
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := maildomain.Resolve(ctx, "example.org", o)
	if err != nil {
		log.Fatal(err) // DNS failure: try again later
	}
	for _, mx := range p.MX {
		fmt.Println(mx.Host, mx.Security, mx.Security.RequiresTLS())
	}
	s, err := p.Dial(ctx, o)
	var de *maildomain.DialError
	if errors.As(err, &de) {
		for _, f := range de.Failures {
			fmt.Println("TLS-RPT:", f.Policy, f.ResultType, f.ReceivingMXHostname) // for the domain's TLS-RPT report
		}
		log.Fatal(err) // defer the message
	}
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.SendMail(ctx, "alice@sender.example", []string{"bob@example.org"}, []byte("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		log.Fatal(err)
	}
}

func ExampleSecurity() {
	for _, s := range []maildomain.Security{maildomain.Opportunistic, maildomain.Testing, maildomain.WebPKI, maildomain.DANEUnauthenticated, maildomain.DANE} {
		fmt.Println(s, s.RequiresTLS())
	}
	// Output:
	// opportunistic false
	// mta-sts-testing false
	// mta-sts true
	// dane-unauthenticated true
	// dane true
}

// Narrow a resolved policy to the MX hosts DANE authenticates; the others
// are excluded with the reason.
func ExamplePolicy_Require() {
	p := &maildomain.Policy{Domain: "example.org", MX: []maildomain.MX{
		{Host: "mx1.example.org", Preference: 10, Security: maildomain.DANE},
		{Host: "mx2.example.org", Preference: 20, Security: maildomain.WebPKI},
	}}
	r, err := maildomain.ParseRequirement("dane")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Require(r); err != nil {
		fmt.Println("refusing:", err)
		return
	}
	for _, mx := range p.MX {
		fmt.Println("use", mx.Host)
	}
	for _, x := range p.Excluded {
		fmt.Println("excluded", x.Host+":", x.Reason)
	}
	// Output:
	// use mx1.example.org
	// excluded mx2.example.org: it has no DNSSEC-secure TLSA records
}
