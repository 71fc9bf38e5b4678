package check

import (
	"crypto/x509"
	"time"

	"github.com/starttls/starttls/tlsscan"
)

// Severity ranks a finding.
type Severity string

// Severities, from harmless to failing.
const (
	Info Severity = "info"
	Warn Severity = "warn"
	Fail Severity = "fail"
)

// Verdict sums up a report.
type Verdict string

// Verdicts. Error means the check could not run to the point of a verdict
// (no connection, a temporary refusal, garbage instead of the protocol).
const (
	Pass  Verdict = "pass"
	Warns Verdict = "warn"
	Fails Verdict = "fail"
	Error Verdict = "error"
)

// ExitCode maps the verdict to the command's exit status: 0 pass, 1 warn,
// 2 fail, 3 could not run.
func (v Verdict) ExitCode() int {
	switch v {
	case Pass:
		return 0
	case Warns:
		return 1
	case Fails:
		return 2
	}
	return 3
}

// Finding is one observation with a stable id (documented in the README).
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Fix is a one-line hint for the administrator, when there is one.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of checking one target. Its JSON form is the
// --json output of `starttls check`.
type Report struct {
	Target   string `json:"target"`
	Protocol string `json:"protocol"`
	Mode     string `json:"mode"`
	Address  string `json:"address"`

	STARTTLS STARTTLSInfo `json:"starttls"`
	TLS      *TLSInfo     `json:"tls"`
	Cert     *CertInfo    `json:"certificate"`
	Auth     AuthInfo     `json:"auth"`
	Caps     CapsInfo     `json:"capabilities"`

	Injection *InjectionInfo `json:"injection"`

	Findings []Finding `json:"findings"`
	Verdict  Verdict   `json:"verdict"`
	// Error says why the check could not run, when Verdict is Error.
	Error string `json:"error,omitempty"`

	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_seconds"`

	Transcript []TranscriptLine `json:"transcript,omitempty"`

	// peerChain is the chain the server presented, for the DANE check of
	// a domain audit (RunDomain).
	peerChain []*x509.Certificate
}

// STARTTLSInfo says whether the upgrade was offered and worked.
type STARTTLSInfo struct {
	// Offered is null for implicit TLS, where there is nothing to offer.
	Offered      *bool  `json:"offered"`
	Upgraded     bool   `json:"upgraded"`
	Implicit     bool   `json:"implicit"`
	UpgradeReply string `json:"upgrade_reply,omitempty"`
	// OfferedAfterTLS: the server still advertised the upgrade inside TLS.
	OfferedAfterTLS bool `json:"offered_after_tls"`
}

// TLSInfo is what was negotiated and, unless the check was quick, what
// the server accepts.
type TLSInfo struct {
	Version        string `json:"version"`
	Cipher         string `json:"cipher"`
	ForwardSecrecy bool   `json:"forward_secrecy"`
	ALPN           string `json:"alpn,omitempty"`
	ServerName     string `json:"server_name"`

	// Versions has the keys SSLv2, SSLv3, TLS1.0, TLS1.1, TLS1.2 and
	// TLS1.3: true accepted, false refused, null not tested (--quick
	// knows only the negotiated one).
	Versions map[string]*bool `json:"versions"`
	// Ciphers are the accepted suites per version, in the server's order
	// when it has one.
	Ciphers           []tlsscan.Cipher `json:"ciphers"`
	ServerCipherOrder *bool            `json:"server_cipher_order"`
	Groups            []string         `json:"groups"`
	// DHBits is the smallest finite-field DH prime seen, 0 when none.
	DHBits              int   `json:"dh_bits,omitempty"`
	FallbackSCSV        *bool `json:"fallback_scsv"`
	SecureRenegotiation *bool `json:"secure_renegotiation"`
	Compression         *bool `json:"compression"`
	SessionIDs          *bool `json:"session_ids"`
	SessionTickets      *bool `json:"session_tickets"`
	// Scan is null for a quick check.
	Scan *ScanInfo `json:"scan"`
}

// CertInfo describes the server's certificate and its verification.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Names     []string  `json:"names"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DaysLeft  int       `json:"days_left"`
	KeyType   string    `json:"key_type"`
	KeyBits   int       `json:"key_bits"`
	Signature string    `json:"signature_algorithm"`
	// Trusted: the chain leads to a trusted root (system roots or --ca),
	// judged at a time when every certificate is valid, so that expiry is
	// reported on its own.
	Trusted bool `json:"trusted"`
	// TrustError says why the chain is not trusted.
	TrustError string `json:"trust_error,omitempty"`
	NameMatch  bool   `json:"name_match"`
	SelfSigned bool   `json:"self_signed"`
	Expired    bool   `json:"expired"`
	// Chain lists the presented certificates, leaf first.
	Chain []ChainCert `json:"chain"`
	// OCSPStapled: the server stapled an OCSP response; MustStaple: the
	// certificate demands it (RFC 7633).
	OCSPStapled bool     `json:"ocsp_stapled"`
	MustStaple  bool     `json:"must_staple"`
	OCSPServers []string `json:"ocsp_servers"`
	CRLs        []string `json:"crls"`
}

// ChainCert is one presented certificate.
type ChainCert struct {
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
	SHA256   string    `json:"sha256"`
}

// AuthInfo lists the login mechanisms offered before and after TLS.
type AuthInfo struct {
	BeforeTLS []string `json:"before_tls"`
	AfterTLS  []string `json:"after_tls"`
}

// CapsInfo lists the capabilities before and after TLS.
type CapsInfo struct {
	BeforeTLS []string `json:"before_tls"`
	AfterTLS  []string `json:"after_tls"`
	// Reread: the capabilities were asked for again over TLS.
	Reread bool `json:"reread"`
}

// InjectionInfo is the outcome of the command-injection probe.
type InjectionInfo struct {
	Tested     bool   `json:"tested"`
	Vulnerable bool   `json:"vulnerable"`
	Sent       string `json:"sent,omitempty"`
	Reply      string `json:"reply,omitempty"`
	Note       string `json:"note,omitempty"`
}

// TranscriptLine is one line of the dialog in the JSON report.
type TranscriptLine struct {
	T    float64 `json:"t"`
	Dir  string  `json:"dir"`
	TLS  bool    `json:"tls"`
	Text string  `json:"text"`
}
