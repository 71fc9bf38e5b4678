package sieve

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

func TestEndToEnd(t *testing.T) {
	tests := []struct {
		name     string
		mode     starttls.Mode
		implicit bool
		noTLS    bool
		upgraded bool
		loginErr bool
	}{
		{"required", starttls.ModeRequired, false, false, true, false},
		{"opportunistic", starttls.ModeOpportunistic, false, false, true, false},
		{"opportunistic without TLS", starttls.ModeOpportunistic, false, true, false, true},
		{"implicit", starttls.ModeImplicit, true, false, true, false},
		{"plain", starttls.ModePlain, false, false, false, true},
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
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if res.Upgraded != tt.upgraded || res.Protocol != "sieve" || res.Mode != tt.mode {
				t.Fatalf("Upgraded %v Protocol %q Mode %v", res.Upgraded, res.Protocol, res.Mode)
			}
			if tt.upgraded {
				if res.TLS == nil || res.OfferedAfterTLS || !res.CapsReread {
					t.Errorf("TLS %v OfferedAfterTLS %v CapsReread %v", res.TLS != nil, res.OfferedAfterTLS, res.CapsReread)
				}
				if !reflect.DeepEqual(res.AuthAfter, []string{"PLAIN"}) {
					t.Errorf("AuthAfter = %q", res.AuthAfter)
				}
				if !tt.implicit && (!res.Offered || len(res.AuthBefore) != 0 || !hasCap(res.CapsBefore, "STARTTLS")) {
					t.Errorf("Offered %v AuthBefore %q CapsBefore %q", res.Offered, res.AuthBefore, res.CapsBefore)
				}
			}
			err = c.Login(ctx, "alice", "secret pw")
			if tt.loginErr {
				if err == nil {
					t.Fatal("Login succeeded without TLS")
				}
				return
			}
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			script := []byte("require \"fileinto\";\r\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\r\n")
			if err := c.PutScript(ctx, "main", script); err != nil {
				t.Fatalf("PutScript: %v", err)
			}
			if err := c.PutScript(ctx, `odd "name" \`, []byte("keep;")); err != nil {
				t.Fatalf("PutScript odd name: %v", err)
			}
			if err := c.SetActive(ctx, "main"); err != nil {
				t.Fatal(err)
			}
			list, err := c.ListScripts(ctx)
			if want := []Script{{"main", true}, {`odd "name" \`, false}}; err != nil || !reflect.DeepEqual(list, want) {
				t.Errorf("ListScripts = %+v, %v; want %+v", list, err, want)
			}
			got, err := c.GetScript(ctx, "main")
			if err != nil || string(got) != string(script) {
				t.Errorf("GetScript = %q, %v", got, err)
			}
			var e *Error
			if _, err := c.GetScript(ctx, "nope"); !errors.As(err, &e) || e.Code != CodeNonexistent {
				t.Errorf("GetScript(nope) = %v, want NO (NONEXISTENT)", err)
			}
			if err := c.DeleteScript(ctx, "main"); !errors.As(err, &e) || e.Code != CodeActive {
				t.Errorf("DeleteScript(active) = %v, want NO (ACTIVE)", err)
			}
			if err := c.DeleteScript(ctx, `odd "name" \`); err != nil {
				t.Errorf("DeleteScript: %v", err)
			}
		})
	}
}

// TestLoginWrongPassword: NO, and the transcript never shows the password.
func TestLoginWrongPassword(t *testing.T) {
	addr := startServer(t, newServer(t))
	ctx := linetest.Ctx(t)
	opts := clientOpts(t, starttls.ModeRequired)
	c, _, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var e *Error
	if err := c.Login(ctx, "alice", "wrong horse"); !errors.As(err, &e) || e.Kind != "NO" {
		t.Errorf("Login() error = %v, want NO", err)
	}
	for _, ev := range opts.Transcript.Events() {
		if strings.Contains(ev.Text, "d3JvbmcgaG9yc2") || strings.Contains(ev.Text, "AGFsaWNlAHdyb25n") {
			t.Errorf("transcript shows the credentials: %q", ev.Text)
		}
	}
}
