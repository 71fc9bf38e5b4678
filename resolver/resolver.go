package resolver

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Security says what DNSSEC made of an answer.
type Security int

const (
	// Insecure: the resolver did not vouch for the answer (no AD bit). The
	// zone may be unsigned, or the resolver may not validate.
	Insecure Security = iota
	// Secure: the validating resolver set the AD bit (RFC 4035 §3.2.3).
	Secure
	// Bogus: the resolver failed validation (SERVFAIL, and an answer once
	// validation was switched off with CD=1). The data must not be used.
	Bogus
)

// String returns "insecure", "secure" or "bogus".
func (s Security) String() string {
	switch s {
	case Insecure:
		return "insecure"
	case Secure:
		return "secure"
	case Bogus:
		return "bogus"
	}
	return fmt.Sprintf("Security(%d)", int(s))
}

// weakest combines the security of two answers that a result depends on.
func weakest(a, b Security) Security {
	if a == Bogus || b == Bogus {
		return Bogus
	}
	if a == Insecure || b == Insecure {
		return Insecure
	}
	return Secure
}

// ErrBogus is wrapped in the *Error returned with an answer whose Security is
// Bogus: the resolver answered SERVFAIL and, asked again with CD=1, gave
// the records that failed validation. They are for reporting only.
var ErrBogus = errors.New("resolver: DNSSEC validation failed (bogus answer)")

// Error is a lookup that did not give a usable answer.
type Error struct {
	Name  string // the name asked for, without the trailing dot
	Type  string // the query type, such as "TLSA"
	Rcode int    // the DNS response code of the answer; -1 if none came
	Err   error  // the cause when it is not just Rcode: transport, parse, ErrBogus
}

func (e *Error) Error() string {
	var cause string
	switch {
	case e.Err != nil:
		cause = strings.TrimPrefix(e.Err.Error(), "resolver: ")
	case e.Rcode >= 0:
		cause = dns.RcodeToString[e.Rcode]
		if cause == "" {
			cause = fmt.Sprintf("response code %d", e.Rcode)
		}
	default:
		cause = "no answer"
	}
	return fmt.Sprintf("resolver: %s %s: %s", e.Type, e.Name, cause)
}

// Unwrap returns the cause, so that errors.Is(err, ErrBogus) and
// errors.Is(err, context.DeadlineExceeded) work.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the resolver never answered in time.
func (e *Error) Timeout() bool {
	var ne net.Error
	return errors.Is(e.Err, context.DeadlineExceeded) || (errors.As(e.Err, &ne) && ne.Timeout())
}

// Resolver sends queries to one recursive resolver. The zero value (and a nil
// *Resolver) uses the first nameserver of /etc/resolv.conf. Its methods are safe for concurrent use.
//
// Security of the answers is only as good as the path to Addr: see the
// package documentation.
type Resolver struct {
	// Addr is the HOST:PORT of the validating resolver. "" means the first
	// nameserver of /etc/resolv.conf, on port 53.
	Addr string
	// Timeout bounds each attempt (UDP, and TCP after truncation). 0 means 3s.
	Timeout time.Duration
	// Retries is the number of extra attempts after an attempt that got no
	// usable answer (timeout, network error, malformed reply). 0 means 2;
	// negative means none.
	Retries int
}

// Answer is the result of one lookup.
type Answer[T any] struct {
	// Records are the records of the asked type at the canonical name.
	Records []T
	// Security is what the resolver's DNSSEC validation said of the answer.
	Security Security
	// Canonical is the owner name reached by following CNAMEs, without the
	// trailing dot, lower case (RFC 7672 §2.2.2); "" when there was no CNAME.
	Canonical string
	// NXDomain is true when the (canonical) name does not exist. A name that
	// exists but has no records of the type (NODATA) has NXDomain false and
	// no Records.
	NXDomain bool
}

