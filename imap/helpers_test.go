package imap

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

var (
	errBadLogin  = errors.New("bad login")
	testMessage1 = "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hello\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nfirst message\r\n"
	testMessage2 = "From: carol@example.org\nSubject: second\n\nbody two\n"
)

// memBackend is a Backend with one user "alice", password "secret pw",
// and the mailboxes INBOX (two messages) and Archive/2024 (empty).
type memBackend struct {
	panicOnLogin bool
}

func (b *memBackend) Login(ctx context.Context, user, pass string) error {
	if b.panicOnLogin {
		panic("backend bug")
	}
	if user == "alice" && pass == "secret pw" {
		return nil
	}
	return errBadLogin
}

func (b *memBackend) Mailboxes(ctx context.Context, user string) ([]string, error) {
	return []string{"INBOX", "Archive/2024", "Sent Items"}, nil
}

func (b *memBackend) Messages(ctx context.Context, user, mailbox string) ([][]byte, error) {
	if mailbox == "INBOX" {
		return [][]byte{[]byte(testMessage1), []byte(testMessage2)}, nil
	}
	return nil, nil
}

// newServer returns a server with TLS and the test backend.
func newServer(t testing.TB) *Server {
	st, _ := linetest.TLSPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "imap.test"}, Backend: &memBackend{}}
}

// startServer serves srv on a loopback listener and returns its address.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	return linetest.Serve(t, srv.Serve, srv.Close)
}

// clientOpts returns options trusting the test CA.
func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := linetest.TLSPair(t)
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, Transcript: &starttls.Transcript{}}
}

// dialRaw connects to a server and checks its * OK greeting.
func dialRaw(t testing.TB, addr string) *linetest.Raw {
	t.Helper()
	c := linetest.Dial(t, addr)
	if g := c.Line(); !strings.HasPrefix(g, "* OK ") {
		t.Fatalf("greeting = %q, want * OK", g)
	}
	return c
}

// tagged sends "tag command" and returns every response line up to and
// including the tagged one.
func tagged(c *linetest.Raw, tag, command string) []string {
	c.Write(tag + " " + command + "\r\n")
	var out []string
	for {
		l := c.Line()
		out = append(out, l)
		if strings.HasPrefix(l, tag+" ") {
			return out
		}
	}
}

// last returns the last line of a response.
func last(lines []string) string { return lines[len(lines)-1] }

// expectEOF checks that the server closed the connection, returning what
// it sent before.
func expectEOF(t testing.TB, c *linetest.Raw) string {
	t.Helper()
	b, err := io.ReadAll(c.Reader())
	if err != nil && !linetest.IsClosed(err) {
		t.Errorf("read: %v, want EOF", err)
	}
	return string(b)
}

// transcriptText renders the transcript lines as "dir text".
func transcriptText(tr *starttls.Transcript) string {
	var b strings.Builder
	for _, e := range tr.Events() {
		b.WriteString(e.Dir.String() + " " + e.Text + "\n")
	}
	return b.String()
}

// pipeRaw returns the server end of a loopback TCP connection and a raw
// client on the other end.
func pipeRaw(t testing.TB) (server net.Conn, client *linetest.Raw) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client = linetest.Dial(t, l.Addr().String())
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}
