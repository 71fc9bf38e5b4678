package pop3

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

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411: "STLS\r\nCAPA\r\n"
// in one write (EAST-CIT test_pop3_server, SV-03): the CAPA is never
// answered inside TLS; the server closes the connection.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	for _, pipelined := range []string{"CAPA\r\n", "USER alice\r\nPASS secret pw\r\n", "NOOP"} {
		t.Run(strings.TrimSpace(pipelined), func(t *testing.T) {
			srv := newServer(t)
			c := dialRaw(t, startServer(t, srv))
			c.Write("STLS\r\n" + pipelined)
			if got := c.Line(); got != "+OK Begin TLS negotiation now" {
				t.Fatalf("STLS = %q", got)
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
	t.Run("raw", func(t *testing.T) {
		srv := newServer(t)
		srv.InsecureKeepPipelined = true
		c := dialRaw(t, startServer(t, srv))
		c.Write("STLS\r\nCAPA\r\n")
		if got := c.Line(); got != "+OK Begin TLS negotiation now" {
			t.Fatalf("STLS = %q", got)
		}
		c.StartTLS()
		if got := c.Line(); got != "+OK Capability list follows" {
			t.Errorf("first line inside TLS = %q, want the CAPA answer", got)
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
			if inj == nil || inj.Sent != "CAPA" || inj.Vulnerable != tt.vulnerable {
				t.Fatalf("Injection = %+v, want Vulnerable=%v", inj, tt.vulnerable)
			}
			if tt.vulnerable {
				if !strings.HasPrefix(inj.Reply, "+OK Capability list follows") {
					t.Errorf("Injection.Reply = %q", inj.Reply)
				}
				// The dialog goes on in step after the probe.
				if !res.CapsReread || !reflect.DeepEqual(res.AuthAfter, []string{"USER", "PLAIN"}) {
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
		// handshake (the go-smtp way): not vulnerable, session usable.
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			st, _ := linetest.TLSPair(t)
			f.Send(greeting)
			f.Expect("CAPA")
			f.Send(capsSTLS)
			f.Expect("STLS")
			f.ReadLine() // the pipelined probe command: discarded
			f.Send("+OK\r\n")
			if !f.StartTLS(st) {
				return
			}
			f.Expect("CAPA")
			f.Send(capsTLS)
			f.Expect("QUIT")
			f.Send("+OK\r\n")
			f.Drain()
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
		if inj := res.Injection; inj == nil || inj.Vulnerable || inj.Closed || inj.Err != "" {
			t.Errorf("Injection = %+v, want not vulnerable", inj)
		}
	})
}

// TestClientRejectsResponseInjection: plaintext after the STLS go-ahead
// (EAST pop3 Buffering B_1, nodemailer#1835 partial line) fails the
// upgrade; garbage instead of a ServerHello (B_2) is a clean handshake
// error.
func TestClientRejectsResponseInjection(t *testing.T) {
	tests := []struct {
		name     string
		goAhead  string
		want     error
		injected string
	}{
		{"B_1", "+OK Begin fake TLS negotiation now.\r\n+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n", starttls.ErrPlaintextAfterUpgrade, "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"},
		{"partial line", "+OK go\r\n+OK SASL XOAUTH", starttls.ErrPlaintextAfterUpgrade, "+OK SASL XOAUTH"},
		{"B_2 garbage", "+OK Begin fake TLS negotiation now.\r\n", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send(capsSTLS)
				f.Expect("STLS")
				f.Send(tt.goAhead)
				if tt.want == nil {
					// B_2: non-TLS bytes where the ServerHello should be.
					f.Conn().Read(make([]byte, 1))
					f.Send("\xb9\xb3\xb9\xb2\xb3 this is not TLS at all\r\n")
				}
				f.Drain()
			})
			c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if c != nil {
				t.Fatal("Dial returned a client")
			}
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("Dial() error = %v, want %v", err, tt.want)
				}
				if string(res.PlaintextAfterUpgrade) != tt.injected {
					t.Errorf("PlaintextAfterUpgrade = %q, want %q", res.PlaintextAfterUpgrade, tt.injected)
				}
			} else {
				var he *starttls.HandshakeError
				if !errors.As(err, &he) {
					t.Errorf("Dial() error = %v, want *HandshakeError", err)
				}
			}
			if res.Upgraded || res.CapsAfter != nil {
				t.Errorf("Upgraded %v CapsAfter %q: injected data must not be used", res.Upgraded, res.CapsAfter)
			}
			f := wait()
			if got := f.Plain(); tt.want != nil && got != "CAPA\r\nSTLS\r\n" {
				t.Errorf("client sent %q after the injection", got)
			}
		})
	}
}

