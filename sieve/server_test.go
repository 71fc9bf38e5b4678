package sieve

import (
	"strings"
	"testing"
	"time"
)

// TestServerDialog drives the server by hand.
func TestServerDialog(t *testing.T) {
	srv := newServer(t)
	srv.MaxErrors = 10
	c := dialRaw(t, startServer(t, srv))
	if got := cmd(c, "LISTSCRIPTS"); got != `NO "authenticate first"` {
		t.Errorf("LISTSCRIPTS before login = %q", got)
	}
	cmd(c, "STARTTLS")
	c.StartTLS()
	until(c)
	c.Write("AUTHENTICATE \"PLAIN\"\r\n")
	if got := c.Line(); got != `""` {
		t.Fatalf("challenge = %q", got)
	}
	if got := cmd(c, `"AGFsaWNlAHNlY3JldCBwdw=="`); got != `OK "Logged in"` {
		t.Fatalf("AUTHENTICATE continuation = %q", got)
	}
	steps := []struct{ cmd, want string }{
		{"STARTTLS", `NO "TLS is already active"`},
		{`HAVESPACE "a" 100`, `OK "Putscript would succeed"`},
		{`HAVESPACE "a" 99999999`, `NO (QUOTA/MAXSIZE) "script too large"`},
		{"PUTSCRIPT \"a\" {5+}\r\nkeep;", `OK "Putscript completed"`},
		{"PUTSCRIPT \"b\" {5}\r\nkeep;", `BYE "malformed command, closing"`},
	}
	for _, s := range steps {
		if got := cmd(c, s.cmd); got != s.want {
			t.Errorf("%q = %q, want %q", s.cmd, got, s.want)
		}
	}
	c.ExpectEOF()

	c = dialRaw(t, startServer(t, srv))
	cmd(c, "STARTTLS")
	c.StartTLS()
	until(c)
	cmd(c, `AUTHENTICATE "PLAIN" "AGFsaWNlAHNlY3JldCBwdw=="`)
	steps = []struct{ cmd, want string }{
		{`GETSCRIPT "a"`, `OK "Getscript completed"`}, // scripts outlive the session
		{`RENAMESCRIPT "a" "b"`, `OK "Renamescript completed"`},
		{`SETACTIVE "nope"`, `NO (NONEXISTENT) "no such script"`},
		{`SETACTIVE ""`, `OK "Setactive completed"`},
		{"CHECKSCRIPT {3+}\r\na\x00b", `NO "script is not UTF-8 or contains NUL"`},
		{`NOOP "t1"`, `OK (TAG "t1") "Done"`},
		{"FOO", `NO "unknown command"`},
		{"LOGOUT", `OK "Logout completed"`},
	}
	for _, s := range steps {
		if got := cmd(c, s.cmd); got != s.want {
			t.Errorf("%q = %q, want %q", s.cmd, got, s.want)
		}
	}
	c.ExpectEOF()
}

func TestServerErrorLimitAndIdle(t *testing.T) {
	srv := newServer(t)
	c := dialRaw(t, startServer(t, srv))
	cmd(c, "FOO")
	cmd(c, "BAR")
	if got := cmd(c, "BAZ"); !strings.HasPrefix(got, "BYE ") {
		t.Errorf("third error = %q, want BYE", got)
	}
	c.ExpectEOF()

	srv2 := newServer(t)
	srv2.ReadTimeout = 200 * time.Millisecond
	c = dialRaw(t, startServer(t, srv2))
	if got := c.Line(); got != `BYE "idle timeout, closing"` {
		t.Errorf("idle = %q", got)
	}
}

func TestServerPanicRecovered(t *testing.T) {
	srv := newServer(t)
	srv.Backend = &memBackend{panicOnLogin: true}
	srv.AllowPlaintextLogin = true
	addr := startServer(t, srv)
	c := dialRaw(t, addr)
	if got := cmd(c, `AUTHENTICATE "PLAIN" "AGFsaWNlAHNlY3JldCBwdw=="`); got != `BYE (TRYLATER) "internal server error, closing"` {
		t.Errorf("panic = %q", got)
	}
	dialRaw(t, addr)
}
