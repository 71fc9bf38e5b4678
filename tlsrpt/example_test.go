package tlsrpt_test

import (
	"encoding/json"
	"fmt"

	"github.com/starttls/starttls/tlsrpt"
)

func ExampleParseRecord() {
	rec, err := tlsrpt.ParseRecord("v=TLSRPTv1; rua=mailto:tls-reports@example.org,https://reports.example.org/v1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rec.RUA)

	_, err = tlsrpt.ParseRecord("v=TLSRPTv1; rua=http://reports.example.org/")
	fmt.Println(err)
	// Output:
	// [mailto:tls-reports@example.org https://reports.example.org/v1]
	// tlsrpt: invalid record: rua URI "http://reports.example.org/": scheme "http" is not mailto: or https:
}

func ExampleFailure() {
	f := tlsrpt.Failure{
		ResultType:          tlsrpt.TLSAInvalid,
		ReceivingMXHostname: "mx.example.org",
		ReceivingIP:         "192.0.2.25",
	}
	b, _ := json.Marshal(f)
	fmt.Println(string(b))
	// Output:
	// {"result-type":"tlsa-invalid","receiving-mx-hostname":"mx.example.org","receiving-ip":"192.0.2.25"}
}

// Tell TLS-RPT records apart from the other TXT records at _smtp._tls, as
// Select does (RFC 8460 §3).
func ExampleIsRecord() {
	for _, txt := range []string{"v=TLSRPTv1; rua=mailto:tls@example.org", "v=TLSRPTv10; rua=mailto:x@example.org", "site-verification=abc"} {
		fmt.Println(tlsrpt.IsRecord(txt))
	}
	// Output:
	// true
	// false
	// false
}
