package xmpp

import (
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

const (
	srvHeader   = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='localhost' version='1.0'>"
	featTLS     = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
	featSASL    = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
	proceed     = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	wantHeader  = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
	wantStartTL = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
)

// upToStartTLS is the plaintext part of a raw session: header, features,
// <starttls/> pipelined with more.
func upToStartTLS(c *rawClient, pipelined string) {
	c.Write(testHeader)
	c.until("</stream:features>")
	c.Write(wantStartTL + pipelined)
	c.until("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
}

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411: stanzas or a new
// stream header pipelined after <starttls/> are never processed inside
// TLS: the server closes the connection after <proceed/>.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	for _, pipelined := range []string{
		testHeader,
		"<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>",
		" ",
		"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldCBwdw==</auth>",
	} {
		t.Run(strings.TrimSpace(pipelined[:min(len(pipelined), 30)])+"…", func(t *testing.T) {
			srv := newServer(t)
			srv.Backend = &memBackend{panicOnLogin: true} // never reached
			c := dialRaw(t, startServer(t, srv))
			upToStartTLS(c, pipelined)
			_, ct := linetest.TLSPair(t)
			cfg := ct.Clone()
			cfg.ServerName = "localhost"
			tc := tls.Client(c.Conn(), cfg)
			err := tc.Handshake()
			if err == nil {
				tc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				buf := make([]byte, 100)
				n, rerr := tc.Read(buf)
				if n > 0 {
					t.Fatalf("the server answered pipelined plaintext inside TLS: %q", buf[:n])
				}
				err = rerr
			}
			if err == nil || !linetest.IsClosed(err) && !strings.Contains(err.Error(), "timeout") {
				t.Logf("handshake/read error: %v", err)
			}
		})
	}
}

// TestServerInsecureKeepPipelined: the lab knob reproduces the bug, and the
// client probe tells the vulnerable server from the safe one.
func TestServerInsecureKeepPipelined(t *testing.T) {
	t.Run("raw", func(t *testing.T) {
		srv := newServer(t)
		srv.InsecureKeepPipelined = true
		c := dialRaw(t, startServer(t, srv))
		upToStartTLS(c, testHeader)
		_, ct := linetest.TLSPair(t)
		cfg := ct.Clone()
		cfg.ServerName = "localhost"
		tc := tls.Client(c.Conn(), cfg)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		tc.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4096)
		n, err := tc.Read(buf)
		if err != nil || !strings.Contains(string(buf[:n]), "<stream:stream") {
			t.Fatalf("no answer inside TLS to the pipelined header: %q, %v", buf[:n], err)
		}
	})
	for _, tt := range []struct {
		name       string
		keep       bool
		vulnerable bool
	}{
		{"probe/vulnerable", true, true},
		{"probe/safe", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.InsecureKeepPipelined = tt.keep
			addr := startServer(t, srv)
			o := clientOpts(t, starttls.ModeRequired)
			o.ProbeInjection = true
			c, res, err := Dial(linetest.Ctx(t), addr, o)
			if res.Injection == nil {
				t.Fatalf("no probe result (err %v)", err)
			}
			p := res.Injection
			if p.Vulnerable != tt.vulnerable {
				t.Fatalf("Vulnerable = %v, want %v (%+v, err %v)", p.Vulnerable, tt.vulnerable, p, err)
			}
			if tt.vulnerable {
				if err != nil || !strings.Contains(p.Reply, "<stream:stream") || !res.CapsReread || res.CapsAfter[0] != "mechanisms" {
					t.Fatalf("vulnerable: err %v, probe %+v, caps after %v", err, p, res.CapsAfter)
				}
				c.Close()
			} else if err == nil || !p.Closed {
				t.Fatalf("safe server: err %v, probe %+v", err, p)
			}
		})
	}
	t.Run("probe/silent safe server", func(t *testing.T) {
		// A server that ignores the pipelined header (discards it, keeps
		// the connection) is not vulnerable and the dialog goes on.
		srvTLS, _ := linetest.TLSPair(t)
		addr, wait := fakeServer(t, func(f *fake) {
			f.expect(wantHeader)
			f.send(srvHeader + featTLS)
			f.expect(wantStartTL + wantHeader)
			f.send(proceed)
			if !f.startTLS(srvTLS) {
				return
			}
			f.got.Reset()
			f.expect(wantHeader)
			f.send(srvHeader + featSASL)
			f.closeStream()
		})
		o := clientOpts(t, starttls.ModeRequired)
		o.ProbeInjection = true
		c, res, err := Dial(linetest.Ctx(t), addr, o)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		wait()
		if p := res.Injection; p == nil || p.Vulnerable || p.Closed || p.Err != "" || !res.CapsReread {
			t.Fatalf("probe %+v", p)
		}
	})
}

