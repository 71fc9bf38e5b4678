package httpupgrade

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411: a request
// pipelined after the upgrade request (SV-06, SV-26) is never answered
// inside TLS: the server sends 101 and closes.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	addr := startServer(t, newServer(t))
	c := linetest.Dial(t, addr)
	c.Write(upgradeReq + "GET /private HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if h := readHead(c.Reader()); !strings.HasPrefix(h, "HTTP/1.1 101 ") {
		t.Fatalf("answer %q, want 101", h)
	}
	if !eof(c) {
		t.Fatal("the server kept the connection open after a pipelined request")
	}
}

// TestServerInsecureKeepPipelined: the lab knob really reproduces the bug,
// and the client probe reports it; the default server is reported safe.
func TestServerInsecureKeepPipelined(t *testing.T) {
	vuln := newServer(t)
	vuln.InsecureKeepPipelined = true
	for _, tt := range []struct {
		name       string
		srv        *Server
		vulnerable bool
	}{{"insecure", vuln, true}, {"default", newServer(t), false}} {
		t.Run(tt.name, func(t *testing.T) {
			addr := startServer(t, tt.srv)
			o := clientOpts(t, starttls.ModeRequired)
			o.ProbeInjection = true
			o.InjectionWait = 300 * time.Millisecond
			c, res, err := Dial(linetest.Ctx(t), addr, o)
			if c != nil {
				c.Close()
			}
			p := res.Injection
			if p == nil || p.Vulnerable != tt.vulnerable {
				t.Fatalf("probe %+v, err %v, want vulnerable %v", p, err, tt.vulnerable)
			}
			if tt.vulnerable && (err != nil || !strings.HasPrefix(p.Reply, "HTTP/1.1 200")) {
				t.Errorf("vulnerable: err %v reply %q", err, p.Reply)
			}
			if !tt.vulnerable && !p.Closed {
				t.Errorf("default server: probe %+v, want Closed", p)
			}
		})
	}
}

// TestClientRejectsResponseInjection: bytes after the 101 header block,
// complete or partial lines, fail the upgrade (CL-36).
func TestClientRejectsResponseInjection(t *testing.T) {
	for _, extra := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK", // partial line
		"x",
	} {
		t.Run(extra, func(t *testing.T) {
			addr, got := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
				readHead(r)
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n" + extra))
			})
			_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) || string(res.PlaintextAfterUpgrade) != extra {
				t.Fatalf("err %v, PlaintextAfterUpgrade %q", err, res.PlaintextAfterUpgrade)
			}
			if s := <-got; s != upgradeReqFor(addr) {
				t.Errorf("client sent %q after the injection", s)
			}
		})
	}
}

// TestRequiredNeverFallsBack: not offered, refused, handshake failure,
// silence, a 101 without TLS: an error, and nothing sent after the upgrade
// request.
func TestRequiredNeverFallsBack(t *testing.T) {
	badTLS := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("no cert") }}
	tests := []struct {
		name   string
		answer string // "" = silence; "TLS" = 101 then a failing handshake
		want   error
	}{
		{"200", "HTTP/1.1 200 OK\r\nAllow: GET\r\nContent-Length: 0\r\n\r\n", starttls.ErrUpgradeNotOffered},
		{"405", "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n", starttls.ErrUpgradeNotOffered},
		{"501", "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n", starttls.ErrUpgradeNotOffered},
		{"503", "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n", starttls.ErrUpgradeRefused},
		{"101 without TLS", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", starttls.ErrProtocol},
		{"handshake failure", "TLS", nil},
		{"silence", "", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, got := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
				readHead(r)
				switch tt.answer {
				case "":
					time.Sleep(700 * time.Millisecond)
				case "TLS":
					c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n"))
					tls.Server(c, badTLS).Handshake()
				default:
					c.Write([]byte(tt.answer))
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			o := clientOpts(t, starttls.ModeRequired)
			c, res, err := Dial(ctx, addr, o)
			if err == nil || c != nil || res.Upgraded {
				t.Fatalf("Dial succeeded: %v", err)
			}
			var he *starttls.HandshakeError
			if tt.want != nil && !errors.Is(err, tt.want) || tt.want == nil && !errors.As(err, &he) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if s := <-got; tt.answer != "TLS" && s != upgradeReqFor(addr) {
				t.Errorf("client sent %q", s)
			}
		})
	}
}

// TestNoCredentialsBeforeTLS: Login refuses plaintext unless ModePlain;
// the server refuses Basic credentials without TLS unless
// AllowPlaintextLogin.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	plain := &Server{Backend: memBackend{}}
	addr := startServer(t, plain)
	c, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(linetest.Ctx(t), "alice", "secret pw"); !errors.Is(err, starttls.ErrFallbackForbidden) {
		t.Fatalf("opportunistic Login without TLS: %v", err)
	}
	c.Close()

	// ModePlain sends them; the server refuses them without TLS.
	c, _, err = Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	var he *Error
	if err := c.Login(linetest.Ctx(t), "alice", "secret pw"); !errors.As(err, &he) || he.Code != 403 {
		t.Fatalf("plain Login against a server without AllowPlaintextLogin: %v", err)
	}
	c.Close()

	allow := &Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: true}, Backend: memBackend{}}
	c, _, err = Dial(linetest.Ctx(t), startServer(t, allow), clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(linetest.Ctx(t), "alice", "secret pw"); err != nil {
		t.Fatalf("plain Login with AllowPlaintextLogin: %v", err)
	}
	if code, body, err := c.Get(linetest.Ctx(t), "/private"); code != 200 || string(body) != "Welcome alice\n" {
		t.Fatalf("GET /private = %d %q %v", code, body, err)
	}
}