// MX is a mail exchanger (RFC 5321 §5.1). Host is lower case without the
// trailing dot; a null MX (RFC 7505) has Host "".
type MX struct {
	Host       string
	Preference uint16
}

// TLSA is a DANE TLSA record (RFC 6698 §2.1).
type TLSA struct {
	Usage, Selector, MatchingType uint8
	Data                          []byte
}

// String gives the record in presentation form: "3 1 1 ab12…".
func (t TLSA) String() string {
	return fmt.Sprintf("%d %d %d %x", t.Usage, t.Selector, t.MatchingType, t.Data)
}

const (
	defaultTimeout = 3 * time.Second
	defaultRetries = 2
	// ednsSize is the DNS flag day 2020 UDP payload size, which avoids
	// IP fragmentation; larger answers come over TCP.
	ednsSize = 1232
	// maxCNAME bounds the CNAME chain followed in one answer.
	maxCNAME = 8
	// maxMessage is the largest DNS message (the TCP length prefix is 16 bits).
	maxMessage = 65535
)

// MX looks up the mail exchangers of name, sorted by preference (equal
// preferences keep the resolver's order).
func (r *Resolver) MX(ctx context.Context, name string) (Answer[MX], error) {
	a, err := lookup(ctx, r, name, dns.TypeMX, func(rr dns.RR) (MX, bool) {
		mx, ok := rr.(*dns.MX)
		if !ok {
			return MX{}, false
		}
		return MX{Host: strings.ToLower(strings.TrimSuffix(mx.Mx, ".")), Preference: mx.Preference}, true
	})
	slices.SortStableFunc(a.Records, func(x, y MX) int { return cmp.Compare(x.Preference, y.Preference) })
	return a, err
}

// TXT looks up the TXT records of name. Each record's character-strings are
// joined without separator, as RFC 8461 §3.1 and RFC 8460 §3 require.
func (r *Resolver) TXT(ctx context.Context, name string) (Answer[string], error) {
	return lookup(ctx, r, name, dns.TypeTXT, func(rr dns.RR) (string, bool) {
		t, ok := rr.(*dns.TXT)
		if !ok {
			return "", false
		}
		return joinTXT(t.Txt), true
	})
}

// TLSA looks up the TLSA records of name, such as "_25._tcp.mx.example.org".
func (r *Resolver) TLSA(ctx context.Context, name string) (Answer[TLSA], error) {
	return lookup(ctx, r, name, dns.TypeTLSA, func(rr dns.RR) (TLSA, bool) {
		t, ok := rr.(*dns.TLSA)
		if !ok {
			return TLSA{}, false
		}
		data, err := hex.DecodeString(t.Certificate)
		if err != nil {
			return TLSA{}, false
		}
		return TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: data}, true
	})
}

// IPs looks up the A and AAAA records of host, concurrently; IPv4
// addresses come first. Security is the weaker of the two answers. An error
// of either lookup is returned, except that a Bogus answer still comes with
// its records (and an error wrapping ErrBogus).
func (r *Resolver) IPs(ctx context.Context, host string) (Answer[netip.Addr], error) {
	var a4 Answer[netip.Addr]
	var e4 error
	var wg sync.WaitGroup
	wg.Go(func() { a4, e4 = lookup(ctx, r, host, dns.TypeA, addrOf) })
	a6, e6 := lookup(ctx, r, host, dns.TypeAAAA, addrOf)
	wg.Wait()
	for _, err := range []error{e4, e6} {
		if err != nil && !errors.Is(err, ErrBogus) {
			return Answer[netip.Addr]{}, err
		}
	}
	a := Answer[netip.Addr]{
		Records:   append(a4.Records, a6.Records...),
		Security:  weakest(a4.Security, a6.Security),
		Canonical: cmp.Or(a4.Canonical, a6.Canonical),
	}
	a.NXDomain = len(a.Records) == 0 && (a4.NXDomain || a6.NXDomain)
	return a, cmp.Or(e4, e6)
}

