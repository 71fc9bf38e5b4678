package irc

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

const (
	notice   = ":srv NOTICE * :*** Looking up your hostname...\r\n"
	capsTLS  = ":srv CAP * LS :tls multi-prefix\r\n"
	capsPost = ":srv CAP * LS :sasl=PLAIN multi-prefix\r\n"
	goAhead  = ":srv 670 * :STARTTLS successful, go ahead with TLS handshake\r\n"
)

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411: "STARTTLS\r\nCAP
// LS 302\r\n" in one write: the CAP LS is never answered inside TLS; the
// server closes the connection.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	for _, pipelined := range []string{"CAP LS 302\r\n", "NICK x\r\nUSER x 0 * :x\r\n", "PING"} {
		t.Run(strings.TrimSpace(pipelined), func(t *testing.T) {
			c := linetest.Dial(t, startServer(t, newServer(t)))
			c.Write("STARTTLS\r\n" + pipelined)
			if got := c.Line(); !strings.Contains(got, " 670 ") {
				t.Fatalf("STARTTLS = %q", got)
			}
			_, ct := linetest.TLSPair(t)
			cfg := ct.Clone()
			cfg.ServerName = "localhost"
			tc := tls.Client(c.Conn(), cfg)
			if err := tc.Handshake(); err == nil {
				buf := make([]byte, 512)
				tc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				if n, _ := tc.Read(buf); n > 0 {
					t.Fatalf("server answered the pipelined command inside TLS: %q", buf[:n])
				}
				t.Fatal("handshake succeeded after pipelined plaintext, want the connection closed")
			}
		})
	}
}

// TestServerInsecureKeepPipelined: the lab knob reproduces CVE-2011-0411
// and the client probe sees it; the default server is safe.
func TestServerInsecureKeepPipelined(t *testing.T) {
	t.Run("raw", func(t *testing.T) {
		srv := newServer(t)
		srv.InsecureKeepPipelined = true
		c := linetest.Dial(t, startServer(t, srv))
		c.Write("STARTTLS\r\nCAP LS 302\r\n")
		if got := c.Line(); !strings.Contains(got, " 670 ") {
			t.Fatalf("STARTTLS = %q", got)
		}
		c.StartTLS()
		if got := c.Line(); got != ":irc.test CAP * LS :sasl=PLAIN" {
			t.Errorf("first line inside TLS = %q, want the CAP LS answer", got)
		}
	})
	for _, tt := range []struct {
		name       string
		insecure   bool
		vulnerable bool
	}{
		{"vulnerable lab server", true, true},
		{"default server", false, false},
	} {
		t.Run("probe/"+tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.InsecureKeepPipelined = tt.insecure
			addr := startServer(t, srv)
			opts := clientOpts(t, starttls.ModeRequired)
			opts.ProbeInjection = true
			opts.InjectionWait = 300 * time.Millisecond
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, addr, opts)
			if (err != nil) == tt.vulnerable {
				t.Fatalf("Dial() error = %v", err)
			}
			inj := res.Injection
			if inj == nil || inj.Sent != "CAP LS 302" || inj.Vulnerable != tt.vulnerable {
				t.Fatalf("Injection = %+v, want Vulnerable=%v", inj, tt.vulnerable)
			}
			if !tt.vulnerable {
				if !inj.Closed {
					t.Errorf("Injection.Closed = false, want true")
				}
				return
			}
			if !strings.Contains(inj.Reply, "CAP * LS :sasl=PLAIN") {
				t.Errorf("Injection.Reply = %q", inj.Reply)
			}
			// The dialog goes on in step after the probe.
			if !res.CapsReread || !reflect.DeepEqual(res.AuthAfter, []string{"PLAIN"}) {
				t.Errorf("after probe: CapsReread %v AuthAfter %q", res.CapsReread, res.AuthAfter)
			}
			if err := c.Login(ctx, "alice", "secret pw"); err != nil {
				t.Errorf("Login after probe: %v", err)
			}
			c.Close()
		})
	}
	t.Run("probe/silent safe server", func(t *testing.T) {
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			st, _ := linetest.TLSPair(t)
			f.Expect("CAP LS 302")
			f.Send(capsTLS)
			f.Expect("STARTTLS")
			f.ReadLine() // the pipelined probe command
			f.Send(goAhead)
			if !f.StartTLS(st) {
				return
			}
			f.Expect("CAP LS 302")
			f.Send(capsPost)
			f.Expect("QUIT")
		})
		opts := clientOpts(t, starttls.ModeRequired)
		opts.ProbeInjection = true
		opts.InjectionWait = 200 * time.Millisecond
		c, res, err := Dial(linetest.Ctx(t), addr, opts)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		wait()
		if res.Injection == nil || res.Injection.Vulnerable || res.Injection.Closed {
			t.Errorf("Injection = %+v", res.Injection)
		}
	})
}

