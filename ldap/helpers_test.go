package ldap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
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
)

const (
	testBase = "dc=lab,dc=starttls,dc=test"
	aliceDN  = "uid=alice," + testBase
	alicePW  = "secret pw"
)

func tlsPair(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	tlsOnce.Do(func() { serverTLS, clientTLS, errTLSPair = certs.TestPair() })
	if errTLSPair != nil {
		t.Fatal(errTLSPair)
	}
	return serverTLS, clientTLS
}

// memBackend knows one user "alice" with password "secret pw".
type memBackend struct{ panicOnLogin bool }

func (b *memBackend) Login(ctx context.Context, user, pass string) error {
	if b.panicOnLogin {
		panic("backend bug")
	}
	if user == "alice" && pass == alicePW {
		return nil
	}
	return errBadLogin
}

func newServer(t testing.TB) *Server {
	st, _ := tlsPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "ldap.test"}, Backend: &memBackend{}, BaseDN: testBase}
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

// rawClient speaks LDAP by hand to a server.
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
	return &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *rawClient) write(b ...[]byte) {
	c.t.Helper()
	if _, err := c.conn.Write(bytes.Join(b, nil)); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one message; nil at EOF.
func (c *rawClient) read() *message {
	c.t.Helper()
	m, err := c.tryRead()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *rawClient) tryRead() (*message, error) {
	b, err := readFrame(c.r, MaxMessageSize, "test")
	if err != nil {
		return nil, err
	}
	return parseMessage(b)
}

// result reads one response and returns its result code.
func (c *rawClient) result(wantTag byte) *result {
	c.t.Helper()
	m := c.read()
	if m == nil {
		c.t.Fatalf("EOF, want %s", opName(wantTag))
	}
	if m.op.tag != wantTag {
		c.t.Fatalf("got %s, want %s", summarize(m), opName(wantTag))
	}
	r, err := parseResult(&m.op)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// startTLS upgrades the raw client.
func (c *rawClient) startTLS(id int64) {
	c.t.Helper()
	c.write(encodeMessage(id, encodeExtended(StartTLSOID)))
	if r := c.result(opExtendedResponse); r.code != ResultSuccess {
		c.t.Fatalf("StartTLS: %v", r.summary())
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

// expectClosed waits for the server to close the connection.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		m, err := c.tryRead()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatal("connection still open")
			}
			return
		}
		if m.id != 0 {
			c.t.Fatalf("got %s, want the connection closed", summarize(m))
		}
	}
}

// Requests.
func searchMsg(id int64, base string, scope Scope, attrs ...string) []byte {
	return encodeMessage(id, encodeSearch(base, scope, attrs))
}

func bindMsg(id int64, dn, pw string) []byte { return encodeMessage(id, encodeSimpleBind(dn, pw)) }

// step is one exchange of a scripted server: read exactly want (unless
// nil), then send reply; handshake starts TLS after sending.
type step struct {
	want      []byte
	reply     []byte
	handshake bool
	hangup    bool // close the connection after reply
}

// fakeResult is what a scripted server saw: the first difference from the
// script, and what the client sent after the script.
type fakeResult struct {
	err  error
	rest []byte
}

// fakeServer serves one connection with the script and reports on the
// returned channel once the client closed the connection.
func fakeServer(t testing.TB, script []step) (string, <-chan fakeResult) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := tlsPair(t)
	done := make(chan fakeResult, 1)
	go func() {
		defer l.Close()
		conn, err := l.Accept()
		if err != nil {
			done <- fakeResult{err: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(testTimeout))
		var c net.Conn = conn
		for i, s := range script {
			if s.want != nil {
				got := make([]byte, len(s.want))
				if _, err := io.ReadFull(c, got); err != nil {
					done <- fakeResult{err: errorf("step %d: %v", i, err)}
					return
				}
				if !bytes.Equal(got, s.want) {
					done <- fakeResult{err: errorf("step %d: client sent % x, want % x", i, got, s.want)}
					return
				}
			}
			if s.reply != nil {
				c.Write(s.reply)
			}
			if s.hangup {
				done <- fakeResult{}
				return
			}
			if s.handshake {
				tc := tls.Server(conn, st)
				if err := tc.Handshake(); err != nil {
					done <- fakeResult{err: errorf("step %d: handshake: %v", i, err)}
					return
				}
				c = tc
			}
		}
		// Keep what the client sends until it closes.
		rest, _ := io.ReadAll(c)
		done <- fakeResult{rest: rest}
	}()
	return l.Addr().String(), done
}

// Responses for scripted servers.
func dseEntry(id int64, ext ...string) []byte {
	return encodeMessage(id, encodeEntry(&Entry{Attributes: []Attribute{
		{"supportedExtension", ext}, {"supportedLDAPVersion", []string{"3"}},
	}}))
}

func doneMsg(id int64, code ResultCode) []byte {
	return encodeMessage(id, encodeResult(opSearchResultDone, code, "", ""))
}

func startTLSResp(id int64, code ResultCode) []byte {
	return encodeMessage(id, encodeResult(opExtendedResponse, code, "", "", berString(classContext|10, StartTLSOID)))
}

var dseAttrs = rootDSEAttrs
