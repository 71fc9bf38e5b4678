package imap

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/linetest"
)

// loggedIn returns a raw client that did STARTTLS and LOGIN.
func loggedIn(t *testing.T, srv *Server) *linetest.Raw {
	t.Helper()
	c := dialRaw(t, startServer(t, srv))
	if r := tagged(c, "s1", "STARTTLS"); last(r) != "s1 OK Begin TLS negotiation now" {
		t.Fatalf("STARTTLS = %q", r)
	}
	c.StartTLS()
	if r := tagged(c, "s2", `LOGIN alice "secret pw"`); last(r) != "s2 OK [CAPABILITY IMAP4rev1 ID ENABLE UNSELECT] Logged in" {
		t.Fatalf("LOGIN = %q", r)
	}
	return c
}

func TestServerGreeting(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(s *Server)
		greeting string
	}{
		{"starttls", func(s *Server) {}, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED ID ENABLE UNSELECT] imap.test ready"},
		{"no TLS", func(s *Server) { s.TLSConfig = nil }, "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED ID ENABLE UNSELECT] imap.test ready"},
		{"plaintext login", func(s *Server) { s.AllowPlaintextLogin = true }, "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN SASL-IR ID ENABLE UNSELECT] imap.test ready"},
		{"default name", func(s *Server) { s.Hostname = "" }, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED ID ENABLE UNSELECT] localhost ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			tt.setup(srv)
			server, c := pipeRaw(t)
			go srv.ServeConn(context.Background(), server)
			if got := c.Line(); got != tt.greeting {
				t.Errorf("greeting = %q, want %q", got, tt.greeting)
			}
		})
	}
}

// TestServerStates checks the state guard of every state (RFC 3501 §3) and
// the STARTTLS rules (SV-11, second STARTTLS).
func TestServerStates(t *testing.T) {
	srv := newServer(t)
	srv.MaxErrors = 5
	c := dialRaw(t, startServer(t, srv))
	steps := []struct{ tag, cmd, want string }{
		{"a1", "SELECT INBOX", "a1 BAD SELECT not allowed in the not authenticated state"},
		{"a2", "FETCH 1 FLAGS", "a2 BAD FETCH not allowed in the not authenticated state"},
		{"a3", "NOOP", "a3 OK NOOP completed"},
		{"a4", "STARTTLS", "a4 OK Begin TLS negotiation now"},
	}
	for _, s := range steps {
		if got := last(tagged(c, s.tag, s.cmd)); got != s.want {
			t.Errorf("%s = %q, want %q", s.cmd, got, s.want)
		}
	}
	c.StartTLS()
	steps = []struct{ tag, cmd, want string }{
		{"b1", "CAPABILITY", "b1 OK CAPABILITY completed"},
		{"b2", "STARTTLS", "b2 BAD TLS is already active"},
		{"b3", "LOGIN alice \"secret pw\"", "b3 OK [CAPABILITY IMAP4rev1 ID ENABLE UNSELECT] Logged in"},
		{"b4", "STARTTLS", "b4 BAD STARTTLS not allowed in the authenticated state"},
		{"b5", "LOGIN alice \"secret pw\"", "b5 BAD LOGIN not allowed in the authenticated state"},
	}
	// a1, a2, b2, b4 and b5 are five errors: the fifth closes the session.
	for i, s := range steps {
		got := tagged(c, s.tag, s.cmd)
		if last(got) != s.want {
			t.Errorf("%s = %q, want %q", s.cmd, got, s.want)
		}
		if i == len(steps)-1 {
			if rest := expectEOF(t, c); rest != "* BYE Too many invalid commands, closing\r\n" {
				t.Errorf("after the third error: %q", rest)
			}
		}
	}
}

