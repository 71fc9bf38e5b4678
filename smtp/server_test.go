package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

func TestServerDialog(t *testing.T) {
	s, b := newServer(t)
	s.MaxErrors = 20
	c := linetest.Dial(t, start(t, s))
	if g := reply(c); g != "220 mx.test ESMTP ready" {
		t.Fatalf("greeting %q", g)
	}
	expect(t, c, "MAIL FROM:<a@b>", "503 5.5.1 ")
	caps := expect(t, c, "EHLO client.test", "250-mx.test\n")
	if !strings.Contains(caps, "STARTTLS") || strings.Contains(caps, "AUTH") {
		t.Errorf("pre-TLS EHLO = %q, want STARTTLS and no AUTH", caps)
	}
	for _, want := range []string{"PIPELINING", "SIZE 10485760", "8BITMIME", "ENHANCEDSTATUSCODES"} {
		if !strings.Contains(caps, want) {
			t.Errorf("EHLO lacks %s: %q", want, caps)
		}
	}
	expect(t, c, "AUTH PLAIN AHVzZXIAc2VjcmV0", "530 5.7.0 Must issue a STARTTLS command first")
	expect(t, c, "STARTTLS now", "501 5.5.4 ")
	startTLS(t, c)
	// RFC 3207 §4.2: the EHLO from before TLS is forgotten.
	expect(t, c, "MAIL FROM:<a@b>", "503 5.5.1 ")
	caps = expect(t, c, "EHLO client.test", "250-mx.test\n")
	if strings.Contains(caps, "STARTTLS") || !strings.Contains(caps, "250 AUTH PLAIN LOGIN") {
		t.Errorf("post-TLS EHLO = %q, want AUTH and no STARTTLS", caps)
	}
	expect(t, c, "STARTTLS", "503 5.5.1 ")
	expect(t, c, "AUTH PLAIN AHVzZXIAc2VjcmV0", "235 2.7.0 ")
	expect(t, c, "AUTH PLAIN AHVzZXIAc2VjcmV0", "503 5.5.1 ")
	expect(t, c, "RCPT TO:<c@d>", "503 5.5.1 ")
	expect(t, c, "NOOP", "250 2.0.0 ")
	expect(t, c, "VRFY postmaster", "252 2.5.0 ")
	expect(t, c, "HELP", "214 2.0.0 ")
	c.Write("MAIL FROM:<a@b> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n") // PIPELINING
	for _, want := range []string{"250 2.1.0 ", "250 2.1.5 ", "250 2.1.5 ", "354 "} {
		if got := reply(c); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	expect(t, c, "Subject: hi\r\n\r\n..dot\r\n.x\r\nend\r\n.", "250 2.0.0 ")
	expect(t, c, "MAIL FROM:<a@b> FOO=bar", "555 5.5.4 ")
	expect(t, c, "RSET", "250 2.0.0 ")
	expect(t, c, "FOO", "500 5.5.2 ")
	expect(t, c, "QUIT", "221 2.0.0 ")
	c.ExpectEOF()
	msgs := b.messages()
	if len(msgs) != 1 || msgs[0].from != "a@b" || strings.Join(msgs[0].to, ",") != "c@d,e@f" ||
		msgs[0].data != "Subject: hi\r\n\r\n.dot\r\nx\r\nend\r\n" {
		t.Errorf("delivered %+v", msgs)
	}
}

func TestServerAuth(t *testing.T) {
	tests := []struct {
		name  string
		lines []string // client lines, each answered
		want  []string // reply prefixes
	}{
		{"PLAIN initial", []string{"AUTH PLAIN AHVzZXIAc2VjcmV0"}, []string{"235 2.7.0 "}},
		{"PLAIN authzid", []string{"AUTH PLAIN dXNlcgB1c2VyAHNlY3JldA=="}, []string{"235 2.7.0 "}},
		{"PLAIN other authzid", []string{"AUTH PLAIN YWRtaW4AdXNlcgBzZWNyZXQ="}, []string{"535 5.7.8 "}},
		{"PLAIN challenge", []string{"AUTH PLAIN", "AHVzZXIAc2VjcmV0"}, []string{"334 ", "235 2.7.0 "}},
		{"plain lower case", []string{"auth plain AHVzZXIAc2VjcmV0"}, []string{"235 2.7.0 "}},
		{"PLAIN wrong password", []string{"AUTH PLAIN AHVzZXIAd3Jvbmc="}, []string{"535 5.7.8 "}},
		{"PLAIN bad base64", []string{"AUTH PLAIN !!!"}, []string{"501 5.5.2 "}},
		{"PLAIN two fields", []string{"AUTH PLAIN dXNlcgBzZWNyZXQ="}, []string{"501 5.5.2 "}},
		{"PLAIN cancelled", []string{"AUTH PLAIN", "*"}, []string{"334 ", "501 5.0.0 "}},
		{"LOGIN", []string{"AUTH LOGIN", "dXNlcg==", "c2VjcmV0"}, []string{"334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 2.7.0 "}},
		{"LOGIN initial", []string{"AUTH LOGIN dXNlcg==", "c2VjcmV0"}, []string{"334 UGFzc3dvcmQ6", "235 2.7.0 "}},
		{"CRAM-MD5", []string{"AUTH CRAM-MD5"}, []string{"504 5.5.4 "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newServer(t)
			c := linetest.Dial(t, start(t, s))
			reply(c)
			startTLS(t, c)
			expect(t, c, "EHLO x", "250")
			for i, l := range tt.lines {
				expect(t, c, l, tt.want[i])
			}
		})
	}
}

func TestNoCredentialsBeforeTLS(t *testing.T) {
	t.Run("server refuses plaintext AUTH", func(t *testing.T) {
		s, b := newServer(t)
		c := linetest.Dial(t, start(t, s))
		reply(c)
		expect(t, c, "EHLO x", "250")
		expect(t, c, "AUTH PLAIN AHVzZXIAc2VjcmV0", "530 5.7.0 Must issue a STARTTLS command first")
		expect(t, c, "AUTH LOGIN", "530 5.7.0 ")
		if len(b.logins) != 0 {
			t.Errorf("backend saw logins %q", b.logins)
		}
	})
	t.Run("server without TLS", func(t *testing.T) {
		s, _ := newServer(t)
		s.TLSConfig = nil
		c := linetest.Dial(t, start(t, s))
		reply(c)
		if caps := expect(t, c, "EHLO x", "250"); strings.Contains(caps, "AUTH") || strings.Contains(caps, "STARTTLS") {
			t.Errorf("EHLO = %q", caps)
		}
		expect(t, c, "AUTH PLAIN AHVzZXIAc2VjcmV0", "538 5.7.11 ")
		expect(t, c, "STARTTLS", "502 5.5.1 ")
	})
	t.Run("AllowPlaintextLogin", func(t *testing.T) {
		s, _ := newServer(t)
		s.AllowPlaintextLogin = true
		c := linetest.Dial(t, start(t, s))
		reply(c)
		if caps := expect(t, c, "EHLO x", "250"); !strings.Contains(caps, "AUTH PLAIN LOGIN") {
			t.Errorf("EHLO = %q", caps)
		}
		expect(t, c, "AUTH PLAIN AHVzZXIAc2VjcmV0", "235 ")
	})
	t.Run("client refuses in plaintext", func(t *testing.T) {
		s, b := newServer(t)
		s.TLSConfig = nil
		s.AllowPlaintextLogin = true
		addr := start(t, s)
		c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if res.Upgraded || len(res.AuthBefore) == 0 {
			t.Fatalf("Result = %+v", res)
		}
		if err := c.Login(linetest.Ctx(t), "user", "secret"); !errors.Is(err, starttls.ErrFallbackForbidden) {
			t.Errorf("Login = %v, want ErrFallbackForbidden", err)
		}
		if len(b.logins) != 0 {
			t.Errorf("credentials reached the server: %q", b.logins)
		}
	})
	t.Run("ModePlain may", func(t *testing.T) {
		s, b := newServer(t)
		s.TLSConfig = nil
		s.AllowPlaintextLogin = true
		c, _, err := Dial(linetest.Ctx(t), start(t, s), clientOpts(t, starttls.ModePlain))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login(linetest.Ctx(t), "user", "secret"); err != nil {
			t.Errorf("Login = %v", err)
		}
		if len(b.logins) != 1 {
			t.Errorf("logins %q", b.logins)
		}
	})
}

func TestServerRequireAuth(t *testing.T) {
	s, b := newServer(t)
	s.RequireAuth = true
	c := linetest.Dial(t, start(t, s))
	reply(c)
	expect(t, c, "EHLO x", "250")
	expect(t, c, "MAIL FROM:<a@b>", "530 5.7.0 Must issue a STARTTLS command first")
	startTLS(t, c)
	expect(t, c, "EHLO x", "250")
	expect(t, c, "MAIL FROM:<a@b>", "530 5.7.0 Authentication required")
	expect(t, c, "AUTH PLAIN AHVzZXIAc2VjcmV0", "235")
	expect(t, c, "MAIL FROM:<a@b>", "250")
	expect(t, c, "RCPT TO:<c@d>", "250")
	expect(t, c, "DATA", "354")
	expect(t, c, "x\r\n.", "250")
	if len(b.messages()) != 1 {
		t.Errorf("messages %+v", b.messages())
	}
}

func TestServerRefuseUpgrade(t *testing.T) {
	s, _ := newServer(t)
	s.RefuseUpgrade = true
	c := linetest.Dial(t, start(t, s))
	reply(c)
	if caps := expect(t, c, "EHLO x", "250"); !strings.Contains(caps, "STARTTLS") {
		t.Errorf("EHLO = %q", caps)
	}
	expect(t, c, "STARTTLS", "454 4.7.0 TLS not available due to temporary reason")
	expect(t, c, "NOOP", "250")
}

// PR-05, SMTP smuggling (CVE-2023-51764): LF never changes boundaries.
func TestServerBareLF(t *testing.T) {
	s, b := newServer(t)
	s.TLSConfig = nil
	c := linetest.Dial(t, start(t, s))
	reply(c)
	c.Write("EHLO x\nNOOP\n")
	for range 2 {
		if got := reply(c); !strings.HasPrefix(got, "500 5.5.2 ") {
			t.Fatalf("got %q, want 500 5.5.2", got)
		}
	}
	expect(t, c, "MAIL FROM:<a@b>", "503 5.5.1 ") // EHLO was not executed
	c = linetest.Dial(t, start(t, s))
	reply(c)
	expect(t, c, "EHLO x", "250")
	expect(t, c, "MAIL FROM:<a@b>", "250")
	expect(t, c, "RCPT TO:<c@d>", "250")
	expect(t, c, "DATA", "354")
	// "\n.\n" and "\r\n.\n" must not end the message; the smuggled MAIL
	// stays inside it; only CRLF.CRLF ends it, and the message is refused.
	c.Write("a\n.\nMAIL FROM:<evil@x>\r\n.\nRCPT TO:<victim@y>\r\nx\ry\r\n.\r\n")
	if got := reply(c); !strings.HasPrefix(got, "554 5.6.0 ") {
		t.Fatalf("got %q, want 554 5.6.0", got)
	}
	expect(t, c, "MAIL FROM:<a@b>", "250") // the session is still in step
	expect(t, c, "RCPT TO:<c@d>", "250")
	expect(t, c, "DATA", "354")
	expect(t, c, "ok\r\n.", "250")
	if msgs := b.messages(); len(msgs) != 1 || msgs[0].data != "ok\r\n" {
		t.Errorf("delivered %+v", msgs)
	}
}

func TestServerSizeLimit(t *testing.T) {
	s, b := newServer(t)
	s.TLSConfig = nil
	s.MaxMessageBytes = 100
	c := linetest.Dial(t, start(t, s))
	reply(c)
	if caps := expect(t, c, "EHLO x", "250"); !strings.Contains(caps, "SIZE 100\n") {
		t.Errorf("EHLO = %q", caps)
	}
	expect(t, c, "MAIL FROM:<a@b> SIZE=101", "552 5.3.4 ")
	expect(t, c, "MAIL FROM:<a@b> SIZE=100", "250")
	expect(t, c, "RCPT TO:<c@d>", "250")
	expect(t, c, "DATA", "354")
	expect(t, c, strings.Repeat("x", 98)+"\r\n.", "250") // exactly 100 bytes
	expect(t, c, "MAIL FROM:<a@b>", "250")
	expect(t, c, "RCPT TO:<c@d>", "250")
	expect(t, c, "DATA", "354")
	expect(t, c, strings.Repeat("x", 99)+"\r\n.", "552 5.3.4 ")
	expect(t, c, "NOOP", "250")
	// Far past the limit the server stops reading.
	expect(t, c, "MAIL FROM:<a@b>", "250")
	expect(t, c, "RCPT TO:<c@d>", "250")
	expect(t, c, "DATA", "354")
	go c.Conn().Write([]byte(strings.Repeat("y", 2<<20)))
	if got := reply(c); !strings.HasPrefix(got, "552 5.3.4 ") {
		t.Errorf("got %q", got)
	}
	if len(b.messages()) != 1 {
		t.Errorf("messages: %d", len(b.messages()))
	}
}

func TestServerMaxRecipients(t *testing.T) {
	s, _ := newServer(t)
	s.MaxRecipients = 2
	c := linetest.Dial(t, start(t, s))
	reply(c)
	expect(t, c, "EHLO x", "250")
	expect(t, c, "MAIL FROM:<>", "250")
	expect(t, c, "RCPT TO:<a@b>", "250")
	expect(t, c, "RCPT TO:<c@d>", "250")
	expect(t, c, "RCPT TO:<e@f>", "452 4.5.3 ")
	expect(t, c, "RCPT TO:<>", "501 ")
}

func TestServerIdleTimeout(t *testing.T) {
	s, _ := newServer(t)
	s.ReadTimeout = 200 * time.Millisecond
	c := linetest.Dial(t, start(t, s))
	reply(c)
	if got := reply(c); !strings.HasPrefix(got, "421 4.4.2 ") {
		t.Errorf("got %q, want 421 4.4.2", got)
	}
	c.ExpectEOF()
}

func TestServerTooManyErrors(t *testing.T) {
	s, _ := newServer(t)
	c := linetest.Dial(t, start(t, s))
	reply(c)
	expect(t, c, "FOO", "500 5.5.2 ")
	expect(t, c, "BAR", "500 5.5.2 ")
	expect(t, c, "BAZ", "500 5.5.2 ")
	if got := reply(c); !strings.HasPrefix(got, "421 4.7.0 ") {
		t.Errorf("got %q, want 421", got)
	}
	c.ExpectEOF()
}

func TestServerPanic(t *testing.T) {
	s, b := newServer(t)
	s.TLSConfig = nil
	s.Logger = nil // the panic is logged at error level
	b.panic = true
	c := linetest.Dial(t, start(t, s))
	reply(c)
	expect(t, c, "EHLO x", "250")
	expect(t, c, "MAIL FROM:<a@b>", "250")
	expect(t, c, "RCPT TO:<c@d>", "250")
	expect(t, c, "DATA", "354")
	expect(t, c, "x\r\n.", "421 4.3.0 ")
	c.ExpectEOF()
}

func TestServerLMTP(t *testing.T) {
	s, b := newServer(t)
	s.LMTP = true
	c := linetest.Dial(t, start(t, s))
	if g := reply(c); !strings.Contains(g, "LMTP") {
		t.Errorf("greeting %q", g)
	}
	expect(t, c, "EHLO x", "500 ")
	expect(t, c, "LHLO x", "250-mx.test")
	expect(t, c, "MAIL FROM:<a@b>", "250")
	expect(t, c, "RCPT TO:<c@d>", "250")
	expect(t, c, "RCPT TO:<e@f>", "250")
	expect(t, c, "DATA", "354")
	expect(t, c, "x\r\n.", "250 2.0.0 ")
	if got := reply(c); !strings.HasPrefix(got, "250 2.0.0 ") {
		t.Errorf("second LMTP reply %q", got)
	}
	if len(b.messages()) != 1 {
		t.Errorf("messages %+v", b.messages())
	}
}

// CVE-2011-0411 (Venema): a command pipelined after STARTTLS is never
// answered inside TLS.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	for _, injected := range []string{"NOOP\r\n", "RSET\r\n", "MAIL FROM:<attacker@evil>\r\n", "X"} {
		t.Run(strings.TrimSpace(injected), func(t *testing.T) {
			s, _ := newServer(t)
			c := linetest.Dial(t, start(t, s))
			reply(c)
			expect(t, c, "EHLO x", "250")
			c.Write("STARTTLS\r\n" + injected)
			if got := reply(c); !strings.HasPrefix(got, "220 ") {
				t.Fatalf("got %q", got)
			}
			_, ct := linetest.TLSPair(t)
			cfg := ct.Clone()
			cfg.ServerName = "localhost"
			tc := tls.Client(c.Conn(), cfg)
			if err := tc.Handshake(); err == nil {
				tc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				buf := make([]byte, 100)
				if n, _ := tc.Read(buf); n > 0 {
					t.Fatalf("server answered the injected command inside TLS: %q", buf[:n])
				}
			}
		})
	}
	t.Run("Handshake", func(t *testing.T) {
		s, _ := newServer(t)
		s.InsecureKeepPipelined = true // ignored by Handshake
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		errc := make(chan error, 1)
		go func() {
			conn, err := l.Accept()
			if err != nil {
				errc <- err
				return
			}
			_, err = s.Handshake(context.Background(), conn)
			errc <- err
		}()
		c := linetest.Dial(t, l.Addr().String())
		reply(c)
		c.Write("STARTTLS\r\nNOOP\r\n")
		reply(c)
		if err := <-errc; !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) {
			t.Errorf("Handshake = %v, want ErrPlaintextAfterUpgrade", err)
		}
	})
}

