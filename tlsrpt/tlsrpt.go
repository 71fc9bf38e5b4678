// Package tlsrpt implements the parts of SMTP TLS Reporting (RFC 8460) that a
// sender and a checker need now: the policy record published in DNS at
// _smtp._tls.DOMAIN (§3), and the vocabulary of a report's failure details
// (§4.3, §4.4): result types, policy types and one failure's fields, with
// the RFC's JSON names. Building, compressing and sending the aggregate
// reports is left to a later package.
package tlsrpt

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
)

// Version is the version field every TLS-RPT record starts with (RFC 8460 §3).
const Version = "v=TLSRPTv1"

// RecordName returns the DNS name of domain's TLS-RPT record (RFC 8460 §3).
func RecordName(domain string) string {
	return "_smtp._tls." + strings.TrimSuffix(domain, ".")
}

// Record is a parsed TLS-RPT policy record.
type Record struct {
	// RUA are the report destinations, mailto: or https: URIs, in the
	// record's order.
	RUA []string
	// Extensions are the fields other than v and rua, in the record's order.
	// RFC 8460 §3 lets senders ignore them; they are kept for reporting.
	Extensions []Extension
}

// Extension is a field of a TLS-RPT record that this package does not know.
type Extension struct {
	Name, Value string
}

// String returns the record in its canonical text form.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString(Version)
	b.WriteString("; rua=")
	b.WriteString(strings.Join(r.RUA, ","))
	for _, e := range r.Extensions {
		fmt.Fprintf(&b, "; %s=%s", e.Name, e.Value)
	}
	return b.String()
}

var (
	// ErrNoRecord means no TXT record starts with "v=TLSRPTv1": the domain
	// does not ask for reports.
	ErrNoRecord = errors.New("tlsrpt: no TLS-RPT record")
	// ErrMultipleRecords means more than one TXT record starts with
	// "v=TLSRPTv1", in which case senders must assume there is none (RFC 8460 §3).
	ErrMultipleRecords = errors.New("tlsrpt: more than one TLS-RPT record")
	// ErrInvalidRecord is wrapped by every syntax error of ParseRecord.
	ErrInvalidRecord = errors.New("tlsrpt: invalid record")
)

// maxRecord bounds the text parsed: a TXT RRset is at most 64 KiB anyway.
const maxRecord = 65535

// Select picks the TLS-RPT record among the TXT records of a
// _smtp._tls name and parses it. Records that do not begin with the version
// are other uses of the name and are skipped; none gives ErrNoRecord, more
// than one ErrMultipleRecords (RFC 8460 §3).
func Select(txts []string) (*Record, error) {
	var found []string
	for _, t := range txts {
		if IsRecord(t) {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return nil, ErrNoRecord
	case 1:
		return ParseRecord(found[0])
	}
	return nil, fmt.Errorf("%w: %d records begin with %s", ErrMultipleRecords, len(found), Version)
}

// IsRecord reports whether txt starts with the version field (followed by a
// delimiter or the end), which is how senders tell TLS-RPT records apart
// from other TXT records at the name (RFC 8460 §3). Select uses it; a
// checker uses it to show the records it found.
func IsRecord(txt string) bool {
	rest, ok := strings.CutPrefix(txt, Version)
	if !ok {
		return false
	}
	rest = strings.TrimLeft(rest, " \t")
	return rest == "" || rest[0] == ';'
}

// syntaxError makes an error wrapping ErrInvalidRecord.
func syntaxError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRecord, fmt.Sprintf(format, args...))
}