// TestRequiredNeverFallsBack: in ModeRequired a missing, refused or failed
// upgrade or a silent server is an error, and nothing else is sent (CL-07,
// CL-24, CL-25).
func TestRequiredNeverFallsBack(t *testing.T) {
	tests := []struct {
		name    string
		script  func(t testing.TB, f *linetest.Fake)
		clientT func(o *starttls.ClientOptions)
		ctxT    time.Duration
		want    error
		sent    string
	}{
		{
			name: "not offered",
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send(capsNoSTLS)
				f.Drain()
			},
			want: starttls.ErrUpgradeNotOffered, sent: "CAPA\r\n",
		},
		{
			name: "refused (O_x: STARTTLS not supported)",
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send(capsSTLS)
				f.Expect("STLS")
				f.Send("-ERR STARTTLS not supported.\r\n")
				f.Drain()
			},
			want: starttls.ErrUpgradeRefused, sent: "CAPA\r\nSTLS\r\n",
		},
		{
			name: "refused SYS/PERM, CAPA unknown",
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send("-ERR unknown command\r\n")
				f.Expect("STLS")
				f.Send("-ERR [SYS/PERM] perm alert\r\n")
				f.Drain()
			},
			want: starttls.ErrUpgradeRefused, sent: "CAPA\r\nSTLS\r\n",
		},
		{
			name: "handshake failure (untrusted certificate)",
			script: func(t testing.TB, f *linetest.Fake) {
				st, _ := linetest.TLSPair(t)
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send(capsSTLS)
				f.Expect("STLS")
				f.Send("+OK\r\n")
				if f.StartTLS(st) {
					t.Error("handshake succeeded with an untrusted certificate")
				}
				f.Drain()
			},
			clientT: func(o *starttls.ClientOptions) { o.TLSConfig = nil },
			want:    &starttls.HandshakeError{}, sent: "CAPA\r\nSTLS\r\n",
		},
		{
			name: "silent server",
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send(capsSTLS)
				f.Expect("STLS")
				f.Drain()
			},
			ctxT: 300 * time.Millisecond,
			want: context.DeadlineExceeded, sent: "CAPA\r\nSTLS\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) { tt.script(t, f) })
			opts := clientOpts(t, starttls.ModeRequired)
			if tt.clientT != nil {
				tt.clientT(opts)
			}
			ctx := linetest.Ctx(t)
			if tt.ctxT > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxT)
				defer cancel()
			}
			c, res, err := Dial(ctx, addr, opts)
			if c != nil || err == nil {
				t.Fatalf("Dial() = %v, %v; want an error", c, err)
			}
			if he, ok := tt.want.(*starttls.HandshakeError); ok {
				if !errors.As(err, &he) || starttls.CertificateProblem(err) != "untrusted" {
					t.Errorf("Dial() error = %v, want an untrusted-certificate HandshakeError", err)
				}
			} else if !errors.Is(err, tt.want) {
				t.Errorf("Dial() error = %v, want %v", err, tt.want)
			}
			if res.Upgraded {
				t.Error("Upgraded = true")
			}
			f := wait()
			if got := f.Plain(); !strings.HasPrefix(got, tt.sent) {
				t.Errorf("client sent %q, want %q", got, tt.sent)
			} else if rest := got[len(tt.sent):]; rest != "" && (rest[0] != 0x16 || strings.Contains(rest, "USER") || strings.Contains(rest, "PASS")) {
				t.Errorf("client sent %q after %q", rest, tt.sent)
			}
		})
	}
}

