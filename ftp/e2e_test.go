package ftp

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestEndToEnd runs our client against our server in every mode.
func TestEndToEnd(t *testing.T) {
	tests := []struct {
		name      string
		mode      starttls.Mode
		implicit  bool
		plainLog  bool
		upgraded  bool
		loginErr  error
		protected bool
	}{
		{"required", starttls.ModeRequired, false, false, true, nil, true},
		{"opportunistic", starttls.ModeOpportunistic, false, false, true, nil, true},
		{"implicit", starttls.ModeImplicit, true, false, true, nil, true},
		{"plain", starttls.ModePlain, false, true, false, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.Implicit = tt.implicit
			srv.AllowPlaintextLogin = tt.plainLog
			addr := startServer(t, srv)
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, addr, clientOpts(t, tt.mode))
			if err != nil {
				t.Fatalf("Dial: %v\n%s", err, dump(res.Transcript))
			}
			defer c.Close()
			if res.Protocol != "ftp" || res.Mode != tt.mode || res.Upgraded != tt.upgraded {
				t.Fatalf("Result = %+v", res)
			}
			if !strings.HasPrefix(res.Greeting, "220 ftp.test") {
				t.Errorf("Greeting = %q", res.Greeting)
			}
			if tt.upgraded {
				if res.TLS == nil || !res.CapsReread || res.OfferedAfterTLS {
					t.Errorf("TLS %v, CapsReread %v, OfferedAfterTLS %v", res.TLS != nil, res.CapsReread, res.OfferedAfterTLS)
				}
				if slices.Contains(res.CapsAfter, "AUTH TLS") || !slices.Contains(res.CapsAfter, "PBSZ") {
					t.Errorf("CapsAfter = %v", res.CapsAfter)
				}
				if !slices.Equal(res.AuthAfter, []string{"USER"}) || len(res.AuthBefore) != 0 {
					t.Errorf("AuthBefore %v, AuthAfter %v", res.AuthBefore, res.AuthAfter)
				}
			}
			if !tt.implicit {
				if !res.Offered || !slices.Contains(res.CapsBefore, "AUTH TLS") {
					t.Errorf("Offered %v, CapsBefore %v", res.Offered, res.CapsBefore)
				}
			} else if len(res.CapsBefore) != 0 || res.Offered {
				t.Errorf("implicit: CapsBefore %v, Offered %v", res.CapsBefore, res.Offered)
			}
			if c.DataProtected() != tt.protected {
				t.Errorf("DataProtected = %v", c.DataProtected())
			}
			if err := c.Login(ctx, "alice", "wrong"); err == nil {
				t.Fatal("wrong password accepted")
			} else {
				var fe *Error
				if !errors.As(err, &fe) || fe.Code != 530 {
					t.Errorf("wrong password: %v, want a 530 *Error", err)
				}
			}
			if err := c.Login(ctx, "alice", "secret pw"); err != nil {
				t.Fatalf("Login: %v", err)
			}
			if strings.Contains(dump(res.Transcript), "secret pw") {
				t.Error("password in the transcript")
			}
			lines, err := c.List(ctx, "")
			if err != nil {
				t.Fatalf("List: %v\n%s", err, dump(res.Transcript))
			}
			if len(lines) != 2 || !strings.HasSuffix(lines[0], " hello.txt") || !strings.HasPrefix(lines[1], "d") {
				t.Errorf("List = %q", lines)
			}
			names, err := c.NameList(ctx, "pub")
			if err != nil || !slices.Equal(names, []string{"big.bin", "readme.md", `we"ird dir`}) {
				t.Errorf("NameList = %q, %v", names, err)
			}
			got, err := c.Retr(ctx, "hello.txt")
			if err != nil || string(got) != testFile {
				t.Fatalf("Retr = %q, %v", got, err)
			}
			big, err := c.Retr(ctx, "/pub/big.bin")
			if err != nil || !bytes.Equal(big, bytes.Repeat([]byte{0xAB}, 300000)) {
				t.Fatalf("Retr big: %d bytes, %v", len(big), err)
			}
			if _, err := c.Retr(ctx, "nope.txt"); err == nil {
				t.Error("Retr of a missing file succeeded")
			}
			if tt.protected && !strings.Contains(dump(res.Transcript), "TLS session resumed") {
				t.Errorf("data connection did not resume the TLS session:\n%s", dump(res.Transcript))
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}
