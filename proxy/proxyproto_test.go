package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func tcpAddr(s string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

func TestProxyHeaderRoundTrip(t *testing.T) {
	cases := []struct{ src, dst string }{
		{"192.0.2.1:56324", "198.51.100.7:443"},
		{"[2001:db8::1]:1", "[2001:db8::2]:65535"},
	}
	for _, c := range cases {
		for _, v := range []int{1, 2} {
			hdr := proxyHeader(v, tcpAddr(c.src), tcpAddr(c.dst))
			r := bytes.NewReader(append(hdr, "rest"...))
			got, err := readProxyHeader(r)
			if err != nil {
				t.Fatalf("v%d %s: %v", v, c.src, err)
			}
			if got.Src.String() != c.src || got.Dst.String() != c.dst {
				t.Errorf("v%d: got %v → %v, want %s → %s", v, got.Src, got.Dst, c.src, c.dst)
			}
			if rest, _ := io.ReadAll(r); string(rest) != "rest" {
				t.Errorf("v%d: the header consumed %q of what followed", v, "rest"[:4-len(rest)])
			}
		}
	}
	// Mixed families: UNKNOWN / LOCAL, which keep the connection's own addresses.
	for _, v := range []int{1, 2} {
		got, err := readProxyHeader(bytes.NewReader(proxyHeader(v, tcpAddr("192.0.2.1:1"), tcpAddr("[2001:db8::2]:2"))))
		if err != nil || got.Src != nil {
			t.Errorf("v%d mixed: %+v, %v; want no addresses", v, got, err)
		}
	}
}

func TestProxyHeaderRejects(t *testing.T) {
	bad := map[string]string{
		"not proxy":       "GET / HTTP/1.1\r\n",
		"v1 no CRLF":      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
		"v1 too long":     "PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n",
		"v1 bad ip":       "PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",
		"v1 family":       "PROXY TCP4 ::1 ::1 1 2\r\n",
		"v1 port":         "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
		"v1 leading zero": "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
		"v1 fields":       "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
		"v2 signature":    "\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c",
		"v2 version":      "\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x00",
		"v2 short addrs":  "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04abcd",
		"v2 too long":     "\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",
		"v2 truncated":    "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x01",
		"empty":           "",
	}
	for name, in := range bad {
		if _, err := readProxyHeader(strings.NewReader(in)); !errors.Is(err, errProxyHeader) {
			t.Errorf("%s: err = %v, want errProxyHeader", name, err)
		}
	}
}

func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyHeader(2, tcpAddr("[2001:db8::1]:1"), tcpAddr("[2001:db8::2]:2")))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := readProxyHeader(r)
		used := len(in) - r.Len()
		if used > 16+maxV2Len || (in[0:1] != nil && len(in) > 0 && in[0] == 'P' && used > maxV1Len) {
			t.Fatalf("consumed %d bytes", used)
		}
		if err != nil || h.Src == nil {
			return
		}
		// What parsed renders to a header that parses to the same.
		for _, v := range []int{1, 2} {
			h2, err := readProxyHeader(bytes.NewReader(proxyHeader(v, h.Src, h.Dst)))
			if err != nil {
				t.Fatalf("v%d of %v → %v: %v", v, h.Src, h.Dst, err)
			}
			if h2.Src != nil && (h2.Src.String() != h.Src.String() || h2.Dst.String() != h.Dst.String()) {
				t.Fatalf("v%d: %v → %v became %v → %v", v, h.Src, h.Dst, h2.Src, h2.Dst)
			}
		}
	})
}

// TestProxyProtocolThrough: a balancer's v1 header in, a v2 header with the
// same client address out to the backend, then the stream unchanged.
func TestProxyProtocolThrough(t *testing.T) {
	l := listen(t)
	got := make(chan proxyInfo, 1)
	data := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		h, err := readProxyHeader(c)
		if err != nil {
			t.Error(err)
		}
		got <- h
		b, _ := io.ReadAll(c)
		data <- string(b)
	}()
	cfg := tcpTLS(l.Addr().String())
	cfg.AcceptProxy = true
	cfg.SendProxy = 2
	addr, _ := startProxy(t, cfg, nil)
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write([]byte("PROXY TCP4 203.0.113.9 198.51.100.1 40000 465\r\n"))
	cfg2 := clientTLS.Clone()
	cfg2.ServerName = "localhost"
	c := tls.Client(raw, cfg2)
	if _, err := c.Write([]byte("payload")); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	select {
	case h := <-got:
		if h.Src.String() != "203.0.113.9:40000" || h.Dst.String() != "198.51.100.1:465" {
			t.Errorf("backend got %v → %v", h.Src, h.Dst)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no header at the backend")
	}
	if d := <-data; d != "payload" {
		t.Errorf("backend got %q after the header", d)
	}
}

func TestProxyProtocolRequired(t *testing.T) {
	cfg := tcpTLS(echoBackend(t))
	cfg.AcceptProxy = true
	m := NewMetrics()
	addr, s := startProxy(t, cfg, m)
	c, err := tls.Dial("tcp", addr, clientTLS)
	if err == nil {
		c.Close()
		t.Fatal("a TLS handshake without the PROXY header succeeded")
	}
	waitFor(t, func() bool {
		return m.Get(`starttls_proxy_handshake_failures_total{`+s.labels+`,reason="proxy_header"}`) == 1
	})
}
