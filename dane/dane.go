// Package dane authenticates SMTP servers with DANE TLSA records, as
// RFC 7672 (SMTP Security via Opportunistic DANE TLS) profiles RFC 6698 and
// RFC 7671.
//
// Only the two certificate usages that RFC 7672 §3.1 allows for SMTP count:
//
//   - DANE-EE(3): the record matches the server's own certificate or public
//     key. Names and validity dates are not checked (RFC 7672 §3.1.1).
//   - DANE-TA(2): the record matches a certificate of the chain the server
//     presented (the server must include it, RFC 7672 §3.1.2), and the chain
//     from the leaf to that trust anchor verifies, with dates, and with a name
//     the client expects: the MX host name or the TLSA base domain after
//     CNAME expansion (RFC 7672 §3.2.2). Names are DNS subjectAltNames with
//     "*." matching one leftmost label, as crypto/x509 does; the subject
//     common name is not used.
//
// PKIX-TA(0) and PKIX-EE(1), unknown usages, selectors (other than 0 full
// certificate and 1 SubjectPublicKeyInfo) and matching types (other than 0
// exact, 1 SHA2-256 and 2 SHA2-512), and digests of the wrong length are
// "unusable" (RFC 7672 §3.1.3): they never authenticate a server, and they do
// not spoil the other records of the set.
//
// # Trust model
//
// DANE is only as good as the TLSA records: use records whose lookup was
// Secure (DNSSEC-validated, see package resolver), never Insecure or Bogus
// ones. RFC 7672 §2.2 says what a sender does with each case: secure and
// usable records require TLS authenticated by them (Config); secure records
// that are all unusable still require TLS, without authentication; no secure
// records mean opportunistic TLS. That policy belongs to the caller; this
// package only answers whether a chain matches the records.
package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/starttls/starttls/resolver"
)

// Certificate usages, selectors and matching types (RFC 6698 §2.1, RFC 7218).
const (
	UsagePKIXTA uint8 = 0 // unusable for SMTP
	UsagePKIXEE uint8 = 1 // unusable for SMTP
	UsageDANETA uint8 = 2
	UsageDANEEE uint8 = 3

	SelectorCert uint8 = 0 // the full certificate, DER
	SelectorSPKI uint8 = 1 // the SubjectPublicKeyInfo, DER

	MatchFull   uint8 = 0 // the selected data itself
	MatchSHA256 uint8 = 1
	MatchSHA512 uint8 = 2
)

var (
	// ErrNoUsable is wrapped by Verify's error when no record is usable
	// for SMTP (RFC 7672 §3.1.3), including when there are no records.
	ErrNoUsable = errors.New("dane: no usable TLSA record")
	// ErrMismatch is wrapped by Verify's error when there are usable records
	// but none of them authenticates the server.
	ErrMismatch = errors.New("dane: no TLSA record matches the server's certificate")
)

// RecordError says why one TLSA record did not authenticate the server.
type RecordError struct {
	Record resolver.TLSA
	// Unusable is true when the record can never be used for SMTP; false
	// when it is usable but did not match, or its chain did not verify.
	Unusable bool
	Reason   string
	// Err is the cause from crypto/x509 when a DANE-TA chain did not verify.
	Err error
}

