package ldap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

var errBadLogin = errors.New("bad login")

const (
	testBase = "dc=lab,dc=starttls,dc=test"
	aliceDN  = "uid=alice," + testBase
	alicePW  = "secret pw"
)

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
	st, _ := linetest.TLSPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "ldap.test"}, Backend: &memBackend{}, BaseDN: testBase}
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

// rawClient speaks LDAP by hand to a server.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// dialRaw connects with linetest.Dial (deadline, closed with the test).
func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	raw := linetest.Dial(t, addr)
	return &rawClient{t: t, conn: raw.Conn(), r: raw.Reader()}
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
	_, ct := linetest.TLSPair(c.t)
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
	st, _ := linetest.TLSPair(t)
	done := make(chan fakeResult, 1)
	addr, _ := linetest.FakeServer(t, func(f *linetest.Fake) {
		conn := f.Conn()
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
	})
	return addr, done
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
