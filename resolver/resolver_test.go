package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testServer is a DNS server on loopback, UDP and TCP on one port, whose
// answers come from handle.
type testServer struct {
	Addr string
	mu   sync.Mutex
	reqs []request
}

type request struct {
	Net string
	Msg *dns.Msg
}

func (s *testServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func startServer(t *testing.T, handle func(network string, q *dns.Msg) *dns.Msg) *testServer {
	t.Helper()
	ts := &testServer{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		network := w.LocalAddr().Network()
		ts.mu.Lock()
		ts.reqs = append(ts.reqs, request{network, q.Copy()})
		ts.mu.Unlock()
		if m := handle(network, q); m != nil {
			w.WriteMsg(m)
		}
	})
	var pc net.PacketConn
	var ln net.Listener
	for range 10 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	var started sync.WaitGroup
	started.Add(2)
	udp.NotifyStartedFunc = started.Done
	tcp.NotifyStartedFunc = started.Done
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	started.Wait()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	ts.Addr = pc.LocalAddr().String()
	return ts
}

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("NewRR(%q): %v", s, err)
	}
	return r
}

// zone answers like a validating resolver would for the test names.
func zone(t *testing.T) func(string, *dns.Msg) *dns.Msg {
	return func(network string, q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.RecursionAvailable = true
		name := strings.ToLower(q.Question[0].Name)
		qt := q.Question[0].Qtype
		cd := q.CheckingDisabled
		add := func(ss ...string) {
			for _, s := range ss {
				m.Answer = append(m.Answer, rr(t, s))
			}
		}
		switch {
		case name == "mx.test." && qt == dns.TypeMX:
			m.AuthenticatedData = true
			add("mx.test. 300 IN MX 20 B.mx.test.", "mx.test. 300 IN MX 10 a.MX.test.", "mx.test. 300 IN MX 20 c.mx.test.")
		case name == "insecure.test." && qt == dns.TypeMX:
			add("insecure.test. 300 IN MX 10 mail.insecure.test.")
		case name == "null.test." && qt == dns.TypeMX:
			m.AuthenticatedData = true
			add("null.test. 300 IN MX 0 .")
		case name == "bogus.test.":
			if !cd {
				m.Rcode = dns.RcodeServerFailure
				return m
			}
			add("bogus.test. 300 IN TLSA 3 1 1 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20")
		case name == "servfail.test.":
			m.Rcode = dns.RcodeServerFailure
		case name == "refused.test.":
			m.Rcode = dns.RcodeRefused
		case name == "nx.test.":
			m.Rcode = dns.RcodeNameError
			m.AuthenticatedData = true
		case name == "nodata.test.":
			m.AuthenticatedData = true
		case name == "_25._tcp.alias.test.":
			m.AuthenticatedData = true
			add("_25._tcp.alias.test. 300 IN CNAME _25._tcp.mid.test.",
				"_25._tcp.mid.test. 300 IN CNAME _25._tcp.Target.test.",
				"_25._tcp.target.test. 300 IN TLSA 2 0 1 aabbcc",
				"_25._tcp.alias.test. 300 IN TLSA 3 1 1 ffff", // not at the end of the chain: ignored
			)
		case name == "dangling.test.":
			add("dangling.test. 300 IN CNAME nowhere.test.")
			m.Rcode = dns.RcodeNameError
		case strings.HasSuffix(name, ".loop.test.") || name == "loop.test.":
			// c0.loop.test → c1 → … → c9: nine links, one too many.
			for i := range 9 {
				add(fmt.Sprintf("c%d.loop.test. 60 IN CNAME c%d.loop.test.", i, i+1))
			}
			add("c9.loop.test. 60 IN TXT end")
		case name == "eight.test.":
			for i := range 8 {
				from := fmt.Sprintf("e%d.eight.test.", i)
				if i == 0 {
					from = "eight.test."
				}
				add(fmt.Sprintf("%s 60 IN CNAME e%d.eight.test.", from, i+1))
			}
			add("e8.eight.test. 60 IN TXT end")
		case name == "cycle.test.":
			add("cycle.test. 60 IN CNAME other.test.", "other.test. 60 IN CNAME cycle.test.")
		case name == "big.test." && qt == dns.TypeTXT:
			if network == "udp" {
				m.Truncated = true
				return m
			}
			for i := range 40 {
				add(fmt.Sprintf(`big.test. 60 IN TXT "record %02d %s"`, i, strings.Repeat("x", 200)))
			}
		case name == "txt.test." && qt == dns.TypeTXT:
			m.AuthenticatedData = true
			add(`txt.test. 60 IN TXT "v=TLSRPTv1;" " rua=mailto:a@b"`,
				`txt.test. 60 IN TXT "quote\"back\\slash\009tab\255"`)
		case name == "ip.test.":
			m.AuthenticatedData = true
			switch qt {
			case dns.TypeA:
				add("ip.test. 60 IN A 192.0.2.1")
			case dns.TypeAAAA:
				add("ip.test. 60 IN AAAA 2001:db8::1")
			}
		case name == "halfbogus.test.":
			switch qt {
			case dns.TypeA:
				m.AuthenticatedData = true
				add("halfbogus.test. 60 IN A 192.0.2.2")
			case dns.TypeAAAA:
				if !cd {
					m.Rcode = dns.RcodeServerFailure
					return m
				}
				add("halfbogus.test. 60 IN AAAA 2001:db8::2")
			}
		case name == "halfinsecure.test.":
			m.AuthenticatedData = qt == dns.TypeA
			if qt == dns.TypeA {
				add("halfinsecure.test. 60 IN A 192.0.2.3")
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		return m
	}
}

func newTestResolver(t *testing.T) (*Resolver, *testServer) {
	ts := startServer(t, zone(t))
	return &Resolver{Addr: ts.Addr, Timeout: 2 * time.Second}, ts
}

func TestMX(t *testing.T) {
	r, ts := newTestResolver(t)
	ctx := t.Context()
	tests := []struct {
		name string
		want Answer[MX]
	}{
		{"mx.test", Answer[MX]{Records: []MX{{"a.mx.test", 10}, {"b.mx.test", 20}, {"c.mx.test", 20}}, Security: Secure}},
		{"MX.Test.", Answer[MX]{Records: []MX{{"a.mx.test", 10}, {"b.mx.test", 20}, {"c.mx.test", 20}}, Security: Secure}},
		{"insecure.test", Answer[MX]{Records: []MX{{"mail.insecure.test", 10}}, Security: Insecure}},
		{"null.test", Answer[MX]{Records: []MX{{"", 0}}, Security: Secure}},
		{"nx.test", Answer[MX]{NXDomain: true, Security: Secure}},
		{"nodata.test", Answer[MX]{Security: Secure}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.MX(ctx, tt.name)
			if err != nil {
				t.Fatalf("MX(%q): %v", tt.name, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("MX(%q) = %+v, want %+v", tt.name, got, tt.want)
			}
		})
	}
	// Every query asks for DNSSEC: DO with a 1232-byte size, AD, RD; CD only on the bogus retry.
	for _, req := range ts.requests() {
		q := req.Msg
		opt := q.IsEdns0()
		if opt == nil || !opt.Do() || opt.UDPSize() != ednsSize || !q.AuthenticatedData || !q.RecursionDesired || q.CheckingDisabled {
			t.Errorf("query %v: want EDNS0 DO size %d, AD, RD, no CD", q.Question, ednsSize)
		}
	}
}

func TestBogus(t *testing.T) {
	r, ts := newTestResolver(t)
	got, err := r.TLSA(t.Context(), "bogus.test")
	if !errors.Is(err, ErrBogus) {
		t.Fatalf("TLSA(bogus.test) error = %v, want ErrBogus", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Rcode != dns.RcodeServerFailure || e.Type != "TLSA" || e.Name != "bogus.test" {
		t.Errorf("error = %#v, want *Error for TLSA bogus.test with SERVFAIL", err)
	}
	if got.Security != Bogus || len(got.Records) != 1 || got.Records[0].Usage != 3 || len(got.Records[0].Data) != 32 {
		t.Errorf("TLSA(bogus.test) = %+v, want the CD=1 record with Security bogus", got)
	}
	reqs := ts.requests()
	if len(reqs) != 2 || reqs[0].Msg.CheckingDisabled || !reqs[1].Msg.CheckingDisabled {
		t.Errorf("want a query without then with CD, got %d queries", len(reqs))
	}
}

func TestRcodeErrors(t *testing.T) {
	r, _ := newTestResolver(t)
	for _, tt := range []struct {
		name  string
		rcode int
	}{{"servfail.test", dns.RcodeServerFailure}, {"refused.test", dns.RcodeRefused}} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.TXT(t.Context(), tt.name)
			var e *Error
			if !errors.As(err, &e) || e.Rcode != tt.rcode || errors.Is(err, ErrBogus) {
				t.Fatalf("TXT(%q) error = %v, want *Error with rcode %s", tt.name, err, dns.RcodeToString[tt.rcode])
			}
			if len(got.Records) != 0 || got.Security != Insecure {
				t.Errorf("TXT(%q) = %+v, want empty", tt.name, got)
			}
			if !strings.Contains(err.Error(), dns.RcodeToString[tt.rcode]) {
				t.Errorf("error %q does not name the rcode", err)
			}
		})
	}
}

func TestCNAME(t *testing.T) {
	r, _ := newTestResolver(t)
	ctx := t.Context()
	got, err := r.TLSA(ctx, "_25._tcp.alias.test")
	if err != nil {
		t.Fatal(err)
	}
	want := Answer[TLSA]{Records: []TLSA{{2, 0, 1, []byte{0xaa, 0xbb, 0xcc}}}, Security: Secure, Canonical: "_25._tcp.target.test"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TLSA(alias) = %+v, want %+v", got, want)
	}
	if s := got.Records[0].String(); s != "2 0 1 aabbcc" {
		t.Errorf("TLSA.String() = %q", s)
	}

	dangling, err := r.TLSA(ctx, "dangling.test")
	if err != nil || !dangling.NXDomain || dangling.Canonical != "nowhere.test" {
		t.Errorf("TLSA(dangling.test) = %+v, %v; want NXDomain at nowhere.test", dangling, err)
	}

	eight, err := r.TXT(ctx, "eight.test")
	if err != nil || len(eight.Records) != 1 || eight.Canonical != "e8.eight.test" {
		t.Errorf("TXT(eight.test) = %+v, %v; want 8 links followed", eight, err)
	}
	for _, name := range []string{"c0.loop.test", "cycle.test"} {
		_, err := r.TXT(ctx, name)
		if err == nil || !strings.Contains(err.Error(), "CNAME chain") {
			t.Errorf("TXT(%q) error = %v, want a CNAME chain error", name, err)
		}
	}
}

func TestTXT(t *testing.T) {
	r, _ := newTestResolver(t)
	got, err := r.TXT(t.Context(), "txt.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"v=TLSRPTv1; rua=mailto:a@b", "quote\"back\\slash\ttab\xff"}
	if !reflect.DeepEqual(got.Records, want) {
		t.Errorf("TXT(txt.test) = %q, want %q", got.Records, want)
	}
}

func TestTruncationFallsBackToTCP(t *testing.T) {
	r, ts := newTestResolver(t)
	got, err := r.TXT(t.Context(), "big.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 40 {
		t.Errorf("TXT(big.test) gave %d records, want 40", len(got.Records))
	}
	reqs := ts.requests()
	if len(reqs) != 2 || reqs[0].Net != "udp" || reqs[1].Net != "tcp" {
		t.Errorf("queries = %v, want udp then tcp", reqs)
	}
}

func TestIPs(t *testing.T) {
	r, _ := newTestResolver(t)
	ctx := t.Context()
	got, err := r.IPs(ctx, "ip.test")
	want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	if err != nil || !reflect.DeepEqual(got.Records, want) || got.Security != Secure {
		t.Errorf("IPs(ip.test) = %+v, %v; want %v secure", got, err, want)
	}
	half, err := r.IPs(ctx, "halfinsecure.test")
	if err != nil || half.Security != Insecure || len(half.Records) != 1 {
		t.Errorf("IPs(halfinsecure.test) = %+v, %v; want one address, insecure", half, err)
	}
	bogus, err := r.IPs(ctx, "halfbogus.test")
	if !errors.Is(err, ErrBogus) || bogus.Security != Bogus || len(bogus.Records) != 2 {
		t.Errorf("IPs(halfbogus.test) = %+v, %v; want both addresses, bogus, ErrBogus", bogus, err)
	}
	nx, err := r.IPs(ctx, "nx.test")
	if err != nil || !nx.NXDomain {
		t.Errorf("IPs(nx.test) = %+v, %v; want NXDomain", nx, err)
	}
	if _, err := r.IPs(ctx, "servfail.test"); err == nil {
		t.Error("IPs(servfail.test): no error")
	}
}

func TestBadNames(t *testing.T) {
	r := &Resolver{Addr: "127.0.0.1:1"} // never reached
	for _, name := range []string{"", ".", "a..b", "a b.test", "x\x00.test", "*.test", strings.Repeat("a", 64) + ".test",
		strings.Repeat("abcdefghi.", 26) + "test", "bad\xff.test"} {
		_, err := r.MX(t.Context(), name)
		var e *Error
		if !errors.As(err, &e) || e.Rcode != -1 {
			t.Errorf("MX(%q) error = %v, want a name error", name, err)
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"Example.ORG":         "example.org.",
		"example.org.":        "example.org.",
		"_25._tcp.MX.example": "_25._tcp.mx.example.",
		"bücher.example":      "xn--bcher-kva.example.",
		"a-1.b_2.c":           "a-1.b_2.c.",
	} {
		got, err := normalize(in)
		if err != nil || got != want {
			t.Errorf("normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// rawServer answers each UDP query with the datagrams reply returns, in
// order; it counts the queries.
func rawServer(t *testing.T, reply func(q *dns.Msg, query []byte) [][]byte) (addr string, queries *atomic.Int32) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	queries = new(atomic.Int32)
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			queries.Add(1)
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			for _, d := range reply(q, append([]byte(nil), buf[:n]...)) {
				pc.WriteTo(d, from)
			}
		}
	}()
	return pc.LocalAddr().String(), queries
}

func goodReply(t *testing.T, q *dns.Msg) []byte {
	m := new(dns.Msg)
	m.SetReply(q)
	m.AuthenticatedData = true
	m.Answer = append(m.Answer, rr(t, q.Question[0].Name+" 60 IN TXT good"))
	p, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestForgedAndGarbageRepliesIgnored(t *testing.T) {
	addr, _ := rawServer(t, func(q *dns.Msg, query []byte) [][]byte {
		wrongID := q.Copy()
		wrongID.Id ^= 0xffff
		other := q.Copy()
		other.Question[0].Name = "evil.test."
		otherType := q.Copy()
		otherType.Question[0].Qtype = dns.TypeA
		notResponse := q.Copy() // QR clear: the query echoed back
		var out [][]byte
		out = append(out, []byte("garbage"), nil, query)
		for _, m := range []*dns.Msg{wrongID, other, otherType} {
			m.Response = true
			m.Answer = []dns.RR{rr(t, m.Question[0].Name+" 60 IN TXT forged")}
			p, _ := m.Pack()
			out = append(out, p)
		}
		p, _ := notResponse.Pack()
		out = append(out, p)
		return append(out, goodReply(t, q))
	})
	r := &Resolver{Addr: addr, Timeout: 2 * time.Second, Retries: -1}
	got, err := r.TXT(t.Context(), "ok.test")
	if err != nil || len(got.Records) != 1 || got.Records[0] != "good" || got.Security != Secure {
		t.Errorf("TXT(ok.test) = %+v, %v; want the genuine reply", got, err)
	}
}

func TestOversizedUDPReply(t *testing.T) {
	// A server that ignores the 1232-byte limit and sends a 20 kB datagram:
	// taken whole rather than cut and misparsed.
	addr, _ := rawServer(t, func(q *dns.Msg, _ []byte) [][]byte {
		m := new(dns.Msg)
		m.SetReply(q)
		for i := range 80 {
			m.Answer = append(m.Answer, rr(t, fmt.Sprintf(`%s 60 IN TXT "%03d%s"`, q.Question[0].Name, i, strings.Repeat("y", 240))))
		}
		p, err := m.Pack()
		if err != nil {
			t.Error(err)
		}
		return [][]byte{p}
	})
	r := &Resolver{Addr: addr, Timeout: 2 * time.Second}
	got, err := r.TXT(t.Context(), "large.test")
	if err != nil || len(got.Records) != 80 {
		t.Errorf("TXT(large.test) gave %d records, %v; want 80", len(got.Records), err)
	}
}

func TestTimeoutRetriesBounded(t *testing.T) {
	addr, queries := rawServer(t, func(*dns.Msg, []byte) [][]byte { return [][]byte{[]byte("\x00\x01junk")} })
	for _, tt := range []struct {
		retries, want int
	}{{0, 3}, {1, 2}, {-1, 1}} {
		queries.Store(0)
		r := &Resolver{Addr: addr, Timeout: 100 * time.Millisecond, Retries: tt.retries}
		start := time.Now()
		_, err := r.MX(t.Context(), "slow.test")
		elapsed := time.Since(start)
		var e *Error
		if !errors.As(err, &e) || !e.Timeout() || e.Rcode != -1 {
			t.Errorf("Retries %d: error = %v, want a timeout *Error", tt.retries, err)
		}
		if n := int(queries.Load()); n != tt.want {
			t.Errorf("Retries %d: %d queries, want %d", tt.retries, n, tt.want)
		}
		if max := time.Duration(tt.want)*100*time.Millisecond + time.Second; elapsed > max {
			t.Errorf("Retries %d: took %v, want under %v", tt.retries, elapsed, max)
		}
	}
}

func TestContextCancelEndsWait(t *testing.T) {
	addr, _ := rawServer(t, func(*dns.Msg, []byte) [][]byte { return nil })
	r := &Resolver{Addr: addr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.TLSA(ctx, "slow.test")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v after the context ended", d)
	}
}

func TestTCPGarbage(t *testing.T) {
	// UDP says truncated; TCP sends a length and fewer bytes, then closes.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Skip("TCP port taken:", err)
	}
	defer ln.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			m := new(dns.Msg)
			m.SetReply(q)
			m.Truncated = true
			p, _ := m.Pack()
			pc.WriteTo(p, from)
		}
	}()
	var tcpConns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tcpConns.Add(1)
			c.Write([]byte{0xff, 0xff, 1, 2, 3})
			c.Close()
		}
	}()
	r := &Resolver{Addr: pc.LocalAddr().String(), Timeout: time.Second, Retries: 1}
	_, err = r.TXT(t.Context(), "x.test")
	if err == nil || !strings.Contains(err.Error(), "TCP reply") {
		t.Errorf("error = %v, want a TCP read error", err)
	}
	if n := tcpConns.Load(); n != 2 {
		t.Errorf("%d TCP connections, want 2 (one per attempt)", n)
	}
}

