package mtasts

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mode is the policy's mode (RFC 8461 §5).
type Mode string

// Modes.
const (
	// ModeEnforce: deliver only to a matching MX over TLS with a valid
	// certificate.
	ModeEnforce Mode = "enforce"
	// ModeTesting: report failures (TLS-RPT), deliver anyway.
	ModeTesting Mode = "testing"
	// ModeNone: the domain has withdrawn its policy.
	ModeNone Mode = "none"
)

// Limits of RFC 8461.
const (
	// MaxMaxAge is the largest max_age a policy may carry, about a year
	// (§3.2).
	MaxMaxAge = 31557600 * time.Second
	// MaxPolicySize is the largest policy body accepted. §3.3 lets senders
	// limit the size; 64 KiB is what implementations use (and what
	// providers document).
	MaxPolicySize = 64 << 10
)

// Policy is a parsed MTA-STS policy (RFC 8461 §3.2).
type Policy struct {
	Mode Mode
	// MaxAge is how long the policy may be cached (0 to MaxMaxAge).
	MaxAge time.Duration
	// MX are the patterns the domain's MX hosts must match: a host name
	// or "*." and a host name (a wildcard for exactly one label), lower
	// case, without a trailing dot.
	MX []string
	// Extensions holds the fields this package does not know, in order.
	Extensions [][2]string
}

// ParsePolicy parses a policy body: "key: value" lines separated by LF or
// CRLF (§3.2, erratum 6253). version must be STSv1, mode
// enforce/testing/none, max_age 0 to 31557600 seconds, and at least one
// mx is required unless the mode is none. A repeated field other than mx is
// ignored after its first instance (§3.2); unknown fields are kept in
// Extensions; blank lines are tolerated. Errors wrap ErrInvalidPolicy and
// name the field.
func ParsePolicy(body string) (*Policy, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPolicy}, a...)...)
	}
	if len(body) > MaxPolicySize {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, len(body))
	}
	p := &Policy{}
	seen := map[string]bool{}
	for n, line := range strings.Split(body, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.Trim(line, " \t") == "" {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, bad("line %d has no ':' (%q)", n+1, clip(line))
		}
		if !validExtName(key) {
			return nil, bad("line %d: bad field name %q", n+1, clip(key))
		}
		value = strings.Trim(value, " \t")
		if strings.ContainsFunc(value, func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f }) {
			return nil, bad("line %d: control character in the value of %q", n+1, key)
		}
		if key != "mx" && seen[key] {
			continue
		}
		seen[key] = true
		switch key {
		case "version":
			if value != "STSv1" {
				return nil, bad("version must be STSv1, got %q", clip(value))
			}
		case "mode":
			switch Mode(value) {
			case ModeEnforce, ModeTesting, ModeNone:
				p.Mode = Mode(value)
			default:
				return nil, bad("mode must be enforce, testing or none, got %q", clip(value))
			}
		case "max_age":
			if value == "" || len(value) > 10 || strings.Trim(value, "0123456789") != "" {
				return nil, bad("max_age must be 1 to 10 digits, got %q", clip(value))
			}
			s, _ := strconv.ParseInt(value, 10, 64)
			p.MaxAge = time.Duration(s) * time.Second
			if p.MaxAge > MaxMaxAge {
				return nil, bad("max_age %d is out of range (at most %d seconds, RFC 8461 §3.2)", s, int64(MaxMaxAge/time.Second))
			}
		case "mx":
			pat := strings.ToLower(strings.TrimSuffix(value, "."))
			if !validPattern(pat) {
				return nil, bad("mx %q is not a host name or *.host name", clip(value))
			}
			p.MX = append(p.MX, pat)
		default:
			p.Extensions = append(p.Extensions, [2]string{key, value})
		}
	}
	for _, k := range []string{"version", "mode", "max_age"} {
		if !seen[k] {
			return nil, bad("no %s field", k)
		}
	}
	if p.Mode != ModeNone && len(p.MX) == 0 {
		return nil, bad("mode %s needs at least one mx field", p.Mode)
	}
	return p, nil
}

// validPattern: ["*."] Domain (§3.2 sts-policy-mx-value), each label of
// letters, digits and inner hyphens (RFC 5321 §4.1.2).
func validPattern(p string) bool {
	p = strings.TrimPrefix(p, "*.")
	if p == "" || len(p) > 253 {
		return false
	}
	for _, l := range strings.Split(p, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if !isAlnum(l[i]) && l[i] != '-' {
				return false
			}
		}
	}
	return true
}

// Match reports whether the MX host name mx matches one of the policy's
// patterns (RFC 8461 §4.1): equal ignoring case and a trailing dot, or, for
// "*.example.com", exactly one label followed by ".example.com" (so neither
// "example.com" nor "a.b.example.com" match).
func (p *Policy) Match(mx string) bool {
	mx = strings.ToLower(strings.TrimSuffix(mx, "."))
	for _, pat := range p.MX {
		if base, ok := strings.CutPrefix(pat, "*."); ok {
			label, rest, found := strings.Cut(mx, ".")
			if found && label != "" && rest == base {
				return true
			}
			continue
		}
		if mx == pat {
			return true
		}
	}
	return false
}
