package starttls_test

import (
	"fmt"

	"github.com/starttls/starttls"
)

func ExampleParseTarget() {
	for _, u := range []string{"smtp://mx.example.org", "smtp://mx.example.org:465", "imaps://mail.example.org", "pop3://mail.example.org?mode=opportunistic"} {
		t, err := starttls.ParseTarget(u)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(t.Addr(), t.Scheme.Protocol, t.EffectiveMode())
	}
	// Output:
	// mx.example.org:25 smtp required
	// mx.example.org:465 smtp implicit
	// mail.example.org:993 imap implicit
	// mail.example.org:110 pop3 opportunistic
}
