// Package postgres implements both sides of the PostgreSQL frontend/backend
// protocol version 3.0 secured with TLS: a client that negotiates TLS per a
// starttls.Mode, logs in and runs simple queries, and a small server for
// the lab.
//
// Implemented, from the PostgreSQL documentation, chapter "Frontend/Backend
// Protocol" (protocol.sgml):
//
//   - §55.2.10 (PG 17 numbering; §53.2.9 in PG 15) "SSL Session
//     Encryption": SSLRequest (Int32 8, Int32 80877103) answered by one
//     byte, 'S' or 'N'; an 'E' from a server that failed (or predates 7.0)
//     is an error whose text is never read (CVE-2024-10977). The
//     GSSENCRequest (80877104) is refused by the server with 'N'.
//   - PostgreSQL 17 "direct SSL": TLS from the first byte with the ALPN
//     protocol "postgresql" (ModeImplicit; on the server Implicit, or a
//     ClientHello as the first bytes of a connection that offers TLS).
//   - §55.2.2 "Start-up" and §55.3 "SASL Authentication": StartupMessage,
//     AuthenticationOk, AuthenticationCleartextPassword,
//     AuthenticationMD5Password and SCRAM-SHA-256 (RFC 5802, RFC 7677)
//     without channel binding (gs2 header "n,,"); ParameterStatus,
//     BackendKeyData, ReadyForQuery, NegotiateProtocolVersion.
//   - §55.2.3 "Simple Query": Query, RowDescription, DataRow,
//     CommandComplete, EmptyQueryResponse, ErrorResponse and
//     NoticeResponse (§55.8 "Error and Notice Message Fields"); Terminate.
//
// # Client
//
// PostgreSQL says nothing before TLS: there is no greeting and no
// capability list, so Result.Greeting and CapsBefore stay empty, and
// Upgrade ends right after the handshake (the StartupMessage names the
// user, which only Login knows). Upgrade sends the SSLRequest; after 'S'
// any byte already received is response injection (CVE-2021-23222) and
// fails with starttls.ErrPlaintextAfterUpgrade; 'N' is
// starttls.ErrUpgradeNotOffered in ModeRequired and plaintext in
// ModeOpportunistic. The handshake offers ALPN "postgresql", which PG 17
// requires for direct TLS and older servers ignore.
//
// Login sends the StartupMessage and answers the authentication the
// server asks for; it verifies the SCRAM server signature, and refuses to
// send anything password-derived without TLS unless the mode is ModePlain.
// The injection probe (ClientOptions.ProbeInjection, CVE-2021-23214)
// writes the SSLRequest and a StartupMessage in one segment: a server that
// answers the StartupMessage inside TLS is vulnerable. ProbePlaintextAuth
// asks, without TLS and without a password, which authentication the
// server would run in plaintext.
//
// # Server
//
// Server answers the SSLRequest with 'S' when TLSConfig is set (and 'N'
// otherwise, or with RefuseUpgrade: PostgreSQL has no "offered, then
// refused"). Bytes received after the SSLRequest and before the handshake
// (CVE-2021-23214) are discarded: like PostgreSQL 14.1 and later, the
// server completes the handshake, sends FATAL 08P01 "received unencrypted
// data after SSL request" inside TLS and closes the connection.
// InsecureKeepPipelined instead reads them as if they came over TLS, to
// reproduce the bug in the lab. A StartupMessage without TLS is refused
// with FATAL 28000 unless AllowPlaintextLogin is set. Authentication is
// SCRAM-SHA-256 when the Backend implements SCRAMBackend, else a cleartext
// password (over TLS). Queries get a tiny fixed answer set (SELECT 1,
// SELECT version(), SHOW ssl); anything else is ERROR 42601.
package postgres

import (
	"fmt"
	"strings"
)

// Protocol codes of the untyped start-up packets (§55.7 "Message Formats").
const (
	// ProtocolVersion is protocol 3.0 as sent in the StartupMessage.
	ProtocolVersion = 3 << 16
	// SSLRequestCode is the code of the SSLRequest packet.
	SSLRequestCode = 1234<<16 | 5679
	// GSSENCRequestCode is the code of the GSSENCRequest packet.
	GSSENCRequestCode = 1234<<16 | 5680
	// CancelRequestCode is the code of the CancelRequest packet.
	CancelRequestCode = 1234<<16 | 5678
)

// ALPN is the TLS application protocol PostgreSQL 17 requires for direct
// TLS and checks when offered.
const ALPN = "postgresql"

// Limits.
const (
	// MaxMessageSize bounds a message the client reads (type, length and
	// body); PostgreSQL itself sends far shorter ones during a login.
	MaxMessageSize = 1 << 20
	// maxStartupSize is PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
	maxStartupSize = 10000
	// maxServerMessage bounds a message the server reads after the
	// start-up (a query).
	maxServerMessage = 64 << 10
	// maxErrorFields bounds the fields of an ErrorResponse.
	maxErrorFields = 32
	// maxFieldLen bounds one ErrorResponse field.
	maxFieldLen = 4096
	// maxColumns bounds the columns of a row.
	maxColumns = 1600 // PostgreSQL's MaxTupleAttributeNumber
	// maxSCRAMIterations bounds the PBKDF2 work a server can ask for.
	maxSCRAMIterations = 1 << 20
)

// Error is an ErrorResponse (§55.8): the severity (ERROR, FATAL, PANIC),
// the SQLSTATE code and the message, plus detail and hint when sent.
type Error struct {
	Severity string // non-localized severity (field V), else field S
	Code     string // SQLSTATE (field C), such as "28000" or "28P01"
	Message  string // primary message (field M)
	Detail   string // field D
	Hint     string // field H
}

func (e *Error) Error() string {
	s := fmt.Sprintf("postgres: %s %s: %s", e.Severity, e.Code, e.Message)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Temporary reports whether the error is one the server expects to go
// away: class 53 (insufficient resources, too many connections), 57P03
// (cannot connect now: starting up) or class 08 connection failures.
func (e *Error) Temporary() bool {
	return strings.HasPrefix(e.Code, "53") || e.Code == "57P03" || e.Code == "57P01"
}

// SQLSTATE codes used here (Appendix A "PostgreSQL Error Codes").
const (
	CodeInvalidAuthorization = "28000" // invalid_authorization_specification: pg_hba reject
	CodeInvalidPassword      = "28P01" // invalid_password
	CodeProtocolViolation    = "08P01" // protocol_violation
	CodeSyntaxError          = "42601" // syntax_error
	CodeFeatureNotSupported  = "0A000" // feature_not_supported
	CodeInternalError        = "XX000" // internal_error
	CodeAdminShutdown        = "57P01" // admin_shutdown
)

// errorf returns an error prefixed "postgres: ".
func errorf(format string, args ...any) error {
	return fmt.Errorf("postgres: "+format, args...)
}

// negotiationError is an 'E' in answer to the SSLRequest: the server
// failed (often fork failure or overload) or predates protocol 2.0. Its
// text is not read: it is unauthenticated (CVE-2024-10977).
type negotiationError struct{}

func (negotiationError) Error() string {
	return "postgres: the server answered the SSLRequest with an error message (not read: it is unauthenticated, CVE-2024-10977); the server failed or is older than PostgreSQL 7.0"
}

// Temporary is true: a current server answers so only when it could not
// start a backend.
func (negotiationError) Temporary() bool { return true }