func addrOf(rr dns.RR) (netip.Addr, bool) {
	switch rr := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(rr.A)
		return a.Unmap(), ok
	case *dns.AAAA:
		return netip.AddrFromSlice(rr.AAAA)
	}
	return netip.Addr{}, false
}

// lookup asks for name/qtype and converts the records at the canonical name.
func lookup[T any](ctx context.Context, r *Resolver, name string, qtype uint16, conv func(dns.RR) (T, bool)) (Answer[T], error) {
	if r == nil {
		r = &Resolver{} // a nil *Resolver acts as the zero value
	}
	typ := dns.TypeToString[qtype]
	fqdn, err := normalize(name)
	if err != nil {
		return Answer[T]{}, &Error{Name: name, Type: typ, Rcode: -1, Err: err}
	}
	msg, sec, err := r.resolve(ctx, fqdn, qtype)
	if msg == nil {
		return Answer[T]{}, err
	}
	a, perr := extract(msg, fqdn, qtype, conv)
	if perr != nil {
		return Answer[T]{}, &Error{Name: strings.TrimSuffix(fqdn, "."), Type: typ, Rcode: msg.Rcode, Err: perr}
	}
	a.Security = sec
	return a, err
}

// extract follows the CNAME chain from qname in msg's answer section and
// returns the records of qtype owned by the end of the chain.
func extract[T any](msg *dns.Msg, qname string, qtype uint16, conv func(dns.RR) (T, bool)) (Answer[T], error) {
	var a Answer[T]
	owner := qname
	for links := 0; ; links++ {
		next := ""
		for _, rr := range msg.Answer {
			if c, ok := rr.(*dns.CNAME); ok && equalName(c.Hdr.Name, owner) {
				next = c.Target
				break
			}
		}
		if next == "" {
			break
		}
		if links == maxCNAME {
			return a, fmt.Errorf("CNAME chain longer than %d links", maxCNAME)
		}
		owner = next
	}
	if owner != qname {
		a.Canonical = strings.ToLower(strings.TrimSuffix(owner, "."))
	}
	for _, rr := range msg.Answer {
		h := rr.Header()
		if h.Rrtype != qtype || h.Class != dns.ClassINET || !equalName(h.Name, owner) {
			continue
		}
		if v, ok := conv(rr); ok {
			a.Records = append(a.Records, v)
		}
	}
	a.NXDomain = msg.Rcode == dns.RcodeNameError
	return a, nil
}

func equalName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// resolvConf is where the default resolver is found; a variable for tests.
var resolvConf = "/etc/resolv.conf"

// server returns the address to send queries to.
func (r *Resolver) server() (string, error) {
	if r.Addr != "" {
		return r.Addr, nil
	}
	conf, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return "", fmt.Errorf("no resolver address given and %w", err)
	}
	if len(conf.Servers) == 0 {
		return "", errors.New("no resolver address given and no nameserver in /etc/resolv.conf")
	}
	return net.JoinHostPort(conf.Servers[0], cmp.Or(conf.Port, "53")), nil
}

// resolve asks the question and applies the DNSSEC rules: AD → Secure;
// SERVFAIL then an answer with CD=1 → Bogus, returned with an error.
func (r *Resolver) resolve(ctx context.Context, fqdn string, qtype uint16) (*dns.Msg, Security, error) {
	fail := func(rcode int, err error) (*dns.Msg, Security, error) {
		return nil, Insecure, &Error{Name: strings.TrimSuffix(fqdn, "."), Type: dns.TypeToString[qtype], Rcode: rcode, Err: err}
	}
	server, err := r.server()
	if err != nil {
		return fail(-1, err)
	}
	m, err := r.exchange(ctx, server, fqdn, qtype, false)
	if err != nil {
		return fail(-1, err)
	}
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		if m.AuthenticatedData {
			return m, Secure, nil
		}
		return m, Insecure, nil
	case dns.RcodeServerFailure:
		// RFC 4035 §3.2.2: with CD=1 the resolver returns what it could not
		// validate. An answer now means the data is there but bogus; another
		// failure means the resolver could not get it at all.
		cd, err := r.exchange(ctx, server, fqdn, qtype, true)
		if err != nil || (cd.Rcode != dns.RcodeSuccess && cd.Rcode != dns.RcodeNameError) {
			return fail(dns.RcodeServerFailure, nil)
		}
		_, _, e := fail(dns.RcodeServerFailure, ErrBogus)
		return cd, Bogus, e
	default:
		return fail(m.Rcode, nil)
	}
}

