package maildomain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Requirement is how much of a domain's policy a sender demands beyond
// what the domain itself publishes. It is the --mode of `starttls connect
// smtp://DOMAIN` and the mode of the proxy's upstream_domain.
type Requirement int

// Requirements, from the weakest.
const (
	// RequirePolicy applies whatever the domain publishes, as a sending
	// MTA does: DANE, else MTA-STS, else opportunistic TLS.
	RequirePolicy Requirement = iota
	// RequireMTASTS demands an MTA-STS policy (RFC 8461) in mode enforce
	// or testing; MX hosts with DANE keep DANE (RFC 8461 §2).
	RequireMTASTS
	// RequireDANE keeps only the MX hosts authenticated by DNSSEC-secure,
	// usable TLSA records (RFC 7672).
	RequireDANE
)

// String is the requirement's name, as ParseRequirement reads it.
func (r Requirement) String() string {
	switch r {
	case RequirePolicy:
		return "policy"
	case RequireMTASTS:
		return "mta-sts"
	case RequireDANE:
		return "dane"
	}
	return "Requirement(" + strconv.Itoa(int(r)) + ")"
}

// ParseRequirement reads "policy", "mta-sts" or "dane".
func ParseRequirement(s string) (Requirement, error) {
	for _, r := range []Requirement{RequirePolicy, RequireMTASTS, RequireDANE} {
		if s == r.String() {
			return r, nil
		}
	}
	return 0, fmt.Errorf("maildomain: requirement %q: want dane, mta-sts or policy", s)
}

// requireError says why a requirement leaves no MX host; it wraps ErrNoMX
// without repeating its text.
type requireError struct{ msg string }

func (e *requireError) Error() string { return e.msg }
func (e *requireError) Unwrap() error { return ErrNoMX }

// Require narrows p to the MX hosts the requirement allows, recording each
// host it drops in p.Excluded with the reason. The error, which wraps
// ErrNoMX, says why no MX host is left; p must then not be dialed.
func (p *Policy) Require(r Requirement) error {
	switch r {
	case RequirePolicy:
	case RequireMTASTS:
		if p.MTASTS == nil {
			return &requireError{"the domain has no MTA-STS policy in mode enforce or testing"}
		}
	case RequireDANE:
		var keep []MX
		for _, mx := range p.MX {
			if mx.Security == DANE {
				keep = append(keep, mx)
				continue
			}
			why := "it has no DNSSEC-secure TLSA records"
			if mx.Security == DANEUnauthenticated {
				why = "its TLSA records (" + mx.TLSAName + ") are secure but none is usable, so TLS could not be authenticated (requirement policy uses it with unauthenticated TLS, RFC 7672 §2.2)"
			}
			p.exclude(mx.Host, why)
		}
		p.MX = keep
		if len(keep) == 0 {
			return &requireError{"no MX host can be authenticated with DANE"}
		}
	default:
		return errors.New("maildomain: " + r.String() + ": unknown requirement")
	}
	if len(p.MX) == 0 {
		if p.NullMX {
			return &requireError{"the domain accepts no mail (null MX)"}
		}
		var why []string
		for _, x := range p.Excluded {
			why = append(why, x.Host+": "+x.Reason)
		}
		if len(why) > 0 {
			return &requireError{"no usable MX host (" + strings.Join(why, "; ") + ")"}
		}
		return &requireError{"no usable MX host"}
	}
	return nil
}
