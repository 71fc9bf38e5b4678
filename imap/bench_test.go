package imap

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
//	go test -run '^$' -bench . -benchmem ./imap

// BenchmarkUpgrade is one complete STARTTLS session set-up per iteration:
// TCP connect, greeting, CAPABILITY, STARTTLS, the TLS 1.3 handshake with
// chain and name verification, CAPABILITY again over TLS. The connection is
// then dropped without LOGOUT. No transcript is kept.
func BenchmarkUpgrade(b *testing.B) { benchUpgrade(b, starttls.ModeRequired) }

// BenchmarkUpgradeImplicit is BenchmarkUpgrade with implicit TLS (RFC 8314):
// TCP connect, handshake, greeting, CAPABILITY over TLS.
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

// capabilityReply is Dovecot 2.3's answer to CAPABILITY before TLS (40
// capabilities), with its tagged completion.
const capabilityReply = "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY " +
	"THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT " +
	"CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES " +
	"WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE " +
	"SAVEDATE LITERAL+ NOTIFY SPECIAL-USE STARTTLS LOGINDISABLED\r\n" +
	"a1 OK Pre-login capabilities listed, post-login capabilities have more.\r\n"

// BenchmarkParseCapability parses the untagged CAPABILITY response and its
// tagged OK, already read as lines, into the capability list and the login
// methods.
func BenchmarkParseCapability(b *testing.B) {
	untagged, tagged, _ := strings.Cut(strings.TrimSuffix(capabilityReply, "\r\n"), "\r\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(capabilityReply)))
	for b.Loop() {
		u, err := parseResponse(untagged)
		if err != nil || u.Type != "CAPABILITY" {
			b.Fatalf("parseResponse(%q) = %+v, %v", untagged, u, err)
		}
		t, err := parseResponse(tagged)
		if err != nil || t.Type != "OK" {
			b.Fatalf("parseResponse(%q) = %+v, %v", tagged, t, err)
		}
		caps, ok := parseCaps(u.Data, starttls.DefaultMaxLines)
		if !ok || !hasCap(caps, CapSTARTTLS) || authMechs(caps) != nil {
			b.Fatalf("parseCaps = %q, %v", caps, ok)
		}
	}
}

// BenchmarkReadCapability is what the client does with the bytes of that
// answer: the bounded line reader (a new one per answer, as per
// connection), the response framing (literals), the parse and the list.
func BenchmarkReadCapability(b *testing.B) {
	conn := &replayConn{data: []byte(capabilityReply)}
	b.ReportAllocs()
	b.SetBytes(int64(len(capabilityReply)))
	for b.Loop() {
		conn.r.Reset(conn.data)
		tc := textline.New(conn, textline.Options{Proto: "imap", Local: starttls.FromClient})
		var caps []string
		for range 2 {
			s, err := readResponse(tc, MaxLiteral, maxResponse)
			if err != nil {
				b.Fatal(err)
			}
			r, err := parseResponse(s)
			if err != nil {
				b.Fatal(err)
			}
			if r.Type == "CAPABILITY" {
				caps, _ = parseCaps(r.Data, starttls.DefaultMaxLines)
			}
		}
		if !hasCap(caps, CapSTARTTLS) {
			b.Fatalf("caps = %q, want STARTTLS", caps)
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