// TestClientRejectsResponseInjection: bytes after 670 and before the
// handshake fail the upgrade (EAST Buffering), whole lines and partial
// ones; nothing else is sent.
func TestClientRejectsResponseInjection(t *testing.T) {
	for _, injected := range []string{
		":srv CAP * LS :sasl=PLAIN\r\n",
		":srv 903 * :SASL authentication successful\r\n",
		":srv NOTICE * :partial line without CRLF",
	} {
		t.Run(strings.TrimSpace(injected), func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Expect("CAP LS 302")
				f.Send(capsTLS)
				f.Expect("STARTTLS")
				f.Send(goAhead + injected)
				f.Drain()
			})
			_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) {
				t.Fatalf("Dial() error = %v, want ErrPlaintextAfterUpgrade", err)
			}
			if string(res.PlaintextAfterUpgrade) != injected {
				t.Errorf("PlaintextAfterUpgrade = %q", res.PlaintextAfterUpgrade)
			}
			if f := wait(); f.Plain() != "CAP LS 302\r\nSTARTTLS\r\n" {
				t.Errorf("client sent %q", f.Plain())
			}
		})
	}
	// Control (CL-41): 670 in two segments is not injection.
	t.Run("fragmented go-ahead", func(t *testing.T) {
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			st, _ := linetest.TLSPair(t)
			f.Expect("CAP LS 302")
			f.Send(capsTLS)
			f.Expect("STARTTLS")
			f.Send(goAhead[:10])
			time.Sleep(50 * time.Millisecond)
			f.Send(goAhead[10:])
			if !f.StartTLS(st) {
				return
			}
			f.Expect("CAP LS 302")
			f.Send(capsPost)
			f.Expect("QUIT")
		})
		c, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		wait()
	})
}

// TestRequiredNeverFallsBack: not offered, refused (691, 451, 421),
// CAP unknown, handshake failure, silence: ModeRequired fails and sends
// nothing after (STRIPTLS IRC.*, CL-25, CL-32).
func TestRequiredNeverFallsBack(t *testing.T) {
	tests := []struct {
		name   string
		script func(f *linetest.Fake)
		want   error
		sent   string
	}{
		{"tls stripped from CAP LS", func(f *linetest.Fake) {
			f.Expect("CAP LS 302")
			f.Send(notice + ":srv CAP * LS :multi-prefix sasl=PLAIN sts=port=6697,duration=300\r\n")
			f.Drain()
		}, starttls.ErrUpgradeNotOffered, "CAP LS 302\r\n"},
		{"CAP answered 451", func(f *linetest.Fake) {
			f.Expect("CAP LS 302")
			f.Send(":srv 451 * :You have not registered\r\n")
			f.Drain()
		}, starttls.ErrUpgradeNotOffered, "CAP LS 302\r\n"},
		{"CAP answered 421", func(f *linetest.Fake) {
			f.Expect("CAP LS 302")
			f.Send(":srv 421 * CAP :Unknown command\r\n")
			f.Drain()
		}, starttls.ErrUpgradeNotOffered, "CAP LS 302\r\n"},
		{"STARTTLS answered 691", func(f *linetest.Fake) {
			f.Expect("CAP LS 302")
			f.Send(capsTLS)
			f.Expect("STARTTLS")
			f.Send(":srv 691 * :STARTTLS failure\r\n")
			f.Drain()
		}, starttls.ErrUpgradeRefused, "CAP LS 302\r\nSTARTTLS\r\n"},
		{"STARTTLS answered 451", func(f *linetest.Fake) {
			f.Expect("CAP LS 302")
			f.Send(capsTLS)
			f.Expect("STARTTLS")
			f.Send(":srv 451 * STARTTLS :You have not registered\r\n")
			f.Drain()
		}, starttls.ErrUpgradeRefused, "CAP LS 302\r\nSTARTTLS\r\n"},
		{"STARTTLS answered 421", func(f *linetest.Fake) {
			f.Expect("CAP LS 302")
			f.Send(capsTLS)
			f.Expect("STARTTLS")
			f.Send(":srv 421 * STARTTLS :Unknown command\r\n")
			f.Drain()
		}, starttls.ErrUpgradeRefused, "CAP LS 302\r\nSTARTTLS\r\n"},
		{"handshake failure", func(f *linetest.Fake) {
			f.Expect("CAP LS 302")
			f.Send(capsTLS)
			f.Expect("STARTTLS")
			f.Send(goAhead)
			buf := make([]byte, 5)
			io.ReadFull(f.Conn(), buf) // the ClientHello's record header
			f.Send("not TLS at all\r\n\r\n\r\n")
			io.Copy(io.Discard, f.Conn()) // the rest of the ClientHello, then nothing
		}, new(starttls.HandshakeError), "CAP LS 302\r\nSTARTTLS\r\n"},
		{"STARTTLS silently dropped", func(f *linetest.Fake) {
			f.Expect("CAP LS 302")
			f.Send(capsTLS)
			f.Expect("STARTTLS")
			f.Drain()
		}, nil, "CAP LS 302\r\nSTARTTLS\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, tt.script)
			opts := clientOpts(t, starttls.ModeRequired)
			ctx := linetest.Ctx(t)
			start := time.Now()
			var err error
			if tt.want == nil {
				ctx2, cancel := contextWithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
				_, _, err = Dial(ctx2, addr, opts)
				if err == nil || time.Since(start) > 3*time.Second {
					t.Fatalf("Dial() = %v after %v, want a timeout", err, time.Since(start))
				}
			} else {
				_, _, err = Dial(ctx, addr, opts)
				var he *starttls.HandshakeError
				if errors.As(tt.want, &he) {
					if !errors.As(err, &he) {
						t.Fatalf("Dial() error = %v, want a HandshakeError", err)
					}
				} else if !errors.Is(err, tt.want) {
					t.Fatalf("Dial() error = %v, want %v", err, tt.want)
				}
			}
			if f := wait(); f.Plain() != tt.sent {
				t.Errorf("client sent %q, want %q", f.Plain(), tt.sent)
			}
		})
	}
}

