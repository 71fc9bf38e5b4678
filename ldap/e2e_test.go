package ldap

import (
	"errors"
	"slices"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestEndToEnd runs the client against the server in every mode.
func TestEndToEnd(t *testing.T) {
	tests := []struct {
		name     string
		mode     starttls.Mode
		implicit bool
		upgraded bool
		loginErr ResultCode // -1: Login refused by the client
	}{
		{"required", starttls.ModeRequired, false, true, ResultSuccess},
		{"opportunistic", starttls.ModeOpportunistic, false, true, ResultSuccess},
		{"implicit", starttls.ModeImplicit, true, true, ResultSuccess},
		{"plain", starttls.ModePlain, false, false, ResultConfidentialityRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.Implicit = tt.implicit
			addr := startServer(t, srv)
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, addr, clientOpts(t, tt.mode))
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if res.Protocol != "ldap" || res.Mode != tt.mode || res.Upgraded != tt.upgraded {
				t.Errorf("Protocol, Mode, Upgraded = %q, %v, %v", res.Protocol, res.Mode, res.Upgraded)
			}
			if res.OfferedAfterTLS || res.Injection != nil {
				t.Errorf("OfferedAfterTLS %v, Injection %v", res.OfferedAfterTLS, res.Injection)
			}
			if len(res.AuthBefore) != 0 {
				t.Errorf("AuthBefore = %q, want none", res.AuthBefore)
			}
			if res.Greeting != "starttls ldap.test" {
				t.Errorf("Greeting = %q", res.Greeting)
			}
			switch {
			case tt.implicit:
				if len(res.CapsBefore) != 0 || !res.CapsReread || slices.Contains(res.CapsAfter, "supportedExtension="+StartTLSOID) {
					t.Errorf("CapsBefore %q, CapsAfter %q", res.CapsBefore, res.CapsAfter)
				}
			case tt.upgraded:
				if !res.Offered || !res.CapsReread || !slices.Contains(res.CapsBefore, "supportedExtension="+StartTLSOID) ||
					slices.Contains(res.CapsAfter, "supportedExtension="+StartTLSOID) {
					t.Errorf("Offered %v, CapsReread %v, CapsBefore %q, CapsAfter %q", res.Offered, res.CapsReread, res.CapsBefore, res.CapsAfter)
				}
				if !slices.Equal(res.AuthAfter, []string{"PLAIN"}) {
					t.Errorf("AuthAfter = %q, want [PLAIN]", res.AuthAfter)
				}
			default:
				if !res.Offered || res.CapsAfter != nil {
					t.Errorf("Offered %v, CapsAfter %q", res.Offered, res.CapsAfter)
				}
			}

			err = c.Login(ctx, aliceDN, alicePW)
			var re *ResultError
			switch {
			case tt.loginErr == ResultSuccess && err != nil:
				t.Fatalf("Login: %v", err)
			case tt.loginErr != ResultSuccess && (!errors.As(err, &re) || re.Code != tt.loginErr):
				t.Fatalf("Login error = %v, want %v", err, tt.loginErr)
			case tt.loginErr != ResultSuccess:
				return
			}
			who, err := c.WhoAmI(ctx)
			if err != nil || who != "dn:"+aliceDN {
				t.Errorf("WhoAmI = %q, %v", who, err)
			}
			entries, err := c.Search(ctx, testBase, ScopeSub)
			if err != nil || len(entries) != 2 || entries[1].DN != aliceDN || !slices.Equal(entries[1].Values("mail"), []string{"alice@ldap.test"}) {
				t.Errorf("Search = %v, %v", entries, err)
			}
			if err := c.Login(ctx, aliceDN, "wrong"); !errors.As(err, &re) || re.Code != ResultInvalidCredentials {
				t.Errorf("Login with a wrong password = %v, want invalidCredentials", err)
			}
			if err := c.Login(ctx, "alice", alicePW); err != nil {
				t.Errorf("Login with the bare user name: %v", err)
			}
		})
	}
}
