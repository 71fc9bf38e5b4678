package postgres

import (
	"errors"
	"slices"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestEndToEnd: our client against our server in every mode.
func TestEndToEnd(t *testing.T) {
	tests := []struct {
		name      string
		srv       func(*Server)
		mode      starttls.Mode
		upgraded  bool
		offered   bool
		authAfter []string
		wantSSL   string
	}{
		{"required/scram", nil, starttls.ModeRequired, true, true, []string{"SCRAM-SHA-256"}, "on"},
		{"required/cleartext", func(s *Server) { s.Backend = plainBackend{} }, starttls.ModeRequired, true, true, []string{"CLEARTEXT"}, "on"},
		{"opportunistic/offered", nil, starttls.ModeOpportunistic, true, true, []string{"SCRAM-SHA-256"}, "on"},
		{"implicit", nil, starttls.ModeImplicit, true, false, []string{"SCRAM-SHA-256"}, "on"},
		{"implicit/server-implicit", func(s *Server) { s.Implicit = true }, starttls.ModeImplicit, true, false, []string{"SCRAM-SHA-256"}, "on"},
		{"plain/allowed", func(s *Server) { s.AllowPlaintextLogin = true }, starttls.ModePlain, false, false, nil, "off"},
		{"opportunistic/not-offered", func(s *Server) { s.TLSConfig = nil; s.AllowPlaintextLogin = true }, starttls.ModeOpportunistic, false, false, nil, "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			if tt.srv != nil {
				tt.srv(srv)
			}
			addr := startServer(t, srv)
			ctx := linetest.Ctx(t)
			opts := clientOpts(t, tt.mode)
			c, res, err := Dial(ctx, addr, opts)
			if err != nil {
				t.Fatalf("Dial: %v\n%s", err, dump(opts.Transcript))
			}
			defer c.Close()
			if res.Protocol != "postgres" || res.Mode != tt.mode || res.Upgraded != tt.upgraded || res.Offered != tt.offered {
				t.Fatalf("Result %+v", res)
			}
			if res.Greeting != "" || res.CapsBefore != nil || res.CapsAfter != nil || res.OfferedAfterTLS || res.CapsReread {
				t.Errorf("Result has caps or greeting: %+v", res)
			}
			if tt.upgraded && (res.TLS == nil || res.TLS.NegotiatedProtocol != ALPN) {
				t.Errorf("TLS state %+v, want ALPN %s", res.TLS, ALPN)
			}
			if !tt.upgraded && tt.mode == starttls.ModeOpportunistic {
				// Login is refused without TLS outside ModePlain.
				if err := c.Login(ctx, testUser, testPass); !errors.Is(err, starttls.ErrFallbackForbidden) {
					t.Fatalf("Login without TLS in opportunistic mode: %v", err)
				}
				return
			}
			if err := c.Login(ctx, testUser, testPass); err != nil {
				t.Fatalf("Login: %v\n%s", err, dump(opts.Transcript))
			}
			if !slices.Equal(res.AuthAfter, tt.authAfter) {
				t.Errorf("AuthAfter = %v, want %v", res.AuthAfter, tt.authAfter)
			}
			if c.Parameter("server_version") != DefaultServerVersion {
				t.Errorf("server_version = %q", c.Parameter("server_version"))
			}
			rows, err := c.SimpleQuery(ctx, "SHOW ssl")
			if err != nil || len(rows) != 1 || rows[0][0] != tt.wantSSL {
				t.Fatalf("SHOW ssl = %v, %v", rows, err)
			}
			rows, err = c.SimpleQuery(ctx, "select 1;")
			if err != nil || len(rows) != 1 || rows[0][0] != "1" {
				t.Fatalf("SELECT 1 = %v, %v", rows, err)
			}
			_, err = c.SimpleQuery(ctx, "DROP TABLE x")
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != CodeSyntaxError {
				t.Fatalf("DROP TABLE: %v, want ERROR 42601", err)
			}
			rows, err = c.SimpleQuery(ctx, "SELECT current_user")
			if err != nil || len(rows) != 1 || rows[0][0] != testUser {
				t.Fatalf("after an error: SELECT current_user = %v, %v", rows, err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestWrongPassword: FATAL 28P01 for a wrong password and an unknown user,
// with SCRAM and with cleartext.
func TestWrongPassword(t *testing.T) {
	for _, backend := range []Backend{scramBackend{}, plainBackend{}, nil} {
		srv := newServer(t)
		srv.Backend = backend
		addr := startServer(t, srv)
		for _, cred := range [][2]string{{testUser, "wrong"}, {"mallory", testPass}} {
			ctx := linetest.Ctx(t)
			c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Login(ctx, cred[0], cred[1])
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != CodeInvalidPassword || pe.Severity != "FATAL" {
				t.Errorf("%T: Login(%q, %q) = %v, want FATAL 28P01", backend, cred[0], cred[1], err)
			}
			if err := c.Login(ctx, testUser, testPass); err == nil {
				t.Error("a second Login after a failed one succeeded")
			}
			c.Close()
		}
	}
}

func dump(tr *starttls.Transcript) string {
	var s string
	for _, e := range tr.Events() {
		s += e.Format(tr.Start) + "\n"
	}
	return s
}
