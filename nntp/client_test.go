package nntp

import (
	"errors"
	"reflect"
	"testing"

	"github.com/starttls/starttls"
)

const (
	greeting   = "200 news.example ready\r\n"
	capsSTLS   = "101 Capability list:\r\nVERSION 2\r\nREADER\r\nSTARTTLS\r\nAUTHINFO\r\n.\r\n"
	capsNoSTLS = "101 Capability list:\r\nVERSION 2\r\nREADER\r\nAUTHINFO USER\r\n.\r\n"
	capsTLS    = "101 Capability list:\r\nVERSION 2\r\nREADER\r\nAUTHINFO USER SASL\r\nSASL PLAIN DIGEST-MD5\r\n.\r\n"
)

// upgradeScript is the normal server side of a successful STARTTLS.
func upgradeScript(preCaps, postCaps string) func(f *fake) {
	return func(f *fake) {
		st, _ := tlsPair(f.t)
		f.send(greeting)
		f.expect("CAPABILITIES")
		f.send(preCaps)
		f.expect("STARTTLS")
		f.send("382 Continue with TLS negotiation\r\n")
		if !f.startTLS(st) {
			f.t.Error("fake: handshake failed")
			return
		}
		f.expect("CAPABILITIES")
		f.send(postCaps)
		f.expect("QUIT")
		f.send("205 bye\r\n")
		f.drain()
	}
}

// TestClientTranscript checks the client's bytes exactly against scripted
// servers.
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
			name:      "upgrade",
			mode:      starttls.ModeRequired,
			script:    upgradeScript(capsSTLS, capsTLS),
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
			script: func(f *fake) {
				st, _ := tlsPair(f.t)
				f.send(greeting)
				f.expect("CAPABILITIES")
				f.send("500 What?\r\n")
				f.expect("STARTTLS")
				f.send("382 go\r\n")
				if !f.startTLS(st) {
					return
				}
				f.expect("CAPABILITIES")
				f.send("500 What?\r\n")
				f.expect("QUIT")
				f.send("205 bye\r\n")
				f.drain()
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
			script: func(f *fake) {
				f.send(greeting)
				f.expect("CAPABILITIES")
				f.send(capsNoSTLS)
				f.expect("QUIT")
				f.send("205 bye\r\n")
				f.drain()
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
			script: func(f *fake) {
				f.send("400 too busy\r\n")
				f.drain()
			},
			wantErr: &Error{},
		},
		{
			name: "unsolicited data after the greeting",
			mode: starttls.ModeRequired,
			script: func(f *fake) {
				f.send(greeting + "101 Capability list:\r\nSTARTTLS\r\n.\r\n")
				f.drain()
			},
			wantErr: starttls.ErrProtocol,
		},
		{
			name: "continuation-style reply is malformed",
			mode: starttls.ModeRequired,
			script: func(f *fake) {
				f.send("200-news\r\n")
				f.drain()
			},
			wantErr: starttls.ErrProtocol,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := fakeServer(t, tt.script)
			c, res, err := Dial(testCtx(t), addr, clientOpts(t, tt.mode))
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

// TestClientLoginSASL: with AUTHINFO SASL only, Login uses SASL PLAIN with
// an initial response, masked in the transcript, and re-reads the
// capabilities.
func TestClientLoginSASL(t *testing.T) {
	addr, wait := fakeServer(t, func(f *fake) {
		st, _ := tlsPair(f.t)
		f.send(greeting)
		f.expect("CAPABILITIES")
		f.send(capsSTLS)
		f.expect("STARTTLS")
		f.send("382 go\r\n")
		if !f.startTLS(st) {
			return
		}
		f.expect("CAPABILITIES")
		f.send("101 caps\r\nVERSION 2\r\nAUTHINFO SASL\r\nSASL PLAIN\r\n.\r\n")
		f.expect("AUTHINFO SASL PLAIN AGFsaWNlAHNlY3JldCBwdw==")
		f.send("281 ok\r\n")
		f.expect("CAPABILITIES")
		f.send("101 caps\r\nVERSION 2\r\nREADER\r\n.\r\n")
		f.expect("QUIT")
		f.send("205 bye\r\n")
		f.drain()
	})
	opts := clientOpts(t, starttls.ModeRequired)
	ctx := testCtx(t)
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
