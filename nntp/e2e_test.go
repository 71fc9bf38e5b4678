package nntp

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
		name     string
		mode     starttls.Mode
		implicit bool
		noTLS    bool
		upgraded bool
		loginErr error
	}{
		{"required", starttls.ModeRequired, false, false, true, nil},
		{"opportunistic", starttls.ModeOpportunistic, false, false, true, nil},
		{"opportunistic without TLS", starttls.ModeOpportunistic, false, true, false, starttls.ErrFallbackForbidden},
		{"implicit", starttls.ModeImplicit, true, false, true, nil},
		{"plain", starttls.ModePlain, false, false, false, &Error{}},
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
			if res.Upgraded != tt.upgraded || res.Protocol != "nntp" || res.Mode != tt.mode {
				t.Fatalf("Upgraded %v Protocol %q Mode %v", res.Upgraded, res.Protocol, res.Mode)
			}
			if tt.upgraded {
				if res.TLS == nil || res.OfferedAfterTLS || !res.CapsReread {
					t.Errorf("TLS %v OfferedAfterTLS %v CapsReread %v", res.TLS != nil, res.OfferedAfterTLS, res.CapsReread)
				}
				if want := []string{"USER", "PLAIN"}; !reflect.DeepEqual(res.AuthAfter, want) {
					t.Errorf("AuthAfter = %q, want %q", res.AuthAfter, want)
				}
				if !tt.implicit && (!res.Offered || len(res.AuthBefore) != 0 || !hasCap(res.CapsBefore, "STARTTLS")) {
					t.Errorf("Offered %v AuthBefore %q CapsBefore %q", res.Offered, res.AuthBefore, res.CapsBefore)
				}
				if tt.implicit && (res.CapsBefore != nil || res.Offered) {
					t.Errorf("implicit: CapsBefore %q Offered %v", res.CapsBefore, res.Offered)
				}
			}
			err = c.Login(ctx, "alice", "secret pw")
			switch want := tt.loginErr.(type) {
			case nil:
				if err != nil {
					t.Fatalf("Login: %v", err)
				}
			case *Error:
				// Plain mode: AUTHINFO is listed without mechanisms.
				if err == nil {
					t.Fatal("Login succeeded in plaintext")
				}
				return
			default:
				if !errors.Is(err, want) {
					t.Fatalf("Login() error = %v, want %v", err, want)
				}
				return
			}
			if hasCap(c.Capabilities(), "AUTHINFO") {
				t.Errorf("AUTHINFO still listed after login: %q", c.Capabilities())
			}
			g, err := c.Group(ctx, "test.group")
			if err != nil {
				t.Fatal(err)
			}
			if g != (GroupInfo{Name: "test.group", Count: 2, Low: 1, High: 2}) {
				t.Errorf("Group = %+v", g)
			}
			art, err := c.Article(ctx, "1")
			if err != nil || string(art) != testMessage {
				t.Errorf("Article(1) = %q, %v; want %q", art, err, testMessage)
			}
			art, err = c.Article(ctx, "2")
			if err != nil || string(art) != testMessageLFAsOnWire {
				t.Errorf("Article(2) = %q, %v", art, err)
			}
			head, err := c.Head(ctx, "<one@example.org>")
			if err != nil || !strings.HasSuffix(string(head), "Message-ID: <one@example.org>\r\n") {
				t.Errorf("Head(<one@example.org>) = %q, %v", head, err)
			}
			body, err := c.Body(ctx, "1")
			if err != nil || string(body) != "line one\r\n.dot line\r\n..two dots\r\nlast\r\n" {
				t.Errorf("Body(1) = %q, %v", body, err)
			}
			var e *Error
			if _, err := c.Article(ctx, "9"); !errors.As(err, &e) || e.Code != CodeNoSuchNumber {
				t.Errorf("Article(9) error = %v, want 423", err)
			}
			if _, err := c.Group(ctx, "no.such"); !errors.As(err, &e) || e.Code != CodeNoSuchGroup {
				t.Errorf("Group(no.such) error = %v, want 411", err)
			}
			if err := c.ModeReader(ctx); err != nil {
				t.Errorf("ModeReader: %v", err)
			}
		})
	}
}

// TestLoginWrongPassword: 481, and the transcript never shows the password.
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
	if err := c.Login(ctx, "alice", "wrong horse"); !errors.As(err, &e) || e.Code != CodeAuthFailed {
		t.Errorf("Login() error = %v, want 481", err)
	}
	for _, ev := range opts.Transcript.Events() {
		if strings.Contains(ev.Text, "wrong horse") {
			t.Errorf("transcript shows the password: %q", ev.Text)
		}
	}
}