func TestServerSession(t *testing.T) {
	c := loggedIn(t, newServer(t))
	uv := strconv.FormatUint(uint64(uidValidity("INBOX", [][]byte{normalize([]byte(testMessage1)), normalize([]byte(testMessage2))})), 10)
	size1, size2 := strconv.Itoa(len(testMessage1)), strconv.Itoa(len(normalize([]byte(testMessage2))))
	steps := []struct {
		cmd  string
		want []string
	}{
		{`LIST "" "*"`, []string{`* LIST () "/" INBOX`, `* LIST () "/" Archive/2024`, `* LIST () "/" "Sent Items"`, "OK LIST completed"}},
		{`LIST "" %`, []string{`* LIST () "/" INBOX`, `* LIST () "/" "Sent Items"`, "OK LIST completed"}},
		{`LIST "" ""`, []string{`* LIST (\Noselect) "/" ""`, "OK LIST completed"}},
		{`LIST "Archive/" *`, []string{`* LIST () "/" Archive/2024`, "OK LIST completed"}},
		{`LIST "" inbox`, []string{`* LIST () "/" INBOX`, "OK LIST completed"}},
		{`LSUB "" "*"`, []string{`* LSUB () "/" INBOX`, `* LSUB () "/" Archive/2024`, `* LSUB () "/" "Sent Items"`, "OK LSUB completed"}},
		{`STATUS inbox (MESSAGES UIDNEXT UNSEEN)`, []string{`* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UNSEEN 2)`, "OK STATUS completed"}},
		{`ID ("name" "test")`, []string{"* ID NIL", "OK ID completed"}},
		{`ENABLE CONDSTORE`, []string{"* ENABLED", "OK ENABLE completed"}},
		{`SELECT nosuch`, []string{"NO [NONEXISTENT] No such mailbox"}},
		{`EXAMINE INBOX`, []string{`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`, `* OK [PERMANENTFLAGS ()] No permanent flags permitted`, "* 2 EXISTS", "* 0 RECENT", "* OK [UIDVALIDITY " + uv + "] UIDs valid", "* OK [UIDNEXT 3] Predicted next UID", "OK [READ-ONLY] EXAMINE completed"}},
		{`FETCH 2 BODY[]`, []string{"* 2 FETCH (BODY[] {" + size2 + "}", "From: carol@example.org", "Subject: second", "", "body two", ")", "OK FETCH completed"}},
		{`FETCH 2 FLAGS`, []string{"* 2 FETCH (FLAGS ())", "OK FETCH completed"}},
		{`SELECT INBOX`, []string{`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`, `* OK [PERMANENTFLAGS ()] No permanent flags permitted`, "* 2 EXISTS", "* 0 RECENT", "* OK [UIDVALIDITY " + uv + "] UIDs valid", "* OK [UIDNEXT 3] Predicted next UID", "OK [READ-WRITE] SELECT completed"}},
		{`FETCH 1:* (UID RFC822.SIZE FLAGS INTERNALDATE)`, []string{"* 1 FETCH (UID 1 RFC822.SIZE " + size1 + ` FLAGS () INTERNALDATE "02-Jan-2006 15:04:05 +0000")`, "* 2 FETCH (UID 2 RFC822.SIZE " + size2 + ` FLAGS () INTERNALDATE "01-Jan-1970 00:00:00 +0000")`, "OK FETCH completed"}},
		{`UID FETCH 2 BODY.PEEK[HEADER.FIELDS (subject)]`, []string{"* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {19}", "Subject: second", "", ")", "OK FETCH completed"}},
		{`FETCH 2 (BODY[TEXT] BODY[]<5.5>)`, []string{"* 2 FETCH (BODY[TEXT] {10}", "body two", " BODY[]<5> {5}", " caro FLAGS (\\Seen))", "OK FETCH completed"}},
		{`SEARCH ALL`, []string{"* SEARCH 1 2", "OK SEARCH completed"}},
		{`SEARCH UNSEEN`, []string{"* SEARCH 1", "OK SEARCH completed"}},
		{`UID SEARCH CHARSET UTF-8 2:*`, []string{"* SEARCH 2", "OK SEARCH completed"}},
		{`SEARCH FROM alice`, []string{"NO [CANNOT] Unsupported search criterion \"FROM\""}},
		{`UID FETCH 7:9 FLAGS`, []string{"OK FETCH completed"}},
		{`FETCH 3 FLAGS`, []string{"BAD Invalid message sequence number"}},
		{`STORE 1 +FLAGS (\Deleted)`, []string{"NO [CANNOT] The mail store is read-only"}},
		{`IDLE`, []string{"NO [CANNOT] Not supported"}},
		{`CLOSE`, []string{"OK Completed"}},
		{`FETCH 1 FLAGS`, []string{"BAD FETCH not allowed in the authenticated state"}},
		{`LOGOUT`, []string{"* BYE imap.test logging out", "OK LOGOUT completed"}},
	}
	for i, s := range steps {
		tag := "t" + strconv.Itoa(i)
		got := tagged(c, tag, s.cmd)
		want := append([]string(nil), s.want...)
		want[len(want)-1] = tag + " " + want[len(want)-1]
		// Literal data arrives as lines too; compare the whole.
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s =\n%q\nwant\n%q", s.cmd, got, want)
		}
	}
	expectEOF(t, c)
}

