// Package mtasts implements SMTP MTA Strict Transport Security (RFC 8461):
// the "_mta-sts" TXT record (§3.1), the policy fetched over HTTPS from
// https://mta-sts.DOMAIN/.well-known/mta-sts.txt (§3.2, §3.3), the matching
// of MX host names against the policy's patterns (§4.1) and a policy cache
// that honours max_age and the record's id, with trust on first use (§5.1).
//
// Lookups go through a resolver.Resolver when one is given, including the
// address lookup of the policy host, so that a test lab (or a validating
// resolver on loopback) sees every query; nil means the system resolver.
//
// What a sender does with a policy is up to the caller: in mode "enforce" a
// message goes only to an MX that matches the policy and presents a
// certificate valid for its name (RFC 8461 §4.2), in mode "testing"
// failures are reported and delivery goes on, and mode "none" means no
// policy. Package maildomain applies it to SMTP delivery.
package mtasts

import "errors"

// Errors of discovery and parsing; the concrete errors wrap them, so that
// errors.Is tells the cases apart.
var (
	// ErrNoRecord: the domain publishes no "v=STSv1" TXT record at
	// _mta-sts.DOMAIN (no policy, RFC 8461 §3.1).
	ErrNoRecord = errors.New("mtasts: no MTA-STS TXT record")
	// ErrDuplicateRecord: more than one "v=STSv1" TXT record; RFC 8461
	// §3.1 says the sender then assumes there is no policy.
	ErrDuplicateRecord = errors.New("mtasts: more than one MTA-STS TXT record")
	// ErrInvalidRecord: the TXT record does not follow the §3.1 grammar.
	ErrInvalidRecord = errors.New("mtasts: invalid MTA-STS TXT record")
	// ErrInvalidPolicy: the policy does not follow §3.2 (its error says
	// which field).
	ErrInvalidPolicy = errors.New("mtasts: invalid MTA-STS policy")
	// ErrRedirect: the policy host answered with a redirect, which RFC 8461
	// §3.3 forbids following.
	ErrRedirect = errors.New("mtasts: the policy host answered with a redirect")
	// ErrTooLarge: the policy body exceeds MaxPolicySize.
	ErrTooLarge = errors.New("mtasts: the policy is larger than 64 KiB")
	// ErrMediaType: the policy is not served as text/plain (§3.2).
	ErrMediaType = errors.New("mtasts: the policy is not served as text/plain")
	// ErrHTTPStatus: the policy host answered with a status other than 200.
	ErrHTTPStatus = errors.New("mtasts: the policy host did not answer 200 OK")
)
