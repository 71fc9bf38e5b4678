package pop3

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// loginRaw upgrades a raw client and logs in as alice.
func loginRaw(t *testing.T, c *linetest.Raw) {
	t.Helper()
	if r := c.Cmd("STLS"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("STLS = %q", r)
	}
	c.StartTLS()
	if r := c.Cmd("USER alice"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("USER = %q", r)
	}
	if r := c.Cmd("PASS secret pw"); r != "+OK maildrop has 2 messages (120 octets)" {
		t.Fatalf("PASS = %q", r)
	}
}

func TestServerCapa(t *testing.T) {
	tests := []struct {
		name   string
		opts   starttls.ServerOptions
		tls    bool
		want   []string
		noTLS  bool
		implic bool
	}{
		{name: "before TLS", want: []string{"STLS", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}},
		{name: "after TLS", tls: true, want: []string{"USER", "SASL PLAIN", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}},
		{name: "plaintext login allowed", opts: starttls.ServerOptions{AllowPlaintextLogin: true}, want: []string{"STLS", "USER", "SASL PLAIN", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}},
		{name: "no TLS config", noTLS: true, want: []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.AllowPlaintextLogin = tt.opts.AllowPlaintextLogin
			if tt.noTLS {
				srv.TLSConfig = nil
			}
			c := dialRaw(t, startServer(t, srv))
			if tt.tls {
				c.Cmd("STLS")
				c.StartTLS()
			}
			if r := c.Cmd("CAPA"); r != "+OK Capability list follows" {
				t.Fatalf("CAPA = %q", r)
			}
			if got := c.UntilDot(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CAPA = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestServerDialog runs command/answer pairs against a logged-in session.
func TestServerDialog(t *testing.T) {
	steps := []struct {
		cmd   string
		want  string
		multi []string
	}{
		{"STAT", "+OK 2 120", nil},
		{"LIST", "+OK 2 messages (120 octets)", []string{"1 75", "2 45"}},
		{"LIST 2", "+OK 2 45", nil},
		{"LIST 3", "-ERR no such message", nil},
		{"RETR 1", "+OK 75 octets", []string{"From: a@example.org", "Subject: hi", "", "line one", "..dot line", "...two dots", "last"}},
		{"RETR 2", "+OK 45 octets", []string{"From: b@example.org", "Subject: lf", "", "body", ".."}},
		{"TOP 1 1", "+OK top of message follows", []string{"From: a@example.org", "Subject: hi", "", "line one"}},
		{"TOP 1 0", "+OK top of message follows", []string{"From: a@example.org", "Subject: hi", ""}},
		{"top 1 x", "-ERR usage: TOP msg n", nil},
		{"UIDL 1", "+OK 1 1.", nil}, // prefix checked below
		{"DELE 1", "+OK message 1 deleted (for this session only)", nil},
		{"DELE 1", "-ERR message 1 already deleted", nil},
		{"STAT", "+OK 1 45", nil},
		{"RETR 1", "-ERR message 1 already deleted (too many errors, closing)", nil},
	}
	srv := newServer(t)
	srv.MaxErrors = 4
	c := dialRaw(t, startServer(t, srv))
	loginRaw(t, c)
	for _, s := range steps {
		got := c.Cmd(s.cmd)
		if s.cmd == "UIDL 1" {
			if !strings.HasPrefix(got, s.want) {
				t.Errorf("%s = %q, want prefix %q", s.cmd, got, s.want)
			}
			continue
		}
		if got != s.want {
			t.Errorf("%s = %q, want %q", s.cmd, got, s.want)
		}
		if s.multi != nil {
			if body := c.UntilDot(); !reflect.DeepEqual(body, s.multi) {
				t.Errorf("%s body = %q, want %q", s.cmd, body, s.multi)
			}
		}
	}
	// The fourth error (LIST 3, top 1 x, DELE 1, RETR 1) closes.
	c.ExpectEOF()
}

func TestServerStates(t *testing.T) {
	srv := newServer(t)
	srv.MaxErrors = 100
	c := dialRaw(t, startServer(t, srv))
	for _, s := range []struct{ cmd, want string }{
		{"STAT", "-ERR STAT not valid in the AUTHORIZATION state"},
		{"RETR 1", "-ERR RETR not valid in the AUTHORIZATION state"},
		{"NOOP", "-ERR NOOP not valid in the AUTHORIZATION state"},
		{"XYZZY", "-ERR unknown command"},
		{"USER alice", "-ERR [AUTH] plaintext authentication disallowed, use STLS first"},
		{"PASS x", "-ERR [AUTH] plaintext authentication disallowed, use STLS first"},
		{"AUTH PLAIN AGFsaWNlAHNlY3JldCBwdw==", "-ERR [AUTH] plaintext authentication disallowed, use STLS first"},
		{"APOP alice 0123456789abcdef0123456789abcdef", "-ERR APOP not supported"},
		{"STLS x", "-ERR STLS takes no argument"},
		{"STLS", "+OK Begin TLS negotiation now"},
	} {
		if got := c.Cmd(s.cmd); got != s.want {
			t.Errorf("%s = %q, want %q", s.cmd, got, s.want)
		}
	}
	c.StartTLS()
	for _, s := range []struct{ cmd, want string }{
		{"STLS", "-ERR command not permitted when TLS active"},
		{"PASS x", "-ERR USER first"},
		{"USER alice", "+OK send PASS"},
		{"STLS", "-ERR command not permitted when TLS active"},
		{"PASS wrong", "-ERR [AUTH] invalid username or password"},
		{"AUTH CRAM-MD5", "-ERR unrecognized authentication type"},
		{"AUTH PLAIN !!!", "-ERR malformed AUTH PLAIN response"},
		{"AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("bob\x00alice\x00secret pw")), "-ERR [AUTH] authorization identity not permitted"},
		{"AUTH PLAIN", "+ "},
		{"*", "-ERR authentication cancelled"},
		{"AUTH PLAIN", "+ "},
		{base64.StdEncoding.EncodeToString([]byte("alice\x00alice\x00secret pw")), "+OK maildrop has 2 messages (120 octets)"},
		{"USER alice", "-ERR USER not valid in the TRANSACTION state"},
		{"STLS", "-ERR STLS not valid in the TRANSACTION state"},
		{"NOOP", "+OK"},
		{"DELE 2", "+OK message 2 deleted (for this session only)"},
		{"RSET", "+OK maildrop has 2 messages (120 octets)"},
		{"QUIT", "+OK pop.test POP3 server signing off"},
	} {
		if got := c.Cmd(s.cmd); got != s.want {
			t.Errorf("%s = %q, want %q", s.cmd, got, s.want)
		}
	}
	c.ExpectEOF()
}

func TestServerSTLSRefusals(t *testing.T) {
	t.Run("after USER", func(t *testing.T) {
		srv := newServer(t)
		srv.AllowPlaintextLogin = true
		c := dialRaw(t, startServer(t, srv))
		c.Cmd("USER alice")
		if got := c.Cmd("STLS"); got != "-ERR STLS not permitted after USER" {
			t.Errorf("STLS = %q", got)
		}
	})
	t.Run("RefuseUpgrade", func(t *testing.T) {
		srv := newServer(t)
		srv.RefuseUpgrade = true
		c := dialRaw(t, startServer(t, srv))
		c.Cmd("CAPA")
		if caps := c.UntilDot(); caps[0] != "STLS" {
			t.Errorf("CAPA = %q, want STLS listed", caps)
		}
		if got := c.Cmd("STLS"); got != "-ERR [SYS/TEMP] TLS not available due to temporary reason" {
			t.Errorf("STLS = %q", got)
		}
		_, res, err := Dial(linetest.Ctx(t), c.Conn().RemoteAddr().String(), clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrUpgradeRefused) || !starttls.IsTemporary(err) || !res.Offered {
			t.Errorf("Dial() = %v (temporary %v, offered %v), want a temporary ErrUpgradeRefused", err, starttls.IsTemporary(err), res.Offered)
		}
	})
	t.Run("no TLS config", func(t *testing.T) {
		srv := newServer(t)
		srv.TLSConfig = nil
		c := dialRaw(t, startServer(t, srv))
		if got := c.Cmd("STLS"); got != "-ERR STLS not available" {
			t.Errorf("STLS = %q", got)
		}
	})
}

func TestServerStrictCRLF(t *testing.T) {
	srv := newServer(t)
	c := dialRaw(t, startServer(t, srv))
	c.Write("NOOP\nSTLS\n")
	if got := c.Line(); got != "-ERR malformed command line (CRLF required, no NUL)" {
		t.Errorf("bare LF: %q", got)
	}
	if got := c.Line(); got != "-ERR malformed command line (CRLF required, no NUL)" {
		t.Errorf("bare LF: %q", got)
	}
	c.Write("CAPA\x00\r\n")
	if got := c.Line(); got != "-ERR malformed command line (CRLF required, no NUL) (too many errors, closing)" {
		t.Errorf("NUL: %q", got)
	}
	c.ExpectEOF()
}

func TestServerIdleTimeout(t *testing.T) {
	srv := newServer(t)
	srv.ReadTimeout = 100 * time.Millisecond
	c := dialRaw(t, startServer(t, srv))
	if got := c.Line(); got != "-ERR [SYS/TEMP] idle timeout, closing" {
		t.Errorf("idle: %q", got)
	}
	c.ExpectEOF()
}

func TestServerBackendFailures(t *testing.T) {
	t.Run("panic", func(t *testing.T) {
		var logs bytes.Buffer
		srv := newServer(t)
		srv.Backend = &memBackend{panicOnLogin: true}
		srv.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c := dialRaw(t, startServer(t, srv))
		c.Cmd("STLS")
		c.StartTLS()
		c.Cmd("USER alice")
		if got := c.Cmd("PASS secret pw"); got != "-ERR [SYS/TEMP] internal server error, closing" {
			t.Errorf("PASS = %q", got)
		}
		c.ExpectEOF()
		srv.Close()
		if !strings.Contains(logs.String(), "backend bug") {
			t.Errorf("panic not logged: %q", logs.String())
		}
	})
	t.Run("maildrop", func(t *testing.T) {
		srv := newServer(t)
		srv.Backend = &memBackend{failMaildrop: true}
		c := dialRaw(t, startServer(t, srv))
		c.Cmd("STLS")
		c.StartTLS()
		c.Cmd("USER alice")
		if got := c.Cmd("PASS secret pw"); got != "-ERR [SYS/TEMP] unable to open the maildrop" {
			t.Errorf("PASS = %q", got)
		}
	})
	t.Run("nil backend", func(t *testing.T) {
		srv := newServer(t)
		srv.Backend = nil
		c := dialRaw(t, startServer(t, srv))
		loginFails := func() {
			c.Cmd("USER alice")
			if got := c.Cmd("PASS secret pw"); got != "-ERR [AUTH] invalid username or password" {
				t.Errorf("PASS = %q", got)
			}
		}
		c.Cmd("STLS")
		c.StartTLS()
		loginFails()
	})
}

func TestServerImplicit(t *testing.T) {
	srv := newServer(t)
	srv.Implicit = true
	addr := startServer(t, srv)
	c := linetest.Dial(t, addr)
	c.StartTLS()
	if g := c.Line(); g != "+OK pop.test POP3 server ready" {
		t.Errorf("greeting = %q", g)
	}
	c.Cmd("CAPA")
	caps := c.UntilDot()
	if hasCap(caps, "STLS") || !hasCap(caps, "USER") {
		t.Errorf("implicit CAPA = %q, want USER and no STLS", caps)
	}
	if got := c.Cmd("STLS"); got != "-ERR command not permitted when TLS active" {
		t.Errorf("STLS = %q", got)
	}
}

func TestServerHandshake(t *testing.T) {
	srv := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type result struct {
		tc  *tls.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			done <- result{nil, err}
			return
		}
		tc, err := srv.Handshake(context.Background(), conn)
		done <- result{tc, err}
	}()
	c := dialRaw(t, l.Addr().String())
	c.Cmd("CAPA")
	c.UntilDot()
	if got := c.Cmd("USER alice"); !strings.HasPrefix(got, "-ERR [AUTH]") {
		t.Errorf("USER = %q", got)
	}
	c.Cmd("STLS")
	c.StartTLS()
	r := <-done
	if r.err != nil {
		t.Fatalf("Handshake: %v", r.err)
	}
	defer r.tc.Close()
	// The caller (a proxy) now owns the TLS connection.
	go r.tc.Write([]byte("+OK relayed\r\n"))
	if got := c.Line(); got != "+OK relayed" {
		t.Errorf("after Handshake: %q", got)
	}
}

func TestServerShutdown(t *testing.T) {
	srv := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	c := dialRaw(t, l.Addr().String())
	c.Cmd("NOOP")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err == nil {
		t.Error("Shutdown with a live session returned nil, want a deadline error")
	}
	if err := <-served; err == nil {
		t.Error("Serve returned nil")
	}
	c.ExpectEOF()
}
