package pop3

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

const (
	greeting   = "+OK POP3 server ready.\r\n"
	capsSTLS   = "+OK\r\nTOP\r\nUSER\r\nSTLS\r\n.\r\n"
	capsNoSTLS = "+OK\r\nTOP\r\nUSER\r\nSASL PLAIN\r\n.\r\n"
	capsTLS    = "+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL PLAIN LOGIN\r\nUIDL\r\n.\r\n"
)

// upgradeScript is the normal server side of a successful STLS upgrade.
func upgradeScript(preCaps, postCaps string) func(t testing.TB, f *linetest.Fake) {
	return func(t testing.TB, f *linetest.Fake) {
		st, _ := linetest.TLSPair(t)
		f.Send(greeting)
		f.Expect("CAPA")
		f.Send(preCaps)
		f.Expect("STLS")
		f.Send("+OK Begin TLS negotiation now\r\n")
		if !f.StartTLS(st) {
			t.Error("fake: handshake failed")
			return
		}
		f.Expect("CAPA")
		f.Send(postCaps)
		f.Expect("QUIT")
		f.Send("+OK bye\r\n")
		f.Drain()
	}
}

// TestClientTranscript checks the client's bytes exactly against scripted
// servers.
func TestClientTranscript(t *testing.T) {
	tests := []struct {
		name      string
		mode      starttls.Mode
		script    func(t testing.TB, f *linetest.Fake)
		wantErr   error
		wantPlain string
		wantTLS   string
		check     func(t *testing.T, res *starttls.Result)
	}{
		{
			name:      "required upgrade",
			mode:      starttls.ModeRequired,
			script:    upgradeScript(capsSTLS, capsTLS),
			wantPlain: "CAPA\r\nSTLS\r\n",
			wantTLS:   "CAPA\r\nQUIT\r\n",
			check: func(t *testing.T, res *starttls.Result) {
				want := &starttls.Result{
					Protocol: "pop3", Mode: starttls.ModeRequired,
					Greeting:   "+OK POP3 server ready.",
					CapsBefore: []string{"TOP", "USER", "STLS"},
					CapsAfter:  []string{"TOP", "USER", "SASL PLAIN LOGIN", "UIDL"},
					AuthBefore: []string{"USER"},
					AuthAfter:  []string{"USER", "PLAIN", "LOGIN"},
					Offered:    true, UpgradeReply: "+OK Begin TLS negotiation now",
					Upgraded: true, CapsReread: true,
				}
				got := *res
				got.TLS, got.Transcript = nil, nil
				if !reflect.DeepEqual(&got, want) {
					t.Errorf("Result = %+v, want %+v", got, *want)
				}
				if res.TLS == nil {
					t.Error("Result.TLS is nil")
				}
			},
		},
		{
			name: "APOP timestamp in greeting",
			mode: starttls.ModeRequired,
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send("+OK POP3 server ready. <1234.123456789@example.org>\r\n")
				f.Expect("CAPA")
				f.Send(capsNoSTLS)
				f.Drain()
			},
			wantErr:   starttls.ErrUpgradeNotOffered,
			wantPlain: "CAPA\r\n",
		},
		{
			name: "CAPA refused, STLS tried anyway",
			mode: starttls.ModeRequired,
			script: func(t testing.TB, f *linetest.Fake) {
				st, _ := linetest.TLSPair(t)
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send("-ERR unknown command\r\n")
				f.Expect("STLS")
				f.Send("+OK go\r\n")
				if !f.StartTLS(st) {
					return
				}
				f.Expect("CAPA")
				f.Send("-ERR what?\r\n")
				f.Expect("QUIT")
				f.Send("+OK\r\n")
				f.Drain()
			},
			wantPlain: "CAPA\r\nSTLS\r\n",
			wantTLS:   "CAPA\r\nQUIT\r\n",
			check: func(t *testing.T, res *starttls.Result) {
				if res.Offered || !res.Upgraded || res.CapsReread {
					t.Errorf("Offered, Upgraded, CapsReread = %v, %v, %v; want false, true, false", res.Offered, res.Upgraded, res.CapsReread)
				}
			},
		},
		{
			name: "greeting -ERR SYS/TEMP",
			mode: starttls.ModeRequired,
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send("-ERR [SYS/TEMP] too busy\r\n")
				f.Drain()
			},
			check: func(t *testing.T, res *starttls.Result) {
				if res.Greeting != "-ERR [SYS/TEMP] too busy" {
					t.Errorf("Greeting = %q", res.Greeting)
				}
			},
		},
		{
			name: "unsolicited lines after greeting (PR-11)",
			mode: starttls.ModeRequired,
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send(greeting + "+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n")
				f.Drain()
			},
			wantErr: starttls.ErrProtocol,
		},
		{
			name: "greeting is not +OK (IMAP server)",
			mode: starttls.ModeRequired,
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send("* OK IMAP4rev1 ready\r\n")
				f.Drain()
			},
			wantErr: starttls.ErrProtocol,
		},
		{
			name: "opportunistic without offer stays plaintext",
			mode: starttls.ModeOpportunistic,
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send(capsNoSTLS)
				f.Expect("QUIT")
				f.Send("+OK\r\n")
				f.Drain()
			},
			wantPlain: "CAPA\r\nQUIT\r\n",
			check: func(t *testing.T, res *starttls.Result) {
				if res.Offered || res.Upgraded || !reflect.DeepEqual(res.AuthBefore, []string{"USER", "PLAIN"}) {
					t.Errorf("Offered %v Upgraded %v AuthBefore %q", res.Offered, res.Upgraded, res.AuthBefore)
				}
			},
		},
		{
			name: "opportunistic, STLS refused",
			mode: starttls.ModeOpportunistic,
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send(capsSTLS)
				f.Expect("STLS")
				f.Send("-ERR [SYS/TEMP] not now\r\n")
				f.Expect("QUIT")
				f.Send("+OK\r\n")
				f.Drain()
			},
			wantPlain: "CAPA\r\nSTLS\r\nQUIT\r\n",
		},
		{
			name: "CAPA too long (PR-08)",
			mode: starttls.ModeRequired,
			script: func(t testing.TB, f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send("+OK\r\nSASL" + strings.Repeat(" X", 100) + "\r\n" + strings.Repeat("A\r\n", 600) + ".\r\n")
				f.Drain()
			},
			wantErr:   starttls.ErrProtocol,
			wantPlain: "CAPA\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) { tt.script(t, f) })
			opts := clientOpts(t, tt.mode)
			c, res, err := Dial(linetest.Ctx(t), addr, opts)
			if res == nil {
				t.Fatal("Result is nil")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Dial() error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && tt.name == "greeting -ERR SYS/TEMP" {
				if err == nil || !starttls.IsTemporary(err) {
					t.Errorf("Dial() error = %v, want a temporary error", err)
				}
			} else if tt.wantErr == nil && err != nil {
				t.Fatalf("Dial() error = %v", err)
			}
			if c != nil {
				c.Close()
			}
			f := wait()
			if tt.wantPlain != "" || tt.wantErr != nil {
				if got := f.Plain(); got != tt.wantPlain {
					t.Errorf("client sent in plaintext %q, want %q", got, tt.wantPlain)
				}
			}
			if got := f.TLS(); got != tt.wantTLS {
				t.Errorf("client sent inside TLS %q, want %q", got, tt.wantTLS)
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

func TestClientLoginTranscript(t *testing.T) {
	tests := []struct {
		name     string
		postCaps string
		server   func(f *linetest.Fake)
		wantTLS  string
	}{
		{
			name:     "USER/PASS",
			postCaps: capsTLS,
			server: func(f *linetest.Fake) {
				f.Expect("USER alice")
				f.Send("+OK\r\n")
				f.Expect("PASS secret pw")
				f.Send("+OK maildrop has 1 message (5 octets)\r\n")
				f.Expect("STAT")
				f.Send("+OK 1 5\r\n")
				f.Expect("RETR 1")
				f.Send("+OK\r\nab\r\n..c\r\n.\r\n")
			},
			wantTLS: "CAPA\r\nUSER alice\r\nPASS secret pw\r\nSTAT\r\nRETR 1\r\nQUIT\r\n",
		},
		{
			name:     "AUTH PLAIN",
			postCaps: "+OK\r\nSASL PLAIN\r\n.\r\n",
			server: func(f *linetest.Fake) {
				f.Expect("AUTH PLAIN AGFsaWNlAHNlY3JldCBwdw==")
				f.Send("+OK\r\n")
				f.Expect("STAT")
				f.Send("+OK 1 5\r\n")
				f.Expect("RETR 1")
				f.Send("+OK\r\nab\r\n..c\r\n.\r\n")
			},
			wantTLS: "CAPA\r\nAUTH PLAIN AGFsaWNlAHNlY3JldCBwdw==\r\nSTAT\r\nRETR 1\r\nQUIT\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				st, _ := linetest.TLSPair(t)
				f.Send(greeting)
				f.Expect("CAPA")
				f.Send(capsSTLS)
				f.Expect("STLS")
				f.Send("+OK\r\n")
				if !f.StartTLS(st) {
					return
				}
				f.Expect("CAPA")
				f.Send(tt.postCaps)
				tt.server(f)
				f.Expect("QUIT")
				f.Send("+OK\r\n")
				f.Drain()
			})
			opts := clientOpts(t, starttls.ModeRequired)
			ctx := linetest.Ctx(t)
			c, _, err := Dial(ctx, addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Login(ctx, "alice", "secret pw"); err != nil {
				t.Fatalf("Login: %v", err)
			}
			n, size, err := c.Stat(ctx)
			if n != 1 || size != 5 || err != nil {
				t.Errorf("Stat() = %d, %d, %v; want 1, 5, nil", n, size, err)
			}
			msg, err := c.Retr(ctx, 1)
			if string(msg) != "ab\r\n.c\r\n" || err != nil {
				t.Errorf("Retr(1) = %q, %v; want %q", msg, err, "ab\r\n.c\r\n")
			}
			c.Close()
			f := wait()
			if got := f.TLS(); got != tt.wantTLS {
				t.Errorf("client sent inside TLS %q, want %q", got, tt.wantTLS)
			}
			for _, ev := range opts.Transcript.Events() {
				if strings.Contains(ev.Text, "secret") || strings.Contains(ev.Text, "AGFsaWNl") {
					t.Errorf("transcript shows the password: %q", ev.Text)
				}
			}
		})
	}
}

func TestClientLoginErrors(t *testing.T) {
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		st, _ := linetest.TLSPair(t)
		f.Send(greeting)
		f.Expect("CAPA")
		f.Send(capsSTLS)
		f.Expect("STLS")
		f.Send("+OK\r\n")
		if !f.StartTLS(st) {
			return
		}
		f.Expect("CAPA")
		f.Send(capsTLS)
		f.Expect("USER alice")
		f.Send("+OK\r\n")
		f.Expect("PASS wrong")
		f.Send("-ERR [AUTH] invalid password\r\n")
		f.Expect("QUIT")
		f.Send("+OK\r\n")
		f.Drain()
	})
	ctx := linetest.Ctx(t)
	c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Login(ctx, "alice", "wrong")
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != "AUTH" {
		t.Errorf("Login() error = %v, want *Error with code AUTH", err)
	}
	if err := c.Login(ctx, "alice\r\nDELE 1", "x"); err == nil {
		t.Error("Login accepted a username with CRLF")
	}
	c.Close()
	wait()
}

