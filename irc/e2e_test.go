package irc

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestEndToEnd: our client against our server in every mode.
func TestEndToEnd(t *testing.T) {
	tests := []struct {
		name      string
		mode      starttls.Mode
		implicit  bool
		noTLS     bool
		upgraded  bool
		capsAfter []string
		wantErr   error
	}{
		{"required", starttls.ModeRequired, false, false, true, []string{"sasl=PLAIN"}, nil},
		{"opportunistic", starttls.ModeOpportunistic, false, false, true, []string{"sasl=PLAIN"}, nil},
		{"opportunistic without TLS", starttls.ModeOpportunistic, false, true, false, nil, nil},
		{"required without TLS", starttls.ModeRequired, false, true, false, nil, starttls.ErrUpgradeNotOffered},
		{"implicit", starttls.ModeImplicit, true, false, true, []string{"sasl=PLAIN"}, nil},
		{"plain", starttls.ModePlain, false, false, false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.Implicit = tt.implicit
			if tt.noTLS {
				srv.TLSConfig = nil
			}
			addr := startServer(t, srv)
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, addr, clientOpts(t, tt.mode))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Dial() error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial() error = %v\n%s", err, dump(res.Transcript))
			}
			defer c.Close()
			if res.Upgraded != tt.upgraded || res.Mode != tt.mode || res.Protocol != "irc" {
				t.Errorf("Upgraded %v Mode %v Protocol %q", res.Upgraded, res.Mode, res.Protocol)
			}
			if !strings.HasPrefix(res.Greeting, ":irc.test CAP * LS") {
				t.Errorf("Greeting = %q", res.Greeting)
			}
			if tt.upgraded {
				if !reflect.DeepEqual(res.CapsAfter, tt.capsAfter) || !res.CapsReread || res.OfferedAfterTLS || res.TLS == nil {
					t.Errorf("CapsAfter %q CapsReread %v OfferedAfterTLS %v", res.CapsAfter, res.CapsReread, res.OfferedAfterTLS)
				}
				if !reflect.DeepEqual(res.AuthAfter, []string{"PLAIN"}) {
					t.Errorf("AuthAfter = %q", res.AuthAfter)
				}
				if !tt.implicit && (!res.Offered || !reflect.DeepEqual(res.CapsBefore, []string{"tls"}) || len(res.AuthBefore) != 0 || !strings.HasPrefix(res.UpgradeReply, ":irc.test 670 ")) {
					t.Errorf("Offered %v CapsBefore %q AuthBefore %q UpgradeReply %q", res.Offered, res.CapsBefore, res.AuthBefore, res.UpgradeReply)
				}
				if err := c.Login(ctx, "alice", "wrong"); err == nil {
					t.Fatal("Login with a wrong password succeeded")
				}
				c.Close()
				c, _, err = Dial(ctx, addr, clientOpts(t, tt.mode))
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Login(ctx, "alice", "secret pw"); err != nil {
					t.Fatalf("Login: %v\n%s", err, dump(res.Transcript))
				}
				if c.Nick() != "alice" {
					t.Errorf("Nick() = %q", c.Nick())
				}
				return
			}
			if err := c.Login(ctx, "alice", "secret pw"); err == nil {
				t.Error("Login without TLS succeeded")
			}
			if err := c.Register(ctx, "bob"); err != nil {
				t.Fatalf("Register: %v", err)
			}
		})
	}
}

// TestChannelEcho: two registered clients, one channel; PRIVMSG goes to
// the other member.
func TestChannelEcho(t *testing.T) {
	addr := startServer(t, newServer(t))
	ctx := linetest.Ctx(t)
	var cs []*Client
	for _, n := range []string{"ann", "ann"} {
		c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Register(ctx, n); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if cs[1].Nick() != "ann1" {
		t.Errorf("second nick = %q, want ann1 after 433", cs[1].Nick())
	}
	for _, c := range cs {
		if err := c.Send(ctx, "JOIN", "#lab"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, c, "366")
	}
	if err := cs[0].Send(ctx, "PRIVMSG", "#lab", "hello there"); err != nil {
		t.Fatal(err)
	}
	m := waitFor(t, cs[1], "PRIVMSG")
	if m.Nick() != "ann" || m.Param(0) != "#lab" || m.Param(1) != "hello there" {
		t.Errorf("got %v", m)
	}
}

func waitFor(t *testing.T, c *Client, cmd string) *Message {
	t.Helper()
	for i := 0; i < 50; i++ {
		m, err := c.ReadMessage(linetest.Ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if m.Command == cmd {
			return m
		}
	}
	t.Fatalf("no %s", cmd)
	return nil
}