// TestNoCredentialsBeforeTLS: the client refuses to log in without TLS
// unless ModePlain; the server refuses SASL before TLS unless
// AllowPlaintextLogin.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		srv := newServer(t)
		srv.TLSConfig = nil
		srv.AllowPlaintextLogin = true
		addr := startServer(t, srv)
		ctx := linetest.Ctx(t)
		c, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeOpportunistic))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login(ctx, "alice", "secret pw"); !errors.Is(err, starttls.ErrFallbackForbidden) {
			t.Fatalf("Login() error = %v, want ErrFallbackForbidden", err)
		}
		if strings.Contains(dump(res.Transcript), "AUTHENTICATE") {
			t.Errorf("AUTHENTICATE sent:\n%s", dump(res.Transcript))
		}
		// ModePlain may, and the transcript masks the payload.
		c2, res2, err := Dial(ctx, addr, clientOpts(t, starttls.ModePlain))
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if err := c2.Login(ctx, "alice", "secret pw"); err != nil {
			t.Fatalf("plain Login: %v", err)
		}
		if tr := dump(res2.Transcript); strings.Contains(tr, "c2VjcmV0") || !strings.Contains(tr, "AUTHENTICATE ****") {
			t.Errorf("transcript does not mask the credentials:\n%s", tr)
		}
	})
	t.Run("server", func(t *testing.T) {
		c := linetest.Dial(t, startServer(t, newServer(t)))
		if got := c.Cmd("CAP LS 302"); got != ":irc.test CAP * LS :tls" {
			t.Errorf("CAP LS = %q", got)
		}
		if got := c.Cmd("CAP REQ :sasl"); got != ":irc.test CAP * NAK :sasl" {
			t.Errorf("CAP REQ = %q", got)
		}
		if got := c.Cmd("AUTHENTICATE PLAIN"); !strings.Contains(got, " 904 ") {
			t.Errorf("AUTHENTICATE = %q, want 904", got)
		}
		// After TLS it works.
		c.Write("STARTTLS\r\n")
		until(t, c, " 670 ")
		c.StartTLS()
		c.Cmd("CAP REQ :sasl")
		if got := c.Cmd("AUTHENTICATE PLAIN"); got != "AUTHENTICATE +" {
			t.Fatalf("AUTHENTICATE = %q", got)
		}
		c.Write("AUTHENTICATE AGFsaWNlAHNlY3JldCBwdw==\r\n")
		if got := until(t, c, " 903 "); !strings.Contains(got, "successful") {
			t.Errorf("903 = %q", got)
		}
	})
}