// TestClientSilentServer: a server that never answers STLS (a MITM dropping
// it, STRIPTLS IRC.StripWithSilentDrop) ends with a timeout.
func TestClientSilentServer(t *testing.T) {
	release := make(chan struct{})
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Send(greeting)
		f.Expect("CAPA")
		f.Send(capsSTLS)
		f.Expect("STLS")
		<-release
		f.Drain()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial() error = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Dial took %v", d)
	}
	if res.Upgraded {
		t.Error("Upgraded = true")
	}
	if got := wait().Plain(); got != "CAPA\r\nSTLS\r\n" {
		t.Errorf("client sent %q", got)
	}
}

func TestErrorType(t *testing.T) {
	tests := []struct {
		line      string
		want      string
		temporary bool
	}{
		{"-ERR [SYS/TEMP] busy", "pop3: -ERR [SYS/TEMP] busy", true},
		{"-ERR [IN-USE] locked", "pop3: -ERR [IN-USE] locked", true},
		{"-ERR [LOGIN-DELAY] wait", "pop3: -ERR [LOGIN-DELAY] wait", true},
		{"-ERR [SYS/TEMP/DISK] busy", "pop3: -ERR [SYS/TEMP/DISK] busy", true},
		{"-ERR [SYS/PERM] gone", "pop3: -ERR [SYS/PERM] gone", false},
		{"-ERR [AUTH] bad", "pop3: -ERR [AUTH] bad", false},
		{"-ERR no code", "pop3: -ERR no code", false},
		{"-ERR [not a code] x", "pop3: -ERR [not a code] x", false},
		{"-err", "pop3: -ERR", false},
	}
	for _, tt := range tests {
		st, err := parseStatus(tt.line)
		if err != nil {
			t.Fatalf("parseStatus(%q): %v", tt.line, err)
		}
		e := st.err()
		if e == nil || e.Error() != tt.want || starttls.IsTemporary(e) != tt.temporary {
			t.Errorf("parseStatus(%q).err() = %v (temporary %v), want %q (temporary %v)", tt.line, e, starttls.IsTemporary(e), tt.want, tt.temporary)
		}
	}
	for _, bad := range []string{"", "+OKAY", "OK", "-ERRx", "* OK"} {
		if _, err := parseStatus(bad); !errors.Is(err, starttls.ErrProtocol) {
			t.Errorf("parseStatus(%q) error = %v, want ErrProtocol", bad, err)
		}
	}
}
