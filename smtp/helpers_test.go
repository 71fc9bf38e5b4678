package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
)

type testPKI struct {
	server, client *tls.Config
	caPEM          []byte
}

var pki = sync.OnceValue(func() testPKI {
	ca, err := certs.NewCA("smtp test CA")
	if err != nil {
		panic(err)
	}
	leaf, err := ca.Issue(certs.Leaf{Names: []string{"localhost", "127.0.0.1", "::1"}})
	if err != nil {
		panic(err)
	}
	return testPKI{
		server: &tls.Config{Certificates: []tls.Certificate{leaf}},
		client: &tls.Config{RootCAs: ca.Pool()},
		caPEM:  ca.PEM(),
	}
})

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
	s.TLSConfig = pki().server
	s.Hostname = "mx.test"
	s.ReadTimeout = 5 * time.Second
	s.Logger = slog.New(failOnError{t})
	return s, b
}

// start serves s on a loopback port and returns the address.
func start(t testing.TB, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

func clientOpts(mode starttls.Mode) *starttls.ClientOptions {
	return &starttls.ClientOptions{
		Mode:      mode,
		TLSConfig: pki().client,
		LocalName: "client.test",
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawClient speaks to a server byte by byte.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *rawClient) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// reply reads one reply, all lines joined with "\n" without CRLF.
func (c *rawClient) reply() string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading reply after %q: %v", lines, err)
		}
		l = strings.TrimSuffix(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (c *rawClient) cmd(line string) string {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.reply()
}

// expect sends line and checks that the reply starts with want.
func (c *rawClient) expect(line, want string) string {
	c.t.Helper()
	got := c.cmd(line)
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("%q → %q, want prefix %q", line, got, want)
	}
	return got
}

func (c *rawClient) startTLS() {
	c.t.Helper()
	c.expect("STARTTLS", "220 2.0.0 ")
	cfg := pki().client.Clone()
	cfg.ServerName = "localhost"
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

// expectClosed checks that the server closes the connection without
// sending anything more.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	b, err := io.ReadAll(c.r)
	if len(b) > 0 {
		c.t.Fatalf("server sent %q, want close", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("server did not close the connection")
	}
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
				tc := tls.Server(conn, pki().server)
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
