package ftp

import (
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

const greeting = "220 fake FTP ready\r\n"

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411: FEAT pipelined
// after AUTH TLS (SECURITY SV-06) is never answered inside TLS; the
// server closes after the 234.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	for _, pipelined := range []string{"FEAT\r\n", "USER alice\r\nPASS secret pw\r\n", "PW"} {
		t.Run(strings.TrimSpace(pipelined), func(t *testing.T) {
			c := dialRaw(t, startServer(t, newServer(t)))
			c.Write("AUTH TLS\r\n" + pipelined)
			if got := c.Line(); !strings.HasPrefix(got, "234 ") {
				t.Fatalf("AUTH TLS = %q", got)
			}
			c.ExpectEOF()
		})
	}
}

// TestServerInsecureKeepPipelined: the lab knob reproduces the bug and the
// client probe reports it; against the default server the probe reports
// not vulnerable (closed).
func TestServerInsecureKeepPipelined(t *testing.T) {
	t.Run("raw", func(t *testing.T) {
		srv := newServer(t)
		srv.InsecureKeepPipelined = true
		c := dialRaw(t, startServer(t, srv))
		c.Write("AUTH TLS\r\nFEAT\r\n")
		if got := c.Line(); !strings.HasPrefix(got, "234 ") {
			t.Fatalf("AUTH TLS = %q", got)
		}
		c.StartTLS()
		if got := c.Line(); got != "211-Features:" {
			t.Errorf("first line inside TLS = %q, want the FEAT answer", got)
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
			if inj == nil || inj.Sent != "FEAT" || inj.Vulnerable != tt.vulnerable {
				t.Fatalf("Injection = %+v, want Vulnerable=%v", inj, tt.vulnerable)
			}
			if tt.vulnerable {
				if !strings.HasPrefix(inj.Reply, "211-Features:") {
					t.Errorf("Injection.Reply = %q", inj.Reply)
				}
				if !res.CapsReread || !c.DataProtected() {
					t.Errorf("after probe: CapsReread %v, protected %v", res.CapsReread, c.DataProtected())
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
}

// TestClientRejectsResponseInjection: plaintext after the 234 go-ahead,
// whole lines or a partial line without CRLF, fails the upgrade.
func TestClientRejectsResponseInjection(t *testing.T) {
	for _, injected := range []string{"211-Features:\r\n AUTH TLS\r\n211 End\r\n", "230 logged in", "2"} {
		t.Run(strings.Fields(injected)[0], func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("FEAT")
				f.Send(featPre)
				f.Expect("AUTH TLS")
				f.Send("234 go ahead\r\n" + injected)
				f.Drain()
			})
			_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) {
				t.Fatalf("Dial() error = %v, want ErrPlaintextAfterUpgrade", err)
			}
			if string(res.PlaintextAfterUpgrade) != injected {
				t.Errorf("PlaintextAfterUpgrade = %q, want %q", res.PlaintextAfterUpgrade, injected)
			}
			if got := wait().Plain(); got != "FEAT\r\nAUTH TLS\r\n" {
				t.Errorf("client sent %q", got)
			}
		})
	}
}

// TestRequiredNeverFallsBack: ModeRequired fails on every way the upgrade
// can go wrong and sends nothing more (SECURITY CL-31).
func TestRequiredNeverFallsBack(t *testing.T) {
	tests := []struct {
		name    string
		script  func(f *linetest.Fake)
		clientT func(o *starttls.ClientOptions)
		ctxT    time.Duration
		want    error
		temp    bool
		sent    string
	}{
		{"not offered", func(f *linetest.Fake) {
			f.Send(greeting)
			f.Expect("FEAT")
			f.Send("211-Features:\r\n EPSV\r\n211 End\r\n")
			f.Drain()
		}, nil, 0, starttls.ErrUpgradeNotOffered, false, "FEAT\r\n"},
		{"stripped: 500 AUTH TLS not understood", func(f *linetest.Fake) {
			f.Send(greeting)
			f.Expect("FEAT")
			f.Send("500 FEAT not understood\r\n")
			f.Expect("AUTH TLS")
			f.Send("500 AUTH TLS not understood\r\n")
			f.Drain()
		}, nil, 0, starttls.ErrUpgradeRefused, false, "FEAT\r\nAUTH TLS\r\n"},
		{"refused 431 (temporary)", func(f *linetest.Fake) {
			f.Send(greeting)
			f.Expect("FEAT")
			f.Send(featPre)
			f.Expect("AUTH TLS")
			f.Send("431 Unable to accept security mechanism\r\n")
			f.Drain()
		}, nil, 0, starttls.ErrUpgradeRefused, true, "FEAT\r\nAUTH TLS\r\n"},
		{"refused 534", func(f *linetest.Fake) {
			f.Send(greeting)
			f.Expect("FEAT")
			f.Send(featPre)
			f.Expect("AUTH TLS")
			f.Send("534 Request denied for policy reasons\r\n")
			f.Drain()
		}, nil, 0, starttls.ErrUpgradeRefused, false, "FEAT\r\nAUTH TLS\r\n"},
		{"handshake failure (untrusted certificate)", func(f *linetest.Fake) {
			st, _ := linetest.TLSPair(t)
			f.Send(greeting)
			f.Expect("FEAT")
			f.Send(featPre)
			f.Expect("AUTH TLS")
			f.Send("234 go ahead\r\n")
			if f.StartTLS(st) {
				t.Error("handshake succeeded with an untrusted certificate")
			}
			f.Drain()
		}, func(o *starttls.ClientOptions) { o.TLSConfig = nil }, 0, &starttls.HandshakeError{}, false, "FEAT\r\nAUTH TLS\r\n"},
		{"silent server", func(f *linetest.Fake) {
			f.Send(greeting)
			f.Expect("FEAT")
			f.Send(featPre)
			f.Expect("AUTH TLS")
			f.Drain()
		}, nil, 300 * time.Millisecond, context.DeadlineExceeded, true, "FEAT\r\nAUTH TLS\r\n"},
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
			if starttls.IsTemporary(err) != tt.temp {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, !tt.temp, tt.temp)
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
// ModePlain; the server refuses plaintext USER/PASS (530) unless
// AllowPlaintextLogin; the plaintext-login probe tells them apart.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
			f.Send(greeting)
			f.Expect("FEAT")
			f.Send("211 no features\r\n")
			f.Drain()
		})
		c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
		if err == nil {
			// FEAT without AUTH TLS: opportunistic goes on in plaintext.
			if res.Upgraded {
				t.Fatal("upgraded")
			}
			if err := c.Login(linetest.Ctx(t), "alice", "secret pw"); !errors.Is(err, starttls.ErrFallbackForbidden) {
				t.Errorf("Login in plaintext = %v, want ErrFallbackForbidden", err)
			}
			if _, err := c.List(linetest.Ctx(t), ""); !errors.Is(err, starttls.ErrFallbackForbidden) {
				t.Errorf("List in plaintext = %v, want ErrFallbackForbidden", err)
			}
			c.conn.Close()
		} else {
			t.Fatalf("Dial: %v", err)
		}
		if got := wait().Plain(); strings.Contains(got, "USER") || strings.Contains(got, "PASS") {
			t.Errorf("client sent %q", got)
		}
	})
	for _, allow := range []bool{false, true} {
		name := map[bool]string{false: "server default", true: "server AllowPlaintextLogin"}[allow]
		t.Run(name, func(t *testing.T) {
			srv := newServer(t)
			srv.AllowPlaintextLogin = allow
			addr := startServer(t, srv)
			c := dialRaw(t, addr)
			user, pass := cmd(c, "USER alice"), cmd(c, "PASS secret pw")
			if allow && (!strings.HasPrefix(user, "331 ") || !strings.HasPrefix(pass, "230 ")) {
				t.Errorf("USER = %q, PASS = %q; want 331, 230", user, pass)
			}
			if !allow && (!strings.HasPrefix(user, "530 ") || !strings.HasPrefix(pass, "530 ")) {
				t.Errorf("USER = %q, PASS = %q; want 530", user, pass)
			}
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			mechs, err := ProbePlaintextLogin(linetest.Ctx(t), conn, nil)
			if err != nil || (len(mechs) > 0) != allow {
				t.Errorf("ProbePlaintextLogin = %v, %v", mechs, err)
			}
		})
	}
}

