package httpupgrade

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// memBackend knows alice with the password "secret pw".
type memBackend struct{}

func (memBackend) Login(_ context.Context, user, pass string) error {
	if user == "alice" && pass == "secret pw" {
		return nil
	}
	return errors.New("bad login")
}

func newServer(t testing.TB) *Server {
	st, _ := linetest.TLSPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st}, Backend: memBackend{}}
}

// startServer serves srv on a loopback listener until the test ends.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	return linetest.Serve(t, srv.Serve, srv.Close)
}

func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := linetest.TLSPair(t)
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, Transcript: &starttls.Transcript{}}
}

// fakeServer runs script on the first connection to a loopback listener
// and returns its address and a channel with everything the client sent
// (delivered when the script returns and the client closed).
func fakeServer(t testing.TB, script func(c net.Conn, r *bufio.Reader)) (string, <-chan string) {
	t.Helper()
	got := make(chan string, 1)
	addr, _ := linetest.FakeServer(t, func(f *linetest.Fake) {
		rec := &recorder{Conn: f.Conn()}
		script(rec, bufio.NewReader(rec))
		// Collect what the client still sends until it closes.
		rec.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, rec)
		got <- rec.String()
	})
	return addr, got
}

// recorder records what is read from a connection.
type recorder struct {
	net.Conn
	mu sync.Mutex
	b  strings.Builder
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.b.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.String()
}

// readHead reads one request head (up to the empty line).
func readHead(r *bufio.Reader) string {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil || line == "\r\n" {
			return b.String()
		}
	}
}

// eof reports whether the server closed the connection.
func eof(c *linetest.Raw) bool {
	c.Conn().SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := io.Copy(io.Discard, c.Reader())
	return err == nil || strings.Contains(err.Error(), "reset")
}

const upgradeReq = "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n"

// upgradeReqFor is the client's upgrade request to addr.
func upgradeReqFor(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return strings.Replace(upgradeReq, "127.0.0.1", "127.0.0.1:"+port, 1)
}

// transcript renders a transcript for messages and searches.
func transcript(tr *starttls.Transcript) string {
	evs := tr.Events()
	if len(evs) == 0 {
		return ""
	}
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Format(evs[0].Time))
		b.WriteString("\n")
	}
	return b.String()
}