// TestClientRejectsResponseInjection: bytes after <proceed/> and before
// the handshake fail the upgrade and are recorded, whole elements or a
// fragment.
func TestClientRejectsResponseInjection(t *testing.T) {
	for _, tt := range []struct{ name, injected string }{
		{"features", "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"},
		{"partial element", "<succ"},
		{"whitespace", "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := fakeServer(t, func(f *fake) {
				f.expect(wantHeader)
				f.send(srvHeader + featTLS)
				f.expect(wantStartTL)
				f.send(proceed + tt.injected)
				f.drain()
			})
			_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			f := wait()
			if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) {
				t.Fatalf("err = %v, want ErrPlaintextAfterUpgrade", err)
			}
			if string(res.PlaintextAfterUpgrade) != tt.injected || res.Upgraded {
				t.Errorf("PlaintextAfterUpgrade = %q, Upgraded %v", res.PlaintextAfterUpgrade, res.Upgraded)
			}
			if got := f.got.String(); got != wantHeader+wantStartTL {
				t.Errorf("client sent %q", got)
			}
		})
	}
}

// TestRequiredNeverFallsBack: ModeRequired fails, and sends nothing more,
// when the upgrade is not offered, refused, fails, or the server is silent.
func TestRequiredNeverFallsBack(t *testing.T) {
	_, clientCfg := linetest.TLSPair(t)
	tests := []struct {
		name     string
		script   func(f *fake)
		wantErr  error
		wantSent string
		timeout  time.Duration
	}{
		{
			name: "not offered",
			script: func(f *fake) {
				f.expect(wantHeader)
				f.send(srvHeader + featSASL)
				f.drain()
			},
			wantErr: starttls.ErrUpgradeNotOffered, wantSent: wantHeader,
		},
		{
			name: "refused",
			script: func(f *fake) {
				f.expect(wantHeader)
				f.send(srvHeader + featTLS)
				f.expect(wantStartTL)
				f.send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>")
				f.drain()
			},
			wantErr: starttls.ErrUpgradeRefused, wantSent: wantHeader + wantStartTL,
		},
		{
			name: "handshake failure (untrusted certificate)",
			script: func(f *fake) {
				f.expect(wantHeader)
				f.send(srvHeader + featTLS)
				f.expect(wantStartTL)
				f.send(proceed)
				st, _ := linetest.TLSPair(t)
				f.startTLS(st)
				f.drain()
			},
			wantErr: &starttls.HandshakeError{}, wantSent: wantHeader + wantStartTL,
		},
		{
			name: "silent server",
			script: func(f *fake) {
				f.expect(wantHeader)
				f.send(srvHeader + featTLS)
				f.expect(wantStartTL)
				f.drain()
			},
			wantErr: context.DeadlineExceeded, wantSent: wantHeader + wantStartTL, timeout: 500 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := fakeServer(t, tt.script)
			o := clientOpts(t, starttls.ModeRequired)
			if strings.Contains(tt.name, "untrusted") {
				o.TLSConfig = &tls.Config{RootCAs: nil, ServerName: "localhost"}
			} else {
				o.TLSConfig = clientCfg
			}
			ctx := linetest.Ctx(t)
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			c, res, err := Dial(ctx, addr, o)
			f := wait()
			if c != nil || err == nil {
				t.Fatalf("Dial succeeded")
			}
			var he *starttls.HandshakeError
			if _, ok := tt.wantErr.(*starttls.HandshakeError); ok {
				if !errors.As(err, &he) {
					t.Fatalf("err = %v, want a HandshakeError", err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if res == nil || res.Upgraded {
				t.Errorf("Result %+v", res)
			}
			if got := f.got.String(); got != tt.wantSent {
				t.Errorf("client sent %q, want %q", got, tt.wantSent)
			}
		})
	}
}

// TestNoCredentialsBeforeTLS: the client never sends a password without
// TLS unless ModePlain; the server refuses plaintext login unless
// AllowPlaintextLogin.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		srv := newServer(t)
		srv.TLSConfig = nil
		srv.AllowPlaintextLogin = true
		addr := startServer(t, srv)
		ctx := linetest.Ctx(t)
		tr := &starttls.Transcript{}
		o := clientOpts(t, starttls.ModeOpportunistic)
		o.Transcript = tr
		c, res, err := Dial(ctx, addr, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if res.Upgraded || len(res.AuthBefore) == 0 {
			t.Fatalf("Upgraded %v AuthBefore %v", res.Upgraded, res.AuthBefore)
		}
		if err := c.Login(ctx, "alice", "secret pw"); !errors.Is(err, starttls.ErrFallbackForbidden) {
			t.Fatalf("Login = %v, want ErrFallbackForbidden", err)
		}
		if strings.Contains(trText(tr), "<auth") {
			t.Errorf("credentials sent:\n%s", trText(tr))
		}
	})
	t.Run("server", func(t *testing.T) {
		const auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldCBwdw==</auth>"
		for _, allow := range []bool{false, true} {
			srv := newServer(t)
			srv.AllowPlaintextLogin = allow
			c := dialRaw(t, startServer(t, srv))
			c.Write(testHeader)
			feats := c.until("</stream:features>")
			if strings.Contains(feats, "<mechanisms") != allow || strings.Contains(feats, "<required/>") == allow {
				t.Errorf("allow %v: features %q", allow, feats)
			}
			c.Write(auth)
			got := c.until("/>")
			if allow && !strings.Contains(got, "<success") {
				t.Errorf("AllowPlaintextLogin: %q", got)
			}
			if !allow && !strings.Contains(got, "<encryption-required/>") {
				t.Errorf("plaintext login: %q", got)
			}
		}
	})
}

