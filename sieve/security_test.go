package sieve

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

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411: "STARTTLS\r\n"
// and another command in one write: the command is never answered inside
// TLS; the server closes the connection.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	for _, pipelined := range []string{"CAPABILITY\r\n", "AUTHENTICATE \"PLAIN\" \"AGFsaWNlAHNlY3JldCBwdw==\"\r\n", "NOOP"} {
		t.Run(strings.TrimSpace(pipelined), func(t *testing.T) {
			c := dialRaw(t, startServer(t, newServer(t)))
			c.Write("STARTTLS\r\n" + pipelined)
			if got := c.Line(); got != `OK "Begin TLS negotiation now"` {
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
					t.Fatalf("server answered inside TLS: %q", buf[:n])
				}
				t.Fatal("handshake succeeded after pipelined plaintext, want the connection closed")
			}
		})
	}
}

// TestServerInsecureKeepPipelined: the lab knob really reproduces
// CVE-2011-0411 (two capability lists over TLS before the client speaks),
// the client probe sees it, and reports the default server safe.
func TestServerInsecureKeepPipelined(t *testing.T) {
	t.Run("raw", func(t *testing.T) {
		srv := newServer(t)
		srv.InsecureKeepPipelined = true
		c := dialRaw(t, startServer(t, srv))
		c.Write("STARTTLS\r\nCAPABILITY\r\n")
		if got := c.Line(); got != `OK "Begin TLS negotiation now"` {
			t.Fatalf("STARTTLS = %q", got)
		}
		c.StartTLS()
		if got := until(c); got[len(got)-1] != `OK "TLS negotiation successful"` {
			t.Errorf("first list inside TLS = %q", got)
		}
		if got := until(c); got[len(got)-1] != `OK "Capability completed"` {
			t.Errorf("second list inside TLS = %q, want the CAPABILITY answer", got)
		}
	})
	for _, tt := range []struct {
		name       string
		insecure   bool
		vulnerable bool
		wantErr    bool
	}{
		{"vulnerable lab server", true, true, false},
		{"default server", false, false, true},
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
			if (err != nil) != tt.wantErr {
				t.Fatalf("Dial() error = %v, want error: %v", err, tt.wantErr)
			}
			inj := res.Injection
			if inj == nil || inj.Sent != "CAPABILITY" || inj.Vulnerable != tt.vulnerable {
				t.Fatalf("Injection = %+v, want Vulnerable=%v", inj, tt.vulnerable)
			}
			if tt.vulnerable {
				if !strings.Contains(inj.Reply, "Capability completed") {
					t.Errorf("Injection.Reply = %q", inj.Reply)
				}
				if !res.CapsReread || !reflect.DeepEqual(res.AuthAfter, []string{"PLAIN"}) {
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
		// Discards the pipelined command, goes on: one list, not vulnerable.
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			st, _ := linetest.TLSPair(t)
			f.Send(greeting)
			f.Expect("STARTTLS")
			f.ReadLine() // the pipelined command, discarded
			f.Send("OK\r\n")
			if !f.StartTLS(st) {
				return
			}
			f.Send(capsTLS)
			f.Expect("LOGOUT")
			f.Send("OK\r\n")
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
		if !res.CapsReread || !reflect.DeepEqual(res.AuthAfter, []string{"PLAIN", "LOGIN"}) {
			t.Errorf("CapsReread %v AuthAfter %q", res.CapsReread, res.AuthAfter)
		}
	})
}

// TestClientRejectsResponseInjection: plaintext after the OK to STARTTLS
// fails the upgrade, a partial line too; garbage instead of a ServerHello
// is a clean handshake error.
func TestClientRejectsResponseInjection(t *testing.T) {
	tests := []struct {
		name     string
		goAhead  string
		want     error
		injected string
	}{
		{"injected caps", "OK\r\n\"SASL\" \"PLAIN\"\r\nOK\r\n", starttls.ErrPlaintextAfterUpgrade, "\"SASL\" \"PLAIN\"\r\nOK\r\n"},
		{"partial line", "OK\r\n\"SASL\" \"PL", starttls.ErrPlaintextAfterUpgrade, "\"SASL\" \"PL"},
		{"garbage", "OK\r\n", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("STARTTLS")
				f.Send(tt.goAhead)
				if tt.want == nil {
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
				t.Errorf("Upgraded %v CapsAfter %q", res.Upgraded, res.CapsAfter)
			}
			f := wait()
			if got := f.Plain(); tt.want != nil && got != "STARTTLS\r\n" {
				t.Errorf("client sent %q after the injection", got)
			}
		})
	}
}