// ParseRecord parses one TLS-RPT TXT record (RFC 8460 §3):
//
//	tlsrpt-record = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//	field-delim   = *WSP ";" *WSP
//	tlsrpt-rua    = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//	tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
//
// The version must come first, rua is required, every URI must be a valid
// mailto: or https: URI, and a field may not appear twice. Every error wraps
// ErrInvalidRecord and says what is wrong.
func ParseRecord(txt string) (*Record, error) {
	if len(txt) > maxRecord {
		return nil, syntaxError("record is %d bytes long", len(txt))
	}
	rest, ok := strings.CutPrefix(txt, Version)
	if !ok {
		return nil, syntaxError("record must begin with %q", Version)
	}
	fields := strings.Split(rest, ";")
	// fields[0] is what follows the version before the first ';': only WSP.
	if strings.Trim(fields[0], " \t") != "" {
		return nil, syntaxError("unexpected %q after the version", clip(fields[0]))
	}
	fields = fields[1:]
	// One trailing delimiter is allowed.
	if n := len(fields); n > 0 && strings.Trim(fields[n-1], " \t") == "" {
		fields = fields[:n-1]
	}
	rec := &Record{}
	seen := map[string]bool{}
	haveRUA := false
	for i, f := range fields {
		f = strings.Trim(f, " \t")
		if f == "" {
			return nil, syntaxError("empty field %d", i+1)
		}
		name, value, ok := strings.Cut(f, "=")
		if !ok {
			return nil, syntaxError("field %q has no '='", clip(f))
		}
		if name == "v" {
			return nil, syntaxError("version field repeated")
		}
		if seen[name] {
			return nil, syntaxError("field %q appears twice", name)
		}
		seen[name] = true
		if name == "rua" {
			uris, err := parseRUA(value)
			if err != nil {
				return nil, err
			}
			rec.RUA = uris
			haveRUA = true
			continue
		}
		if err := checkExtension(name, value); err != nil {
			return nil, err
		}
		rec.Extensions = append(rec.Extensions, Extension{name, value})
	}
	if !haveRUA {
		return nil, syntaxError("no rua field (report destinations) in the record")
	}
	return rec, nil
}

// parseRUA splits and checks the rua value.
func parseRUA(value string) ([]string, error) {
	var uris []string
	for u := range strings.SplitSeq(value, ",") {
		u = strings.Trim(u, " \t")
		if u == "" {
			return nil, syntaxError("empty URI in rua %q", clip(value))
		}
		if err := checkURI(u); err != nil {
			return nil, err
		}
		uris = append(uris, u)
	}
	return uris, nil
}

// checkURI accepts the two schemes RFC 8460 §3 defines: mailto: with one
// address, and https: with a host.
func checkURI(u string) error {
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c >= 0x7f {
			return syntaxError("rua URI %q contains the byte %q", clip(u), c)
		}
	}
	p, err := url.Parse(u)
	if err != nil {
		return syntaxError("rua URI %q: %v", clip(u), err)
	}
	switch p.Scheme {
	case "mailto":
		addr, err := url.PathUnescape(p.Opaque)
		if err != nil || addr == "" {
			return syntaxError("rua URI %q has no address", clip(u))
		}
		a, err := mail.ParseAddress(addr)
		if err != nil || a.Name != "" || a.Address != addr {
			return syntaxError("rua URI %q: %q is not a mail address", clip(u), clip(addr))
		}
	case "https":
		if p.Host == "" || p.Opaque != "" {
			return syntaxError("rua URI %q has no host", clip(u))
		}
	case "":
		return syntaxError("rua URI %q has no scheme (want mailto: or https:)", clip(u))
	default:
		return syntaxError("rua URI %q: scheme %q is not mailto: or https:", clip(u), p.Scheme)
	}
	return nil
}

// checkExtension applies the grammar of tlsrpt-ext-name and tlsrpt-ext-value.
func checkExtension(name, value string) error {
	if name == "" || len(name) > 32 || !isAlnum(name[0]) {
		return syntaxError("invalid field name %q", clip(name))
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return syntaxError("invalid field name %q", clip(name))
		}
	}
	if value == "" {
		return syntaxError("field %q has an empty value", name)
	}
	for i := 0; i < len(value); i++ {
		// %x21-3A / %x3C / %x3E-7E: no space, control, ';' or '='.
		if c := value[i]; c < 0x21 || c > 0x7e || c == '=' {
			return syntaxError("field %q: invalid byte %q in the value", name, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
