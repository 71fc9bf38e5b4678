package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411: "a1 STARTTLS"
// with more commands in the same write (EAST-CIT, VENEMA11): the
// pipelined commands are never answered inside TLS; the server closes the
// connection after the tagged OK.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	for _, pipelined := range []string{"a2 NOOP\r\n", "a2 LOGIN alice \"secret pw\"\r\na3 SELECT INBOX\r\n", "a2 CAPABILITY", "\r\n"} {
		t.Run(strings.TrimSpace(pipelined), func(t *testing.T) {
			srv := newServer(t)
			c := dialRaw(t, startServer(t, srv))
			c.Write("a1 STARTTLS\r\n" + pipelined)
			if got := c.Line(); got != "a1 OK Begin TLS negotiation now" {
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

// TestServerInsecureKeepPipelined: the lab knob really reproduces
// CVE-2011-0411, and the client probe sees it; the default server is safe.
func TestServerInsecureKeepPipelined(t *testing.T) {
	st, _ := linetest.TLSPair(t)
	t.Run("raw", func(t *testing.T) {
		srv := newServer(t)
		srv.InsecureKeepPipelined = true
		c := dialRaw(t, startServer(t, srv))
		c.Write("a1 STARTTLS\r\na2 NOOP\r\n")
		if got := c.Line(); got != "a1 OK Begin TLS negotiation now" {
			t.Fatalf("STARTTLS = %q", got)
		}
		c.StartTLS()
		if got := c.Line(); got != "a2 OK NOOP completed" {
			t.Errorf("first line inside TLS = %q, want the NOOP answer", got)
		}
	})
	tests := []struct {
		name       string
		insecure   bool
		vulnerable bool
		wantErr    bool
	}{
		{"vulnerable lab server", true, true, false},
		{"default server", false, false, true},
	}
	for _, tt := range tests {
		t.Run("probe/"+tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.InsecureKeepPipelined = tt.insecure
			addr := startServer(t, srv)
			opts := clientOpts(t, starttls.ModeRequired)
			opts.ProbeInjection = true
			opts.InjectionWait = 300 * time.Millisecond
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, addr, opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Dial() error = %v, want error: %v", err, tt.wantErr)
			}
			inj := res.Injection
			if inj == nil || inj.Sent != "a2 NOOP" || inj.Vulnerable != tt.vulnerable {
				t.Fatalf("Injection = %+v, want Vulnerable=%v", inj, tt.vulnerable)
			}
			if tt.vulnerable {
				if inj.Reply != "a2 OK NOOP completed" {
					t.Errorf("Injection.Reply = %q", inj.Reply)
				}
				// The dialog goes on in step after the probe.
				if !res.CapsReread || !reflect.DeepEqual(res.AuthAfter, []string{"LOGIN", "PLAIN"}) {
					t.Errorf("after probe: CapsReread %v AuthAfter %q", res.CapsReread, res.AuthAfter)
				}
				if err := c.Login(ctx, "alice", "secret pw"); err != nil {
					t.Errorf("Login after probe: %v", err)
				}
				c.Close()
			} else if !inj.Closed {
				t.Errorf("Injection.Closed = false, want true (the server closed)")
			}
		})
	}
	t.Run("probe/silent safe server", func(t *testing.T) {
		// A server that discards the pipelined command and goes on with the
		// handshake: not vulnerable, session usable.
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			f.Send(greetCaps)
			f.Expect("a1 STARTTLS")
			f.Expect("a2 NOOP")
			f.Send("a1 OK go\r\n")
			if !f.StartTLS(st) {
				return
			}
			f.Expect("a3 CAPABILITY")
			f.Send(capsTLS + "a3 OK\r\n")
			f.Drain()
		})
		opts := clientOpts(t, starttls.ModeRequired)
		opts.ServerName = "localhost"
		opts.ProbeInjection = true
		opts.InjectionWait = 200 * time.Millisecond
		c, res, err := Dial(linetest.Ctx(t), addr, opts)
		if err != nil {
			t.Fatal(err)
		}
		c.conn.Close()
		wait()
		if res.Injection == nil || res.Injection.Vulnerable || res.Injection.Closed || !res.CapsReread {
			t.Errorf("Injection = %+v, CapsReread %v", res.Injection, res.CapsReread)
		}
	})
}