// TestRequiredNeverFallsBack: not offered, refused, handshake failure or a
// silent server is an error in ModeRequired, and nothing else is sent.
func TestRequiredNeverFallsBack(t *testing.T) {
	tests := []struct {
		name    string
		script  func(f *linetest.Fake)
		clientT func(o *starttls.ClientOptions)
		ctxT    time.Duration
		want    error
		sent    string
	}{
		{
			name:   "not offered",
			script: func(f *linetest.Fake) { f.Send(greetingNoTL); f.Drain() },
			want:   starttls.ErrUpgradeNotOffered, sent: "",
		},
		{
			name: "refused",
			script: func(f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("STARTTLS")
				f.Send("NO (TRYLATER) \"not now\"\r\n")
				f.Drain()
			},
			want: starttls.ErrUpgradeRefused, sent: "STARTTLS\r\n",
		},
		{
			name: "BYE",
			script: func(f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("STARTTLS")
				f.Send("BYE \"no TLS here\"\r\n")
				f.Drain()
			},
			want: starttls.ErrUpgradeRefused, sent: "STARTTLS\r\n",
		},
		{
			name: "handshake failure (untrusted certificate)",
			script: func(f *linetest.Fake) {
				st, _ := linetest.TLSPair(t)
				f.Send(greeting)
				f.Expect("STARTTLS")
				f.Send("OK\r\n")
				if f.StartTLS(st) {
					t.Error("handshake succeeded with an untrusted certificate")
				}
				f.Drain()
			},
			clientT: func(o *starttls.ClientOptions) { o.TLSConfig = nil },
			want:    &starttls.HandshakeError{}, sent: "STARTTLS\r\n",
		},
		{
			name: "silent server",
			script: func(f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("STARTTLS")
				f.Drain()
			},
			ctxT: 300 * time.Millisecond,
			want: context.DeadlineExceeded, sent: "STARTTLS\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, tt.script)
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
			if tt.name == "refused" && !starttls.IsTemporary(err) {
				t.Errorf("TRYLATER refusal not temporary: %v", err)
			}
			if res.Upgraded {
				t.Error("Upgraded = true")
			}
			f := wait()
			if got := f.Plain(); !strings.HasPrefix(got, tt.sent) {
				t.Errorf("client sent %q, want %q", got, tt.sent)
			} else if rest := got[len(tt.sent):]; rest != "" && (rest[0] != 0x16 || strings.Contains(rest, "AUTHENTICATE")) {
				t.Errorf("client sent %q after %q", rest, tt.sent)
			}
		})
	}
}

// TestNoCredentialsBeforeTLS: the client refuses Login in plaintext unless
// ModePlain; the server hides SASL and refuses AUTHENTICATE before TLS
// unless AllowPlaintextLogin.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		for _, mode := range []starttls.Mode{starttls.ModeOpportunistic, starttls.ModePlain} {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send(greetingNoTL)
				if mode == starttls.ModePlain {
					f.Expect(`AUTHENTICATE "PLAIN" "AGFsaWNlAHNlY3JldCBwdw=="`)
					f.Send("OK\r\n")
				}
				f.Expect("LOGOUT")
				f.Send("OK\r\n")
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
			if mode != starttls.ModePlain && strings.Contains(f.Plain(), "AUTHENTICATE") {
				t.Errorf("%v: credentials sent: %q", mode, f.Plain())
			}
			for _, ev := range opts.Transcript.Events() {
				if strings.Contains(ev.Text, "AGFsaWNlAHNlY3JldCBwdw") {
					t.Errorf("transcript shows the credentials: %q", ev.Text)
				}
			}
		}
	})
	t.Run("server", func(t *testing.T) {
		for _, allow := range []bool{false, true} {
			srv := newServer(t)
			srv.AllowPlaintextLogin = allow
			c := dialRaw(t, startServer(t, srv))
			c.Write("CAPABILITY\r\n")
			caps := strings.Join(until(c), "\n")
			if strings.Contains(caps, `"SASL" "PLAIN"`) != allow || strings.Contains(caps, `"SASL" ""`) == allow {
				t.Errorf("AllowPlaintextLogin=%v: CAPABILITY = %q", allow, caps)
			}
			got := cmd(c, `AUTHENTICATE "PLAIN" "AGFsaWNlAHNlY3JldCBwdw=="`)
			if allow != (got == `OK "Logged in"`) {
				t.Errorf("AllowPlaintextLogin=%v: AUTHENTICATE = %q", allow, got)
			}
			if !allow && got != `NO (ENCRYPT-NEEDED) "authentication requires TLS: use STARTTLS first"` {
				t.Errorf("AUTHENTICATE = %q", got)
			}
		}
	})
}

func TestLineTooLong(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		c.Write("NOOP " + strings.Repeat("x", starttls.DefaultMaxLineLength+10) + "\r\n")
		if got := c.Line(); got != `BYE "line too long, closing"` {
			t.Errorf("long line: %q", got)
		}
	})
	t.Run("server literal", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		c.Write("CHECKSCRIPT {99999999+}\r\n")
		if got := c.Line(); got != `BYE "malformed command, closing"` {
			t.Errorf("huge literal: %q", got)
		}
		c.ExpectEOF()
	})
	for _, tt := range []struct{ name, greet string }{
		{"client greeting", "\"IMPLEMENTATION\" \"" + strings.Repeat("x", 5000) + "\"\r\nOK\r\n"},
		{"client quoted string", "\"SASL\" \"" + strings.Repeat("X ", 1000) + "\"\r\nOK\r\n"},
		{"client literal", "\"SASL\" {99999999}\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) { f.Send(tt.greet); f.Drain() })
			_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, starttls.ErrLineTooLong) && !errors.Is(err, starttls.ErrProtocol) {
				t.Errorf("Dial() error = %v, want ErrLineTooLong or ErrProtocol", err)
			}
			wait()
		})
	}
}

