// Package ldap implements both sides of LDAP secured with TLS: a client that
// upgrades per a starttls.Mode and a small read-only directory server.
//
// Implemented:
//
//   - RFC 4511, LDAPv3: the LDAPMessage envelope (§4.1.1), BindRequest with
//     simple authentication (§4.2), UnbindRequest (§4.3), the Notice of
//     Disconnection (§4.4.1), SearchRequest with the present, equality,
//     substrings, and, or and not filters (§4.5), ExtendedRequest (§4.12), the StartTLS
//     operation (§4.14) and the BER subset of §5.1 (definite lengths only,
//     primitive OCTET STRINGs).
//   - RFC 4512 §5.1, the root DSE: supportedExtension,
//     supportedSASLMechanisms, supportedLDAPVersion, vendorName,
//     vendorVersion.
//   - RFC 4513 §3, StartTLS: no PDU may follow the request until the
//     response (§3.1.1); the server identity check (§3.1.3, RFC 6125) through
//     crypto/tls; the simple bind mechanisms (§5.1: anonymous, unauthenticated
//     refused with unwillingToPerform, name/password), the server refusing a
//     password before TLS with confidentialityRequired (13).
//   - RFC 4532, the "Who am I?" extended operation.
//   - RFC 8314 §3 style implicit TLS on port 636 (ldaps; ModeImplicit,
//     Server.Implicit).
//
// LDAP messages are BER, not lines: this package reads exactly one
// LDAPMessage at a time with a size limit (MaxMessageSize for the client,
// Server.MaxRequestSize for the server), a nesting-depth limit and an
// element-count limit, rejects the indefinite length form and lengths of
// more than four octets or beyond the bytes that follow, and never
// interprets anything past the message it was asked for.
//
// # Client
//
// Upgrade and Dial read the root DSE anonymously (RFC 4512 §5.1): its
// supportedExtension, supportedLDAPVersion and supportedSASLMechanisms
// values become the capabilities ("supportedExtension=1.3.6.1.4.1.1466.20037"),
// its SASL mechanisms the login mechanisms, vendorName and vendorVersion the
// Greeting. The upgrade is Offered when supportedExtension lists the StartTLS
// OID. When the root DSE cannot be read anonymously (an error result, or no
// supportedExtension attribute because an ACL hides it), the offer is unknown
// and the StartTLS request is sent anyway, even in ModeRequired. A
// readable root DSE without the StartTLS OID fails ModeRequired with
// starttls.ErrUpgradeNotOffered and sends nothing else. Any result code but
// success fails ModeRequired with starttls.ErrUpgradeRefused (a *ResultError
// inside; unavailable(52) and busy(51) are temporary). After success any byte
// already received is response injection and fails with
// starttls.ErrPlaintextAfterUpgrade; the client then shakes hands and reads
// the root DSE again over TLS, trusting only that.
//
// Result.OfferedAfterTLS stays false for LDAP: supportedExtension lists the
// extended operations the server implements (RFC 4512 §5.1.4), not what is
// possible in the current session, and RFC 4511 §4.14 and RFC 4513 §3 only
// require a second StartTLS to be refused with operationsError. OpenLDAP
// keeps listing the OID over TLS; that is no flaw.
//
// The injection probe (ClientOptions.ProbeInjection, CVE-2011-0411) sends
// the StartTLS request and a root DSE search in one write, which RFC 4513
// §3.1.1 forbids a client to do. A server that answers the search inside
// TLS before the client asked anything there is vulnerable
// (Result.Injection.Vulnerable); an answer in plaintext, a refusal with
// operationsError (RFC 4511 §4.14.1) or a closed connection are safe.
//
// Login is a simple bind (RFC 4513 §5.1.3) with the username as the DN; it
// refuses to send the password without TLS unless the mode is ModePlain.
// The transcript has one readable line per message ("#4 BindRequest v3
// dn=… simple password=****"), never raw BER and never the password.
// ProbePlaintextLogin asks a server on a plaintext connection whether it
// would accept a simple bind there, with a DN under the server's naming
// context that does not exist and a dummy password.
//
// # Server
//
// Server lists StartTLS in the root DSE when TLSConfig is set and TLS is not
// yet active, answers StartTLS with success and shakes hands, refuses a
// second StartTLS with operationsError and, with RefuseUpgrade, answers
// unavailable(52). A simple bind before TLS is answered
// confidentialityRequired(13) unless AllowPlaintextLogin is set; SASL PLAIN
// (RFC 4616) is listed and accepted only when a simple bind would be. The
// bind name is "uid=NAME,BaseDN" or the bare NAME. Requests
// pipelined after the StartTLS request (CVE-2011-0411, RFC 4513 §3.1.1) are
// answered operationsError and the connection is closed, before any TLS;
// InsecureKeepPipelined instead executes them inside TLS, to reproduce the
// bug in the lab. A TLS ClientHello on the plaintext port closes the
// connection at once. The directory is read-only: the base entry and, for a
// bound user, the user's own entry.
package ldap

