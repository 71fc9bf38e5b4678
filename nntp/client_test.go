package nntp

import (
	"errors"
	"reflect"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

const (
	greeting   = "200 news.example ready\r\n"
	capsSTLS   = "101 Capability list:\r\nVERSION 2\r\nREADER\r\nSTARTTLS\r\nAUTHINFO\r\n.\r\n"
	capsNoSTLS = "101 Capability list:\r\nVERSION 2\r\nREADER\r\nAUTHINFO USER\r\n.\r\n"
	capsTLS    = "101 Capability list:\r\nVERSION 2\r\nREADER\r\nAUTHINFO USER SASL\r\nSASL PLAIN DIGEST-MD5\r\n.\r\n"
)

// upgradeScript is the normal server side of a successful STARTTLS.
func upgradeScript(t testing.TB, preCaps, postCaps string) func(f *linetest.Fake) {
	return func(f *linetest.Fake) {
		st, _ := linetest.TLSPair(t)
		f.Send(greeting)
		f.Expect("CAPABILITIES")
		f.Send(preCaps)
		f.Expect("STARTTLS")
		f.Send("382 Continue with TLS negotiation\r\n")
		if !f.StartTLS(st) {
			t.Error("fake: handshake failed")
			return
		}
		f.Expect("CAPABILITIES")
		f.Send(postCaps)
		f.Expect("QUIT")
		f.Send("205 bye\r\n")
		f.Drain()
	}
}

// TestClientTranscript checks the client's bytes exactly against scripted
// servers.
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
			name:      "upgrade",
			mode:      starttls.ModeRequired,
			script:    upgradeScript(t, capsSTLS, capsTLS),
			wantPlain: "CAPABILITIES\r\nSTARTTLS\r\n",
			wantTLS:   "CAPABILITIES\r\nQUIT\r\n",
			check: func(t *testing.T, res *starttls.Result) {
				if !res.Offered || !res.Upgraded || !res.CapsReread || res.OfferedAfterTLS {
					t.Errorf("Offered %v Upgraded %v CapsReread %v OfferedAfterTLS %v", res.Offered, res.Upgraded, res.CapsReread, res.OfferedAfterTLS)
				}
				if len(res.AuthBefore) != 0 {
					t.Errorf("AuthBefore = %q, want none (AUTHINFO without arguments)", res.AuthBefore)
				}
				if want := []string{"USER", "PLAIN", "DIGEST-MD5"}; !reflect.DeepEqual(res.AuthAfter, want) {
					t.Errorf("AuthAfter = %q, want %q", res.AuthAfter, want)
				}
				if res.Greeting != "200 news.example ready" || res.UpgradeReply != "382 Continue with TLS negotiation" {
					t.Errorf("Greeting %q UpgradeReply %q", res.Greeting, res.UpgradeReply)
				}
			},
		},
		{
			name: "RFC 977 server: CAPABILITIES unknown, STARTTLS tried",
			mode: starttls.ModeRequired,
			script: func(f *linetest.Fake) {
				st, _ := linetest.TLSPair(t)
				f.Send(greeting)
				f.Expect("CAPABILITIES")
				f.Send("500 What?\r\n")
				f.Expect("STARTTLS")
				f.Send("382 go\r\n")
				if !f.StartTLS(st) {
					return
				}
				f.Expect("CAPABILITIES")
				f.Send("500 What?\r\n")
				f.Expect("QUIT")
				f.Send("205 bye\r\n")
				f.Drain()
			},
			wantPlain: "CAPABILITIES\r\nSTARTTLS\r\n",
			wantTLS:   "CAPABILITIES\r\nQUIT\r\n",
			check: func(t *testing.T, res *starttls.Result) {
				if res.Offered || !res.Upgraded || res.CapsReread {
					t.Errorf("Offered %v Upgraded %v CapsReread %v", res.Offered, res.Upgraded, res.CapsReread)
				}
			},
		},
		{
			name: "opportunistic, not offered",
			mode: starttls.ModeOpportunistic,
			script: func(f *linetest.Fake) {
				f.Send(greeting)
				f.Expect("CAPABILITIES")
				f.Send(capsNoSTLS)
				f.Expect("QUIT")
				f.Send("205 bye\r\n")
				f.Drain()
			},
			wantPlain: "CAPABILITIES\r\nQUIT\r\n",
			check: func(t *testing.T, res *starttls.Result) {
				if res.Offered || res.Upgraded || !reflect.DeepEqual(res.AuthBefore, []string{"USER"}) {
					t.Errorf("Offered %v Upgraded %v AuthBefore %q", res.Offered, res.Upgraded, res.AuthBefore)
				}
			},
		},
		{
			name: "service unavailable greeting",
			mode: starttls.ModeRequired,
			script: func(f *linetest.Fake) {
				f.Send("400 too busy\r\n")
				f.Drain()
			},
			wantErr: &Error{},
		},
		{
			name: "unsolicited data after the greeting",
			mode: starttls.ModeRequired,
			script: func(f *linetest.Fake) {
				f.Send(greeting + "101 Capability list:\r\nSTARTTLS\r\n.\r\n")
				f.Drain()
			},
			wantErr: starttls.ErrProtocol,
		},
		{
			name: "continuation-style reply is malformed",
			mode: starttls.ModeRequired,
			script: func(f *linetest.Fake) {
				f.Send("200-news\r\n")
				f.Drain()
			},
			wantErr: starttls.ErrProtocol,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, tt.script)
			c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, tt.mode))
			if tt.wantErr != nil {
				if e, ok := tt.wantErr.(*Error); ok {
					if !errors.As(err, &e) || !e.Temporary() {
						t.Errorf("Dial() error = %v, want a temporary *Error", err)
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

// TestClientLoginSASL: with AUTHINFO SASL only, Login uses SASL PLAIN with
// an initial response, masked in the transcript, and re-reads the
// capabilities.
func TestClientLoginSASL(t *testing.T) {
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		st, _ := linetest.TLSPair(t)
		f.Send(greeting)
		f.Expect("CAPABILITIES")
		f.Send(capsSTLS)
		f.Expect("STARTTLS")
		f.Send("382 go\r\n")
		if !f.StartTLS(st) {
			return
		}
		f.Expect("CAPABILITIES")
		f.Send("101 caps\r\nVERSION 2\r\nAUTHINFO SASL\r\nSASL PLAIN\r\n.\r\n")
		f.Expect("AUTHINFO SASL PLAIN AGFsaWNlAHNlY3JldCBwdw==")
		f.Send("281 ok\r\n")
		f.Expect("CAPABILITIES")
		f.Send("101 caps\r\nVERSION 2\r\nREADER\r\n.\r\n")
		f.Expect("QUIT")
		f.Send("205 bye\r\n")
		f.Drain()
	})
	opts := clientOpts(t, starttls.ModeRequired)
	ctx := linetest.Ctx(t)
	c, _, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, "alice", "secret pw"); err != nil {
		t.Fatal(err)
	}
	if got := c.Capabilities(); !reflect.DeepEqual(got, []string{"VERSION 2", "READER"}) {
		t.Errorf("caps after login = %q", got)
	}
	c.Close()
	wait()
	for _, ev := range opts.Transcript.Events() {
		if ev.Text == "AUTHINFO SASL PLAIN AGFsaWNlAHNlY3JldCBwdw==" {
			t.Error("transcript shows the credentials")
		}
	}
}
