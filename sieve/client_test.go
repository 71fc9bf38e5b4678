package sieve

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/starttls/starttls"
)

const (
	greeting     = "\"IMPLEMENTATION\" \"fake\"\r\n\"SASL\" \"\"\r\n\"SIEVE\" \"fileinto\"\r\n\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK \"ready\"\r\n"
	greetingNoTL = "\"IMPLEMENTATION\" \"fake\"\r\n\"SASL\" \"PLAIN\"\r\n\"VERSION\" \"1.0\"\r\nOK \"ready\"\r\n"
	capsTLS      = "\"IMPLEMENTATION\" \"fake\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"SIEVE\" \"fileinto vacation\"\r\n\"VERSION\" \"1.0\"\r\nOK \"TLS negotiation successful\"\r\n"
)

// upgradeScript is the normal server side of a successful STARTTLS: the
// capabilities come unasked after the handshake.
func upgradeScript(pre, post string) func(f *fake) {
	return func(f *fake) {
		st, _ := tlsPair(f.t)
		f.send(pre)
		f.expect("STARTTLS")
		f.send("OK \"Begin TLS negotiation now\"\r\n")
		if !f.startTLS(st) {
			f.t.Error("fake: handshake failed")
			return
		}
		f.send(post)
		f.expect("LOGOUT")
		f.send("OK\r\n")
		f.drain()
	}
}

func TestClientTranscript(t *testing.T) {
	tests := []struct {
		name      string
		mode      starttls.Mode
		script    func(f *fake)
		wantErr   error
		wantPlain string
		wantTLS   string
		check     func(t *testing.T, res *starttls.Result)
	}{
		{
			name:      "upgrade, caps unasked",
			mode:      starttls.ModeRequired,
			script:    upgradeScript(greeting, capsTLS),
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
			script: func(f *fake) {
				st, _ := tlsPair(f.t)
				f.send(greeting)
				f.expect("STARTTLS")
				f.send("OK\r\n")
				if !f.startTLS(st) {
					return
				}
				f.expect("CAPABILITY")
				f.send(capsTLS)
				f.expect("LOGOUT")
				f.send("OK\r\n")
				f.drain()
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
			script: func(f *fake) {
				f.send(greetingNoTL)
				f.expect("LOGOUT")
				f.send("OK\r\n")
				f.drain()
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
			script: func(f *fake) {
				f.send("{14}\r\nIMPLEMENTATION {4}\r\nfake\r\n\"SASL\" \"PLAIN\"\r\nOK\r\n")
				f.expect("LOGOUT")
				f.send("OK\r\n")
				f.drain()
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
			script: func(f *fake) {
				f.send("BYE (TRYLATER) \"too busy\"\r\n")
				f.drain()
			},
			wantErr: &Error{},
		},
		{
			name: "unsolicited data after the greeting",
			mode: starttls.ModeRequired,
			script: func(f *fake) {
				f.send(greeting + "OK\r\n")
				f.drain()
			},
			wantErr: starttls.ErrProtocol,
		},
		{
			name: "garbage capability line",
			mode: starttls.ModeRequired,
			script: func(f *fake) {
				f.send("IMPLEMENTATION fake\r\nOK\r\n")
				f.drain()
			},
			wantErr: starttls.ErrProtocol,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := fakeServer(t, tt.script)
			opts := clientOpts(t, tt.mode)
			opts.InjectionWait = 300 * time.Millisecond
			c, res, err := Dial(testCtx(t), addr, opts)
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
			if got := f.plain.String(); got != tt.wantPlain {
				t.Errorf("plaintext = %q, want %q", got, tt.wantPlain)
			}
			if got := f.tls.String(); got != tt.wantTLS {
				t.Errorf("inside TLS = %q, want %q", got, tt.wantTLS)
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}
