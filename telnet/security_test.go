package telnet

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// rawNegotiate runs the plaintext START_TLS exchange by hand up to the
// server's FOLLOWS.
func rawNegotiate(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	raw := linetest.Dial(t, addr)
	c, r := raw.Conn(), raw.Reader()
	if got := string(readN(r, 3)); got != doStartTLS {
		t.Fatalf("server sent %q, want IAC DO START_TLS", got)
	}
	c.Write([]byte(willStartTLS))
	if got := string(readN(r, 6)); got != followsMsg {
		t.Fatalf("server sent %q, want FOLLOWS", got)
	}
	return c, r
}

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411: bytes pipelined
// after the client's FOLLOWS are never processed inside TLS.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	t.Parallel()
	addr := startServer(t, newServer(t))
	c, r := rawNegotiate(t, addr)
	c.Write([]byte(followsMsg + "alice\r\n"))
	if !eof(c, r) {
		t.Fatal("the server kept the connection open after pipelined plaintext")
	}
}

// TestServerInsecureKeepPipelined: the lab knob reproduces the bug and the
// client's probe sees it; the default server is reported safe.
func TestServerInsecureKeepPipelined(t *testing.T) {
	t.Parallel()
	vuln := newServer(t)
	vuln.InsecureKeepPipelined = true
	for _, tt := range []struct {
		name       string
		srv        *Server
		vulnerable bool
	}{{"insecure", vuln, true}, {"default", newServer(t), false}} {
		t.Run(tt.name, func(t *testing.T) {
			o := clientOpts(t, starttls.ModeRequired)
			o.ProbeInjection = true
			c, res, err := Dial(linetest.Ctx(t), startServer(t, tt.srv), o)
			if c != nil {
				c.Close()
			}
			p := res.Injection
			if p == nil || p.Vulnerable != tt.vulnerable || !tt.vulnerable && !p.Closed {
				t.Fatalf("probe %+v, err %v, want vulnerable %v", p, err, tt.vulnerable)
			}
			if tt.vulnerable && (err != nil || p.Reply != "IAC WONT TIMING-MARK" || !res.CapsReread) {
				t.Errorf("err %v reply %q", err, p.Reply)
			}
		})
	}
}

// TestClientRejectsResponseInjection: anything after the server's FOLLOWS
// (a whole line or a partial one) fails the upgrade, and the client does
// not send its FOLLOWS.
func TestClientRejectsResponseInjection(t *testing.T) {
	t.Parallel()
	for _, extra := range []string{"login: ", "Welcome\r\n", "\xff\xfd\x01"} {
		t.Run(extra, func(t *testing.T) {
			addr, got := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
				c.Write([]byte(doStartTLS))
				readN(r, 3)
				c.Write([]byte(followsMsg + extra))
			})
			_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) || string(res.PlaintextAfterUpgrade) != extra {
				t.Fatalf("err %v, PlaintextAfterUpgrade %q", err, res.PlaintextAfterUpgrade)
			}
			if b := <-got; string(b) != willStartTLS {
				t.Errorf("client sent %q", b)
			}
		})
	}
}

// TestRequiredNeverFallsBack: not offered, refused, handshake failure,
// silence: an error, and nothing more sent.
func TestRequiredNeverFallsBack(t *testing.T) {
	t.Parallel()
	badTLS := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("no cert") }}
	tests := []struct {
		name   string
		script func(c net.Conn, r *bufio.Reader)
		sent   string
		want   error
	}{
		{"not offered", func(c net.Conn, r *bufio.Reader) { c.Write([]byte("Debian GNU/Linux\r\nlogin: ")) }, "", starttls.ErrUpgradeNotOffered},
		{"refused", func(c net.Conn, r *bufio.Reader) {
			c.Write([]byte(doStartTLS))
			readN(r, 3)
			c.Write(neg(cmdDONT, OptStartTLS))
		}, willStartTLS, starttls.ErrUpgradeRefused},
		{"refused with WONT", func(c net.Conn, r *bufio.Reader) {
			c.Write([]byte(doStartTLS))
			readN(r, 3)
			c.Write(neg(cmdWONT, OptStartTLS))
		}, willStartTLS, starttls.ErrUpgradeRefused},
		{"handshake failure", func(c net.Conn, r *bufio.Reader) {
			c.Write([]byte(doStartTLS))
			readN(r, 3)
			c.Write([]byte(followsMsg))
			readN(r, 6)
			tls.Server(&prefixConn{Conn: c, r: r}, badTLS).Handshake()
		}, "", nil},
		{"silent after WILL", func(c net.Conn, r *bufio.Reader) {
			c.Write([]byte(doStartTLS))
			readN(r, 3)
			time.Sleep(time.Second)
		}, willStartTLS, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, got := fakeServer(t, tt.script)
			ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
			defer cancel()
			c, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
			if err == nil || c != nil || res.Upgraded {
				t.Fatalf("Dial succeeded: %v", err)
			}
			var he *starttls.HandshakeError
			if tt.want != nil && !errors.Is(err, tt.want) || tt.want == nil && !errors.As(err, &he) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if b := <-got; tt.want != nil && string(b) != tt.sent {
				t.Errorf("client sent %q, want %q", b, tt.sent)
			}
		})
	}
}

