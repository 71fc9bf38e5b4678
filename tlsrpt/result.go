package tlsrpt

// ResultType names why a TLS session to a receiving MX failed, in the words
// of a report's "result-type" (RFC 8460 §4.3).
type ResultType string

// Result types of RFC 8460 §4.3.
const (
	// Negotiation failures (§4.3.1).
	STARTTLSNotSupported    ResultType = "starttls-not-supported"
	CertificateHostMismatch ResultType = "certificate-host-mismatch"
	CertificateExpired      ResultType = "certificate-expired"
	CertificateNotTrusted   ResultType = "certificate-not-trusted"
	ValidationFailure       ResultType = "validation-failure"

	// Policy failures, DANE (§4.3.2.1).
	TLSAInvalid   ResultType = "tlsa-invalid"
	DNSSECInvalid ResultType = "dnssec-invalid"
	DANERequired  ResultType = "dane-required"

	// Policy failures, MTA-STS (§4.3.2.2).
	STSPolicyFetchError ResultType = "sts-policy-fetch-error"
	STSPolicyInvalid    ResultType = "sts-policy-invalid"
	STSWebPKIInvalid    ResultType = "sts-webpki-invalid"
)

// Known reports whether t is one of the result types RFC 8460 defines.
func (t ResultType) Known() bool {
	switch t {
	case STARTTLSNotSupported, CertificateHostMismatch, CertificateExpired, CertificateNotTrusted,
		ValidationFailure, TLSAInvalid, DNSSECInvalid, DANERequired,
		STSPolicyFetchError, STSPolicyInvalid, STSWebPKIInvalid:
		return true
	}
	return false
}

// PolicyType is the kind of policy a report's "policy-type" names
// (RFC 8460 §4.4).
type PolicyType string

// Policy types of RFC 8460 §4.4.
const (
	PolicySTS  PolicyType = "sts"             // an MTA-STS policy (RFC 8461)
	PolicyTLSA PolicyType = "tlsa"            // DANE TLSA records (RFC 7672)
	PolicyNone PolicyType = "no-policy-found" // neither: opportunistic TLS
)

// Failure is one failed TLS session, the fields of a report's
// "failure-details" entry (RFC 8460 §4.4). Empty fields are left out of the
// JSON; ResultType is required.
type Failure struct {
	ResultType          ResultType `json:"result-type"`
	SendingMTAIP        string     `json:"sending-mta-ip,omitempty"`
	ReceivingMXHostname string     `json:"receiving-mx-hostname,omitempty"`
	ReceivingMXHelo     string     `json:"receiving-mx-helo,omitempty"`
	ReceivingIP         string     `json:"receiving-ip,omitempty"`
	// FailedSessionCount is the number of sessions that failed this way;
	// 0 is left out, for a failure not yet aggregated into a report.
	FailedSessionCount    int    `json:"failed-session-count,omitempty"`
	AdditionalInformation string `json:"additional-information,omitempty"`
	FailureReasonCode     string `json:"failure-reason-code,omitempty"`
}