// TestNoCredentialsBeforeTLS: the client refuses Login in plaintext unless
// ModePlain; the server refuses plaintext login unless AllowPlaintextLogin.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		for _, mode := range []starttls.Mode{starttls.ModeOpportunistic, starttls.ModePlain} {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send(capsNoSTLS)
				if mode == starttls.ModePlain {
					f.Expect("USER alice")
					f.Send("+OK\r\n")
					f.Expect("PASS secret pw")
					f.Send("+OK\r\n")
				}
				f.Expect("QUIT")
				f.Send("+OK\r\n")
				f.Drain()
			})
			opts := clientOpts(t, mode)
			ctx := linetest.Ctx(t)
			c, _, err := Dial(ctx, addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Login(ctx, "alice", "secret pw")
			if mode == starttls.ModePlain && err != nil {
				t.Errorf("%v: Login: %v", mode, err)
			}
			if mode != starttls.ModePlain && !errors.Is(err, starttls.ErrFallbackForbidden) {
				t.Errorf("%v: Login() error = %v, want ErrFallbackForbidden", mode, err)
			}
			c.Close()
			f := wait()
			if mode != starttls.ModePlain && strings.Contains(f.Plain(), "PASS") {
				t.Errorf("%v: credentials sent: %q", mode, f.Plain())
			}
			for _, ev := range opts.Transcript.Events() {
				if strings.Contains(ev.Text, "secret") {
					t.Errorf("transcript shows the password: %q", ev.Text)
				}
			}
		}
	})
	t.Run("server", func(t *testing.T) {
		for _, allow := range []bool{false, true} {
			srv := newServer(t)
			srv.AllowPlaintextLogin = allow
			c := dialRaw(t, startServer(t, srv))
			c.Cmd("CAPA")
			caps := c.UntilDot()
			if hasCap(caps, "USER") != allow || hasCap(caps, "SASL") != allow {
				t.Errorf("AllowPlaintextLogin=%v: CAPA = %q", allow, caps)
			}
			got := c.Cmd("USER alice")
			if allow != strings.HasPrefix(got, "+OK") {
				t.Errorf("AllowPlaintextLogin=%v: USER = %q", allow, got)
			}
			if !allow && got != "-ERR [AUTH] plaintext authentication disallowed, use STLS first" {
				t.Errorf("USER = %q", got)
			}
			got = c.Cmd("AUTH PLAIN AGFsaWNlAHNlY3JldCBwdw==")
			if allow != strings.HasPrefix(got, "+OK") {
				t.Errorf("AllowPlaintextLogin=%v: AUTH PLAIN = %q", allow, got)
			}
		}
	})
}

func TestLineTooLong(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		srv := newServer(t)
		c := dialRaw(t, startServer(t, srv))
		c.Write("NOOP " + strings.Repeat("x", starttls.DefaultMaxLineLength+10) + "\r\n")
		if got := c.Line(); got != "-ERR line too long, closing" {
			t.Errorf("long line: %q", got)
		}
	})
	for _, tt := range []struct{ name, greet, caps string }{
		{"client greeting", "+OK " + strings.Repeat("x", 5000) + "\r\n", ""},
		{"client CAPA line", greeting, "+OK\r\nSASL " + strings.Repeat("X ", 3000) + "\r\n.\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send(tt.greet)
				if tt.caps != "" {
					f.Expect("CAPA")
					f.Send(tt.caps)
				}
				f.Drain()
			})
			_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, starttls.ErrLineTooLong) {
				t.Errorf("Dial() error = %v, want ErrLineTooLong", err)
			}
			wait()
		})
	}
}

