package resolver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzNormalize: any input gives an error or a valid, idempotent, bounded name.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"example.org", "EXAMPLE.org.", "_25._tcp.mx.example", "bücher.example", "a..b", "", ".", "x\x00y", "\xff", strings.Repeat("a.", 130)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalize(s)
		if err != nil {
			return
		}
		if len(n) > maxName+1 || !strings.HasSuffix(n, ".") || strings.ToLower(n) != n {
			t.Fatalf("normalize(%q) = %q: not a lower-case FQDN within %d", s, n, maxName)
		}
		if _, ok := dns.IsDomainName(n); !ok {
			t.Fatalf("normalize(%q) = %q, which miekg/dns rejects", s, n)
		}
		if again, err := normalize(n); err != nil || again != n {
			t.Fatalf("normalize(%q) = %q, %v; not idempotent", n, again, err)
		}
	})
}

// escapeTXT writes bytes the way miekg/dns shows them after unpacking.
func escapeTXT(p []byte) string {
	var b strings.Builder
	for _, c := range p {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzJoinTXT: the bytes of a TXT record survive packing, miekg's unpacking
// and escaping, and joinTXT; joinTXT never panics on any string.
func FuzzJoinTXT(f *testing.F) {
	f.Add([]byte("v=STSv1; id=1"), 5)
	f.Add([]byte("\x00\"\\\xff;"), 1)
	f.Add([]byte(`\\\123\`), 300)
	f.Fuzz(func(t *testing.T, raw []byte, split int) {
		_ = joinTXT([]string{string(raw)})
		if len(raw) > 4000 {
			return
		}
		split = max(1, min(255, split))
		var parts []string
		for rest := raw; len(rest) > 0; {
			n := min(split, len(rest))
			parts = append(parts, escapeTXT(rest[:n]))
			rest = rest[n:]
		}
		m := new(dns.Msg)
		m.SetQuestion("t.test.", dns.TypeTXT)
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "t.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: parts}}
		wire, err := m.Pack()
		if err != nil {
			t.Skip(err)
		}
		var back dns.Msg
		if err := back.Unpack(wire); err != nil {
			t.Fatalf("unpack: %v", err)
		}
		var got string
		if len(back.Answer) == 1 {
			got = joinTXT(back.Answer[0].(*dns.TXT).Txt)
		}
		if got != string(raw) {
			t.Fatalf("joinTXT after a round trip = %q, want %q", got, raw)
		}
	})
}

// FuzzExtract: any reply, however malformed, is parsed or refused without a
// panic, and the CNAME walk stays bounded.
func FuzzExtract(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("a.test.", dns.TypeTLSA)
	m := new(dns.Msg)
	m.SetReply(q)
	m.Answer = []dns.RR{
		&dns.CNAME{Hdr: dns.RR_Header{Name: "a.test.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: "b.test."},
		&dns.TLSA{Hdr: dns.RR_Header{Name: "b.test.", Rrtype: dns.TypeTLSA, Class: dns.ClassINET}, Usage: 3, Selector: 1, MatchingType: 1, Certificate: "abcd"},
	}
	seed, _ := m.Pack()
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		reply, err := parseReply(p, q)
		if err != nil {
			return
		}
		for _, qt := range []uint16{dns.TypeTLSA, dns.TypeMX, dns.TypeTXT, dns.TypeA} {
			extract(reply, "a.test.", qt, func(rr dns.RR) (string, bool) { return rr.String(), true })
		}
	})
}