import (
	"fmt"
	"strconv"
)

// StartTLSOID is the requestName of the StartTLS extended operation
// (RFC 4511 §4.14.1).
const StartTLSOID = "1.3.6.1.4.1.1466.20037"

// WhoAmIOID is the requestName of the "Who am I?" operation (RFC 4532 §2).
const WhoAmIOID = "1.3.6.1.4.1.4203.1.11.3"

// noticeOfDisconnectionOID is the responseName of the unsolicited Notice of
// Disconnection (RFC 4511 §4.4.1).
const noticeOfDisconnectionOID = "1.3.6.1.4.1.1466.20036"

// ResultCode is an LDAPResult resultCode (RFC 4511 §4.1.9, Appendix A).
type ResultCode int

// The result codes this package produces or interprets.
const (
	ResultSuccess                     ResultCode = 0
	ResultOperationsError             ResultCode = 1
	ResultProtocolError               ResultCode = 2
	ResultTimeLimitExceeded           ResultCode = 3
	ResultSizeLimitExceeded           ResultCode = 4
	ResultAuthMethodNotSupported      ResultCode = 7
	ResultStrongerAuthRequired        ResultCode = 8
	ResultAdminLimitExceeded          ResultCode = 11
	ResultUnavailableCriticalExt      ResultCode = 12
	ResultConfidentialityRequired     ResultCode = 13
	ResultNoSuchAttribute             ResultCode = 16
	ResultNoSuchObject                ResultCode = 32
	ResultInvalidDNSyntax             ResultCode = 34
	ResultInappropriateAuthentication ResultCode = 48
	ResultInvalidCredentials          ResultCode = 49
	ResultInsufficientAccessRights    ResultCode = 50
	ResultBusy                        ResultCode = 51
	ResultUnavailable                 ResultCode = 52
	ResultUnwillingToPerform          ResultCode = 53
	ResultOther                       ResultCode = 80
)

var resultNames = map[ResultCode]string{
	0: "success", 1: "operationsError", 2: "protocolError", 3: "timeLimitExceeded",
	4: "sizeLimitExceeded", 5: "compareFalse", 6: "compareTrue", 7: "authMethodNotSupported",
	8: "strongerAuthRequired", 10: "referral", 11: "adminLimitExceeded",
	12: "unavailableCriticalExtension", 13: "confidentialityRequired", 14: "saslBindInProgress",
	16: "noSuchAttribute", 17: "undefinedAttributeType", 18: "inappropriateMatching",
	19: "constraintViolation", 20: "attributeOrValueExists", 21: "invalidAttributeSyntax",
	32: "noSuchObject", 33: "aliasProblem", 34: "invalidDNSyntax", 36: "aliasDereferencingProblem",
	48: "inappropriateAuthentication", 49: "invalidCredentials", 50: "insufficientAccessRights",
	51: "busy", 52: "unavailable", 53: "unwillingToPerform", 54: "loopDetect",
	64: "namingViolation", 65: "objectClassViolation", 66: "notAllowedOnNonLeaf",
	67: "notAllowedOnRDN", 68: "entryAlreadyExists", 69: "objectClassModsProhibited",
	71: "affectsMultipleDSAs", 80: "other",
}

// String returns the RFC 4511 name and the number, "invalidCredentials (49)".
func (c ResultCode) String() string {
	if n, ok := resultNames[c]; ok {
		return n + " (" + strconv.Itoa(int(c)) + ")"
	}
	return "resultCode " + strconv.Itoa(int(c))
}

// ResultError is an LDAPResult other than success (RFC 4511 §4.1.9).
type ResultError struct {
	// Op is the operation answered ("bind", "StartTLS", "search").
	Op        string
	Code      ResultCode
	MatchedDN string
	// Message is the server's diagnosticMessage.
	Message string
}

func (e *ResultError) Error() string {
	s := fmt.Sprintf("ldap: %s: %v", e.Op, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Temporary reports whether the server said to try again later: busy (51)
// or unavailable (52).
func (e *ResultError) Temporary() bool {
	return e.Code == ResultBusy || e.Code == ResultUnavailable
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("ldap: "+format, args...)
}
