package pop3

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestEndToEnd runs the Client against the Server in every mode.
func TestEndToEnd(t *testing.T) {
	tlsCaps := []string{"USER", "SASL PLAIN", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	tests := []struct {
		name       string
		mode       starttls.Mode
		server     func(s *Server)
		wantUp     bool
		wantOffer  bool
		capsBefore []string
		authBefore []string
		capsAfter  []string
		authAfter  []string
		loginErr   error
	}{
		{
			name: "required", mode: starttls.ModeRequired, wantUp: true, wantOffer: true,
			capsBefore: []string{"STLS", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"},
			capsAfter:  tlsCaps, authAfter: []string{"USER", "PLAIN"},
		},
		{
			name: "opportunistic", mode: starttls.ModeOpportunistic, wantUp: true, wantOffer: true,
			capsBefore: []string{"STLS", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"},
			capsAfter:  tlsCaps, authAfter: []string{"USER", "PLAIN"},
		},
		{
			name: "opportunistic without TLS", mode: starttls.ModeOpportunistic,
			server:     func(s *Server) { s.TLSConfig = nil; s.AllowPlaintextLogin = true },
			capsBefore: []string{"USER", "SASL PLAIN", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"},
			authBefore: []string{"USER", "PLAIN"},
			loginErr:   starttls.ErrFallbackForbidden,
		},
		{
			name: "implicit", mode: starttls.ModeImplicit, wantUp: true,
			server:    func(s *Server) { s.Implicit = true },
			capsAfter: tlsCaps, authAfter: []string{"USER", "PLAIN"},
		},
		{
			name: "plain", mode: starttls.ModePlain, wantOffer: true,
			server:     func(s *Server) { s.AllowPlaintextLogin = true },
			capsBefore: []string{"STLS", "USER", "SASL PLAIN", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"},
			authBefore: []string{"USER", "PLAIN"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			if tt.server != nil {
				tt.server(srv)
			}
			addr := startServer(t, srv)
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, addr, clientOpts(t, tt.mode))
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if res.Mode != tt.mode || res.Upgraded != tt.wantUp || res.Offered != tt.wantOffer || res.OfferedAfterTLS {
				t.Errorf("Mode, Upgraded, Offered, OfferedAfterTLS = %v, %v, %v, %v; want %v, %v, %v, false",
					res.Mode, res.Upgraded, res.Offered, res.OfferedAfterTLS, tt.mode, tt.wantUp, tt.wantOffer)
			}
			if res.CapsReread != (tt.wantUp) {
				t.Errorf("CapsReread = %v, want %v", res.CapsReread, tt.wantUp)
			}
			if (res.TLS != nil) != tt.wantUp {
				t.Errorf("TLS = %v, want set: %v", res.TLS, tt.wantUp)
			}
			for _, f := range []struct {
				name      string
				got, want []string
			}{
				{"CapsBefore", res.CapsBefore, tt.capsBefore},
				{"AuthBefore", res.AuthBefore, tt.authBefore},
				{"CapsAfter", res.CapsAfter, tt.capsAfter},
				{"AuthAfter", res.AuthAfter, tt.authAfter},
			} {
				if len(f.got) != 0 || len(f.want) != 0 {
					if !reflect.DeepEqual(f.got, f.want) {
						t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
					}
				}
			}
			err = c.Login(ctx, "alice", "secret pw")
			if tt.loginErr != nil {
				if !errors.Is(err, tt.loginErr) {
					t.Errorf("Login() error = %v, want %v", err, tt.loginErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			n, size, err := c.Stat(ctx)
			if n != 2 || size != 120 || err != nil {
				t.Errorf("Stat() = %d, %d, %v; want 2, 120, nil", n, size, err)
			}
			for i, want := range []string{testMessage, testMessageLFAsOnWire} {
				msg, err := c.Retr(ctx, i+1)
				if string(msg) != want || err != nil {
					t.Errorf("Retr(%d) = %q, %v; want %q", i+1, msg, err, want)
				}
			}
			var pe *Error
			if _, err := c.Retr(ctx, 3); !errors.As(err, &pe) {
				t.Errorf("Retr(3) error = %v, want *Error", err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestEndToEndAuthPlain logs in with AUTH PLAIN when USER is not offered,
// with the initial response and with a continuation for a long password.
func TestEndToEndAuthPlain(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'p'
	}
	for _, pass := range []string{"secret pw", string(long)} {
		srv := newServer(t)
		srv.Backend = backendFunc(func(user, p string) error {
			if user == "alice" && p == pass {
				return nil
			}
			return errBadLogin
		})
		addr := startServer(t, srv)
		ctx := linetest.Ctx(t)
		c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		c.caps = []string{"SASL PLAIN"} // as if USER were not offered
		if err := c.Login(ctx, "alice", pass); err != nil {
			t.Errorf("Login with a %d-byte password: %v", len(pass), err)
		}
		c.Close()
	}
}

type backendFunc func(user, pass string) error

func (f backendFunc) Login(_ context.Context, user, pass string) error { return f(user, pass) }
func (f backendFunc) Messages(context.Context, string) ([][]byte, error) {
	return nil, nil
}
