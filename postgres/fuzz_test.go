package postgres

import (
	"bufio"
	"bytes"
	"context"
	"github.com/starttls/starttls/internal/linetest"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/starttls/starttls"
)

// Hostile seeds (../shared/SECURITY.md PR-19, CVE-2024-10977, CVE-2021-23222).
var messageSeeds = [][]byte{
	errorMessage("FATAL", "28000", "no encryption"),
	[]byte("E\x7f\xff\xff\xff"),
	[]byte("R\x00\x00\x00\x03"),
	[]byte("R\xff\xff\xff\xff"),
	[]byte("E\x00\x00\x00\x05\x00"),
	[]byte("E\x00\x00\x00\x06SX"),
	newMessage('R').int32(10).cstring("SCRAM-SHA-256").byte1(0).done(),
	newMessage('R').int32(10).cstring("SCRAM-SHA-256").done(),
	newMessage('D').int16(-1).done(),
	newMessage('D').int16(1).int32(-2).done(),
	newMessage('D').int16(1).int32(0x7fffffff).done(),
	newMessage('D').int16(2).int32(1).bytes([]byte("a")).int32(-1).done(),
	newMessage('S').cstring("server_version").cstring("\x1b[31m15").done(),
	[]byte("\x16\x03\x01\x02\x00"),
	[]byte("S"),
}

func FuzzReadMessage(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for range 64 {
			typ, body, err := readMessage(r, 1024)
			if err != nil {
				return
			}
			if len(body) > 1024 {
				t.Fatalf("body of %d bytes past the limit", len(body))
			}
			describe(typ, body, true)
			describe(typ, body, false)
			if e, err := parseError(body); err == nil && (len(e.Message) > maxFieldLen+4 || e.Severity == "") {
				t.Fatalf("parseError = %+v", e)
			}
			if row, err := parseDataRow(body); err == nil && len(row) > maxColumns {
				t.Fatalf("%d columns", len(row))
			}
			saslMechanisms(body)
			startupParams(body)
		}
	})
}

func FuzzStartupPacket(f *testing.F) {
	f.Add(sslRequest())
	f.Add(startup("alice"))
	f.Add(append(sslRequest(), startup("alice")...))
	f.Add([]byte("\x00\x00\x00\x08\x04\xd2\x16\x30"))
	f.Add(u32(maxStartupSize + 1))
	f.Add([]byte("\x00\x00\x00\x09\x00\x03\x00\x00u"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for range 8 {
			body, err := readStartupPacket(r)
			if err != nil {
				return
			}
			if len(body) < 4 || len(body) > maxStartupSize {
				t.Fatalf("packet of %d bytes", len(body))
			}
			describeStartup(body)
		}
	})
}

func FuzzSCRAM(f *testing.F) {
	f.Add("r=abcdefX,s=c2FsdA==,i=1", "v=AAAA", "n,,n=,r=abc", "c=biws,r=abc,p=AAAA")
	f.Add("r=abcdefX,s=c2FsdA==,i=99999999", "e=invalid-proof", "p=tls-server-end-point,,n=,r=x", ",p=")
	f.Add("m=x", "v=", "y,a=u,n=u,r=x,m=e", "c=,r=,p=====")
	f.Fuzz(func(t *testing.T, serverFirst, serverFinal, clientFirst, clientFinal string) {
		c := &scramClient{password: "pw", nonce: "abcdef", clientFirstBare: "n=,r=abcdef"}
		if _, err := c.final(serverFirst); err == nil {
			c.verify(serverFinal)
		}
		sec := &SCRAMSecret{Iterations: 1, Salt: []byte("salt"), StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)}
		s := &scramServer{secret: sec}
		if _, err := s.first(clientFirst); err == nil {
			if _, err := s.final(clientFinal); err == nil {
				t.Fatalf("a proof verified against a zero secret: %q", clientFinal)
			}
		}
	})
}

// memConn plays a byte stream to its reader and discards what is written.
type memConn struct {
	r *bytes.Reader
}

func (m *memConn) Read(p []byte) (int, error)         { return m.r.Read(p) }
func (m *memConn) Write(p []byte) (int, error)        { return len(p), nil }
func (m *memConn) Close() error                       { return nil }
func (m *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5432} }
func (m *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5432} }
func (m *memConn) SetDeadline(t time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzClientDialog runs the whole client dialog (negotiation, login,
// query, the plaintext probe) against a server's byte stream.
func FuzzClientDialog(f *testing.F) {
	login := slices.Concat(newMessage('R').int32(3).done(), newMessage('R').int32(0).done(),
		newMessage('S').cstring("a").cstring("b").done(), newMessage('K').int32(1).int32(2).done(), readyForQuery())
	query := slices.Concat(newMessage('T').int16(0).done(), newMessage('D').int16(1).int32(1).bytes([]byte("1")).done(),
		newMessage('C').cstring("SELECT 1").done(), readyForQuery())
	f.Add(slices.Concat(login, query))
	f.Add(slices.Concat(newMessage('R').int32(5).bytes([]byte("salt")).done(), login[9:], query))
	f.Add(slices.Concat(newMessage('R').int32(10).cstring(SCRAMSHA256).byte1(0).done(), newMessage('R').int32(11).bytes([]byte("r=x,s=c2FsdA==,i=1")).done()))
	f.Add([]byte("N"))
	f.Add([]byte("Sx"))
	f.Add([]byte("E\x7f\xff\xff\xff"))
	for _, s := range messageSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, mode := range []starttls.Mode{starttls.ModePlain, starttls.ModeOpportunistic} {
			c, _, err := Upgrade(ctx, &memConn{r: bytes.NewReader(b)}, &starttls.ClientOptions{Mode: mode, InjectionWait: time.Millisecond})
			if err != nil {
				continue
			}
			if c.Login(ctx, "alice", "pw") == nil {
				c.SimpleQuery(ctx, "SELECT 1")
			}
			c.Close()
		}
		ProbePlaintextAuth(ctx, &memConn{r: bytes.NewReader(b)}, nil)
	})
}

// FuzzServerSession runs a whole plaintext server session on a client's
// byte stream.
func FuzzServerSession(f *testing.F) {
	q := newMessage('Q').cstring("SELECT 1").done()
	f.Add(slices.Concat(startup("alice"), newMessage('p').cstring(testPass).done(), q, newMessage('X').done()))
	f.Add(slices.Concat(newMessage(0).int32(GSSENCRequestCode).done(), sslRequest(), startup("alice")))
	f.Add(slices.Concat(startup("alice"), newMessage('p').cstring(testPass).done(), newMessage('P').done(), newMessage('S').done(), q))
	f.Add(u32(0x7fffffff))
	f.Add([]byte("\x16\x03\x01\x02\x00\x01"))
	f.Add(slices.Concat(newMessage(0).int32(CancelRequestCode).int32(1).int32(2).done()))
	f.Add(slices.Concat(newMessage(0).int32(3<<16 | 1).cstring("user").cstring("a").cstring("_pq_.x").cstring("y").byte1(0).done()))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, backend := range []Backend{plainBackend{}, scramBackend{}} {
			var log linetest.PanicLog
			srv := &Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: true, ReadTimeout: time.Second, Logger: slog.New(&log)}, Backend: backend}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			srv.ServeConn(ctx, &memConn{r: bytes.NewReader(b)})
			cancel()
			log.Check(t)
		}
	})
}