// TestClientRejectsResponseInjection: bytes after the tagged OK to
// STARTTLS and before the handshake (EAST Buffering, CL-13, CL-16, ST-04,
// nodemailer#1835 partial line) fail the upgrade.
func TestClientRejectsResponseInjection(t *testing.T) {
	tests := []struct {
		name     string
		injected string
	}{
		{"EXISTS", "* 1 EXISTS\r\n"},
		{"BYE", "* BYE close the connection please.\r\n"},
		{"caps", "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"},
		{"FETCH literal", "* 1 FETCH (BODY[] {28}\r\nFrom: Injected\r\n\r\nInjected\r\n)\r\n"},
		{"partial line", "* CAPABILITY IMAP4rev1 AUTH=XOAUTH2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send(greetCaps)
				f.Expect("a1 STARTTLS")
				f.Send("a1 OK Begin TLS\r\n" + tt.injected)
				f.Drain()
			})
			opts := clientOpts(t, starttls.ModeRequired)
			c, res, err := Dial(linetest.Ctx(t), addr, opts)
			if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) || c != nil {
				t.Fatalf("Dial() = %v, want ErrPlaintextAfterUpgrade", err)
			}
			if string(res.PlaintextAfterUpgrade) != tt.injected {
				t.Errorf("PlaintextAfterUpgrade = %q, want %q", res.PlaintextAfterUpgrade, tt.injected)
			}
			if res.Upgraded || res.UpgradeReply != "a1 OK Begin TLS" {
				t.Errorf("Upgraded = %v, UpgradeReply = %q", res.Upgraded, res.UpgradeReply)
			}
			if f := wait(); f.Plain() != "a1 STARTTLS\r\n" {
				t.Errorf("client sent %q", f.Plain())
			}
		})
	}
}

