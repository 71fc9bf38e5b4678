// Package resolver looks up the DNS records that mail-domain security needs
// (MX, TXT, TLSA, A and AAAA) through one recursive resolver, and reports
// whether each answer was validated with DNSSEC.
//
// It speaks DNS (RFC 1034, RFC 1035) through github.com/miekg/dns. Every query
// asks for DNSSEC: it carries an EDNS0 OPT record (RFC 6891) with the DO bit
// and a 1232-byte UDP size, and the AD bit (RFC 6840 §5.7), so that a
// validating resolver says in its answer's AD bit whether it validated it
// (RFC 4035 §3.2.3). A truncated UDP answer is asked again over TCP (RFC 7766).
// Each attempt has a timeout, and at most Retries more attempts follow one that
// got no usable answer. A lookup therefore ends after at most
// 2×(1+Retries)×2×Timeout (a SERVFAIL retry, UDP then TCP per attempt); a
// context deadline bounds it tighter.
//
// # Trust model
//
// This package does not validate signatures itself. It trusts the AD bit of
// the resolver at Resolver.Addr, exactly as RFC 7672 §2.1 and RFC 6698 §4.1
// describe for a "security-aware stub resolver": the answer is Secure only if
// that resolver set AD. The AD bit is not protected on the wire, so the path
// to that resolver must be trusted: run it on loopback (unbound, knot-resolver)
// or reach it over a link you control. A resolver across an untrusted network
// lets an attacker turn Insecure answers into Secure ones and so defeat DANE.
//
// A SERVFAIL answer is asked again with the CD bit set (RFC 4035 §3.2.2). If
// the resolver then answers, the data exists but failed validation: the
// answer comes back with Security Bogus and an error wrapping ErrBogus. Such
// records are for reporting only and must never be used to make a decision.
//
// CNAME chains in an answer are followed (at most 8 links) and the final owner
// name is returned as Answer.Canonical, which RFC 7672 §2.2.2 needs to find
// TLSA records and the names a DANE-TA certificate must match.
package resolver
