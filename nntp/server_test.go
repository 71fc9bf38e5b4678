package nntp

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestServerDialog drives the server by hand, command by command.
func TestServerDialog(t *testing.T) {
	srv := newServer(t)
	srv.MaxErrors = 7
	c := dialRaw(t, startServer(t, srv))
	steps := []struct{ cmd, want string }{
		{"GROUP test.group", "480 Authentication required"},
		{"AUTHINFO PASS x", "483 Encryption required: use STARTTLS first"},
		{"MODE READER", "201 Reader mode, posting prohibited"},
		{"STARTTLS", "382 Continue with TLS negotiation"},
	}
	for _, s := range steps {
		if got := c.Cmd(s.cmd); got != s.want {
			t.Fatalf("%s = %q, want %q", s.cmd, got, s.want)
		}
	}
	c.StartTLS()
	steps = []struct{ cmd, want string }{
		{"STARTTLS", "502 already using TLS"},
		{"AUTHINFO PASS secret pw", "482 Authentication commands issued out of sequence"},
		{"AUTHINFO USER alice", "381 Password required"},
		{"AUTHINFO PASS secret pw", "281 Authentication accepted"},
		{"AUTHINFO USER alice", "502 already authenticated"},
		{"ARTICLE", "412 No newsgroup selected"},
		{"GROUP test.empty", "211 0 0 0 test.empty group selected"},
		{"ARTICLE", "420 Current article number is invalid"},
		{"GROUP test.group", "211 2 1 2 test.group group selected"},
		{"STAT", "223 1 <one@example.org>"},
		{"STAT 2", "223 2 <2.test.group@news.test>"},
		{"STAT <2.test.group@news.test>", "223 0 <2.test.group@news.test>"},
		{"STAT <nope@x>", "430 No article with that message-id"},
		{"STAT 0", "423 No article with that number"},
		{"HEAD x", "501 invalid article number"},
		{"FOO", "500 unknown command"},
		{"GROUP no.such", "411 No such newsgroup"},
	}
	for _, s := range steps {
		if got := c.Cmd(s.cmd); got != s.want {
			t.Errorf("%s = %q, want %q", s.cmd, got, s.want)
		}
	}
	// The error limit (7) is reached: 483, 502, 482, 502, 501, 500 and one more.
	if got := c.Cmd("MODE WRITER"); !strings.HasSuffix(got, "(too many errors, closing)") {
		t.Errorf("third error = %q", got)
	}
	c.ExpectEOF()
}

func TestServerMultiLine(t *testing.T) {
	c := dialRaw(t, startServer(t, newServer(t)))
	c.Cmd("STARTTLS")
	c.StartTLS()
	c.Cmd("AUTHINFO SASL PLAIN")
	c.Write("AGFsaWNlAHNlY3JldCBwdw==\r\n")
	if got := c.Line(); got != "281 Authentication accepted" {
		t.Fatalf("AUTHINFO SASL with continuation = %q", got)
	}
	c.Cmd("CAPABILITIES")
	if caps := parseCaps(c.UntilDot()); hasCap(caps, "AUTHINFO") || hasCap(caps, "STARTTLS") {
		t.Errorf("caps after login = %q", caps)
	}
	if got := c.Cmd("LISTGROUP test.group 2-"); got != "211 2 1 2 test.group list follows" {
		t.Errorf("LISTGROUP = %q", got)
	}
	if got := c.UntilDot(); strings.Join(got, ",") != "2" {
		t.Errorf("LISTGROUP lines = %q", got)
	}
	c.Cmd("LIST ACTIVE")
	if got := c.UntilDot(); strings.Join(got, ",") != "test.group 2 1 n,test.empty 0 1 n" {
		t.Errorf("LIST ACTIVE = %q", got)
	}
	c.Cmd("ARTICLE 1")
	if got := strings.Join(c.UntilDot(), "\n"); !strings.Contains(got, "\n..dot line\n...two dots\n") {
		t.Errorf("ARTICLE not dot-stuffed: %q", got)
	}
	if got := c.Cmd("DATE"); !strings.HasPrefix(got, "111 2") || len(got) != 18 {
		t.Errorf("DATE = %q", got)
	}
	c.Cmd("HELP")
	c.UntilDot()
	if got := c.Cmd("QUIT"); got != "205 closing connection" {
		t.Errorf("QUIT = %q", got)
	}
	c.ExpectEOF()
}

// TestServerPanicRecovered: a panicking backend ends the session with 403,
// and the server goes on.
func TestServerPanicRecovered(t *testing.T) {
	srv := newServer(t)
	srv.Backend = &memBackend{panicOnLogin: true}
	addr := startServer(t, srv)
	c := dialRaw(t, addr)
	c.Cmd("STARTTLS")
	c.StartTLS()
	c.Cmd("AUTHINFO USER alice")
	if got := c.Cmd("AUTHINFO PASS secret pw"); got != "403 internal server error, closing" {
		t.Errorf("panic = %q", got)
	}
	dialRaw(t, addr)
}

// TestServerShutdown: Shutdown ends idle sessions with 400.
func TestServerShutdown(t *testing.T) {
	srv := newServer(t)
	srv.ReadTimeout = 200 * time.Millisecond
	c := dialRaw(t, startServer(t, srv))
	if got := c.Line(); got != "400 idle timeout, closing" {
		t.Errorf("idle = %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}