// TestRequiredNeverFallsBack: in ModeRequired a missing, refused or failed
// upgrade is an error, and nothing but the dialog up to the failure is
// sent: no credentials, no other command (CL-01…CL-05, CL-24, CL-25).
func TestRequiredNeverFallsBack(t *testing.T) {
	tests := []struct {
		name   string
		script func(f *linetest.Fake)
		sent   string
		err    error
		temp   bool
	}{
		{
			name:   "not offered",
			script: func(f *linetest.Fake) { f.Send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n") },
			err:    starttls.ErrUpgradeNotOffered,
		},
		{
			name: "stripped by a MITM (STARTTLS and LOGINDISABLED removed)",
			script: func(f *linetest.Fake) {
				f.Send(greetNoCaps)
				f.Expect("a1 CAPABILITY")
				f.Send("* CAPABILITY IMAP4rev1\r\na1 OK\r\n")
			},
			sent: "a1 CAPABILITY\r\n",
			err:  starttls.ErrUpgradeNotOffered,
		},
		{
			name: "refused NO UNAVAILABLE",
			script: func(f *linetest.Fake) {
				f.Send(greetCaps)
				f.Expect("a1 STARTTLS")
				f.Send("a1 NO [UNAVAILABLE] TLS not available\r\n")
			},
			sent: "a1 STARTTLS\r\n",
			err:  starttls.ErrUpgradeRefused,
			temp: true,
		},
		{
			name: "refused BAD (StripWithError)",
			script: func(f *linetest.Fake) {
				f.Send(greetCaps)
				f.Expect("a1 STARTTLS")
				f.Send("a1 BAD unknown command\r\n")
			},
			sent: "a1 STARTTLS\r\n",
			err:  starttls.ErrUpgradeRefused,
		},
		{
			name: "CAPABILITY and STARTTLS refused (CL-05)",
			script: func(f *linetest.Fake) {
				f.Send(greetNoCaps)
				f.Expect("a1 CAPABILITY")
				f.Send("a1 BAD unknown command\r\n")
				f.Expect("a2 STARTTLS")
				f.Send("a2 BAD unknown command\r\n")
			},
			sent: "a1 CAPABILITY\r\na2 STARTTLS\r\n",
			err:  starttls.ErrUpgradeRefused,
		},
		{
			name: "handshake failure",
			script: func(f *linetest.Fake) {
				f.Send(greetCaps)
				f.Expect("a1 STARTTLS")
				f.Send("a1 OK go\r\n")
				time.Sleep(50 * time.Millisecond)
				f.Send("this is not TLS\r\n")
			},
			sent: "a1 STARTTLS\r\n",
		},
		{
			name: "silent server",
			script: func(f *linetest.Fake) {
				f.Send(greetCaps)
				f.Expect("a1 STARTTLS")
			},
			sent: "a1 STARTTLS\r\n",
			err:  context.DeadlineExceeded,
			temp: true, // a timeout: could not check now
		},
		{
			name: "PREAUTH",
			script: func(f *linetest.Fake) {
				f.Send("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n")
			},
			err: starttls.ErrUpgradeNotOffered,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				tt.script(f)
				f.Drain()
			})
			opts := clientOpts(t, starttls.ModeRequired)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			c, res, err := Dial(ctx, addr, opts)
			if err == nil || c != nil {
				t.Fatalf("Dial() = %v, %v; want an error", c, err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("Dial() error = %v, want %v", err, tt.err)
			}
			if tt.name == "handshake failure" {
				var he *starttls.HandshakeError
				if !errors.As(err, &he) {
					t.Errorf("Dial() error = %v, want a HandshakeError", err)
				}
			}
			if starttls.IsTemporary(err) != tt.temp {
				t.Errorf("IsTemporary(%v) = %v", err, !tt.temp)
			}
			if res.Upgraded {
				t.Error("Result.Upgraded = true")
			}
			f := wait()
			// The ClientHello of the failed handshake is not a command.
			sent, _, _ := strings.Cut(f.Plain(), "\x16\x03")
			if sent != tt.sent || f.TLS() != "" {
				t.Errorf("client sent %q (and %q in TLS), want %q", sent, f.TLS(), tt.sent)
			}
		})
	}
	t.Run("own server, RefuseUpgrade", func(t *testing.T) {
		srv := newServer(t)
		srv.RefuseUpgrade = true
		_, res, err := Dial(linetest.Ctx(t), startServer(t, srv), clientOpts(t, starttls.ModeRequired))
		var ie *Error
		if !errors.Is(err, starttls.ErrUpgradeRefused) || !errors.As(err, &ie) || ie.Code != "UNAVAILABLE" || !starttls.IsTemporary(err) {
			t.Errorf("Dial() = %v, want ErrUpgradeRefused with NO [UNAVAILABLE]", err)
		}
		if !res.Offered || res.UpgradeReply != "a1 NO [UNAVAILABLE] TLS not available due to temporary reason" {
			t.Errorf("Offered %v UpgradeReply %q", res.Offered, res.UpgradeReply)
		}
	})
	t.Run("own server without TLS", func(t *testing.T) {
		srv := newServer(t)
		srv.TLSConfig = nil
		_, res, err := Dial(linetest.Ctx(t), startServer(t, srv), clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrUpgradeNotOffered) || res.Offered {
			t.Errorf("Dial() = %v, Offered %v; want ErrUpgradeNotOffered", err, res.Offered)
		}
	})
}

