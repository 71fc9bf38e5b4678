package strip_test

import (
	"fmt"

	"github.com/starttls/starttls/strip"
)

// ExamplePlan shows the attacks --attack all cycles through, one per
// connection.
func ExamplePlan() {
	steps, err := strip.Plan("all")
	if err != nil {
		panic(err)
	}
	for i, s := range steps {
		fmt.Println(i+1, s)
	}
	// Output:
	// 1 strip-capability
	// 2 reject-upgrade/temporary
	// 3 reject-upgrade/permanent
	// 4 untrusted-cert/self-signed
	// 5 untrusted-cert/wrong-name
	// 6 response-injection
	// 7 command-injection
	// 8 downgrade
	// 9 pass
}
