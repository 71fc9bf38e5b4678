package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// testCAPEM returns the CA certificate of linetest.TLSPair in PEM form (the
// last certificate of the server's chain), for the tools' --ca files.
func testCAPEM(t testing.TB) []byte {
	t.Helper()
	st, _ := linetest.TLSPair(t)
	chain := st.Certificates[0].Certificate
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[len(chain)-1]})
}

// memBackend records deliveries; its only user is "user" / "secret".
type memBackend struct {
	mu     sync.Mutex
	logins []string
	msgs   []delivery
	panic  bool
}

type delivery struct {
	from string
	to   []string
	data string
}

func (b *memBackend) Login(ctx context.Context, username, password string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logins = append(b.logins, username)
	if username == "user" && password == "secret" {
		return nil
	}
	return errors.New("bad password")
}

func (b *memBackend) Deliver(ctx context.Context, from string, to []string, data []byte) error {
	if b.panic {
		panic("backend bug")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, delivery{from, append([]string(nil), to...), string(data)})
	return nil
}

func (b *memBackend) messages() []delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]delivery(nil), b.msgs...)
}

var _ Backend = (*memBackend)(nil)

// failOnError is a slog handler that fails the test on Error records (our
// bugs: panics), and drops the rest.
type failOnError struct{ t testing.TB }

func (h failOnError) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h failOnError) Handle(_ context.Context, r slog.Record) error {
	h.t.Errorf("server logged an error: %s", r.Message)
	return nil
}
func (h failOnError) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failOnError) WithGroup(string) slog.Handler      { return h }

// newServer returns a STARTTLS server with a memBackend.
func newServer(t testing.TB) (*Server, *memBackend) {
	b := &memBackend{}
	s := &Server{Backend: b}
	s.TLSConfig, _ = linetest.TLSPair(t)
	s.Hostname = "mx.test"
	s.ReadTimeout = 5 * time.Second
	s.Logger = slog.New(failOnError{t})
	return s, b
}

// start serves s on a loopback port and returns the address.
func start(t testing.TB, s *Server) string {
	t.Helper()
	return linetest.Serve(t, s.Serve, s.Close)
}

func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := linetest.TLSPair(t)
	return &starttls.ClientOptions{
		Mode:      mode,
		TLSConfig: ct,
		LocalName: "client.test",
	}
}

// reply reads one reply, all lines joined with "\n" without CRLF.
func reply(c *linetest.Raw) string {
	var lines []string
	for {
		l := c.Line()
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// expect sends line and checks that the reply starts with want.
func expect(t testing.TB, c *linetest.Raw, line, want string) string {
	t.Helper()
	c.Write(line + "\r\n")
	got := reply(c)
	if !strings.HasPrefix(got, want) {
		t.Fatalf("%q → %q, want prefix %q", line, got, want)
	}
	return got
}

// startTLS sends STARTTLS and upgrades after the 220.
func startTLS(t testing.TB, c *linetest.Raw) {
	t.Helper()
	expect(t, c, "STARTTLS", "220 2.0.0 ")
	c.StartTLS()
}

// fakeStep is one step of a scripted server: send bytes, read one client
// line, start TLS, or pause.
type fakeStep struct {
	send  string
	read  bool
	tls   bool
	pause time.Duration
}

func S(s string) fakeStep            { return fakeStep{send: s} }
func C() fakeStep                    { return fakeStep{read: true} }
func TLS() fakeStep                  { return fakeStep{tls: true} }
func Pause(d time.Duration) fakeStep { return fakeStep{pause: d} }

// fakeServer runs script on one loopback connection and returns its address
// and a function that waits for the end and returns every line the client
// sent (with CRLF), including lines after the script, until the client
// closes or two seconds pass.
func fakeServer(t testing.TB, script ...fakeStep) (string, func() []string) {
	t.Helper()
	serverTLS, _ := linetest.TLSPair(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []string, 1)
	go func() {
		defer l.Close()
		var got []string
		defer func() { done <- got }()
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		var rw net.Conn = conn
		r := bufio.NewReader(rw)
		for _, st := range script {
			switch {
			case st.send != "":
				if _, err := io.WriteString(rw, st.send); err != nil {
					return
				}
			case st.read:
				line, err := r.ReadString('\n')
				if line != "" {
					got = append(got, line)
				}
				if err != nil {
					return
				}
			case st.tls:
				tc := tls.Server(conn, serverTLS)
				if err := tc.Handshake(); err != nil {
					got = append(got, "(handshake failed: "+err.Error()+")")
					return
				}
				rw, r = tc, bufio.NewReader(tc)
			case st.pause > 0:
				time.Sleep(st.pause)
			}
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				got = append(got, line)
			}
			if err != nil {
				return
			}
		}
	}()
	return l.Addr().String(), func() []string { return <-done }
}

func equalLines(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Errorf("client sent:\n%q\nwant:\n%q", got, want)
	}
}