// TestNoCredentialsBeforeTLS: Login refuses plaintext unless ModePlain; the
// server refuses plaintext login unless AllowPlaintextLogin.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	t.Parallel()
	open := &Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: true}, Backend: memBackend{}}
	addr := startServer(t, open)
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(linetest.Ctx(t), "alice", "secret pw"); !errors.Is(err, starttls.ErrFallbackForbidden) {
		t.Fatalf("opportunistic Login without TLS: %v", err)
	}
	c.Close()
	if !slices.Equal(res.AuthBefore, []string{"LOGIN"}) {
		t.Errorf("AuthBefore %v, want [LOGIN]", res.AuthBefore)
	}
	c, _, err = Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(linetest.Ctx(t), "alice", "secret pw"); err != nil {
		t.Fatalf("plain Login with AllowPlaintextLogin: %v", err)
	}
	c.Close()

	// The default server prompts for nothing before TLS and refuses text.
	strict := startServer(t, newServer(t))
	strictRaw := linetest.Dial(t, strict)
	raw, r := strictRaw.Conn(), strictRaw.Reader()
	readN(r, 3)
	raw.Write([]byte("alice\r\n"))
	if s := readUntil(r, "first."); !strings.Contains(s, "negotiate START_TLS first") {
		t.Fatalf("server answered %q", s)
	}
	// A client that declines START_TLS is told TLS is required.
	raw.Write(neg(cmdWONT, OptStartTLS))
	if s := readUntil(r, "TLS."); !strings.Contains(s, "requires TLS") || !eof(raw, r) {
		t.Fatalf("after WONT START_TLS: %q", s)
	}
}

// TestLineTooLong: endless text fails the client with ErrLineTooLong; a
// long line closes the server's session; a subnegotiation without SE is
// cut off on both sides (PR-25).
func TestLineTooLong(t *testing.T) {
	t.Parallel()
	addr, _ := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		c.Write([]byte(strings.Repeat("a", 20000)))
	})
	if _, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired)); !errors.Is(err, starttls.ErrLineTooLong) {
		t.Errorf("client: %v, want ErrLineTooLong", err)
	}
	addr, _ = fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		c.Write([]byte("\xff\xfa\x18" + strings.Repeat("x", 1000)))
	})
	if _, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired)); !errors.Is(err, starttls.ErrProtocol) {
		t.Errorf("client, SB without SE: %v, want ErrProtocol", err)
	}

	open := &Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: true}, Backend: memBackend{}}
	srv := startServer(t, open)
	for _, in := range []string{strings.Repeat("a", 5000), "\xff\xfa\x18" + strings.Repeat("x", 1000)} {
		c, err := net.Dial("tcp", srv)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		readUntil(r, "login: ")
		c.Write([]byte(in))
		if !eof(c, r) {
			t.Errorf("server kept the session open after %q…", in[:10])
		}
		c.Close()
	}
}

// TestTLSClientHelloOnPlaintextPort: an implicit-TLS client on the
// START_TLS port fails at once; the server says why and closes.
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	t.Parallel()
	addr := startServer(t, newServer(t))
	start := time.Now()
	if _, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeImplicit)); err == nil {
		t.Fatal("implicit client against the START_TLS port succeeded")
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	readN(r, 3)
	c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
	if s := readUntil(r, "implicit TLS"); !strings.Contains(s, "TLS received on the plaintext telnet port") || !eof(c, r) {
		t.Fatalf("server answered %q", s)
	}
}

// TestCapabilitiesRereadAfterTLS: what the server said before TLS does not
// survive the upgrade.
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	t.Parallel()
	st, _ := linetest.TLSPair(t)
	addr, _ := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		c.Write([]byte(doStartTLS + "\xff\xfb\x01injected banner\r\nlogin: "))
		readUntil(r, willStartTLS)
		c.Write([]byte(followsMsg))
		readN(r, 6)
		tc := tls.Server(&prefixConn{Conn: c, r: r}, st)
		if tc.Handshake() != nil {
			return
		}
		tc.Write([]byte("\xff\xfd\x1fbanner over TLS\r\nWelcome, no login here\r\n"))
		time.Sleep(time.Second)
	})
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !slices.Equal(res.CapsBefore, []string{"DO START_TLS", "WILL ECHO"}) || !slices.Equal(res.AuthBefore, []string{"LOGIN"}) {
		t.Errorf("CapsBefore %v AuthBefore %v", res.CapsBefore, res.AuthBefore)
	}
	if !slices.Equal(res.CapsAfter, []string{"DO NAWS"}) || len(res.AuthAfter) != 0 || !res.CapsReread || strings.Contains(c.Text(), "injected") {
		t.Errorf("CapsAfter %v AuthAfter %v CapsReread %v text %q", res.CapsAfter, res.AuthAfter, res.CapsReread, c.Text())
	}
}