// TestLineTooLong: both sides bound their lines.
func TestLineTooLong(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		c.Write("NOOP " + strings.Repeat("A", 5000) + "\r\n")
		if got := c.Line(); !strings.HasPrefix(got, "500 ") {
			t.Errorf("reply = %q, want 500", got)
		}
		c.ExpectEOF()
	})
	t.Run("client", func(t *testing.T) {
		addr, _ := linetest.FakeServer(t, func(f *linetest.Fake) {
			f.Send("220-" + strings.Repeat("x", 5000) + "\r\n220 ok\r\n")
			f.Drain()
		})
		_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrLineTooLong) {
			t.Errorf("Dial() error = %v, want ErrLineTooLong", err)
		}
	})
	t.Run("client too many lines", func(t *testing.T) {
		addr, _ := linetest.FakeServer(t, func(f *linetest.Fake) {
			f.Send(greeting)
			f.Expect("FEAT")
			f.Send("211-Features:\r\n" + strings.Repeat(" X\r\n", 600) + "211 End\r\n")
			f.Drain()
		})
		_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrProtocol) {
			t.Errorf("Dial() error = %v, want ErrProtocol", err)
		}
	})
}

// TestTLSClientHelloOnPlaintextPort: a client that expects implicit TLS
// gets a clear error at once.
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	addr := startServer(t, newServer(t))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(linetest.Timeout))
	_, ct := linetest.TLSPair(t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	start := time.Now()
	err = tls.Client(conn, cfg).Handshake()
	var rh tls.RecordHeaderError
	if !errors.As(err, &rh) {
		t.Fatalf("handshake error = %v, want a RecordHeaderError (plaintext answer)", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("server took too long to refuse")
	}
	// Our client in implicit mode reports it the same way.
	_, _, err = Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeImplicit))
	var he *starttls.HandshakeError
	if !errors.As(err, &he) {
		t.Errorf("implicit Dial on the STARTTLS port = %v, want a HandshakeError", err)
	}
}

