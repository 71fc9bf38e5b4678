package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/starttls/starttls/resolver"
)

// Look up the TLSA records of an MX host through a validating resolver on
// loopback, and use them only when DNSSEC secured them.
func Example() {
	r := &resolver.Resolver{Addr: "127.0.0.1:53", Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	a, err := r.TLSA(ctx, "_25._tcp.mx.example.org")
	switch {
	case errors.Is(err, resolver.ErrBogus):
		fmt.Println("DNSSEC validation failed: do not deliver")
	case err != nil:
		fmt.Println("lookup failed, try later:", err)
	case a.Security != resolver.Secure:
		fmt.Println("no DNSSEC: DANE does not apply")
	default:
		for _, t := range a.Records {
			fmt.Println("TLSA", t)
		}
	}
}
