// Package maildomain answers, for a destination mail domain, which MX hosts
// a sender may use and how TLS must be secured on each, from the domain's
// MX records (RFC 5321 §5.1, null MX RFC 7505), its MTA-STS policy
// (RFC 8461) and DANE TLSA records (RFC 7672); and it dials an MX host with
// that policy enforced, so that a program built on it cannot be stripped of
// TLS when the destination publishes a policy.
//
// Precedence follows RFC 8461 §2: an MX host with DNSSEC-secure TLSA
// records is authenticated by DANE (MTA-STS does not override a DANE
// failure); otherwise an MTA-STS policy in mode enforce restricts the MX
// hosts to those matching it and requires a certificate valid for the MX
// name under the Web PKI; a policy in mode testing is checked and its
// failures reported, but not enforced; without a policy TLS is
// opportunistic.
//
// Every failure is recorded as a TLS-RPT (RFC 8460) failure, ready for a
// report.
//
// DNSSEC answers are trusted as the resolver's AD bit says (see package
// resolver): use a validating resolver on loopback.
package maildomain

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dane"
	"github.com/starttls/starttls/mtasts"
	"github.com/starttls/starttls/resolver"
	"github.com/starttls/starttls/tlsrpt"
)

// Options configure Resolve and Policy.Dial (pass the same to both). The
// zero value uses the system's first nameserver, the system roots, a fresh
// MTA-STS fetch and port 25.
type Options struct {
	// Resolver answers every lookup; nil means a resolver.Resolver with
	// the first nameserver of /etc/resolv.conf.
	Resolver *resolver.Resolver
	// Roots verify MX certificates under MTA-STS and the policy host's;
	// nil means the system roots.
	Roots *x509.CertPool
	// MTASTS caches policies across calls (max_age, id, trust on first
	// use). nil fetches the policy every time, which loses the protection
	// of a cached policy against an attacker who blocks the fetch.
	MTASTS *mtasts.Cache
	// MTASTSPort is the policy host's HTTPS port when MTASTS is nil; 0
	// means 443.
	MTASTSPort int
	// Port is the SMTP port of the MX hosts; 0 means 25. TLSA records are
	// looked up at _PORT._tcp, then at _25._tcp.
	Port int
	// Now is the clock for certificate checks; nil means time.Now.
	Now func() time.Time

	// LocalName is the EHLO name of Dial; empty means
	// starttls.LocalName().
	LocalName string
	// DialTimeout bounds each connection attempt of Dial; 0 means 30s.
	DialTimeout time.Duration
	// Transcript, if set, records Dial's dialogs.
	Transcript *starttls.Transcript
}

// Security says how TLS to one MX host must be secured.
type Security int

// Securities, from the weakest.
const (
	// Opportunistic: TLS if the server offers it, no authentication; a
	// failure is no reason not to deliver (RFC 7435).
	Opportunistic Security = iota
	// Testing: an MTA-STS policy in mode testing: TLS and the certificate
	// are checked and failures reported, but delivery goes on.
	Testing
	// WebPKI: MTA-STS enforce: TLS required, certificate valid for the MX
	// host name under the trusted roots (RFC 8461 §4.2).
	WebPKI
	// DANEUnauthenticated: secure TLSA records exist but none is usable:
	// TLS is required, the certificate is not checked (RFC 7672 §2.2).
	DANEUnauthenticated
	// DANE: TLS required and the certificate authenticated by the TLSA
	// records (RFC 7672 §3).
	DANE
)

// String names the security.
func (s Security) String() string {
	switch s {
	case Opportunistic:
		return "opportunistic"
	case Testing:
		return "mta-sts-testing"
	case WebPKI:
		return "mta-sts"
	case DANEUnauthenticated:
		return "dane-unauthenticated"
	case DANE:
		return "dane"
	}
	return "Security(" + strconv.Itoa(int(s)) + ")"
}

// RequiresTLS reports whether a session without TLS (or with a failed
// verification) must not carry mail.
func (s Security) RequiresTLS() bool { return s >= WebPKI }

// MX is one mail exchanger and how to reach it.
type MX struct {
	Host       string
	Preference uint16
	// Implicit: the domain has no MX records; this is the domain itself.
	Implicit bool
	// Addrs are the host's addresses.
	Addrs []netip.Addr
	// Security is how TLS must be secured.
	Security Security
	// TLSA are the secure TLSA records that apply (Security DANE or
	// DANEUnauthenticated); TLSAName is where they were found and
	// DANENames the names a DANE-TA chain may carry (the host, and the
	// TLSA base after CNAMEs).
	TLSA      []resolver.TLSA
	TLSAName  string
	DANENames []string
}

