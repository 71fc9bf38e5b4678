package mtasts_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/starttls/starttls/mtasts"
	"github.com/starttls/starttls/resolver"
)

func ExampleParsePolicy() {
	p, err := mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Mode, p.MaxAge)
	for _, mx := range []string{"mail.example.com", "mx1.example.net", "a.b.example.net", "mail.attacker.example"} {
		fmt.Println(mx, p.Match(mx))
	}
	// Output:
	// enforce 168h0m0s
	// mail.example.com true
	// mx1.example.net true
	// a.b.example.net false
	// mail.attacker.example false
}

func ExampleSelectRecord() {
	_, rec, err := mtasts.SelectRecord([]string{"v=spf1 -all", "v=STSv1; id=20260101T000000"})
	fmt.Println(rec.ID, err)
	_, _, err = mtasts.SelectRecord([]string{"v=STSv1; id=1", "v=STSv1; id=2"})
	fmt.Println(err)
	// Output:
	// 20260101T000000 <nil>
	// mtasts: more than one MTA-STS TXT record: 2 records start with v=STSv1
}

// Find which policy is in force for a domain, with a cache that survives
// restarts: fetched on first use, again when the record's id changes, and
// kept while the record or the policy host is unreachable.
func ExampleCache() {
	c := &mtasts.Cache{
		Fetcher: &mtasts.Fetcher{Resolver: &resolver.Resolver{Addr: "127.0.0.1:53"}},
		Store:   &mtasts.FileStore{Dir: "/var/cache/mta-sts"},
	}
	e, err := c.Get(context.Background(), "example.org")
	switch {
	case errors.Is(err, mtasts.ErrNoRecord):
		fmt.Println("no policy: opportunistic TLS")
	case err != nil:
		fmt.Println("no policy could be fetched:", err)
	default:
		fmt.Println(e.Policy.Mode, e.Policy.MX, e.Expires(), e.Cached)
		fmt.Println("mail.example.org allowed:", e.Policy.Match("mail.example.org"))
	}
}
