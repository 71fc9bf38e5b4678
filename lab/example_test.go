package lab_test

import (
	"fmt"

	"github.com/starttls/starttls/lab"
)

// Start the lab and list what it serves: a correct endpoint per scheme,
// and for smtp, imap and pop3 one endpoint per flaw, with the findings a
// checker must report.
func ExampleStart() {
	l, err := lab.Start(&lab.Options{Listen: "127.0.0.1"})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	for _, ep := range l.Endpoints[:4] {
		fmt.Println(ep.Name, ep.Broken, ep.Expect)
	}
	fmt.Println(len(l.Endpoints), "endpoints")
	// Output:
	// smtp false []
	// smtp-no-starttls true [starttls-not-offered]
	// smtp-refused true [starttls-refused]
	// smtp-handshake-failure true [starttls-failed]
	// 147 endpoints
}