// Policy is what a sender must do for a domain.
type Policy struct {
	Domain string
	// NullMX: the domain accepts no mail (RFC 7505).
	NullMX bool
	// MX are the hosts that may be used, in order of preference. Under an
	// enforced MTA-STS policy the hosts that do not match it are left out
	// (see Excluded); hosts whose DNSSEC answers are bogus are left out.
	MX []MX
	// Excluded are the MX hosts that must not be used, with the reason.
	Excluded []Excluded
	// MTASTS is the MTA-STS policy in force, nil without one. A policy in
	// mode none is no policy.
	MTASTS *mtasts.Entry
	// Failures are the TLS-RPT failures found while resolving (a policy
	// that could not be fetched, a bogus DNSSEC answer, …).
	Failures []Failure
}

// Excluded is an MX host that must not be used.
type Excluded struct {
	Host   string
	Reason string
}

// Failure is a TLS-RPT failure with the kind of policy it concerns.
type Failure struct {
	tlsrpt.Failure
	Policy tlsrpt.PolicyType `json:"policy-type"`
	// Enforced: the failure stopped delivery to the host (false in
	// testing mode or for opportunistic TLS).
	Enforced bool `json:"enforced"`
}

// ErrNoMX: the domain has no usable MX host (none, a null MX, or all
// excluded by its policy).
var ErrNoMX = errors.New("maildomain: no usable MX host")