func TestServerAuthenticate(t *testing.T) {
	tests := []struct {
		name  string
		lines []string // client lines; "<" lines are expected answers
	}{
		{"SASL-IR", []string{"a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldCBwdw==", "<a1 OK [CAPABILITY IMAP4rev1 ID ENABLE UNSELECT] Logged in"}},
		{"continuation", []string{"a1 AUTHENTICATE PLAIN", "<+ ", "AGFsaWNlAHNlY3JldCBwdw==", "<a1 OK [CAPABILITY IMAP4rev1 ID ENABLE UNSELECT] Logged in"}},
		{"authzid", []string{"a1 AUTHENTICATE PLAIN YWxpY2UAYWxpY2UAc2VjcmV0IHB3", "<a1 OK [CAPABILITY IMAP4rev1 ID ENABLE UNSELECT] Logged in"}},
		{"other authzid", []string{"a1 AUTHENTICATE PLAIN Ym9iAGFsaWNlAHNlY3JldCBwdw==", "<a1 NO [AUTHORIZATIONFAILED] Authorization identity not permitted"}},
		{"cancel", []string{"a1 AUTHENTICATE PLAIN", "<+ ", "*", "<a1 BAD Authentication cancelled"}},
		{"wrong password", []string{"a1 AUTHENTICATE PLAIN AGFsaWNlAHdyb25n", "<a1 NO [AUTHENTICATIONFAILED] Invalid credentials"}},
		{"bad base64", []string{"a1 AUTHENTICATE PLAIN !!!", "<a1 BAD Malformed PLAIN response"}},
		{"other mechanism", []string{"a1 AUTHENTICATE CRAM-MD5", "<a1 NO Unsupported authentication mechanism"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, startServer(t, newServer(t)))
			tagged(c, "s1", "STARTTLS")
			c.StartTLS()
			for _, l := range tt.lines {
				if want, ok := strings.CutPrefix(l, "<"); ok {
					if got := c.Line(); got != want {
						t.Fatalf("server said %q, want %q", got, want)
					}
					continue
				}
				c.Write(l + "\r\n")
			}
		})
	}
}

// TestServerRobustness: bare LF, garbage, idle timeout, panic, shutdown.
func TestServerRobustness(t *testing.T) {
	t.Run("bare LF", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		c.Write("a1 NOOP\na2 NOOP\r\n")
		if got := c.Line(); got != "* BAD Malformed command line (CRLF required, no NUL)" {
			t.Errorf("bare LF = %q", got)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		for _, l := range []struct{ send, want string }{
			{"\r\n", "* BAD Missing or invalid tag"},
			{"a1\r\n", "a1 BAD Missing command"},
			{"a2 FOO\r\n", "a2 BAD Unknown command"},
		} {
			c.Write(l.send)
			if got := c.Line(); got != l.want {
				t.Errorf("%q = %q, want %q", l.send, got, l.want)
			}
		}
		if rest := expectEOF(t, c); rest != "* BYE Too many invalid commands, closing\r\n" {
			t.Errorf("after 3 errors: %q", rest)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		srv := newServer(t)
		srv.ReadTimeout = 100 * time.Millisecond
		c := dialRaw(t, startServer(t, srv))
		if rest := expectEOF(t, c); rest != "* BYE Autologout; idle for too long\r\n" {
			t.Errorf("idle: %q", rest)
		}
	})
	t.Run("panic", func(t *testing.T) {
		srv := newServer(t)
		srv.AllowPlaintextLogin = true
		srv.Backend = &memBackend{panicOnLogin: true}
		c := dialRaw(t, startServer(t, srv))
		c.Write("a1 LOGIN alice x\r\n")
		if rest := expectEOF(t, c); rest != "* BYE [UNAVAILABLE] Internal server error, closing\r\n" {
			t.Errorf("panic: %q", rest)
		}
	})
	t.Run("ServeConn shutdown", func(t *testing.T) {
		srv := newServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		l, rc := pipeRaw(t)
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(ctx, l) }()
		if g := rc.Line(); !strings.HasPrefix(g, "* OK ") {
			t.Fatalf("greeting %q", g)
		}
		cancel()
		if rest := expectEOF(t, rc); rest != "* BYE [UNAVAILABLE] Server shutting down\r\n" {
			t.Errorf("shutdown: %q", rest)
		}
		<-done
	})
}