// TestLineTooLong: a line beyond the limit fails with ErrLineTooLong on
// both sides; a tagged line of 8 KiB is still accepted by the client.
func TestLineTooLong(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		addr, _ := linetest.FakeServer(t, func(f *linetest.Fake) {
			f.Expect("CAP LS 302")
			f.Send(":srv NOTICE * :" + strings.Repeat("x", MaxLineLength) + "\r\n")
			f.Drain()
		})
		_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrLineTooLong) {
			t.Fatalf("Dial() error = %v, want ErrLineTooLong", err)
		}
	})
	t.Run("client accepts tags", func(t *testing.T) {
		addr, _ := linetest.FakeServer(t, func(f *linetest.Fake) {
			f.Expect("CAP LS 302")
			f.Send("@x=" + strings.Repeat("y", 8000) + " :srv CAP * LS :multi-prefix\r\n")
			f.Drain()
		})
		_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrUpgradeNotOffered) || !reflect.DeepEqual(res.CapsBefore, []string{"multi-prefix"}) {
			t.Fatalf("Dial() error = %v, caps %q", err, res.CapsBefore)
		}
	})
	t.Run("server", func(t *testing.T) {
		c := linetest.Dial(t, startServer(t, newServer(t)))
		c.Write("PING " + strings.Repeat("a", 5000) + "\r\n")
		if got := c.Line(); !strings.HasPrefix(got, "ERROR") || !strings.Contains(got, "too long") {
			t.Errorf("answer = %q", got)
		}
	})
}

// TestTLSClientHelloOnPlaintextPort: a client speaking TLS at once gets a
// clear ERROR and the connection closes, at once, not after a timeout.
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	srv := newServer(t)
	addr := startServer(t, srv)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	_, ct := linetest.TLSPair(t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	err = tls.Client(conn, cfg).Handshake()
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) {
		t.Fatalf("Handshake() error = %v, want a RecordHeaderError (plaintext answer)", err)
	}
	// The server answers ERROR and closes.
	c := linetest.Dial(t, addr)
	c.Write("\x16\x03\x01\x00\x05hello")
	if got := c.Line(); !strings.HasPrefix(got, "ERROR") || !strings.Contains(got, "TLS") {
		t.Errorf("answer = %q", got)
	}
	if _, err := c.Reader().ReadString('\n'); err == nil || !linetest.IsClosed(err) {
		t.Errorf("connection not closed: %v", err)
	}
}

// TestCapabilitiesRereadAfterTLS: the capabilities before TLS (injected
// by a MITM: sasl=EXTERNAL, a fake cap) do not survive; the result and
// Login use the ones read over TLS.
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		st, _ := linetest.TLSPair(t)
		f.Expect("CAP LS 302")
		f.Send(":srv CAP * LS * :tls sasl=EXTERNAL\r\n:srv CAP * LS :injected-cap\r\n")
		f.Expect("STARTTLS")
		f.Send(goAhead)
		if !f.StartTLS(st) {
			return
		}
		f.Expect("CAP LS 302")
		f.Send(":srv CAP * LS :sasl=PLAIN,SCRAM-SHA-256 away-notify\r\n")
		f.Expect("QUIT")
	})
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	wait()
	if want := []string{"tls", "sasl=EXTERNAL", "injected-cap"}; !reflect.DeepEqual(res.CapsBefore, want) {
		t.Errorf("CapsBefore = %q, want %q", res.CapsBefore, want)
	}
	if want := []string{"sasl=PLAIN,SCRAM-SHA-256", "away-notify"}; !reflect.DeepEqual(res.CapsAfter, want) || !reflect.DeepEqual(c.Caps(), want) {
		t.Errorf("CapsAfter = %q, Caps() = %q", res.CapsAfter, c.Caps())
	}
	if !reflect.DeepEqual(res.AuthBefore, []string{"EXTERNAL"}) || !reflect.DeepEqual(res.AuthAfter, []string{"PLAIN", "SCRAM-SHA-256"}) {
		t.Errorf("AuthBefore %q AuthAfter %q", res.AuthBefore, res.AuthAfter)
	}
	if !res.CapsReread || res.OfferedAfterTLS {
		t.Errorf("CapsReread %v OfferedAfterTLS %v", res.CapsReread, res.OfferedAfterTLS)
	}
}