// TestTLSClientHelloOnPlaintextPort: an implicit-TLS client on the STLS
// port gets a clear error and a closed connection, fast (PR-27).
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	srv := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		served <- srv.ServeConn(context.Background(), conn)
	}()
	start := time.Now()
	opts := clientOpts(t, starttls.ModeImplicit)
	_, _, err = Dial(linetest.Ctx(t), l.Addr().String(), opts)
	var he *starttls.HandshakeError
	if !errors.As(err, &he) {
		t.Errorf("client: Dial() error = %v, want *HandshakeError", err)
	}
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) {
		t.Logf("client error has no RecordHeaderError: %v", err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, starttls.ErrTLSOnPlaintextPort) {
			t.Errorf("ServeConn() = %v, want ErrTLSOnPlaintextPort", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server still waiting on a ClientHello")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}

	// A ClientHello after a command, on the same line start.
	c := dialRaw(t, startServer(t, newServer(t)))
	c.Write("NOOP\r\n\x16\x03\x01\x00\x10")
	c.Line() // NOOP is refused in AUTHORIZATION
	if got := c.Line(); !strings.HasPrefix(got, "-ERR TLS received on the plaintext POP3 port") {
		t.Errorf("ClientHello: %q", got)
	}
	c.ExpectEOF()
}

// TestCapabilitiesRereadAfterTLS: capabilities from before TLS never
// survive the upgrade (RFC 2595 §4, CL-40).
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	t.Run("fake", func(t *testing.T) {
		pre := "+OK\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\nX-INJECTED\r\n.\r\n"
		post := "+OK\r\nSASL SCRAM-SHA-256 PLAIN\r\nTOP\r\n.\r\n"
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			st, _ := linetest.TLSPair(t)
			f.Send(greeting)
			f.Expect("CAPA")
			f.Send(pre)
			f.Expect("STLS")
			f.Send("+OK\r\n")
			if !f.StartTLS(st) {
				return
			}
			f.Expect("CAPA")
			f.Send(post)
			// USER was offered only before TLS: the client must use SASL.
			f.Expect("AUTH PLAIN AGFsaWNlAHNlY3JldCBwdw==")
			f.Send("+OK\r\n")
			f.Expect("QUIT")
			f.Send("+OK\r\n")
			f.Drain()
		})
		ctx := linetest.Ctx(t)
		c, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"SASL SCRAM-SHA-256 PLAIN", "TOP"}; !reflect.DeepEqual(res.CapsAfter, want) {
			t.Errorf("CapsAfter = %q, want %q", res.CapsAfter, want)
		}
		if want := []string{"SCRAM-SHA-256", "PLAIN"}; !reflect.DeepEqual(res.AuthAfter, want) {
			t.Errorf("AuthAfter = %q, want %q", res.AuthAfter, want)
		}
		if want := []string{"USER", "PLAIN", "LOGIN"}; !reflect.DeepEqual(res.AuthBefore, want) {
			t.Errorf("AuthBefore = %q, want %q", res.AuthBefore, want)
		}
		if !res.CapsReread || res.OfferedAfterTLS {
			t.Errorf("CapsReread %v OfferedAfterTLS %v", res.CapsReread, res.OfferedAfterTLS)
		}
		if err := c.Login(ctx, "alice", "secret pw"); err != nil {
			t.Errorf("Login: %v", err)
		}
		c.Close()
		wait()
	})
	t.Run("STLS after TLS reported", func(t *testing.T) {
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) { upgradeScript(capsSTLS, "+OK\r\nSTLS\r\nUSER\r\n.\r\n")(t, f) })
		c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		if !res.OfferedAfterTLS {
			t.Error("OfferedAfterTLS = false")
		}
		c.Close()
		wait()
	})
	t.Run("server", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		c.Cmd("CAPA")
		before := c.UntilDot()
		c.Cmd("STLS")
		c.StartTLS()
		c.Cmd("CAPA")
		after := c.UntilDot()
		if !hasCap(before, "STLS") || hasCap(before, "USER") || hasCap(after, "STLS") || !hasCap(after, "USER") {
			t.Errorf("CAPA before %q, after %q", before, after)
		}
	})
}

// TestProbeUpgradeRefused: the probe against a server refusing STLS fails
// fast in ModeRequired and keeps an opportunistic session in step.
func TestProbeUpgradeRefused(t *testing.T) {
	for _, mode := range []starttls.Mode{starttls.ModeRequired, starttls.ModeOpportunistic} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := newServer(t)
			srv.RefuseUpgrade = true
			addr := startServer(t, srv)
			opts := clientOpts(t, mode)
			opts.ProbeInjection = true
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, addr, opts)
			if res.Injection == nil || res.Injection.Err != "upgrade refused" || res.Injection.Vulnerable {
				t.Errorf("Injection = %+v", res.Injection)
			}
			if mode == starttls.ModeRequired {
				if !errors.Is(err, starttls.ErrUpgradeRefused) {
					t.Errorf("Dial() error = %v, want ErrUpgradeRefused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var pe *Error
			if _, _, err := c.Stat(ctx); !errors.As(err, &pe) {
				t.Errorf("Stat() error = %v, want the server's -ERR (session in step)", err)
			}
		})
	}
}
