package ftp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
)

var (
	tlsOnce              sync.Once
	serverTLS, clientTLS *tls.Config
	errTLSPair           error
	testTimeout          = 10 * time.Second
	errBadLogin          = errors.New("bad login")
	testFile             = "hello over a protected data channel\r\nsecond line\r\n"
)

func tlsPair(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	tlsOnce.Do(func() { serverTLS, clientTLS, errTLSPair = certs.TestPair() })
	if errTLSPair != nil {
		t.Fatal(errTLSPair)
	}
	return serverTLS, clientTLS
}

// memBackend has one user "alice", password "secret pw".
type memBackend struct{ failFS bool }

func (b *memBackend) Login(ctx context.Context, user, pass string) error {
	if user == "alice" && pass == "secret pw" {
		return nil
	}
	return errBadLogin
}

func (b *memBackend) FS(ctx context.Context, user string) (fs.FS, error) {
	if b.failFS {
		return nil, errors.New("disk on fire")
	}
	return testFS(), nil
}

func testFS() fstest.MapFS {
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return fstest.MapFS{
		"hello.txt":        {Data: []byte(testFile), ModTime: mt},
		"pub/readme.md":    {Data: []byte("# readme\n"), ModTime: mt},
		"pub/big.bin":      {Data: bytes.Repeat([]byte{0xAB}, 300000), ModTime: mt},
		`pub/we"ird dir/x`: {Data: []byte("x"), ModTime: mt},
	}
}

func newServer(t testing.TB) *Server {
	st, _ := tlsPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "ftp.test"}, Backend: &memBackend{}}
}

func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return l.Addr().String()
}

func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := tlsPair(t)
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, Transcript: &starttls.Transcript{}}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rawClient speaks FTP by hand to a server.
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
	conn.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.line(); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("greeting = %q, want 220", g)
	}
	return c
}

func (c *rawClient) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// reply reads a whole reply and returns its lines.
func (c *rawClient) reply() []string {
	c.t.Helper()
	first := c.line()
	out := []string{first}
	if len(first) >= 4 && first[3] == '-' {
		for {
			l := c.line()
			out = append(out, l)
			if strings.HasPrefix(l, first[:3]+" ") {
				break
			}
		}
	}
	return out
}

// cmd sends one command and returns the first line of the reply.
func (c *rawClient) cmd(s string) string {
	c.t.Helper()
	c.write(s + "\r\n")
	return c.reply()[0]
}

func (c *rawClient) startTLS() {
	c.t.Helper()
	if c.r.Buffered() > 0 {
		c.t.Fatalf("%d bytes buffered before the handshake", c.r.Buffered())
	}
	_, ct := tlsPair(c.t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

func (c *rawClient) expectEOF() {
	c.t.Helper()
	b, err := io.ReadAll(c.r)
	if len(b) > 0 {
		c.t.Errorf("server sent %q before closing", b)
	}
	if err != nil && !isClosedErr(err) {
		c.t.Errorf("read: %v, want EOF", err)
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset by peer")
}

// fake is one side of a scripted fake server.
type fake struct {
	t     testing.TB
	conn  net.Conn
	r     *bufio.Reader
	plain bytes.Buffer
	tls   bytes.Buffer
	inTLS bool
}

func (f *fake) send(s string) {
	if _, err := io.WriteString(f.conn, s); err != nil {
		f.t.Errorf("fake: write: %v", err)
	}
}

func (f *fake) expect(want string) bool {
	l, err := f.r.ReadString('\n')
	if f.inTLS {
		f.tls.WriteString(l)
	} else {
		f.plain.WriteString(l)
	}
	if err != nil {
		f.t.Errorf("fake: waiting for %q: %v (got %q)", want, err, l)
		return false
	}
	if l != want+"\r\n" {
		f.t.Errorf("fake: client sent %q, want %q", l, want+"\r\n")
		return false
	}
	return true
}

func (f *fake) startTLS(cfg *tls.Config) bool {
	if f.r.Buffered() > 0 {
		f.t.Errorf("fake: client pipelined %d bytes after AUTH TLS", f.r.Buffered())
	}
	tc := tls.Server(f.conn, cfg)
	if err := tc.Handshake(); err != nil {
		return false
	}
	f.conn, f.r, f.inTLS = tc, bufio.NewReader(tc), true
	return true
}

func (f *fake) drain() {
	b, _ := io.ReadAll(f.r)
	if f.inTLS {
		f.tls.Write(b)
	} else {
		f.plain.Write(b)
	}
}

func fakeServer(t testing.TB, script func(f *fake)) (addr string, wait func() *fake) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *fake, 1)
	go func() {
		defer l.Close()
		conn, err := l.Accept()
		if err != nil {
			done <- nil
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(testTimeout))
		f := &fake{t: t, conn: conn, r: bufio.NewReader(conn)}
		script(f)
		done <- f
	}()
	var f *fake
	var once sync.Once
	return l.Addr().String(), func() *fake {
		once.Do(func() { f = <-done })
		if f == nil {
			t.Fatal("fake server: no connection")
		}
		return f
	}
}

const (
	featPre  = "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n EPSV\r\n211 End\r\n"
	featPost = "211-Features:\r\n PBSZ\r\n PROT\r\n EPSV\r\n MLST type*;size*;\r\n211 End\r\n"
)

// upgradeScript is a fake server's correct pre-TLS and TLS dialog up to
// PROT P.
func upgradeScript(pre, post string) func(f *fake) {
	return func(f *fake) {
		st, _ := tlsPair(f.t)
		f.send("220 fake FTP\r\n")
		if !f.expect("FEAT") {
			return
		}
		f.send(pre)
		if !f.expect("AUTH TLS") {
			return
		}
		f.send("234 go ahead\r\n")
		if !f.startTLS(st) {
			return
		}
		if !f.expect("FEAT") {
			return
		}
		f.send(post)
		if !f.expect("PBSZ 0") {
			return
		}
		f.send("200 PBSZ=0\r\n")
		if !f.expect("PROT P") {
			return
		}
		f.send("200 ok\r\n")
	}
}

// dump renders a transcript for messages and searches.
func dump(tr *starttls.Transcript) string {
	if tr == nil {
		return ""
	}
	var b strings.Builder
	for _, e := range tr.Events() {
		b.WriteString(e.Format(time.Time{}))
		b.WriteString("\n")
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// readAllInto reads until EOF or buf is full.
func readAllInto(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
