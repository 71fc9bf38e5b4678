package mtasts

import (
	"fmt"
	"strings"
)

// Record is a parsed "_mta-sts" TXT record (RFC 8461 §3.1).
type Record struct {
	// ID identifies the policy instance: a sender fetches the policy again
	// when it changes (1 to 32 letters and digits).
	ID string
	// Extensions holds the fields other than v and id, in order.
	Extensions [][2]string
}

// RecordName returns the owner name of the MTA-STS TXT record of domain.
func RecordName(domain string) string { return "_mta-sts." + strings.TrimSuffix(domain, ".") }

// SelectRecord applies the RFC 8461 §3.1 selection to every TXT record
// found at _mta-sts.DOMAIN: records that do not start with "v=STSv1" are
// discarded; none left is ErrNoRecord, more than one ErrDuplicateRecord
// (either way the domain has no usable policy). It returns the one record's
// text and its parse.
func SelectRecord(txts []string) (string, *Record, error) {
	var sts []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1") {
			sts = append(sts, t)
		}
	}
	switch len(sts) {
	case 0:
		return "", nil, ErrNoRecord
	case 1:
		r, err := ParseRecord(sts[0])
		return sts[0], r, err
	}
	return "", nil, fmt.Errorf("%w: %d records start with v=STSv1", ErrDuplicateRecord, len(sts))
}

// ParseRecord parses one MTA-STS TXT record:
//
//	v=STSv1; id=20160831085700Z;
//
// The version must come first; id is required (1*32 ALPHA/DIGIT). A field
// repeated is ignored after its first instance (§3.2's rule for repeated
// fields); extension fields are kept. Errors wrap ErrInvalidRecord.
func ParseRecord(txt string) (*Record, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRecord}, a...)...)
	}
	fields := strings.Split(txt, ";")
	if strings.TrimRight(fields[0], " \t") != "v=STSv1" {
		return nil, bad("it must start with v=STSv1")
	}
	r := &Record{}
	seen := map[string]bool{}
	for i, f := range fields[1:] {
		f = strings.Trim(f, " \t")
		if f == "" {
			if i == len(fields)-2 {
				break // a trailing delimiter is allowed
			}
			return nil, bad("empty field")
		}
		name, value, ok := strings.Cut(f, "=")
		if !ok {
			return nil, bad("field %q has no '='", clip(f))
		}
		if !validExtName(name) {
			return nil, bad("bad field name %q", clip(name))
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		switch name {
		case "id":
			if len(value) < 1 || len(value) > 32 || !allAlnum(value) {
				return nil, bad("id must be 1 to 32 letters and digits, got %q", clip(value))
			}
			r.ID = value
		case "v":
			return nil, bad("v appears again")
		default:
			if value == "" || strings.ContainsFunc(value, func(c rune) bool { return c <= ' ' || c > '~' || c == '=' || c == ';' }) {
				return nil, bad("bad value for field %q", clip(name))
			}
			r.Extensions = append(r.Extensions, [2]string{name, value})
		}
	}
	if r.ID == "" {
		return nil, bad("no id field")
	}
	return r, nil
}

// validExtName: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."), the
// field-name grammar of §3.1 and §3.2.
func validExtName(s string) bool {
	if len(s) < 1 || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func allAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// clip shortens what an error quotes from hostile input.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