func TestSecurityString(t *testing.T) {
	for s, want := range map[Security]string{Insecure: "insecure", Secure: "secure", Bogus: "bogus", 7: "Security(7)"} {
		if got := s.String(); got != want {
			t.Errorf("Security(%d).String() = %q, want %q", int(s), got, want)
		}
	}
	var zero Security
	if zero != Insecure {
		t.Error("zero Security is not Insecure")
	}
}

func TestTruncatedMidRecord(t *testing.T) {
	// UDP: a TC reply cut in the middle of its answer. TCP: the whole answer.
	full := func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.AuthenticatedData = true
		for i := range 10 {
			m.Answer = append(m.Answer, rr(t, fmt.Sprintf(`%s 60 IN TXT "%d%s"`, q.Question[0].Name, i, strings.Repeat("z", 200))))
		}
		return m
	}
	addr, _ := rawServer(t, func(q *dns.Msg, _ []byte) [][]byte {
		m := full(q)
		m.Truncated = true
		p, err := m.Pack()
		if err != nil {
			t.Error(err)
		}
		return [][]byte{p[:700]}
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skip("TCP port taken:", err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { w.WriteMsg(full(q)) })}
	go srv.ActivateAndServe()
	defer srv.Shutdown()
	r := &Resolver{Addr: addr, Timeout: 2 * time.Second, Retries: -1}
	got, err := r.TXT(t.Context(), "cut.test")
	if err != nil || len(got.Records) != 10 || got.Security != Secure {
		t.Errorf("TXT(cut.test) = %d records, %v, %v; want 10 over TCP, secure", len(got.Records), got.Security, err)
	}
}

func TestDefaultServerFromResolvConf(t *testing.T) {
	old := resolvConf
	defer func() { resolvConf = old }()
	dir := t.TempDir()
	for _, tt := range []struct{ conf, want, err string }{
		{"# comment\nsearch example\nnameserver 127.0.0.53\nnameserver 192.0.2.1\n", "127.0.0.53:53", ""},
		{"nameserver ::1\n", "[::1]:53", ""},
		{"search example\n", "", "no nameserver"},
	} {
		resolvConf = dir + "/resolv.conf"
		if err := os.WriteFile(resolvConf, []byte(tt.conf), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := (&Resolver{}).server()
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("server() with %q = %q, %v; want %q, %q", tt.conf, got, err, tt.want, tt.err)
		}
	}
	resolvConf = dir + "/missing"
	var nilResolver *Resolver
	for _, r := range []*Resolver{{}, nilResolver} {
		_, err := r.MX(t.Context(), "example.org")
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), "no resolver address") {
			t.Errorf("MX with no resolv.conf: error = %v", err)
		}
	}
}
