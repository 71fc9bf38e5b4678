package imap

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// hostile are the IMAP strings of SECURITY.md (PR-08, PR-09, PR-10,
// CL-13…CL-16, ST-04, STRIPTLS) plus edge cases of the grammar.
var hostile = []string{
	"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready",
	"* PREAUTH [CAPABILITY IMAP4rev1 MAILBOX-REFERRALS] hi",
	"* BYE [UNAVAILABLE] maintenance",
	"1Gdo00V4 wFaIW2WP",
	"Ac3cXIo1 rJzgnVlo\r\n* OK DHYw9lXw",
	"OK IMAP2 Server Ready",
	"a1 OK [CAPABILITY IMAP4rev1 AUTH=EVIL] go",
	"a1 BAD unknown command",
	"* 54321 EXISTS",
	"* 1 FETCH (BODY[] {28}\r\nFrom: Injected\r\n\r\nInjected\r\n)",
	"* FLAGS (\\Flagged)",
	"* 1 EXPUNGE",
	"* STATUS INBOX (MESSAGES 718001 UIDNEXT 1)",
	"* CAPABILITY IDLE",
	`* LIST () "/" "Click me! <Payload>"`,
	`* LIST (\HasNoChildren) NIL {5}` + "\r\nSpäm",
	"* OK [ALERT] Attacker-controlled text",
	"* OK [BADCHARSET (US-ASCII)] x",
	"* OK [PARSE] x",
	"* 1 FETCH (BODY[] {4294967296}",
	"* 1 FETCH (BODY[] {99999999999999999999}",
	"* 1 FETCH (BODY[] {-1}",
	"a1 LOGIN {10+}",
	"+ ",
	"+",
	"* OK [",
	"* OK []",
	"*",
	"* ",
	"* 4294967296 EXISTS",
	"* LIST " + strings.Repeat("(", 100) + strings.Repeat(")", 100) + ` "/" x`,
	`* LIST () "/" "unterminated`,
	`* LIST () "/" "bad \escape"`,
	"* CAPABILITY" + strings.Repeat(" X", 1000),
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseResponse(s)
		if err != nil {
			return
		}
		if r.Tag == "" || (r.Tag != "+" && r.Type == "") {
			t.Fatalf("parseResponse(%q) = %+v", s, r)
		}
		if r.Tag != "*" && r.Tag != "+" && r.Type != "OK" && r.Type != "NO" && r.Type != "BAD" {
			t.Fatalf("parseResponse(%q): tagged %s accepted", s, r.Type)
		}
		if r.Type == "LIST" {
			parseList(r.Data)
		}
		if r.Type == "CAPABILITY" {
			parseCaps(r.Data, 512)
		}
		r.err()
	})
}

func FuzzLiteralSuffix(f *testing.F) {
	for _, s := range []string{"{0}", "{5}", "{5+}", "{4294967295}", "{4294967296}", "{99999999999999999999}", "{-1}", "{}", "{+}", "text {x}", "a}", "{1-2}", "{007}"} {
		f.Add("* 1 FETCH (BODY[] " + s)
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		n, _, ok, err := literalSuffix(line)
		if err != nil && !ok {
			t.Fatalf("literalSuffix(%q): error without a literal", line)
		}
		if ok && err == nil && (n < 0 || n > 1<<32-1 || !strings.HasSuffix(line, "}")) {
			t.Fatalf("literalSuffix(%q) = %d", line, n)
		}
	})
}

// discardConn is a net.Conn that swallows writes and reads EOF.
type discardConn struct{}

func (discardConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) Close() error                     { return nil }
func (discardConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (discardConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (discardConn) SetDeadline(time.Time) error      { return nil }
func (discardConn) SetReadDeadline(time.Time) error  { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServerCommand runs any command line through the server's parser and
// handlers in the selected state.
func FuzzServerCommand(f *testing.F) {
	for _, s := range []string{
		"a1 FETCH 1:* (UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])",
		"a1 UID FETCH 1 BODY[]", "a1 FETCH 2 BODY[]<0.10>", "a1 FETCH 1,2:* FAST", "a1 FETCH * RFC822",
		"a1 FETCH 4294967296 FLAGS", "a1 FETCH 0 FLAGS", "a1 FETCH 1:0 FLAGS", "a1 FETCH 1 BODY[HEADER.FIELDS.NOT (X)]<0.0>",
		"a1 SEARCH CHARSET UTF-8 ALL UNSEEN 1:*", "a1 UID SEARCH UID 1:*", "a1 SEARCH",
		`a1 LIST "" "*"`, `a1 LIST "" %`, "a1 LIST {1}\r\nx *%*%*%*%*%", `a1 LSUB "" ""`,
		"a1 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT)", "a1 SELECT {5}\r\nINBOX", "a1 EXAMINE inbox",
		"a1 ID (" + strings.Repeat("(", 40) + ")", "a1 ENABLE X Y", "a1 CLOSE", "a1 UNSELECT", "a1 LOGOUT",
		"a1 LOGIN {5+}\r\nalice x", "a1 AUTHENTICATE PLAIN =", "a1 NOOP", "* NOOP", "+ x", "a1 UID", "a1 UID FOO",
	} {
		f.Add(s)
	}
	srv := newServer(f)
	f.Fuzz(func(t *testing.T, cmd string) {
		ss := srv.newSession(context.Background(), discardConn{})
		ss.state, ss.user, ss.mailbox = stateSelected, "alice", "INBOX"
		ss.msgs = [][]byte{normalize([]byte(testMessage1)), normalize([]byte(testMessage2)), nil}
		ss.seen = make([]bool, len(ss.msgs))
		ss.dispatch(cmd)
	})
}

func FuzzMatchMailbox(f *testing.F) {
	f.Add("*", "INBOX")
	f.Add("%/%", "a/b")
	f.Add("inbox", "INBOX")
	f.Add("*%*%*%*%*%*%*%*%*%*%*%*%*%", strings.Repeat("a/", 200))
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 512 || len(name) > 512 {
			return
		}
		if matchMailbox(pattern, name) && !strings.ContainsAny(pattern, "*%") && pattern != name && !strings.EqualFold(name, "INBOX") {
			t.Fatalf("matchMailbox(%q, %q) = true", pattern, name)
		}
		if !match(name, name) && !strings.ContainsAny(name, "*%") {
			t.Fatalf("match(%q, itself) = false", name)
		}
	})
}