// TestLineTooLong: an element beyond the size bound is refused on both
// sides.
func TestLineTooLong(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		srv := newServer(t)
		srv.MaxLineLength = 1024
		c := dialRaw(t, startServer(t, srv))
		c.Write(testHeader)
		c.until("</stream:features>")
		c.Write("<message>" + strings.Repeat("x", 2000) + "</message>")
		got, _ := c.readAll()
		if !strings.Contains(got, "<policy-violation") {
			t.Errorf("got %q", got)
		}
	})
	for _, tt := range []struct{ name, send string }{
		{"features", srvHeader + "<stream:features>" + strings.Repeat("<x/>", 20000) + "</stream:features>"},
		{"header", "<?xml version='1.0'?><stream:stream xmlns='jabber:client' a='" + strings.Repeat("a", 70000) + "'>"},
		{"whitespace", srvHeader + strings.Repeat(" ", 70000)},
	} {
		t.Run("client/"+tt.name, func(t *testing.T) {
			addr, wait := fakeServer(t, func(f *fake) {
				f.expect(wantHeader)
				f.send(tt.send)
				f.drain()
			})
			_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			wait()
			if !errors.Is(err, starttls.ErrLineTooLong) {
				t.Fatalf("err = %v, want ErrLineTooLong", err)
			}
		})
	}
}

// TestTLSClientHelloOnPlaintextPort: a TLS client on the STARTTLS port
// gets an error and the connection is closed.
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	srv := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		done <- srv.ServeConn(context.Background(), c)
	}()
	_, ct := linetest.TLSPair(t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(linetest.Timeout))
	if err := tls.Client(conn, cfg).Handshake(); err == nil {
		t.Fatal("handshake succeeded on the plaintext port")
	}
	if err := <-done; !errors.Is(err, starttls.ErrTLSOnPlaintextPort) {
		t.Fatalf("ServeConn = %v, want ErrTLSOnPlaintextPort", err)
	}
}

// TestCapabilitiesRereadAfterTLS: features are read again over TLS; what
// the server said before TLS (here: PLAIN, maybe injected) does not
// survive.
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	t.Run("fake", func(t *testing.T) {
		srvTLS, _ := linetest.TLSPair(t)
		addr, wait := fakeServer(t, func(f *fake) {
			f.expect(wantHeader)
			f.send(srvHeader + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>")
			f.expect(wantStartTL)
			f.send(proceed)
			if !f.startTLS(srvTLS) {
				return
			}
			f.got.Reset()
			f.expect(wantHeader)
			f.send(srvHeader + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism></mechanisms><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>")
			f.closeStream()
		})
		ctx := linetest.Ctx(t)
		c, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(res.AuthBefore, ",") != "PLAIN" || strings.Join(res.AuthAfter, ",") != "SCRAM-SHA-256" || !res.CapsReread || !res.OfferedAfterTLS || res.UpgradeRequired {
			t.Errorf("before %v after %v reread %v offeredAfter %v required %v", res.AuthBefore, res.AuthAfter, res.CapsReread, res.OfferedAfterTLS, res.UpgradeRequired)
		}
		if err := c.Login(ctx, "alice", "secret pw"); err == nil || !strings.Contains(err.Error(), "PLAIN not offered") {
			t.Errorf("Login = %v, want PLAIN not offered", err)
		}
		c.Close()
		if f := wait(); strings.Contains(f.got.String(), "<auth") {
			t.Errorf("client sent %q", f.got.String())
		}
	})
	t.Run("server", func(t *testing.T) {
		c, res, err := Dial(linetest.Ctx(t), startServer(t, newServer(t)), clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if res.OfferedAfterTLS || !res.CapsReread || strings.Join(res.CapsBefore, ",") != "starttls" || strings.Join(res.CapsAfter, ",") != "mechanisms" {
			t.Errorf("%+v", res)
		}
	})
}
