package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/internal/dnstest"
	"github.com/starttls/starttls/resolver"
)

const goodPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mx.good.test\r\nmx: *.good.test\r\nmax_age: 86400\r\n"

// lab is a DNS server and an HTTPS policy host on loopback, serving each
// domain's policy with its own handler.
type lab struct {
	dns      *dnstest.Server
	fetcher  *Fetcher
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc // by domain
	hits     map[string]int
}

func newLab(t *testing.T, domains ...string) *lab {
	t.Helper()
	ca, err := certs.NewCA("mtasts test CA")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range domains {
		names = append(names, "mta-sts."+d)
	}
	cert, err := ca.Issue(certs.Leaf{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{handlers: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.Host)
		d := strings.TrimPrefix(host, "mta-sts.")
		l.mu.Lock()
		h := l.handlers[d]
		l.hits[d]++
		l.mu.Unlock()
		if r.URL.Path != "/.well-known/mta-sts.txt" || h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	l.dns = dnstest.Start(t)
	for _, d := range append(domains, "badcert.test") {
		l.dns.Add(t, "mta-sts."+d+". 60 IN A 127.0.0.1")
	}
	l.fetcher = &Fetcher{Resolver: &resolver.Resolver{Addr: l.dns.Addr, Timeout: time.Second}, Roots: ca.Pool(), Port: p, Timeout: 5 * time.Second}
	return l
}

func (l *lab) serve(domain, contentType, body string) {
	l.handle(domain, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		fmt.Fprint(w, body)
	})
}

func (l *lab) handle(domain string, h http.HandlerFunc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handlers[domain] = h
}

func (l *lab) hitsOf(domain string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hits[domain]
}

func TestFetchPolicy(t *testing.T) {
	l := newLab(t, "good.test", "redirect.test", "large.test", "limit.test", "html.test", "missing.test", "maxage.test", "streamed.test")
	l.serve("good.test", "text/plain; charset=utf-8", goodPolicy)
	l.handle("redirect.test", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://mta-sts.good.test/.well-known/mta-sts.txt", http.StatusFound)
	})
	l.serve("large.test", "text/plain", goodPolicy+strings.Repeat("\n", MaxPolicySize))
	l.serve("limit.test", "text/plain", goodPolicy+strings.Repeat("\n", MaxPolicySize-len(goodPolicy)))
	l.handle("streamed.test", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.(http.Flusher).Flush() // no Content-Length: the limit must hold while reading
		for range 70 {
			w.Write([]byte(strings.Repeat("\n", 1024)))
		}
	})
	l.serve("html.test", "text/html", goodPolicy)
	l.serve("maxage.test", "text/plain", "version: STSv1\nmode: enforce\nmx: mx.maxage.test\nmax_age: 31557601\n")
	tests := []struct {
		domain string
		want   error
	}{
		{"good.test", nil},
		{"GOOD.test.", nil},
		{"limit.test", nil},
		{"redirect.test", ErrRedirect},
		{"large.test", ErrTooLarge},
		{"streamed.test", ErrTooLarge},
		{"html.test", ErrMediaType},
		{"missing.test", ErrHTTPStatus},
		{"maxage.test", ErrInvalidPolicy},
		{"badcert.test", ErrCertificate},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			body, p, err := l.fetcher.FetchPolicy(context.Background(), tc.domain)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("FetchPolicy(%s) = %v, want %v", tc.domain, err, tc.want)
			}
			if tc.want == nil && (p.Mode != ModeEnforce || !p.Match("mx.good.test") || !strings.HasPrefix(body, "version: STSv1")) {
				t.Fatalf("FetchPolicy(%s) = %q, %+v", tc.domain, body, p)
			}
			if errors.Is(tc.want, ErrInvalidPolicy) && body == "" {
				t.Fatalf("FetchPolicy(%s): the body of an invalid policy is not returned", tc.domain)
			}
		})
	}
	if n := l.hitsOf("good.test"); n != 2 {
		t.Errorf("the redirect was followed, or good.test was fetched %d times, want 2", n)
	}
}

// TestFetchUsesResolver: with a Resolver, a name only it knows is found and
// one it does not know is not looked up elsewhere.
func TestFetchUsesResolver(t *testing.T) {
	l := newLab(t, "good.test")
	l.serve("good.test", "text/plain", goodPolicy)
	before := l.dns.Queries()
	if _, _, err := l.fetcher.FetchPolicy(context.Background(), "good.test"); err != nil {
		t.Fatal(err)
	}
	if l.dns.Queries() == before {
		t.Fatal("the policy host was not resolved through the Resolver")
	}
	l.dns.Remove("mta-sts.good.test", "A")
	if _, _, err := l.fetcher.FetchPolicy(context.Background(), "good.test"); err == nil || !strings.Contains(err.Error(), "no address") {
		t.Fatalf("FetchPolicy without an A record = %v, want 'no address'", err)
	}
}