// TestCapabilitiesRereadAfterTLS: features injected before TLS do not
// survive; the result holds what the server said over TLS.
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	pre := "211-Features:\r\n AUTH TLS\r\n INJECTED-BEFORE\r\n211 End\r\n"
	post := "211-Features:\r\n PBSZ\r\n PROT\r\n ONLY-AFTER\r\n211 End\r\n"
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		upgradeScript(t, pre, post)(f)
		f.Expect("QUIT")
		f.Send("221 bye\r\n")
	})
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	wait()
	if !slices.Contains(res.CapsBefore, "INJECTED-BEFORE") || slices.Contains(res.CapsAfter, "INJECTED-BEFORE") || !slices.Contains(res.CapsAfter, "ONLY-AFTER") {
		t.Errorf("CapsBefore %v, CapsAfter %v", res.CapsBefore, res.CapsAfter)
	}
	if !res.CapsReread || res.OfferedAfterTLS || !c.DataProtected() {
		t.Errorf("CapsReread %v, OfferedAfterTLS %v, protected %v", res.CapsReread, res.OfferedAfterTLS, c.DataProtected())
	}
	if hasFeat(res.CapsAfter, "AUTH") {
		t.Error("AUTH after TLS")
	}
}

// TestDataPortStealing: a data connection from another address than the
// control connection's peer is refused; the real client's transfer still
// works (SECURITY SV-21, data-port stealing).
func TestDataPortStealing(t *testing.T) {
	addr := startServer(t, newServer(t))
	c := dialRaw(t, addr)
	if got := cmd(c, "AUTH TLS"); !strings.HasPrefix(got, "234") {
		t.Fatal(got)
	}
	c.StartTLS()
	for _, line := range []string{"USER alice", "PASS secret pw", "PBSZ 0", "PROT P"} {
		if got := cmd(c, line); got[0] != '2' && got[0] != '3' {
			t.Fatalf("%s = %q", line, got)
		}
	}
	epsv := cmd(c, "EPSV")
	port, err := parseEPSV(epsv[4:])
	if err != nil {
		t.Fatal(err)
	}
	dataAddr := net.JoinHostPort("127.0.0.1", itoa(port))
	// The thief connects from 127.0.0.2 first.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	thief, err := d.Dial("tcp", dataAddr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	defer thief.Close()
	c.Write("RETR hello.txt\r\n")
	if got := c.Line(); !strings.HasPrefix(got, "150 ") {
		t.Fatalf("RETR = %q", got)
	}
	thief.SetDeadline(time.Now().Add(linetest.Timeout))
	if n, err := thief.Read(make([]byte, 10)); err == nil {
		t.Fatalf("thief read %d bytes", n)
	}
	dc, err := net.Dial("tcp", dataAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	_, ct := linetest.TLSPair(t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	tc := tls.Client(dc, cfg)
	tc.SetDeadline(time.Now().Add(linetest.Timeout))
	buf := make([]byte, 200)
	n, _ := readAllInto(tc, buf)
	if string(buf[:n]) != testFile {
		t.Errorf("data = %q", buf[:n])
	}
	if got := c.Line(); !strings.HasPrefix(got, "226 ") {
		t.Errorf("after transfer: %q", got)
	}
}

// TestServerDataRequiresProt: in a TLS session data transfers need PBSZ 0
// and PROT P; PROT C and PROT before PBSZ are refused (SECURITY SV-21).
func TestServerDataRequiresProt(t *testing.T) {
	srv := newServer(t)
	srv.MaxErrors = 20
	c := dialRaw(t, startServer(t, srv))
	for _, step := range []struct{ cmd, want string }{
		{"PBSZ 0", "503"}, {"PROT P", "503"},
		{"AUTH TLS", "234"},
	} {
		if got := cmd(c, step.cmd); !strings.HasPrefix(got, step.want) {
			t.Fatalf("%s = %q, want %s", step.cmd, got, step.want)
		}
	}
	c.StartTLS()
	for _, step := range []struct{ cmd, want string }{
		{"USER alice", "331"}, {"PASS secret pw", "230"},
		{"AUTH TLS", "503"}, {"PROT P", "503"}, {"PBSZ 0", "200"},
		{"PROT C", "534"}, {"EPSV", "229"}, {"RETR hello.txt", "521"},
	} {
		if got := cmd(c, step.cmd); !strings.HasPrefix(got, step.want) {
			t.Fatalf("%s = %q, want %s", step.cmd, got, step.want)
		}
	}
}
