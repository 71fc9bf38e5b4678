package httpupgrade

import (
	"bufio"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

func TestEndToEndModes(t *testing.T) {
	srv := newServer(t)
	addr := startServer(t, srv)
	st, _ := linetest.TLSPair(t)
	impl := &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Implicit: true}, Backend: memBackend{}}
	implAddr := startServer(t, impl)
	tests := []struct {
		name     string
		addr     string
		mode     starttls.Mode
		upgraded bool
		greeting string
	}{
		{"required", addr, starttls.ModeRequired, true, "HTTP/1.1 101 Switching Protocols"},
		{"opportunistic", addr, starttls.ModeOpportunistic, true, "HTTP/1.1 101 Switching Protocols"},
		{"implicit", implAddr, starttls.ModeImplicit, true, "HTTP/1.1 200 OK"},
		{"plain", addr, starttls.ModePlain, false, "HTTP/1.1 426 Upgrade Required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, tt.addr, clientOpts(t, tt.mode))
			if err != nil {
				t.Fatalf("Dial: %v\n%s", err, transcript(res.Transcript))
			}
			defer c.Close()
			if res.Upgraded != tt.upgraded || res.Greeting != tt.greeting || res.Mode != tt.mode {
				t.Fatalf("Upgraded %v Greeting %q Mode %v, want %v %q %v", res.Upgraded, res.Greeting, res.Mode, tt.upgraded, tt.greeting, tt.mode)
			}
			if res.OfferedAfterTLS {
				t.Error("OfferedAfterTLS")
			}
			if tt.mode == starttls.ModePlain {
				if !res.UpgradeRequired || !res.Offered {
					t.Errorf("plain: UpgradeRequired %v Offered %v, want both (426)", res.UpgradeRequired, res.Offered)
				}
				if err := c.Login(ctx, "alice", "secret pw"); err == nil {
					t.Error("Login over plaintext succeeded against a server that demands TLS")
				}
				return
			}
			if tt.mode != starttls.ModeImplicit {
				if !res.Offered || res.UpgradeReply != "HTTP/1.1 101 Switching Protocols" {
					t.Errorf("Offered %v UpgradeReply %q", res.Offered, res.UpgradeReply)
				}
				if !slices.Contains(res.CapsBefore, "Upgrade: TLS/1.0, HTTP/1.1") || !slices.Contains(res.CapsAfter, "Allow: GET, HEAD, OPTIONS") {
					t.Errorf("CapsBefore %v CapsAfter %v", res.CapsBefore, res.CapsAfter)
				}
			}
			if !res.CapsReread || len(res.AuthBefore) != 0 || res.TLS == nil || res.TLS.NegotiatedProtocol != "" && res.TLS.NegotiatedProtocol != "http/1.1" {
				t.Errorf("CapsReread %v AuthBefore %v TLS %v", res.CapsReread, res.AuthBefore, res.TLS)
			}
			code, _, err := c.Get(ctx, "/private")
			if err != nil || code != 401 {
				t.Fatalf("GET /private before login = %d, %v", code, err)
			}
			if err := c.Login(ctx, "alice", "wrong"); err == nil {
				t.Fatal("Login with a wrong password succeeded")
			}
			if err := c.Login(ctx, "alice", "secret pw"); err != nil {
				t.Fatalf("Login: %v", err)
			}
			code, body, err := c.Get(ctx, "/private")
			if err != nil || code != 200 || string(body) != "Welcome alice\n" {
				t.Fatalf("GET /private = %d %q, %v", code, body, err)
			}
			if s := transcript(res.Transcript); strings.Contains(s, "YWxpY2U6c2VjcmV0IHB3") || !strings.Contains(s, "Authorization: Basic ****") {
				t.Errorf("credentials not masked in the transcript:\n%s", s)
			}
		})
	}
}

func TestNotOfferedAndRefused(t *testing.T) {
	plain := &Server{Backend: memBackend{}}
	refusing := newServer(t)
	refusing.RefuseUpgrade = true
	for _, tt := range []struct {
		name string
		srv  *Server
		want error
		temp bool
	}{
		{"no TLS", plain, starttls.ErrUpgradeNotOffered, false},
		{"refused", refusing, starttls.ErrUpgradeRefused, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := startServer(t, tt.srv)
			_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, tt.want) || starttls.IsTemporary(err) != tt.temp {
				t.Fatalf("required: err %v (temporary %v), want %v", err, starttls.IsTemporary(err), tt.want)
			}
			if res.Upgraded {
				t.Error("Upgraded")
			}
			// Opportunistic goes on in plaintext, and the session stays in
			// step (the body of the answer was read).
			c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
			if err != nil || res.Upgraded {
				t.Fatalf("opportunistic: %v, upgraded %v", err, res.Upgraded)
			}
			defer c.Close()
			if code, _, err := c.Get(linetest.Ctx(t), "/"); err != nil || (code != 200 && code != 426) {
				t.Fatalf("GET / after no upgrade = %d, %v", code, err)
			}
		})
	}
}

func TestHostHeader(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts starttls.ClientOptions
		want string
	}{
		{"server name and port", starttls.ClientOptions{Mode: starttls.ModeRequired, ServerName: "www.example.org"}, "Host: www.example.org:"},
		{"address", starttls.ClientOptions{Mode: starttls.ModeRequired}, "Host: 127.0.0.1:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, got := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
				readHead(r)
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
			})
			o := tt.opts
			Dial(linetest.Ctx(t), addr, &o)
			_, port, _ := net.SplitHostPort(addr)
			want := "OPTIONS * HTTP/1.1\r\n" + tt.want + port + "\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n"
			if s := <-got; s != want {
				t.Errorf("client sent %q, want %q", s, want)
			}
		})
	}
}

// TestServerHandshake: Handshake serves the plaintext part and hands over
// the TLS connection; the answer to the upgrade request is the caller's.
func TestServerHandshake(t *testing.T) {
	srv := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		tc, err := srv.Handshake(linetest.Ctx(t), conn)
		if err != nil {
			t.Errorf("Handshake: %v", err)
			return
		}
		defer tc.Close()
		r := bufio.NewReader(tc)
		tc.Write([]byte("HTTP/1.1 200 OK\r\nAllow: GET\r\nContent-Length: 0\r\n\r\n"))
		readHead(r)
		tc.Write([]byte("HTTP/1.1 200 OK\r\nServer: relayed\r\nContent-Length: 0\r\n\r\n"))
	}()
	c, res, err := Dial(linetest.Ctx(t), l.Addr().String(), clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !res.Upgraded || !slices.Contains(res.CapsAfter, "Server: relayed") {
		t.Fatalf("Upgraded %v CapsAfter %v", res.Upgraded, res.CapsAfter)
	}
}
