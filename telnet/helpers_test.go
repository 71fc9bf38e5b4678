package telnet

import (
	"bufio"
	"bytes"
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
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, Transcript: &starttls.Transcript{}, InjectionWait: 400 * time.Millisecond}
}

// fakeServer runs script on the first connection and returns what the
// client sent (recorded through the script's reads and until close).
func fakeServer(t testing.TB, script func(c net.Conn, r *bufio.Reader)) (string, <-chan []byte) {
	t.Helper()
	got := make(chan []byte, 1)
	addr, _ := linetest.FakeServer(t, func(f *linetest.Fake) {
		rec := &recorder{Conn: f.Conn()}
		script(rec, bufio.NewReader(rec))
		rec.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, rec)
		got <- rec.bytes()
	})
	return addr, got
}

type recorder struct {
	net.Conn
	mu sync.Mutex
	b  bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.b.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.b.Bytes()...)
}

// readN reads exactly n bytes.
func readN(r *bufio.Reader, n int) []byte {
	b := make([]byte, n)
	io.ReadFull(r, b)
	return b
}

// readUntil reads until s appeared (or an error) and returns everything.
func readUntil(r io.Reader, s string) string {
	var b strings.Builder
	buf := make([]byte, 1)
	for !strings.Contains(b.String(), s) {
		if _, err := r.Read(buf); err != nil {
			break
		}
		b.WriteByte(buf[0])
	}
	return b.String()
}

// eof reports whether the peer closed the connection.
func eof(c net.Conn, r io.Reader) bool {
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := io.Copy(io.Discard, r)
	return err == nil || strings.Contains(err.Error(), "reset")
}

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

var (
	doStartTLS   = string(neg(cmdDO, OptStartTLS))
	willStartTLS = string(neg(cmdWILL, OptStartTLS))
	followsMsg   = string(startTLSFollows)
)
