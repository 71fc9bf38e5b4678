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