func TestServerInsecureKeepPipelined(t *testing.T) {
	t.Run("raw", func(t *testing.T) {
		s, _ := newServer(t)
		s.InsecureKeepPipelined = true
		c := linetest.Dial(t, start(t, s))
		reply(c)
		c.Write("STARTTLS\r\nNOOP\r\n")
		reply(c)
		c.StartTLS()
		if got := reply(c); !strings.HasPrefix(got, "250 2.0.0") {
			t.Errorf("first reply inside TLS %q, want the NOOP's 250 (the bug)", got)
		}
	})
	for _, insecure := range []bool{true, false} {
		name := "default server"
		if insecure {
			name = "InsecureKeepPipelined"
		}
		t.Run("probe/"+name, func(t *testing.T) {
			s, _ := newServer(t)
			s.InsecureKeepPipelined = insecure
			opts := clientOpts(t, starttls.ModeRequired)
			opts.ProbeInjection = true
			opts.InjectionWait = 300 * time.Millisecond
			c, res, err := Dial(linetest.Ctx(t), start(t, s), opts)
			inj := res.Injection
			if inj == nil || inj.Sent != "NOOP" {
				t.Fatalf("Injection = %+v", inj)
			}
			if inj.Vulnerable != insecure {
				t.Errorf("Vulnerable = %v, want %v (%+v, err %v)", inj.Vulnerable, insecure, inj, err)
			}
			if insecure {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(inj.Reply, "250 2.0.0") || !res.CapsReread {
					t.Errorf("Injection = %+v, Result = %+v", inj, res)
				}
				c.Close()
			} else if !inj.Closed || err == nil {
				t.Errorf("Injection = %+v, err = %v; want Closed and an error", inj, err)
			}
		})
	}
}