// TestNoCredentialsBeforeTLS: the client refuses to send credentials in
// plaintext unless ModePlain, and never LOGIN under LOGINDISABLED (CL-20);
// the server refuses plaintext login unless AllowPlaintextLogin.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	t.Run("client opportunistic without offer", func(t *testing.T) {
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			f.Send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n")
			f.Drain()
		})
		ctx := linetest.Ctx(t)
		c, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeOpportunistic))
		if err != nil || res.Upgraded || res.Offered {
			t.Fatalf("Dial() = %v, upgraded %v", err, res.Upgraded)
		}
		if err := c.Login(ctx, "alice", "secret pw"); !errors.Is(err, starttls.ErrFallbackForbidden) {
			t.Errorf("Login() = %v, want ErrFallbackForbidden", err)
		}
		c.conn.Close()
		if f := wait(); f.Plain() != "" {
			t.Errorf("client sent %q", f.Plain())
		}
	})
	for _, tt := range []struct {
		name, caps, sent string
		wantErr          bool
	}{
		{"plain mode, LOGINDISABLED with AUTH=PLAIN", "IMAP4rev1 LOGINDISABLED AUTH=PLAIN SASL-IR", "a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldCBwdw==\r\n", false},
		{"plain mode, LOGINDISABLED only", "IMAP4rev1 LOGINDISABLED", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send("* OK [CAPABILITY " + tt.caps + "] hi\r\n")
				if !tt.wantErr {
					f.Expect("a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldCBwdw==")
					f.Send("a1 OK\r\n")
				}
				f.Drain()
			})
			ctx := linetest.Ctx(t)
			c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModePlain))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Login(ctx, "alice", "secret pw"); (err != nil) != tt.wantErr {
				t.Errorf("Login() = %v, want error %v", err, tt.wantErr)
			}
			c.conn.Close()
			if f := wait(); f.Plain() != tt.sent {
				t.Errorf("client sent %q, want %q", f.Plain(), tt.sent)
			}
		})
	}
	t.Run("server", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		if r := tagged(c, "a1", "CAPABILITY"); r[0] != "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED ID ENABLE UNSELECT" {
			t.Errorf("caps before TLS = %q", r[0])
		}
		if r := tagged(c, "a2", `LOGIN alice "secret pw"`); last(r) != "a2 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections; use STARTTLS first" {
			t.Errorf("LOGIN before TLS = %q", r)
		}
		if r := tagged(c, "a3", "AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldCBwdw=="); !strings.HasPrefix(last(r), "a3 NO [PRIVACYREQUIRED]") {
			t.Errorf("AUTHENTICATE before TLS = %q", r)
		}
	})
	t.Run("server AllowPlaintextLogin", func(t *testing.T) {
		srv := newServer(t)
		srv.AllowPlaintextLogin = true
		c := dialRaw(t, startServer(t, srv))
		if r := tagged(c, "a1", "CAPABILITY"); r[0] != "* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN SASL-IR ID ENABLE UNSELECT" {
			t.Errorf("caps = %q", r[0])
		}
		if r := tagged(c, "a2", `LOGIN alice "secret pw"`); !strings.HasPrefix(last(r), "a2 OK ") {
			t.Errorf("LOGIN = %q", r)
		}
	})
}

// TestLineTooLong: both sides bound lines.
func TestLineTooLong(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		c.Write("a1 NOOP " + strings.Repeat("x", 5000) + "\r\n")
		if got := expectEOF(t, c); got != "* BYE [TOOBIG] Line too long, closing\r\n" {
			t.Errorf("server sent %q", got)
		}
	})
	t.Run("client", func(t *testing.T) {
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			f.Send("* OK " + strings.Repeat("x", 5000) + "\r\n")
			f.Drain()
		})
		_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrLineTooLong) {
			t.Errorf("Dial() = %v, want ErrLineTooLong", err)
		}
		wait()
	})
	t.Run("client caps count", func(t *testing.T) {
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			f.Send("* OK [CAPABILITY" + strings.Repeat(" X", 600) + "] hi\r\n")
			f.Drain()
		})
		_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrProtocol) {
			t.Errorf("Dial() = %v, want ErrProtocol", err)
		}
		wait()
	})
	t.Run("client untagged flood", func(t *testing.T) {
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			f.Send(greetNoCaps)
			f.Expect("a1 CAPABILITY")
			f.Send(strings.Repeat("* 1 EXISTS\r\n", 600))
			f.Drain()
		})
		_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrProtocol) {
			t.Errorf("Dial() = %v, want ErrProtocol", err)
		}
		wait()
	})
}

