// Package dnstest is an in-memory DNS server on loopback for tests: records
// in zone-file syntax, names marked DNSSEC-secure (answered with the AD bit,
// as a validating resolver would) or bogus (SERVFAIL, and the data when the
// query sets CD, as a validating resolver does). It follows CNAMEs inside
// its own data. It speaks UDP and TCP on the same port.
package dnstest

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a running test DNS server.
type Server struct {
	// Addr is the HOST:PORT to give a resolver.Resolver.
	Addr string

	mu      sync.Mutex
	rrs     []dns.RR
	secure  []string // suffixes answered with AD
	bogus   map[string]bool
	queries int
	udp     *dns.Server
	tcp     *dns.Server
}

// Start starts a server on 127.0.0.1 with the records given in zone-file
// syntax ("mx.example. 300 IN A 127.0.0.1") and stops it when the test
// ends.
func Start(t testing.TB, records ...string) *Server {
	t.Helper()
	s := &Server{bogus: map[string]bool{}}
	s.Add(t, records...)
	var pc net.PacketConn
	var l net.Listener
	var err error
	for range 10 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: l, Handler: h}
	var started sync.WaitGroup
	started.Add(2)
	s.udp.NotifyStartedFunc = started.Done
	s.tcp.NotifyStartedFunc = started.Done
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	started.Wait()
	t.Cleanup(func() {
		s.udp.Shutdown()
		s.tcp.Shutdown()
	})
	return s
}

// Add adds records in zone-file syntax.
func (s *Server) Add(t testing.TB, records ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("dnstest: %q: %v", r, err)
		}
		s.rrs = append(s.rrs, rr)
	}
}

// Remove deletes every record of name and type (e.g. "TXT").
func (s *Server) Remove(name, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = dns.Fqdn(strings.ToLower(name))
	qt := dns.StringToType[typ]
	s.rrs = slices.DeleteFunc(s.rrs, func(rr dns.RR) bool {
		return strings.EqualFold(rr.Header().Name, name) && rr.Header().Rrtype == qt
	})
}

// Secure marks every name at or under suffix as DNSSEC-validated.
func (s *Server) Secure(suffix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secure = append(s.secure, dns.Fqdn(strings.ToLower(suffix)))
}

// Bogus makes lookups of name fail validation: SERVFAIL, or the data with
// CD set.
func (s *Server) Bogus(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bogus[dns.Fqdn(strings.ToLower(name))] = true
}

// Queries returns how many questions the server has answered.
func (s *Server) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

func (s *Server) serve(w dns.ResponseWriter, q *dns.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries++
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	qn := strings.ToLower(q.Question[0].Name)
	qt := q.Question[0].Qtype
	secure := true
	name := qn
	exists := false
	for range 8 {
		if s.bogus[name] && !q.CheckingDisabled {
			m.Rcode = dns.RcodeServerFailure
			m.Answer = nil
			w.WriteMsg(m)
			return
		}
		secure = secure && s.isSecure(name)
		var cname dns.RR
		found := false
		for _, rr := range s.rrs {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			exists = true
			switch {
			case h.Rrtype == qt:
				m.Answer = append(m.Answer, dns.Copy(rr))
				found = true
			case h.Rrtype == dns.TypeCNAME:
				cname = rr
			}
		}
		if found || cname == nil {
			break
		}
		m.Answer = append(m.Answer, dns.Copy(cname))
		name = strings.ToLower(cname.(*dns.CNAME).Target)
		exists = false
	}
	if !exists && len(m.Answer) == 0 || !exists && name != qn {
		m.Rcode = dns.RcodeNameError
	}
	if e := q.IsEdns0(); e != nil {
		m.SetEdns0(1232, e.Do())
	}
	m.AuthenticatedData = secure && !q.CheckingDisabled
	w.WriteMsg(m)
}

func (s *Server) isSecure(name string) bool {
	for _, suf := range s.secure {
		if name == suf || strings.HasSuffix(name, "."+suf) {
			return true
		}
	}
	return false
}