// TestLineTooLong: a long status or header line fails the client with
// ErrLineTooLong; the server answers 414/431 and closes; too many headers
// are cut off (PR-23).
func TestLineTooLong(t *testing.T) {
	long := strings.Repeat("a", 5000)
	for _, ans := range []string{
		"HTTP/1.1 200 " + long + "\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nX: " + long + "\r\n\r\n",
	} {
		addr, _ := fakeServer(t, func(c net.Conn, r *bufio.Reader) { readHead(r); c.Write([]byte(ans)) })
		if _, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired)); !errors.Is(err, starttls.ErrLineTooLong) {
			t.Errorf("client: %v, want ErrLineTooLong", err)
		}
	}
	addr, _ := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		readHead(r)
		c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\n" + strings.Repeat("X-A: b\r\n", 100000)))
	})
	if _, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired)); !errors.Is(err, starttls.ErrProtocol) || !strings.Contains(err.Error(), "header lines") {
		t.Errorf("100000 header lines: %v", err)
	}

	srvAddr := startServer(t, newServer(t))
	for _, tt := range []struct{ req, want string }{
		{"GET /" + long + " HTTP/1.1\r\n", "HTTP/1.1 414 "},
		{"GET / HTTP/1.1\r\nHost: x\r\nX: " + long + "\r\n\r\n", "HTTP/1.1 431 "},
		{"GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", MaxHeaders+1) + "\r\n", "HTTP/1.1 400 "},
	} {
		c := linetest.Dial(t, srvAddr)
		c.Write(tt.req)
		if h := readHead(c.Reader()); !strings.HasPrefix(h, tt.want) || !eof(c) {
			t.Errorf("server answered %q, want %q and close", h, tt.want)
		}
	}
}

// TestTLSClientHelloOnPlaintextPort: a ClientHello on the upgrade port gets
// a clear 400 and a close; an https client sees the error at once.
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	addr := startServer(t, newServer(t))
	start := time.Now()
	_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeImplicit))
	if err == nil {
		t.Fatalf("implicit client against the plaintext port: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	c := linetest.Dial(t, addr)
	c.Write("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
	if h := readHead(c.Reader()); !strings.HasPrefix(h, "HTTP/1.1 400 ") || !eof(c) {
		t.Fatalf("answer %q, want 400 and close", h)
	}
}

// TestCapabilitiesRereadAfterTLS: the client keeps only what it read over
// TLS; headers before TLS do not survive.
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	st, _ := linetest.TLSPair(t)
	addr, _ := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		readHead(r)
		c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\nServer: injected-before\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n"))
		tc := tls.Server(c, st)
		if tc.Handshake() != nil {
			return
		}
		tc.Write([]byte("HTTP/1.1 200 OK\r\nAllow: GET\r\nContent-Length: 0\r\n\r\n"))
		readHead(bufio.NewReader(tc))
		tc.Write([]byte("HTTP/1.1 200 OK\r\nServer: after\r\nWWW-Authenticate: Bearer, Digest realm=\"a, b\", nonce=\"x\"\r\nContent-Length: 0\r\n\r\n"))
		tc.Close()
	})
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !res.CapsReread || strings.Join(res.CapsAfter, "|") != "Server: after|Allow: GET" {
		t.Errorf("CapsAfter %q", res.CapsAfter)
	}
	if strings.Join(res.AuthBefore, ",") != "BASIC" || strings.Join(res.AuthAfter, ",") != "BEARER,DIGEST" {
		t.Errorf("AuthBefore %v AuthAfter %v", res.AuthBefore, res.AuthAfter)
	}
}

// TestServerReadsWholeRequestBefore101_SV26: a body on the upgrade request
// is read before the 101, and the connection goes on over TLS.
func TestServerReadsWholeRequestBefore101_SV26(t *testing.T) {
	addr := startServer(t, newServer(t))
	_, ct := linetest.TLSPair(t)
	c := linetest.Dial(t, addr)
	c.Write("OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\nContent-Length: 5\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Write("hello")
	if h := readHead(c.Reader()); !strings.HasPrefix(h, "HTTP/1.1 101 ") {
		t.Fatalf("answer %q", h)
	}
	cfg := ct.Clone()
	cfg.ServerName = "127.0.0.1"
	tc := tls.Client(c.Conn(), cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(tc)
	if h := readHead(r); !strings.HasPrefix(h, "HTTP/1.1 200 OK") || !strings.Contains(h, "Allow: ") || strings.Contains(h, "Upgrade") {
		t.Fatalf("answer over TLS %q", h)
	}
	// A second upgrade over TLS is ignored (refused).
	tc.Write([]byte(strings.Replace(upgradeReq, "OPTIONS *", "HEAD /", 1)))
	if h := readHead(r); !strings.HasPrefix(h, "HTTP/1.1 200 OK") {
		t.Fatalf("second upgrade: %q", h)
	}
	// Transfer-Encoding is refused.
	c2 := linetest.Dial(t, addr)
	c2.Write("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	if h := readHead(c2.Reader()); !strings.HasPrefix(h, "HTTP/1.1 501 ") {
		t.Fatalf("chunked: %q", h)
	}
}