// Resolve looks up domain's MX hosts, MTA-STS policy and DANE records and
// returns the policy a sender must apply. An error means the domain cannot
// be resolved now (the MX lookup failed); a domain without MX hosts is a
// Policy with none (and NullMX when it says so).
func Resolve(ctx context.Context, domain string, o *Options) (*Policy, error) {
	if o == nil {
		o = &Options{}
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	r := o.Resolver
	if r == nil {
		r = &resolver.Resolver{}
	}
	p := &Policy{Domain: domain}
	ans, err := r.MX(ctx, domain)
	switch {
	case errors.Is(err, resolver.ErrBogus):
		// RFC 7672 §2.2.1: a bogus MX RRset is a failure, never a reason
		// to fall back to the domain's address.
		p.fail(tlsrpt.DNSSECInvalid, tlsrpt.PolicyTLSA, "", "", true, "the MX answer failed DNSSEC validation")
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("maildomain: MX %s: %w", domain, err)
	}
	var hosts []MX
	for _, m := range ans.Records {
		if m.Host == "" {
			if len(ans.Records) == 1 {
				p.NullMX = true
				return p, nil
			}
			continue
		}
		hosts = append(hosts, MX{Host: m.Host, Preference: m.Preference})
	}
	if len(hosts) == 0 && !ans.NXDomain {
		hosts = []MX{{Host: domain, Implicit: true}}
	}

	if len(hosts) == 0 {
		return p, nil // no such domain: nothing to deliver to
	}
	// MTA-STS.
	cache := o.MTASTS
	if cache == nil {
		cache = &mtasts.Cache{Fetcher: &mtasts.Fetcher{Resolver: r, Roots: o.Roots, Port: o.MTASTSPort, Now: o.Now}, Now: o.Now}
	}
	entry, err := cache.Get(ctx, domain)
	switch {
	case err == nil:
		if entry.Policy.Mode != mtasts.ModeNone {
			p.MTASTS = entry
		}
		if entry.RefreshErr != nil {
			p.stsFailure(entry.RefreshErr, false)
		}
	case errors.Is(err, mtasts.ErrNoRecord):
	default:
		p.stsFailure(err, false)
	}
	enforce := p.MTASTS != nil && p.MTASTS.Policy.Mode == mtasts.ModeEnforce
	testing := p.MTASTS != nil && p.MTASTS.Policy.Mode == mtasts.ModeTesting

	port := cmp.Or(o.Port, 25)
	for _, h := range hosts {
		ips, err := r.IPs(ctx, h.Host)
		if errors.Is(err, resolver.ErrBogus) {
			p.exclude(h.Host, "its address answer failed DNSSEC validation")
			p.fail(tlsrpt.DNSSECInvalid, tlsrpt.PolicyTLSA, h.Host, "", true, "the address answer failed DNSSEC validation")
			continue
		}
		if err != nil || len(ips.Records) == 0 {
			p.exclude(h.Host, "it has no address")
			continue
		}
		h.Addrs = ips.Records
		if ips.Security == resolver.Secure {
			if bogus := h.lookupTLSA(ctx, r, port, ips.Canonical); bogus {
				p.exclude(h.Host, "its TLSA answer failed DNSSEC validation")
				p.fail(tlsrpt.DNSSECInvalid, tlsrpt.PolicyTLSA, h.Host, "", true, "the TLSA answer failed DNSSEC validation")
				continue
			}
		}
		if h.Security < DANEUnauthenticated {
			switch {
			case enforce && !p.MTASTS.Policy.Match(h.Host):
				p.exclude(h.Host, "it matches no mx pattern of the MTA-STS policy")
				p.fail(tlsrpt.ValidationFailure, tlsrpt.PolicySTS, h.Host, "", true, "the MX host matches no mx pattern of the MTA-STS policy")
				continue
			case enforce:
				h.Security = WebPKI
			case testing:
				if !p.MTASTS.Policy.Match(h.Host) {
					p.fail(tlsrpt.ValidationFailure, tlsrpt.PolicySTS, h.Host, "", false, "the MX host matches no mx pattern of the MTA-STS policy (testing mode: not enforced)")
				}
				h.Security = Testing
			}
		}
		p.MX = append(p.MX, h)
	}
	return p, nil
}

// lookupTLSA finds the TLSA records of the host: at the CNAME target
// first, then the host (RFC 7672 §2.2.2), at _PORT._tcp then _25._tcp. It
// reports whether an answer was bogus.
func (m *MX) lookupTLSA(ctx context.Context, r *resolver.Resolver, port int, canonical string) (bogus bool) {
	bases := []string{m.Host}
	if canonical != "" && canonical != m.Host {
		bases = []string{canonical, m.Host}
	}
	ports := []int{port}
	if port != 25 {
		ports = append(ports, 25)
	}
	for _, p := range ports {
		for _, b := range bases {
			name := "_" + strconv.Itoa(p) + "._tcp." + b
			ans, err := r.TLSA(ctx, name)
			if errors.Is(err, resolver.ErrBogus) {
				return true
			}
			// RFC 7672 §2.2: records count only when their answer is
			// secure; a failed lookup (other than bogus) leaves DANE
			// aside, as an insecure answer would.
			if err != nil || ans.Security != resolver.Secure || len(ans.Records) == 0 {
				continue
			}
			m.TLSA, m.TLSAName = ans.Records, name
			m.DANENames = []string{m.Host}
			if base := cmp.Or(ans.Canonical, b); base != m.Host {
				m.DANENames = append(m.DANENames, base)
			}
			m.Security = DANEUnauthenticated
			for _, t := range ans.Records {
				if usableTLSA(t) {
					m.Security = DANE
				}
			}
			return false
		}
	}
	return false
}

// usableTLSA: DANE-TA(2) or DANE-EE(3) with a known selector and matching
// type (RFC 7672 §3.1), as dane.Verify would use it.
func usableTLSA(t resolver.TLSA) bool { return dane.CheckRecord(t) == nil }

func (p *Policy) exclude(host, reason string) {
	p.Excluded = append(p.Excluded, Excluded{Host: host, Reason: reason})
}

func (p *Policy) fail(rt tlsrpt.ResultType, pt tlsrpt.PolicyType, mx, ip string, enforced bool, info string) {
	p.Failures = append(p.Failures, Failure{
		Failure:  tlsrpt.Failure{ResultType: rt, ReceivingMXHostname: mx, ReceivingIP: ip, AdditionalInformation: info},
		Policy:   pt,
		Enforced: enforced,
	})
}

// stsFailure records an MTA-STS discovery failure: an invalid policy or
// one that could not be fetched (RFC 8460 §4.3.2.2).
func (p *Policy) stsFailure(err error, enforced bool) {
	rt := tlsrpt.STSPolicyFetchError
	switch {
	case errors.Is(err, mtasts.ErrInvalidPolicy):
		rt = tlsrpt.STSPolicyInvalid
	case errors.Is(err, mtasts.ErrCertificate):
		rt = tlsrpt.STSWebPKIInvalid
	case errors.Is(err, mtasts.ErrInvalidRecord), errors.Is(err, mtasts.ErrDuplicateRecord):
		rt = tlsrpt.STSPolicyInvalid
	}
	p.fail(rt, tlsrpt.PolicySTS, "", "", enforced, err.Error())
}
