package imap

import (
	"crypto/tls"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestClientAgainstServer runs the client against the package's own server
// in every mode.
func TestClientAgainstServer(t *testing.T) {
	preTLS := []string{"IMAP4REV1", "STARTTLS", "LOGINDISABLED", "ID", "ENABLE", "UNSELECT"}
	postTLS := []string{"IMAP4REV1", "AUTH=PLAIN", "SASL-IR", "ID", "ENABLE", "UNSELECT"}
	tests := []struct {
		name       string
		mode       starttls.Mode
		implicit   bool
		plainLogin bool
		upgraded   bool
		capsBefore []string
		capsAfter  []string
		authBefore []string
		authAfter  []string
		offered    bool
	}{
		{name: "required", mode: starttls.ModeRequired, upgraded: true, capsBefore: preTLS, capsAfter: postTLS, authAfter: []string{"LOGIN", "PLAIN"}, offered: true},
		{name: "opportunistic", mode: starttls.ModeOpportunistic, upgraded: true, capsBefore: preTLS, capsAfter: postTLS, authAfter: []string{"LOGIN", "PLAIN"}, offered: true},
		{name: "implicit", mode: starttls.ModeImplicit, implicit: true, upgraded: true, capsAfter: postTLS, authAfter: []string{"LOGIN", "PLAIN"}},
		{name: "plain", mode: starttls.ModePlain, plainLogin: true, capsBefore: []string{"IMAP4REV1", "STARTTLS", "AUTH=PLAIN", "SASL-IR", "ID", "ENABLE", "UNSELECT"}, authBefore: []string{"LOGIN", "PLAIN"}, offered: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.Implicit = tt.implicit
			srv.AllowPlaintextLogin = tt.plainLogin
			addr := startServer(t, srv)
			opts := clientOpts(t, tt.mode)
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, addr, opts)
			if err != nil {
				t.Fatalf("Dial() = %v\n%s", err, transcriptText(opts.Transcript))
			}
			defer c.Close()
			if res.Protocol != "imap" || res.Mode != tt.mode || res.Upgraded != tt.upgraded || res.Offered != tt.offered || res.OfferedAfterTLS {
				t.Errorf("Result = protocol %q mode %v upgraded %v offered %v offeredAfterTLS %v", res.Protocol, res.Mode, res.Upgraded, res.Offered, res.OfferedAfterTLS)
			}
			if !reflect.DeepEqual(res.CapsBefore, tt.capsBefore) || !reflect.DeepEqual(res.CapsAfter, tt.capsAfter) {
				t.Errorf("CapsBefore = %q, CapsAfter = %q; want %q, %q", res.CapsBefore, res.CapsAfter, tt.capsBefore, tt.capsAfter)
			}
			if !reflect.DeepEqual(res.AuthBefore, tt.authBefore) || !reflect.DeepEqual(res.AuthAfter, tt.authAfter) {
				t.Errorf("AuthBefore = %q, AuthAfter = %q; want %q, %q", res.AuthBefore, res.AuthAfter, tt.authBefore, tt.authAfter)
			}
			if res.CapsReread != (tt.upgraded && !tt.implicit) && !tt.implicit {
				t.Errorf("CapsReread = %v", res.CapsReread)
			}
			if (res.TLS != nil) != tt.upgraded {
				t.Errorf("TLS state = %v, want upgraded %v", res.TLS, tt.upgraded)
			}
			if !strings.HasPrefix(res.Greeting, "* OK [CAPABILITY ") || !strings.HasSuffix(res.Greeting, "imap.test ready") {
				t.Errorf("Greeting = %q", res.Greeting)
			}
			if err := c.Login(ctx, "alice", "secret pw"); err != nil {
				t.Fatalf("Login() = %v\n%s", err, transcriptText(opts.Transcript))
			}
			boxes, err := c.List(ctx)
			if err != nil || !reflect.DeepEqual(boxes, []string{"INBOX", "Archive/2024", "Sent Items"}) {
				t.Errorf("List() = %q, %v", boxes, err)
			}
			if tr := transcriptText(opts.Transcript); strings.Contains(tr, "secret") {
				t.Errorf("transcript shows the password:\n%s", tr)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
		})
	}
}

func TestLoginVariants(t *testing.T) {
	tests := []struct {
		name, user, pass string
		wantErr          bool
	}{
		{name: "atom", user: "alice", pass: "secret pw"},
		{name: "wrong password", user: "alice", pass: "nope", wantErr: true},
		{name: "quoted specials", user: `a"l\ice`, pass: `p"w\`, wantErr: true},
		{name: "8-bit literal", user: "alicé", pass: "sécret", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startServer(t, newServer(t))
			opts := clientOpts(t, starttls.ModeRequired)
			ctx := linetest.Ctx(t)
			c, _, err := Dial(ctx, addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Login(ctx, tt.user, tt.pass)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Login() = %v, want error %v\n%s", err, tt.wantErr, transcriptText(opts.Transcript))
			}
			if e, ok := err.(*Error); tt.wantErr && (!ok || e.Type != "NO" || e.Code != "AUTHENTICATIONFAILED") {
				t.Errorf("Login() error = %#v, want NO [AUTHENTICATIONFAILED]", err)
			}
			if tr := transcriptText(opts.Transcript); strings.Contains(tr, tt.pass) {
				t.Errorf("transcript shows the password:\n%s", tr)
			}
		})
	}
}

// TestServerHandshake: the proxy entry point returns the TLS conn right
// after the upgrade, and the IMAP dialog can go on over it.
func TestServerHandshake(t *testing.T) {
	srv := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *tls.Conn, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		tc, err := srv.Handshake(linetest.Ctx(t), conn)
		if err != nil {
			t.Errorf("Handshake() = %v", err)
		}
		got <- tc
	}()
	c := dialRaw(t, l.Addr().String())
	if r := tagged(c, "a1", "STARTTLS"); last(r) != "a1 OK Begin TLS negotiation now" {
		t.Fatalf("STARTTLS = %q", r)
	}
	c.StartTLS()
	tc := <-got
	if tc == nil {
		t.Fatal("no TLS conn")
	}
	defer tc.Close()
	if _, err := tc.Write([]byte("* OK relayed\r\n")); err != nil {
		t.Fatal(err)
	}
	if l := c.Line(); l != "* OK relayed" {
		t.Errorf("after Handshake: %q", l)
	}
}