func (e *RecordError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "TLSA %s: ", short(e.Record))
	if e.Unusable {
		b.WriteString("unusable: ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *RecordError) Unwrap() error { return e.Err }

// VerifyError is the failure of Verify: what each record made of the chain.
// errors.Is finds ErrNoUsable or ErrMismatch in it.
type VerifyError struct {
	Records []*RecordError
	// Usable counts the usable records among them.
	Usable int
}

func (e *VerifyError) Error() string {
	head := ErrMismatch.Error()
	if e.Usable == 0 {
		head = ErrNoUsable.Error()
	}
	if len(e.Records) == 0 {
		return head + " (no records)"
	}
	parts := make([]string, len(e.Records))
	for i, r := range e.Records {
		parts[i] = r.Error()
	}
	return head + ": " + strings.Join(parts, "; ")
}

// Unwrap returns the sentinel (ErrNoUsable or ErrMismatch) and the records' errors.
func (e *VerifyError) Unwrap() []error {
	errs := []error{ErrMismatch}
	if e.Usable == 0 {
		errs[0] = ErrNoUsable
	}
	for _, r := range e.Records {
		errs = append(errs, r)
	}
	return errs
}

// short writes a record with its data shortened, for messages.
func short(t resolver.TLSA) string {
	s := t.String()
	if len(s) > 24 {
		s = s[:24] + "…"
	}
	return s
}

// CheckRecord returns nil if the record is usable for SMTP, and otherwise a
// *RecordError (Unusable set) that says why (RFC 7672 §3.1.3).
func CheckRecord(t resolver.TLSA) error {
	unusable := func(format string, args ...any) error {
		return &RecordError{Record: t, Unusable: true, Reason: fmt.Sprintf(format, args...)}
	}
	switch t.Usage {
	case UsageDANETA, UsageDANEEE:
	case UsagePKIXTA, UsagePKIXEE:
		return unusable("usage %d (PKIX-%s) is not for SMTP (RFC 7672 §3.1.3)", t.Usage, map[uint8]string{0: "TA", 1: "EE"}[t.Usage])
	default:
		return unusable("unknown certificate usage %d", t.Usage)
	}
	if t.Selector != SelectorCert && t.Selector != SelectorSPKI {
		return unusable("unknown selector %d", t.Selector)
	}
	switch t.MatchingType {
	case MatchFull:
		if len(t.Data) == 0 {
			return unusable("no data")
		}
	case MatchSHA256:
		if len(t.Data) != sha256.Size {
			return unusable("SHA2-256 data is %d bytes, not %d", len(t.Data), sha256.Size)
		}
	case MatchSHA512:
		if len(t.Data) != sha512.Size {
			return unusable("SHA2-512 data is %d bytes, not %d", len(t.Data), sha512.Size)
		}
	default:
		return unusable("unknown matching type %d", t.MatchingType)
	}
	return nil
}

// Record computes the TLSA record of cert with the given usage, selector and
// matching type, the record a zone should publish for it. An unknown selector
// or matching type gives a record with no Data, which CheckRecord rejects.
func Record(cert *x509.Certificate, usage, selector, mtype uint8) resolver.TLSA {
	t := resolver.TLSA{Usage: usage, Selector: selector, MatchingType: mtype}
	t.Data = selectData(cert, selector, mtype)
	return t
}

func selectData(cert *x509.Certificate, selector, mtype uint8) []byte {
	var data []byte
	switch selector {
	case SelectorCert:
		data = cert.Raw
	case SelectorSPKI:
		data = cert.RawSubjectPublicKeyInfo
	default:
		return nil
	}
	switch mtype {
	case MatchFull:
		return bytes.Clone(data)
	case MatchSHA256:
		h := sha256.Sum256(data)
		return h[:]
	case MatchSHA512:
		h := sha512.Sum512(data)
		return h[:]
	}
	return nil
}

func matches(t resolver.TLSA, cert *x509.Certificate) bool {
	return bytes.Equal(selectData(cert, t.Selector, t.MatchingType), t.Data)
}

// Verify reports whether the server's certificate chain (leaf first, as the
// server sent it) is authenticated by one of records, under RFC 7672 §3.
// names are the reference identifiers for DANE-TA(2): the MX host name and,
// when the TLSA lookup followed a CNAME, the TLSA base domain (RFC 7672
// §3.2.2). now is the time for DANE-TA chain validation.
//
// It returns nil when a record authenticates the chain, and otherwise a
// *VerifyError wrapping ErrNoUsable (no record is usable) or ErrMismatch.
func Verify(chain []*x509.Certificate, records []resolver.TLSA, names []string, now time.Time) error {
	verr := &VerifyError{}
	for _, t := range records {
		if err := CheckRecord(t); err != nil {
			verr.Records = append(verr.Records, err.(*RecordError))
			continue
		}
		verr.Usable++
		rerr := verifyOne(chain, t, names, now)
		if rerr == nil {
			return nil
		}
		verr.Records = append(verr.Records, rerr)
	}
	return verr
}

// verifyOne checks one usable record against the chain.
func verifyOne(chain []*x509.Certificate, t resolver.TLSA, names []string, now time.Time) *RecordError {
	fail := func(err error, format string, args ...any) *RecordError {
		return &RecordError{Record: t, Reason: fmt.Sprintf(format, args...), Err: err}
	}
	if len(chain) == 0 {
		return fail(nil, "the server presented no certificate")
	}
	if t.Usage == UsageDANEEE {
		// RFC 7672 §3.1.1: the leaf matches, nothing else is checked.
		if matches(t, chain[0]) {
			return nil
		}
		return fail(nil, "does not match the server's certificate (%s)", describe(chain[0]))
	}
	// DANE-TA(2), RFC 7672 §3.1.2: find the trust anchor in the chain, then
	// verify the leaf up to it.
	var last *RecordError
	for i, c := range chain {
		if !matches(t, c) {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(c)
		inter := x509.NewCertPool()
		for _, ic := range chain[1:] {
			if ic != c {
				inter.AddCert(ic)
			}
		}
		if len(names) == 0 {
			return fail(nil, "matches certificate %d (%s) but no name to check the chain against", i, describe(c))
		}
		for _, name := range names {
			_, err := chain[0].Verify(x509.VerifyOptions{
				DNSName:       strings.TrimSuffix(name, "."),
				Roots:         roots,
				Intermediates: inter,
				CurrentTime:   now,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			if err == nil {
				return nil
			}
			last = fail(err, "trust anchor is certificate %d (%s), but the chain does not verify for %s", i, describe(c), strings.Join(names, " or "))
		}
	}
	if last != nil {
		return last
	}
	return fail(nil, "matches no certificate of the server's chain (%d presented; the trust anchor must be among them, RFC 7672 §3.1.2)", len(chain))
}

// describe names a certificate for messages.
func describe(c *x509.Certificate) string {
	s := "subject " + c.Subject.String()
	if s == "subject " {
		s = "empty subject"
	}
	return s
}

// Config returns a copy of base that authenticates the server with DANE
// instead of WebPKI: InsecureSkipVerify is set, and VerifyConnection runs
// Verify with records and names (and base.Time, or the current time). A
// VerifyConnection hook already in base runs after DANE succeeds. When base
// has no ServerName, the first name is used, so that the server sees it in
// SNI (RFC 7672 §8.1).
//
// A VerifyPeerCertificate hook in base still runs but, as always with
// InsecureSkipVerify, gets no verified chains.
//
// Pass only records from a Secure lookup. If none of them is usable, every
// handshake fails; RFC 7672 §3.1.3 asks for unauthenticated TLS in that case,
// which is the caller's choice (check with CheckRecord first).
func Config(base *tls.Config, records []resolver.TLSA, names []string) *tls.Config {
	var c *tls.Config
	if base == nil {
		c = &tls.Config{}
	} else {
		c = base.Clone()
	}
	records = cloneRecords(records)
	names = append([]string(nil), names...)
	if c.ServerName == "" && len(names) > 0 {
		c.ServerName = strings.TrimSuffix(names[0], ".")
	}
	next := c.VerifyConnection
	clock := c.Time
	c.InsecureSkipVerify = true // DANE replaces WebPKI here; Verify below decides.
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		now := time.Now()
		if clock != nil {
			now = clock()
		}
		if err := Verify(cs.PeerCertificates, records, names, now); err != nil {
			return err
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
	return c
}

func cloneRecords(in []resolver.TLSA) []resolver.TLSA {
	out := make([]resolver.TLSA, len(in))
	for i, t := range in {
		t.Data = bytes.Clone(t.Data)
		out[i] = t
	}
	return out
}