// TestLiteralLimits_PR09: literal sizes that do not fit, or exceed the
// caps, are refused before anything is allocated.
func TestLiteralLimits_PR09(t *testing.T) {
	for _, lit := range []string{"{4294967296}", "{99999999999999999999}", "{-1}", "{70000}"} {
		t.Run("client "+lit, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send(greetNoCaps)
				f.Expect("a1 CAPABILITY")
				f.Send("* 1 FETCH (BODY[] " + lit + "\r\n")
				f.Drain()
			})
			_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, starttls.ErrProtocol) {
				t.Errorf("Dial() = %v, want ErrProtocol", err)
			}
			wait()
		})
	}
	tests := []struct {
		name  string
		send  string
		want  string
		close bool
	}{
		{name: "uint32 overflow", send: "a1 LOGIN {4294967296}\r\n", want: "a1 BAD Invalid literal size"},
		{name: "20 digits", send: "a1 LOGIN {99999999999999999999}\r\n", want: "a1 BAD Invalid literal size"},
		{name: "negative", send: "a1 LOGIN {-1}\r\n", want: "a1 BAD Invalid literal size"},
		{name: "too big before login", send: "a1 LOGIN {2000}\r\n", want: "a1 BAD [TOOBIG] Literal too big"},
		{name: "non-sync too big before login", send: "a1 LOGIN {300+}\r\n", want: "* BYE [TOOBIG] Literal too big", close: true},
		{name: "non-sync overflow", send: "a1 LOGIN {99999999999+}\r\n", want: "* BYE Invalid literal size", close: true},
	}
	for _, tt := range tests {
		t.Run("server "+tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.AllowPlaintextLogin = true
			c := dialRaw(t, startServer(t, srv))
			c.Write(tt.send)
			if got := c.Line(); got != tt.want {
				t.Fatalf("server answered %q, want %q", got, tt.want)
			}
			if tt.close {
				expectEOF(t, c)
			} else if r := tagged(c, "a2", "NOOP"); last(r) != "a2 OK NOOP completed" {
				t.Errorf("NOOP after = %q", r)
			}
		})
	}
	t.Run("server literal login", func(t *testing.T) {
		srv := newServer(t)
		srv.AllowPlaintextLogin = true
		c := dialRaw(t, startServer(t, srv))
		c.Write("a1 LOGIN {5}\r\n")
		if got := c.Line(); got != "+ Ready for literal data" {
			t.Fatalf("continuation = %q", got)
		}
		c.Write("alice {9+}\r\nsecret pw\r\n")
		if got := c.Line(); !strings.HasPrefix(got, "a1 OK ") {
			t.Errorf("LOGIN with literals = %q", got)
		}
	})
}

