package mysql

import (
	"errors"
	"slices"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestEndToEnd: our client against our server in every mode.
func TestEndToEnd(t *testing.T) {
	st, _ := linetest.TLSPair(t)
	tests := []struct {
		name     string
		srv      starttls.ServerOptions
		mode     starttls.Mode
		upgraded bool
		offered  bool
		login    bool
	}{
		{"required", starttls.ServerOptions{TLSConfig: st}, starttls.ModeRequired, true, true, true},
		{"opportunistic with TLS", starttls.ServerOptions{TLSConfig: st}, starttls.ModeOpportunistic, true, true, true},
		{"opportunistic without TLS", starttls.ServerOptions{AllowPlaintextLogin: true}, starttls.ModeOpportunistic, false, false, false},
		{"implicit", starttls.ServerOptions{TLSConfig: st, Implicit: true}, starttls.ModeImplicit, true, false, true},
		{"plain", starttls.ServerOptions{TLSConfig: st, AllowPlaintextLogin: true}, starttls.ModePlain, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startServer(t, &Server{ServerOptions: tt.srv, Backend: &memBackend{}})
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, addr, clientOpts(t, tt.mode))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if res.Upgraded != tt.upgraded || res.Offered != tt.offered || res.OfferedAfterTLS || res.Mode != tt.mode || res.Protocol != "mysql" {
				t.Errorf("result %+v", res)
			}
			if res.Greeting == "" || len(res.AuthBefore) != 0 {
				t.Errorf("greeting %q, auth before %v", res.Greeting, res.AuthBefore)
			}
			if tt.upgraded != (res.TLS != nil) {
				t.Errorf("TLS state %v", res.TLS)
			}
			if tt.mode == starttls.ModeImplicit {
				if len(res.CapsBefore) != 0 || !res.CapsReread || slices.Contains(res.CapsAfter, "CLIENT_SSL") {
					t.Errorf("implicit: caps before %v after %v reread %v", res.CapsBefore, res.CapsAfter, res.CapsReread)
				}
			} else if tt.upgraded && (!slices.Equal(res.CapsBefore, res.CapsAfter) || res.CapsReread || !slices.Equal(res.AuthAfter, []string{PluginNativePassword})) {
				t.Errorf("caps before %v after %v reread %v auth after %v", res.CapsBefore, res.CapsAfter, res.CapsReread, res.AuthAfter)
			}
			err = c.Login(ctx, testUser, testPassword)
			if !tt.login {
				if !errors.Is(err, starttls.ErrFallbackForbidden) {
					t.Fatalf("Login without TLS = %v, want ErrFallbackForbidden", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			rs, err := c.Query(ctx, "SHOW STATUS LIKE 'Ssl_cipher'")
			if err != nil || len(rs.Rows) != 1 || rs.Rows[0][0] != "Ssl_cipher" || (rs.Rows[0][1] != "") == !tt.upgraded {
				t.Fatalf("Query = %+v, %v", rs, err)
			}
			rs, err = c.Query(ctx, "select version();")
			if err != nil || rs.Rows[0][0] != DefaultServerVersion {
				t.Fatalf("Query = %+v, %v", rs, err)
			}
			var me *Error
			if _, err := c.Query(ctx, "DROP TABLE x"); !errors.As(err, &me) || me.Code != ErSyntax {
				t.Fatalf("unknown query = %v, want ERR 1064", err)
			}
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		})
	}
}

// TestLoginRefused: a wrong password or user draws ERR 1045.
func TestLoginRefused(t *testing.T) {
	addr := startServer(t, newServer(t))
	for _, up := range [][2]string{{testUser, "wrong"}, {"bob", testPassword}, {testUser, ""}} {
		c, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		var me *Error
		if err := c.Login(linetest.Ctx(t), up[0], up[1]); !errors.As(err, &me) || me.Code != ErAccessDenied || me.State != "28000" {
			t.Errorf("Login(%q, %q) = %v, want ERR 1045", up[0], up[1], err)
		}
		c.Close()
	}
}

// TestServerAuthSwitch: a client answering another plugin is switched to
// mysql_native_password.
func TestServerAuthSwitch(t *testing.T) {
	addr := startServer(t, newServer(t))
	ctx := linetest.Ctx(t)
	c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.greeting.AuthPlugin = PluginCachingSHA2
	if err := c.Login(ctx, testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	if got := c.Result().AuthAfter; !slices.Equal(got, []string{PluginNativePassword}) {
		t.Errorf("AuthAfter = %v", got)
	}
}

// TestServerMaxErrors: the session ends after MaxErrors bad commands.
func TestServerMaxErrors(t *testing.T) {
	srv := newServer(t)
	srv.MaxErrors = 2
	addr := startServer(t, srv)
	ctx := linetest.Ctx(t)
	c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(ctx, testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	c.Query(ctx, "bad one")
	c.Query(ctx, "bad two")
	if err := c.Ping(ctx); err == nil {
		t.Fatal("session still open after MaxErrors errors")
	}
}

// TestServerPanicRecovered: a panicking backend costs one connection, with
// an ERR, and the server goes on.
func TestServerPanicRecovered(t *testing.T) {
	srv := newServer(t)
	srv.Backend = &memBackend{panics: true}
	addr := startServer(t, srv)
	c, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	var me *Error
	if err := c.Login(linetest.Ctx(t), testUser, testPassword); !errors.As(err, &me) || me.Code != ErUnknown {
		t.Fatalf("Login = %v, want ERR 1105", err)
	}
	c.Close()
	c, _, err = Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatalf("server gone after a panic: %v", err)
	}
	c.Close()
}
