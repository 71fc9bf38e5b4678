package sieve

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

const (
	greeting     = "\"IMPLEMENTATION\" \"fake\"\r\n\"SASL\" \"\"\r\n\"SIEVE\" \"fileinto\"\r\n\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK \"ready\"\r\n"
	greetingNoTL = "\"IMPLEMENTATION\" \"fake\"\r\n\"SASL\" \"PLAIN\"\r\n\"VERSION\" \"1.0\"\r\nOK \"ready\"\r\n"
	capsTLS      = "\"IMPLEMENTATION\" \"fake\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"SIEVE\" \"fileinto vacation\"\r\n\"VERSION\" \"1.0\"\r\nOK \"TLS negotiation successful\"\r\n"
)

// upgradeScript is the normal server side of a successful STARTTLS: the
// capabilities come unasked after the handshake.
func upgradeScript(t testing.TB, pre, post string) func(f *linetest.Fake) {
	return func(f *linetest.Fake) {
		st, _ := linetest.TLSPair(t)
		f.Send(pre)
		f.Expect("STARTTLS")
		f.Send("OK \"Begin TLS negotiation now\"\r\n")
		if !f.StartTLS(st) {
			t.Error("fake: handshake failed")
			return
		}
		f.Send(post)
		f.Expect("LOGOUT")
		f.Send("OK\r\n")
		f.Drain()
	}
}

func TestClientTranscript(t *testing.T) {
	tests := []struct {
		name      string
		mode      starttls.Mode
		script    func(f *linetest.Fake)
		wantErr   error
		wantPlain string
		wantTLS   string
		check     func(t *testing.T, res *starttls.Result)
	}{
		{
			name:      "upgrade, caps unasked",
			mode:      starttls.ModeRequired,
			script:    upgradeScript(t, greeting, capsTLS),
			wantPlain: "STARTTLS\r\n",
			wantTLS:   "LOGOUT\r\n",
			check: func(t *testing.T, res *starttls.Result) {
				if !res.Offered || !res.Upgraded || !res.CapsReread || res.OfferedAfterTLS {
					t.Errorf("Offered %v Upgraded %v CapsReread %v OfferedAfterTLS %v", res.Offered, res.Upgraded, res.CapsReread, res.OfferedAfterTLS)
				}
				if want := []string{"IMPLEMENTATION fake", "SASL", "SIEVE fileinto", "STARTTLS", "VERSION 1.0"}; !reflect.DeepEqual(res.CapsBefore, want) {
					t.Errorf("CapsBefore = %q, want %q", res.CapsBefore, want)
				}
				if len(res.AuthBefore) != 0 || !reflect.DeepEqual(res.AuthAfter, []string{"PLAIN", "LOGIN"}) {
					t.Errorf("AuthBefore %q AuthAfter %q", res.AuthBefore, res.AuthAfter)
				}
				if res.UpgradeReply != `OK "Begin TLS negotiation now"` {
					t.Errorf("UpgradeReply = %q", res.UpgradeReply)
				}
			},
		},
		{
			name: "old server: caps only when asked",
			mode: starttls.ModeRequired,
			script: func(f *linetest.Fake) {
				st, _ := linetest.TLSPair(t)
				f.Send(greeting)
				f.Expect("STARTTLS")
				f.Send("OK\r\n")
				if !f.StartTLS(st) {
					return
				}
				f.Expect("CAPABILITY")
				f.Send(capsTLS)
				f.Expect("LOGOUT")
				f.Send("OK\r\n")
				f.Drain()
			},
			wantPlain: "STARTTLS\r\n",
			wantTLS:   "CAPABILITY\r\nLOGOUT\r\n",
			check: func(t *testing.T, res *starttls.Result) {
				if !res.CapsReread || !reflect.DeepEqual(res.AuthAfter, []string{"PLAIN", "LOGIN"}) {
					t.Errorf("CapsReread %v AuthAfter %q", res.CapsReread, res.AuthAfter)
				}
			},
		},
		{
			name: "opportunistic, not offered",
			mode: starttls.ModeOpportunistic,
			script: func(f *linetest.Fake) {
				f.Send(greetingNoTL)
				f.Expect("LOGOUT")
				f.Send("OK\r\n")
				f.Drain()
			},
			wantPlain: "LOGOUT\r\n",
			check: func(t *testing.T, res *starttls.Result) {
				if res.Offered || res.Upgraded || !reflect.DeepEqual(res.AuthBefore, []string{"PLAIN"}) {
					t.Errorf("Offered %v Upgraded %v AuthBefore %q", res.Offered, res.Upgraded, res.AuthBefore)
				}
			},
		},
		{
			name: "literal in the greeting",
			mode: starttls.ModeOpportunistic,
			script: func(f *linetest.Fake) {
				f.Send("{14}\r\nIMPLEMENTATION {4}\r\nfake\r\n\"SASL\" \"PLAIN\"\r\nOK\r\n")
				f.Expect("LOGOUT")
				f.Send("OK\r\n")
				f.Drain()
			},
			wantPlain: "LOGOUT\r\n",
			check: func(t *testing.T, res *starttls.Result) {
				if want := []string{"IMPLEMENTATION fake", "SASL PLAIN"}; !reflect.DeepEqual(res.CapsBefore, want) {
					t.Errorf("CapsBefore = %q", res.CapsBefore)
				}
			},
		},
		{
			name: "BYE greeting",
			mode: starttls.ModeRequired,
			script: func(f *linetest.Fake) {
				f.Send("BYE (TRYLATER) \"too busy\"\r\n")
				f.Drain()
			},
			wantErr: &Error{},
		},
		{
			name: "unsolicited data after the greeting",
			mode: starttls.ModeRequired,
			script: func(f *linetest.Fake) {
				f.Send(greeting + "OK\r\n")
				f.Drain()
			},
			wantErr: starttls.ErrProtocol,
		},
		{
			name: "garbage capability line",
			mode: starttls.ModeRequired,
			script: func(f *linetest.Fake) {
				f.Send("IMPLEMENTATION fake\r\nOK\r\n")
				f.Drain()
			},
			wantErr: starttls.ErrProtocol,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, tt.script)
			opts := clientOpts(t, tt.mode)
			opts.InjectionWait = 300 * time.Millisecond
			c, res, err := Dial(linetest.Ctx(t), addr, opts)
			if tt.wantErr != nil {
				if e, ok := tt.wantErr.(*Error); ok {
					if !errors.As(err, &e) || !e.Temporary() || e.Kind != "BYE" {
						t.Errorf("Dial() error = %v, want a temporary BYE", err)
					}
				} else if !errors.Is(err, tt.wantErr) {
					t.Errorf("Dial() error = %v, want %v", err, tt.wantErr)
				}
				if res == nil {
					t.Fatal("nil Result")
				}
				wait()
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			f := wait()
			if got := f.Plain(); got != tt.wantPlain {
				t.Errorf("plaintext = %q, want %q", got, tt.wantPlain)
			}
			if got := f.TLS(); got != tt.wantTLS {
				t.Errorf("inside TLS = %q, want %q", got, tt.wantTLS)
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}
