package starttls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// Sentinel errors shared by every protocol. Protocol packages wrap them with
// context ("smtp: …: %w"); test for them with errors.Is.
var (
	// ErrUpgradeNotOffered means the server did not advertise the upgrade
	// (no STARTTLS in EHLO, no STLS in CAPA, …).
	ErrUpgradeNotOffered = errors.New("starttls: upgrade not offered by the server")
	// ErrUpgradeRefused means the server answered the upgrade command with an
	// error.
	ErrUpgradeRefused = errors.New("starttls: upgrade refused by the server")
	// ErrPlaintextAfterUpgrade means bytes arrived in plaintext after the
	// upgrade command or go-ahead and before the TLS handshake: command
	// injection (server side) or response injection (client side).
	ErrPlaintextAfterUpgrade = errors.New("starttls: plaintext received after the upgrade (possible injection)")
	// ErrLineTooLong means a line exceeded the protocol's length limit.
	ErrLineTooLong = errors.New("starttls: line too long")
	// ErrFallbackForbidden means the caller's mode forbids continuing in
	// plaintext (for example sending credentials before TLS).
	ErrFallbackForbidden = errors.New("starttls: plaintext fallback forbidden by mode")
	// ErrProtocol means the peer broke the protocol: an unparsable greeting or
	// reply, too many lines, a NUL byte, a bare LF where CRLF is required.
	ErrProtocol = errors.New("starttls: protocol violation")
	// ErrTLSOnPlaintextPort means the peer sent a TLS ClientHello where a
	// plaintext command was expected.
	ErrTLSOnPlaintextPort = errors.New("starttls: peer spoke TLS on a plaintext port")
	// ErrIntercepted ends a client dialog whose ClientOptions.Intercept took
	// the connection where TLS starts: the dialog stops there on purpose.
	ErrIntercepted = errors.New("starttls: connection handed to the interceptor where TLS starts")
)

// HandshakeError is a failed TLS handshake after a successful upgrade
// command, or on an implicit-TLS connection. It keeps the TLS cause, so
// errors.As finds *tls.CertificateVerificationError, x509 errors,
// tls.AlertError and tls.RecordHeaderError (the peer answered in plaintext).
type HandshakeError struct {
	Err error
}

func (e *HandshakeError) Error() string { return "starttls: TLS handshake failed: " + e.Err.Error() }
func (e *HandshakeError) Unwrap() error { return e.Err }

// CertificateProblem classifies a certificate verification failure found in
// err, for people: "untrusted", "expired", "name-mismatch" or "" when err holds
// no certificate error.
func CertificateProblem(err error) string {
	var hn x509.HostnameError
	if errors.As(err, &hn) {
		return "name-mismatch"
	}
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		if inv.Reason == x509.Expired {
			return "expired"
		}
		return "invalid"
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return "untrusted"
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return "untrusted"
	}
	return ""
}

// ProtocolError returns an error wrapping ErrProtocol with a message that
// names the protocol, for example ProtocolError("imap", "greeting %q", line).
func ProtocolError(proto, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", proto, fmt.Sprintf(format, args...), ErrProtocol)
}

// IsTemporary reports whether err, or an error it wraps, says the failure is
// temporary (an SMTP 4xx reply such as 421 or greylisting, a POP3
// [SYS/TEMP], a timeout): the server could not be checked now, which is not
// the same as "no STARTTLS".
func IsTemporary(err error) bool {
	var t interface{ Temporary() bool }
	for e := err; e != nil; {
		if errors.As(e, &t) && t.Temporary() {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return false
}