// TestTLSClientHelloOnPlaintextPort: a TLS client on the STARTTLS port
// gets a clear error; plaintext on the implicit port gets no plaintext
// answer; the client in implicit mode against a plaintext server fails
// the handshake.
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		conn, err := net.Dial("tcp", startServer(t, newServer(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(linetest.Timeout))
		_, ct := linetest.TLSPair(t)
		cfg := ct.Clone()
		cfg.ServerName = "localhost"
		err = tls.Client(conn, cfg).Handshake()
		var rh tls.RecordHeaderError
		if !errors.As(err, &rh) || !strings.HasPrefix(string(rh.RecordHeader[:]), "* OK ") {
			t.Errorf("Handshake() = %v, want a RecordHeaderError showing the plaintext greeting", err)
		}
	})
	t.Run("server sees the hello", func(t *testing.T) {
		srv := newServer(t)
		c := dialRaw(t, startServer(t, srv))
		c.Write("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
		if got := expectEOF(t, c); got != "* BYE TLS received on the plaintext IMAP port; use STARTTLS, or port 993 for implicit TLS\r\n" {
			t.Errorf("server sent %q", got)
		}
	})
	t.Run("implicit server, plaintext client", func(t *testing.T) {
		srv := newServer(t)
		srv.Implicit = true
		conn, err := net.Dial("tcp", startServer(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(linetest.Timeout))
		conn.Write([]byte("a1 CAPABILITY\r\n"))
		buf := make([]byte, 512)
		n, _ := conn.Read(buf)
		if strings.Contains(string(buf[:n]), "CAPABILITY") || strings.Contains(string(buf[:n]), "OK") {
			t.Errorf("implicit server answered in plaintext: %q", buf[:n])
		}
	})
	t.Run("client implicit against plaintext", func(t *testing.T) {
		_, _, err := Dial(linetest.Ctx(t), startServer(t, newServer(t)), clientOpts(t, starttls.ModeImplicit))
		var he *starttls.HandshakeError
		var rh tls.RecordHeaderError
		if !errors.As(err, &he) || !errors.As(err, &rh) {
			t.Errorf("Dial() = %v, want a HandshakeError with a RecordHeaderError", err)
		}
	})
}

// TestCapabilitiesRereadAfterTLS: capabilities differ before and after
// TLS; the client uses only the post-TLS ones, and capabilities injected
// before TLS (untagged or in the STARTTLS OK) do not survive (CL-13,
// CL-17, CL-40).
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	st, _ := linetest.TLSPair(t)
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED AUTH=LOGIN] hi\r\n")
		f.Expect("a1 STARTTLS")
		f.Send("* CAPABILITY IMAP4rev1 AUTH=INJECTED\r\n* 54321 EXISTS\r\na1 OK [CAPABILITY IMAP4rev1 AUTH=EVIL] go\r\n")
		if !f.StartTLS(st) {
			return
		}
		f.Expect("a2 CAPABILITY")
		f.Send("* CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN AUTH=SCRAM-SHA-256\r\na2 OK\r\n")
		f.Expect("a3 AUTHENTICATE PLAIN")
		f.Send("+\r\n")
		f.Expect("AGFsaWNlAHNlY3JldCBwdw==")
		f.Send("a3 OK\r\n")
		f.Drain()
	})
	opts := clientOpts(t, starttls.ModeRequired)
	opts.ServerName = "localhost"
	ctx := linetest.Ctx(t)
	c, res, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"IMAP4REV1", "STARTTLS", "LOGINDISABLED", "AUTH=LOGIN"}; !reflect.DeepEqual(res.CapsBefore, want) {
		t.Errorf("CapsBefore = %q, want %q", res.CapsBefore, want)
	}
	if want := []string{"IMAP4REV1", "LOGINDISABLED", "AUTH=PLAIN", "AUTH=SCRAM-SHA-256"}; !reflect.DeepEqual(res.CapsAfter, want) {
		t.Errorf("CapsAfter = %q, want %q", res.CapsAfter, want)
	}
	if !reflect.DeepEqual(res.AuthBefore, []string{"LOGIN"}) || !reflect.DeepEqual(res.AuthAfter, []string{"PLAIN", "SCRAM-SHA-256"}) {
		t.Errorf("AuthBefore = %q, AuthAfter = %q", res.AuthBefore, res.AuthAfter)
	}
	if !res.CapsReread || res.OfferedAfterTLS || !res.Offered || !res.Upgraded {
		t.Errorf("Result = %+v", res)
	}
	// LOGINDISABLED after TLS: AUTHENTICATE PLAIN, not LOGIN; no SASL-IR
	// after TLS (only the injected caps had it… they had not): continuation.
	if err := c.Login(ctx, "alice", "secret pw"); err != nil {
		t.Fatal(err)
	}
	c.conn.Close()
	wait()
	t.Run("own server", func(t *testing.T) {
		srv := newServer(t)
		_, res, err := Dial(linetest.Ctx(t), startServer(t, srv), clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		if hasCap(res.CapsAfter, "STARTTLS") || hasCap(res.CapsAfter, "LOGINDISABLED") || !hasCap(res.CapsBefore, "LOGINDISABLED") || len(res.AuthBefore) != 0 {
			t.Errorf("CapsBefore %q CapsAfter %q AuthBefore %q", res.CapsBefore, res.CapsAfter, res.AuthBefore)
		}
	})
}
