package pop3

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
	"github.com/starttls/starttls/internal/textline"
)

// Benchmarks. The Upgrade benchmarks run the client against this package's
// Server on loopback, in the same process, so time and allocations count
// both sides of the dialog. The Parse and Read benchmarks measure the
// plaintext side alone: no network, no TLS. None of them asserts a time.
//
//	go test -run '^$' -bench . -benchmem ./pop3

// BenchmarkUpgrade is one complete STLS session set-up per iteration: TCP
// connect, greeting, CAPA, STLS, the TLS 1.3 handshake with chain and name
// verification, CAPA again over TLS. The connection is then dropped
// without QUIT. No transcript is kept.
func BenchmarkUpgrade(b *testing.B) { benchUpgrade(b, starttls.ModeRequired) }

// BenchmarkUpgradeImplicit is BenchmarkUpgrade with implicit TLS (RFC 8314):
// TCP connect, handshake, greeting, CAPA over TLS.
func BenchmarkUpgradeImplicit(b *testing.B) { benchUpgrade(b, starttls.ModeImplicit) }

func benchUpgrade(b *testing.B, mode starttls.Mode) {
	srv := newServer(b)
	srv.Implicit = mode == starttls.ModeImplicit
	addr := startServer(b, srv)
	opts := clientOpts(b, mode)
	opts.Transcript = nil // one per iteration would grow without bound
	ctx := linetest.Ctx(b)
	var d net.Dialer
	b.ReportAllocs()
	for b.Loop() {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		_, res, err := Upgrade(ctx, conn, opts)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Upgraded || !res.CapsReread || res.TLS == nil {
			b.Fatalf("Upgrade: Upgraded %v, CapsReread %v, TLS %v; want an upgraded session", res.Upgraded, res.CapsReread, res.TLS != nil)
		}
		conn.Close()
	}
}

// capaReply is Dovecot 2.3's answer to CAPA before TLS, with a SASL line
// and the RFC 2449 extras, ending with the "." line.
const capaReply = "+OK\r\n" +
	"CAPA\r\n" +
	"TOP\r\n" +
	"UIDL\r\n" +
	"RESP-CODES\r\n" +
	"PIPELINING\r\n" +
	"AUTH-RESP-CODE\r\n" +
	"STLS\r\n" +
	"USER\r\n" +
	"SASL PLAIN LOGIN SCRAM-SHA-1 SCRAM-SHA-256\r\n" +
	"EXPIRE NEVER\r\n" +
	"LOGIN-DELAY 0\r\n" +
	"IMPLEMENTATION Dovecot\r\n" +
	".\r\n"

// BenchmarkParseCapa parses the CAPA answer already split into lines: the
// status line, the multi-line framing, the capability list and the login
// methods.
func BenchmarkParseCapa(b *testing.B) {
	all := strings.Split(strings.TrimSuffix(capaReply, "\r\n"), "\r\n")
	lines := &benchLines{}
	caps := make([]string, 0, len(all))
	b.ReportAllocs()
	b.SetBytes(int64(len(capaReply)))
	for b.Loop() {
		st, err := parseStatus(all[0])
		if err != nil || !st.OK {
			b.Fatalf("parseStatus(%q) = %+v, %v", all[0], st, err)
		}
		lines.lines = all[1:]
		caps = caps[:0]
		if err := readMulti(lines, starttls.DefaultMaxLines, 0, func(l string) { caps = append(caps, l) }); err != nil {
			b.Fatal(err)
		}
		list := parseCaps(caps)
		if !hasCap(list, CapSTLS) || len(authMechs(list)) != 5 {
			b.Fatalf("parseCaps = %q", list)
		}
	}
}

// BenchmarkReadCapa is what the client does with the bytes of that answer:
// the bounded line reader (a new one per answer, as per connection), the
// status line, the multi-line framing and the capability list.
func BenchmarkReadCapa(b *testing.B) {
	conn := &replayConn{data: []byte(capaReply)}
	b.ReportAllocs()
	b.SetBytes(int64(len(capaReply)))
	for b.Loop() {
		conn.r.Reset(conn.data)
		tc := textline.New(conn, textline.Options{Proto: "pop3", Local: starttls.FromClient})
		line, err := tc.ReadLine()
		if err != nil {
			b.Fatal(err)
		}
		if st, err := parseStatus(line); err != nil || !st.OK {
			b.Fatalf("parseStatus(%q) = %+v, %v", line, st, err)
		}
		var caps []string
		if err := readMulti(tc, starttls.DefaultMaxLines, 0, func(l string) { caps = append(caps, l) }); err != nil {
			b.Fatal(err)
		}
		if list := parseCaps(caps); !hasCap(list, CapSTLS) {
			b.Fatalf("parseCaps = %q", list)
		}
	}
}

// benchLines is a lineReader over lines already split.
type benchLines struct{ lines []string }

func (s *benchLines) ReadLine() (string, error) {
	if len(s.lines) == 0 {
		return "", io.EOF
	}
	l := s.lines[0]
	s.lines = s.lines[1:]
	return l, nil
}

// replayConn is a net.Conn that reads data (again after r.Reset) and
// discards writes.
type replayConn struct {
	data []byte
	r    bytes.Reader
}

func (c *replayConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

var _ net.Conn = (*replayConn)(nil)
