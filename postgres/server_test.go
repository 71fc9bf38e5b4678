package postgres

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// panicBackend panics on every login.
type panicBackend struct{}

func (panicBackend) Login(context.Context, string, string) error { panic("backend bug") }

// loginRaw logs in by hand with the cleartext backend, over TLS.
func loginRaw(t *testing.T, addr string) *rawClient {
	c := dialRaw(t, addr)
	c.write(sslRequest())
	if b := c.byte1(); b != 'S' {
		t.Fatalf("answer %q", b)
	}
	c.StartTLS()
	c.write(startup(testUser))
	if typ, _ := c.msg(); typ != 'R' {
		t.Fatalf("got %q, want the password request", typ)
	}
	c.write(newMessage('p').cstring(testPass).done())
	for {
		typ, _ := c.msg()
		if typ == 'Z' {
			return c
		}
	}
}

func TestServerHandshake(t *testing.T) {
	srv := newServer(t)
	for _, tt := range []struct {
		name  string
		first func(c *rawClient)
		ok    bool
	}{
		{"sslrequest", func(c *rawClient) {
			c.write(sslRequest())
			if b := c.byte1(); b != 'S' {
				t.Errorf("answer %q", b)
			}
			c.StartTLS()
		}, true},
		{"plaintext startup", func(c *rawClient) {
			c.write(startup(testUser))
			c.expectError(CodeInvalidAuthorization)
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			type res struct {
				ok  bool
				err error
			}
			ch := make(chan res, 1)
			go func() {
				conn, err := l.Accept()
				if err != nil {
					ch <- res{false, err}
					return
				}
				tc, err := srv.Handshake(context.Background(), conn)
				if tc != nil {
					tc.Write(errorMessage("FATAL", "00000", "from the proxy"))
					tc.Close()
				}
				ch <- res{tc != nil, err}
			}()
			c := dialRaw(t, l.Addr().String())
			tt.first(c)
			r := <-ch
			if r.ok != tt.ok {
				t.Fatalf("Handshake: ok %v, err %v", r.ok, r.err)
			}
			if tt.ok {
				if e := c.expectError("00000"); e.Message != "from the proxy" {
					t.Errorf("relay got %v", e)
				}
			}
		})
	}
}

func TestServerProtocolVersions(t *testing.T) {
	srv := newServer(t)
	srv.Backend = plainBackend{}
	addr := startServer(t, srv)
	// 3.1 with a _pq_ option: NegotiateProtocolVersion, then the login.
	c := dialRaw(t, addr)
	c.write(sslRequest())
	c.byte1()
	c.StartTLS()
	c.write(newMessage(0).int32(3<<16 | 1).cstring("user").cstring(testUser).cstring("_pq_.x").cstring("1").byte1(0).done())
	if typ, body := c.msg(); typ != 'v' || !strings.Contains(string(body), "_pq_.x") {
		t.Fatalf("got %q %q, want NegotiateProtocolVersion", typ, body)
	}
	if typ, _ := c.msg(); typ != 'R' {
		t.Fatalf("got %q, want an authentication request", typ)
	}
	// 2.0: refused.
	c = dialRaw(t, addr)
	c.write(newMessage(0).int32(2 << 16).cstring("user").cstring(testUser).byte1(0).done())
	c.expectError(CodeFeatureNotSupported)
	c.expectEOF()
	// No user.
	c = dialRaw(t, addr)
	c.write(sslRequest())
	c.byte1()
	c.StartTLS()
	c.write(startupMessage([][2]string{{"database", "x"}}))
	c.expectError(CodeInvalidAuthorization)
	// A CancelRequest is closed silently.
	c = dialRaw(t, addr)
	c.write(newMessage(0).int32(CancelRequestCode).int32(1).int32(2).done())
	c.expectEOF()
}

func TestServerQueries(t *testing.T) {
	srv := newServer(t)
	srv.Backend = plainBackend{}
	srv.MaxErrors = 2
	addr := startServer(t, srv)
	c := loginRaw(t, addr)
	// Extended query protocol: one error, then silence until Sync.
	c.write(newMessage('P').cstring("").cstring("SELECT 1").int16(0).done(), newMessage('B').done(), newMessage('S').done())
	c.expectError(CodeFeatureNotSupported)
	if typ, _ := c.msg(); typ != 'Z' {
		t.Fatalf("got %q, want ReadyForQuery after Sync", typ)
	}
	c.write(newMessage('Q').cstring("").done())
	if typ, _ := c.msg(); typ != 'I' {
		t.Fatalf("empty query: %q", typ)
	}
	c.msg()
	// The second protocol error closes the session.
	c.write(newMessage('P').done())
	c.expectError(CodeProtocolViolation)
	c.expectEOF()
	// An unknown message type is FATAL at once.
	c = loginRaw(t, addr)
	c.write(newMessage('!').done())
	c.expectError(CodeProtocolViolation)
	c.expectEOF()
}

func TestServerPanicAndTimeout(t *testing.T) {
	srv := newServer(t)
	srv.Backend = panicBackend{}
	addr := startServer(t, srv)
	c := dialRaw(t, addr)
	c.write(sslRequest())
	c.byte1()
	c.StartTLS()
	c.write(startup(testUser))
	c.msg()
	c.write(newMessage('p').cstring("x").done())
	c.expectError(CodeInternalError)

	idle := newServer(t)
	idle.ReadTimeout = 200 * time.Millisecond
	addr = startServer(t, idle)
	c = dialRaw(t, addr)
	start := time.Now()
	c.expectEOF()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle connection closed after %v", d)
	}
}

func TestServerShutdown(t *testing.T) {
	srv := newServer(t)
	srv.Backend = plainBackend{}
	addr := startServer(t, srv)
	c := loginRaw(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	srv.Shutdown(ctx)
	if _, err := c.Reader().ReadByte(); err == nil {
		t.Log("server said goodbye")
	}
	if _, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired)); err == nil {
		t.Error("Dial after Shutdown worked")
	}
}
