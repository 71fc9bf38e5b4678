package httpupgrade

import (
	"bytes"
	"github.com/starttls/starttls/internal/linetest"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/textline"
)

// bytesConn is a net.Conn that reads from a byte slice and discards writes.
type bytesConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *bytesConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *bytesConn) Close() error                     { return nil }

// FuzzResponse feeds hostile answers (PR-23, CL-36) to the response
// reader, the body reader and the capability and challenge parsers: no
// panic, bounded memory.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 200 OK\r\nAllow: GET\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: y\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"a, b\\\" c\", Basic, Bearer error=\"x\"\r\n\r\n",
		"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/2 200\r\n\r\n",
		"\x16\x03\x01\x00",
		"HTTP/1.1 101 Switching Protocols\r\n" + strings.Repeat("A: b\r\n", 600),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tc := textline.New(&bytesConn{r: bytes.NewReader(data)}, textline.Options{Proto: "http", MaxLine: 512})
		resp, err := readResponse(tc, 64)
		if err != nil {
			return
		}
		if len(resp.h) > 64 {
			t.Fatalf("%d headers past the limit", len(resp.h))
		}
		caps(resp.h)
		authSchemes(resp.h)
		resp.h.offersTLS()
		n, chunked, err := bodyLength(resp.h)
		if err != nil || (n < 0 && !chunked) {
			return
		}
		b, err := readBody(tc, n, chunked, 1024, 64)
		if err == nil && len(b) > 1024 {
			t.Fatalf("body of %d bytes past the limit", len(b))
		}
	})
}

// FuzzServerRequest feeds hostile requests to a server session: no panic,
// and an upgrade never happens without both headers.
func FuzzServerRequest(f *testing.F) {
	for _, s := range []string{
		upgradeReq,
		upgradeReq + "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6c2VjcmV0IHB3\r\n\r\n",
		"GET /private HTTP/1.1\r\nHost: x\r\nAuthorization: Basic !!!\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"GET / HTTP/1.1\nHost: x\n\n",
		"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		srv := &Server{Backend: memBackend{}}
		srv.AllowPlaintextLogin = true
		var log linetest.PanicLog
		srv.Logger = slog.New(&log)
		ss := srv.newSession(t.Context(), &bytesConn{r: bytes.NewReader(data)})
		ss.run()
		log.Check(t)
	})
}
