package smtp

import (
	"bytes"
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
//	go test -run '^$' -bench . -benchmem ./smtp

// BenchmarkUpgrade is one complete STARTTLS session set-up per iteration:
// TCP connect, greeting, EHLO, STARTTLS, the TLS 1.3 handshake with chain
// and name verification, EHLO again over TLS. The connection is then
// dropped without QUIT.
func BenchmarkUpgrade(b *testing.B) { benchUpgrade(b, starttls.ModeRequired) }

// BenchmarkUpgradeImplicit is BenchmarkUpgrade with implicit TLS (RFC 8314):
// TCP connect, handshake, greeting, EHLO over TLS.
func BenchmarkUpgradeImplicit(b *testing.B) { benchUpgrade(b, starttls.ModeImplicit) }

func benchUpgrade(b *testing.B, mode starttls.Mode) {
	s, _ := newServer(b)
	s.Implicit = mode == starttls.ModeImplicit
	addr := start(b, s)
	opts := clientOpts(b, mode)
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

// ehloReply20 is a 20-line EHLO reply of the kind large MTAs send before
// TLS (Postfix, Exim and Exchange keywords together, with the old
// "AUTH=" form and a keyword that is not one).
var ehloReply20 = strings.Join([]string{
	"250-mx.example.org Hello client.example.net [192.0.2.10]",
	"250-SIZE 52428800",
	"250-PIPELINING",
	"250-PIPE_CONNECT",
	"250-ETRN",
	"250-AUTH PLAIN LOGIN CRAM-MD5",
	"250-AUTH=LOGIN PLAIN",
	"250-ENHANCEDSTATUSCODES",
	"250-8BITMIME",
	"250-BINARYMIME",
	"250-CHUNKING",
	"250-DSN",
	"250-SMTPUTF8",
	"250-VRFY",
	"250-DELIVERBY 300",
	"250-MT-PRIORITY MIXER",
	"250-XCLIENT NAME ADDR PROTO HELO LOGIN",
	"250-XFORWARD NAME ADDR PROTO HELO SOURCE",
	"250-STARTTLS",
	"250 HELP",
}, "\r\n") + "\r\n"

// BenchmarkParseEHLO parses the 20 lines of an EHLO reply already split:
// reply-line syntax (code, continuation) and the extension list.
func BenchmarkParseEHLO(b *testing.B) {
	lines := strings.Split(strings.TrimSuffix(ehloReply20, "\r\n"), "\r\n")
	text := make([]string, 0, len(lines))
	b.ReportAllocs()
	b.SetBytes(int64(len(ehloReply20)))
	for b.Loop() {
		text = text[:0]
		for _, l := range lines {
			code, _, t, err := textline.ParseReplyLine(l)
			if err != nil || code != 250 {
				b.Fatalf("ParseReplyLine(%q) = %d, %v", l, code, err)
			}
			text = append(text, t)
		}
		if x := parseEHLO(text); !x.has("STARTTLS") {
			b.Fatal("parseEHLO: STARTTLS missing")
		}
	}
}

// BenchmarkReadEHLO is what the client does with the bytes of the EHLO
// reply: the bounded line reader (a new one per reply, as per connection),
// the multi-line reply and the extension list, from memory.
func BenchmarkReadEHLO(b *testing.B) {
	conn := &replayConn{data: []byte(ehloReply20)}
	b.ReportAllocs()
	b.SetBytes(int64(len(ehloReply20)))
	for b.Loop() {
		conn.r.Reset(conn.data)
		tc := textline.New(conn, textline.Options{Proto: "smtp", Local: starttls.FromClient})
		r, err := textline.ReadReply(tc, 0)
		if err != nil || len(r.Lines) != 20 {
			b.Fatalf("ReadReply = %d lines, %v", len(r.Lines), err)
		}
		if x := parseEHLO(r.Lines); !x.has("STARTTLS") {
			b.Fatal("parseEHLO: STARTTLS missing")
		}
	}
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
