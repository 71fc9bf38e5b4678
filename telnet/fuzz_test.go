package telnet

import (
	"bytes"
	"context"
	"github.com/starttls/starttls/internal/linetest"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/starttls/starttls"
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
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 23} }
func (c *bytesConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *bytesConn) Close() error                     { return nil }

// seeds are hostile Telnet streams (PR-25, CL-37).
var seeds = []string{
	doStartTLS,
	doStartTLS + followsMsg + "login: ",
	"\xff\xff\xff\xff",              // escaped IAC data
	"\xff\xfa\x18" + "xxxxxxxxxxxx", // SB without SE
	"\xff\xfa\x2e\x01\xff\xff\xff\xf0",
	"\xff\xfa\xff\xf0",
	"\xff\xf0", // SE without SB
	"\xff\xfa\x2e\x01\xff\x01\xff\xf0",
	"\xff\xfd\x2e\xff\xfd\x2e\xff\xfd\x2e\xff\xfb\x01\xff\xfb\x01\xff\xfb\x01",
	"\xff\xf6\xff\xf1\xff\xf9",
	"\xff", "\xff\xfd", "\xff\xfa",
	"\r\x00\r\n\n\r",
	"\x16\x03\x01\x00\x05",
}

// FuzzDecoder: no panic, the subnegotiation buffer stays bounded, and
// IAC IAC is one data byte.
func FuzzDecoder(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d decoder
		for _, b := range data {
			ev, ok, err := d.feed(b)
			if len(d.sb) > MaxSubnegotiation || ok && len(ev.data) > MaxSubnegotiation {
				t.Fatalf("subnegotiation of %d bytes", len(d.sb))
			}
			if err == nil && ok && ev.kind == evSB {
				_ = ev.String()
			}
		}
		var d2 decoder
		var out []byte
		for _, b := range escape(string(data)) {
			ev, ok, err := d2.feed(b)
			if err != nil {
				t.Fatalf("escaped data: %v", err)
			}
			if ok {
				out = append(out, ev.b)
			}
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("escape round trip: %q, want %q", out, data)
		}
	})
}

// FuzzClient runs the client dialog and the server session on hostile
// streams: no panic, no hang.
func FuzzClient(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o := &starttls.ClientOptions{Mode: starttls.ModeOpportunistic, InjectionWait: time.Millisecond, Transcript: &starttls.Transcript{}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		Upgrade(ctx, &bytesConn{r: bytes.NewReader(data)}, o)
		var log linetest.PanicLog
		srv := &Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: true, Logger: slog.New(&log)}, Backend: memBackend{}}
		srv.newSession(ctx, &bytesConn{r: bytes.NewReader(data)}).run()
		log.Check(t)
	})
}