func TestLineTooLong(t *testing.T) {
	s, _ := newServer(t)
	c := linetest.Dial(t, start(t, s))
	reply(c)
	c.Write("EHLO " + strings.Repeat("a", 3000) + "\r\nMAIL FROM:<a@b>\r\n")
	if got := reply(c); !strings.HasPrefix(got, "500 5.5.2 Line too long") {
		t.Errorf("got %q", got)
	}
	c.ExpectEOF()
	// A 512-octet command line (RFC 5321 §4.5.3.1.4) is fine.
	c = linetest.Dial(t, start(t, s))
	reply(c)
	expect(t, c, "EHLO "+strings.Repeat("a", 505), "250")
}

// PR-27: a ClientHello on the plaintext port gets a clear error and a close.
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	s, _ := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	errc := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			errc <- err
			return
		}
		errc <- s.ServeConn(context.Background(), conn)
	}()
	// Our own client in ModeImplicit against the plaintext port.
	_, res, err := Dial(linetest.Ctx(t), l.Addr().String(), clientOpts(t, starttls.ModeImplicit))
	var he *starttls.HandshakeError
	if !errors.As(err, &he) || res.Upgraded {
		t.Errorf("client: %v, want a HandshakeError", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, starttls.ErrTLSOnPlaintextPort) {
			t.Errorf("ServeConn = %v, want ErrTLSOnPlaintextPort", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not give up")
	}
}

func TestServerHandshake(t *testing.T) {
	s, _ := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type result struct {
		tc  *tls.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			done <- result{nil, err}
			return
		}
		tc, err := s.Handshake(context.Background(), conn)
		done <- result{tc, err}
	}()
	c := linetest.Dial(t, l.Addr().String())
	reply(c)
	expect(t, c, "EHLO x", "250")
	expect(t, c, "MAIL FROM:<a@b>", "530 5.7.0 Must issue a STARTTLS command first")
	startTLS(t, c)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.tc.Close()
	// The caller owns the TLS session now.
	go r.tc.Write([]byte("220 relayed\r\n"))
	if got := reply(c); got != "220 relayed" {
		t.Errorf("got %q", got)
	}
}

// SV-12: plaintext instead of a ClientHello after the go-ahead gets no
// plaintext answer.
func TestServerPlaintextAfterGoAhead(t *testing.T) {
	s, _ := newServer(t)
	c := linetest.Dial(t, start(t, s))
	reply(c)
	expect(t, c, "EHLO x", "250")
	expect(t, c, "STARTTLS", "220 ")
	time.Sleep(50 * time.Millisecond) // not pipelined: a separate segment
	c.Write("EHLO x\r\nMAIL FROM:<a@b>\r\n")
	b, _ := io.ReadAll(c.Reader())
	if strings.Contains(string(b), "250") || strings.Contains(string(b), "50") && strings.Contains(string(b), "\r\n") {
		t.Errorf("server answered in plaintext after the go-ahead: %q", b)
	}
}