// exchange sends one question, with retries, and returns the matching reply.
func (r *Resolver) exchange(ctx context.Context, server, fqdn string, qtype uint16, cd bool) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.AuthenticatedData = true
	q.CheckingDisabled = cd
	q.SetEdns0(ednsSize, true)
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	retries := r.Retries
	if retries == 0 {
		retries = defaultRetries
	}
	attempts := 1 + max(retries, 0)
	var last error
	for range attempts {
		m, err := r.attempt(ctx, "udp", server, q, wire)
		if err == nil && m.Truncated {
			m, err = r.attempt(ctx, "tcp", server, q, wire)
		}
		if err == nil {
			return m, nil
		}
		last = err
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("no answer from %s after %d attempts: %w", server, attempts, last)
}

// attempt does one exchange over network within the per-attempt timeout.
func (r *Resolver) attempt(ctx context.Context, network, server string, q *dns.Msg, wire []byte) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(r.Timeout, defaultTimeout))
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// A cancelled parent context ends the reads at once, not at the deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if network == "udp" {
		return exchangeUDP(conn, q, wire)
	}
	return exchangeTCP(conn, q, wire)
}

// exchangeUDP sends the query and reads until a reply matches it. Replies
// that do not parse or answer another question (wrong ID, name, type) are
// dropped, not taken as the answer: they may be forged or late.
func exchangeUDP(conn net.Conn, q *dns.Msg, wire []byte) (*dns.Msg, error) {
	if _, err := conn.Write(wire); err != nil {
		return nil, err
	}
	buf := make([]byte, maxMessage)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		if m, err := parseReply(buf[:n], q); err == nil {
			return m, nil
		}
	}
}

// exchangeTCP sends the query with its two-byte length (RFC 1035 §4.2.2) and
// reads one reply, which must match.
func exchangeTCP(conn net.Conn, q *dns.Msg, wire []byte) (*dns.Msg, error) {
	out := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	copy(out[2:], wire)
	if _, err := conn.Write(out); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, fmt.Errorf("reading TCP reply length: %w", err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, fmt.Errorf("reading TCP reply: %w", err)
	}
	return parseReply(buf, q)
}

// parseReply unpacks p and checks that it answers q (RFC 5452 §4.3: ID and
// question).
func parseReply(p []byte, q *dns.Msg) (*dns.Msg, error) {
	m := new(dns.Msg)
	unpackErr := m.Unpack(p)
	if !m.Response || m.Id != q.Id || m.Opcode != q.Opcode {
		if unpackErr != nil {
			return nil, fmt.Errorf("malformed reply: %w", unpackErr)
		}
		return nil, errors.New("reply does not match the query ID")
	}
	want := q.Question[0]
	if len(m.Question) != 1 || !equalName(m.Question[0].Name, want.Name) ||
		m.Question[0].Qtype != want.Qtype || m.Question[0].Qclass != want.Qclass {
		return nil, errors.New("reply is for another question")
	}
	if unpackErr != nil {
		// Some servers cut a truncated UDP reply in the middle of a record.
		// Only its header matters then: ask again over TCP.
		if m.Truncated {
			m.Answer, m.Ns, m.Extra = nil, nil, nil
			return m, nil
		}
		return nil, fmt.Errorf("malformed reply: %w", unpackErr)
	}
	return m, nil
}