func TestFetchTimeout(t *testing.T) {
	l := newLab(t, "slow.test")
	release := make(chan struct{})
	defer close(release)
	l.handle("slow.test", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	l.fetcher.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, _, err := l.fetcher.FetchPolicy(context.Background(), "slow.test")
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("FetchPolicy of a silent host = %v after %v, want a timeout error within the limit", err, time.Since(start))
	}
}

func TestLookupRecord(t *testing.T) {
	l := newLab(t)
	l.dns.Add(t, `_mta-sts.one.test. 60 IN TXT "v=STSv1; id=" "20260101"`,
		`_mta-sts.two.test. 60 IN TXT "v=STSv1; id=1"`, `_mta-sts.two.test. 60 IN TXT "v=STSv1; id=2"`,
		`_mta-sts.bad.test. 60 IN TXT "v=STSv1; id=not valid"`,
		`_mta-sts.other.test. 60 IN TXT "v=spf1 -all"`)
	tests := []struct {
		domain, id string
		want       error
	}{
		{"one.test", "20260101", nil},
		{"two.test", "", ErrDuplicateRecord},
		{"bad.test", "", ErrInvalidRecord},
		{"other.test", "", ErrNoRecord},
		{"nxdomain.test", "", ErrNoRecord},
	}
	for _, tc := range tests {
		_, rec, err := l.fetcher.LookupRecord(context.Background(), tc.domain)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) || (err == nil && rec.ID != tc.id) {
			t.Errorf("LookupRecord(%s) = %+v, %v; want id %q, %v", tc.domain, rec, err, tc.id, tc.want)
		}
	}
	if _, _, err := l.fetcher.LookupRecord(context.Background(), "bad name"); err == nil {
		t.Error("LookupRecord accepted a name with a space")
	}
}

func TestCache(t *testing.T) {
	l := newLab(t, "good.test")
	l.serve("good.test", "text/plain", goodPolicy)
	l.dns.Add(t, `_mta-sts.good.test. 60 IN TXT "v=STSv1; id=1"`)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Cache{Fetcher: l.fetcher, Now: func() time.Time { return now }}
	ctx := context.Background()
	get := func(step string) *Entry {
		t.Helper()
		e, err := c.Get(ctx, "good.test")
		if err != nil {
			t.Fatalf("%s: Get = %v", step, err)
		}
		return e
	}
	if e := get("first use"); e.Cached || e.ID != "1" || l.hitsOf("good.test") != 1 {
		t.Fatalf("first use: %+v, %d fetches", e, l.hitsOf("good.test"))
	}
	if e := get("same id"); !e.Cached || l.hitsOf("good.test") != 1 {
		t.Fatalf("same id: %+v, %d fetches, want the cached policy and no fetch", e, l.hitsOf("good.test"))
	}
	// A new id makes the sender fetch again (§3.1).
	l.dns.Remove("_mta-sts.good.test", "TXT")
	l.dns.Add(t, `_mta-sts.good.test. 60 IN TXT "v=STSv1; id=2"`)
	l.serve("good.test", "text/plain", strings.Replace(goodPolicy, "enforce", "testing", 1))
	if e := get("new id"); e.Cached || e.ID != "2" || e.Policy.Mode != ModeTesting {
		t.Fatalf("new id: %+v", e)
	}
	// The record vanishes (an attacker drops it): the cached policy holds.
	l.dns.Remove("_mta-sts.good.test", "TXT")
	if e := get("record gone"); !e.Cached || !errors.Is(e.RefreshErr, ErrNoRecord) || e.Policy.Mode != ModeTesting {
		t.Fatalf("record gone: %+v", e)
	}
	// A new id but the policy host fails: the cached policy holds.
	l.dns.Add(t, `_mta-sts.good.test. 60 IN TXT "v=STSv1; id=3"`)
	l.handle("good.test", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 500) })
	if e := get("host down"); !e.Cached || !errors.Is(e.RefreshErr, ErrHTTPStatus) || e.ID != "2" {
		t.Fatalf("host down: %+v", e)
	}
	// Past max_age the cached policy is gone.
	now = now.Add(86400 * time.Second)
	if e, err := c.Get(ctx, "good.test"); e != nil || !errors.Is(err, ErrHTTPStatus) {
		t.Fatalf("expired: Get = %+v, %v; want no policy and the fetch error", e, err)
	}
	l.dns.Remove("_mta-sts.good.test", "TXT")
	if e, err := c.Get(ctx, "good.test"); e != nil || !errors.Is(err, ErrNoRecord) {
		t.Fatalf("no record, nothing cached: Get = %+v, %v", e, err)
	}
}