// TestTLSClientHelloOnPlaintextPort: an implicit-TLS client on the
// STARTTLS port gets a clear error and a closed connection, fast.
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
	_, _, err = Dial(linetest.Ctx(t), l.Addr().String(), clientOpts(t, starttls.ModeImplicit))
	var he *starttls.HandshakeError
	if !errors.As(err, &he) {
		t.Errorf("client: Dial() error = %v, want *HandshakeError", err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, starttls.ErrTLSOnPlaintextPort) {
			t.Errorf("ServeConn() = %v, want ErrTLSOnPlaintextPort", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server still waiting on a ClientHello")
	}

	c := dialRaw(t, startServer(t, newServer(t)))
	c.Write("NOOP\r\n\x16\x03\x01\x00\x10")
	c.Line()
	if got := c.Line(); !strings.HasPrefix(got, `BYE "TLS received on the plaintext ManageSieve port`) {
		t.Errorf("ClientHello: %q", got)
	}
	c.ExpectEOF()
}

// TestCapabilitiesRereadAfterTLS: capabilities from before TLS never
// survive the upgrade (RFC 5804 §2.2).
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	t.Run("fake", func(t *testing.T) {
		pre := "\"SASL\" \"PLAIN LOGIN\"\r\n\"X-INJECTED\" \"1\"\r\n\"STARTTLS\"\r\nOK\r\n"
		post := "\"SASL\" \"SCRAM-SHA-1\"\r\n\"VERSION\" \"1.0\"\r\nOK\r\n"
		addr, wait := linetest.FakeServer(t, upgradeScript(t, pre, post))
		ctx := linetest.Ctx(t)
		c, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"SASL SCRAM-SHA-1", "VERSION 1.0"}; !reflect.DeepEqual(res.CapsAfter, want) {
			t.Errorf("CapsAfter = %q, want %q", res.CapsAfter, want)
		}
		if want := []string{"PLAIN", "LOGIN"}; !reflect.DeepEqual(res.AuthBefore, want) {
			t.Errorf("AuthBefore = %q", res.AuthBefore)
		}
		// PLAIN was offered only before TLS: Login must refuse.
		if err := c.Login(ctx, "alice", "secret pw"); err == nil {
			t.Error("Login used a mechanism offered only before TLS")
		}
		c.Close()
		wait()
	})
	t.Run("STARTTLS after TLS reported", func(t *testing.T) {
		addr, wait := linetest.FakeServer(t, upgradeScript(t, greeting, "\"STARTTLS\"\r\n\"SASL\" \"PLAIN\"\r\nOK\r\n"))
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
		c.Write("CAPABILITY\r\n")
		before := strings.Join(until(c), "\n")
		cmd(c, "STARTTLS")
		c.StartTLS()
		after := strings.Join(until(c), "\n") // unasked, RFC 5804 §2.2
		if !strings.Contains(before, `"STARTTLS"`) || !strings.Contains(before, `"SASL" ""`) ||
			strings.Contains(after, `"STARTTLS"`) || !strings.Contains(after, `"SASL" "PLAIN"`) {
			t.Errorf("caps before %q, after %q", before, after)
		}
		if got := cmd(c, "STARTTLS"); got != `NO "TLS is already active"` {
			t.Errorf("second STARTTLS = %q", got)
		}
	})
}

// TestProbeUpgradeRefused: the probe against a server refusing STARTTLS
// fails fast in ModeRequired and keeps an opportunistic session in step.
func TestProbeUpgradeRefused(t *testing.T) {
	for _, mode := range []starttls.Mode{starttls.ModeRequired, starttls.ModeOpportunistic} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := newServer(t)
			srv.RefuseUpgrade = true
			opts := clientOpts(t, mode)
			opts.ProbeInjection = true
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, startServer(t, srv), opts)
			if res.Injection == nil || res.Injection.Err != "upgrade refused" || res.Injection.Vulnerable {
				t.Errorf("Injection = %+v", res.Injection)
			}
			if mode == starttls.ModeRequired {
				if !errors.Is(err, starttls.ErrUpgradeRefused) || !starttls.IsTemporary(err) {
					t.Errorf("Dial() error = %v, want a temporary ErrUpgradeRefused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var e *Error
			if _, err := c.ListScripts(ctx); !errors.As(err, &e) || e.Text != "authenticate first" {
				t.Errorf("ListScripts() error = %v, want the server's NO (session in step)", err)
			}
		})
	}
}
