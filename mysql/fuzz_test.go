package mysql

import (
	"bytes"
	"testing"

	"github.com/starttls/starttls"
)

// FuzzReadPacket: the packet reader never panics, never returns more than
// the limit, and checks sequence ids.
func FuzzReadPacket(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0})       // length ff ff ff (PR-20)
	f.Add([]byte{0x05, 0, 0, 0, 1, 2})       // truncated
	f.Add([]byte{0x01, 0, 0, 7, 1})          // wrong sequence id
	f.Add([]byte{0x16, 0x03, 0x01, 0x02, 0}) // a TLS record
	f.Add(greetingBytes(serverCaps | ClientSSL))
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newWire(&fakeConn{r: bytes.NewReader(b)}, &starttls.Transcript{}, starttls.FromClient)
		w.sniff = len(b)%2 == 0
		for range 4 {
			p, err := w.readPacket(1024)
			if err != nil {
				return
			}
			if len(p) > 1024 {
				t.Fatalf("packet of %d bytes past the limit", len(p))
			}
		}
	})
}

// FuzzParseGreeting: any payload parses or fails cleanly, and a greeting we
// marshal parses back.
func FuzzParseGreeting(f *testing.F) {
	f.Add(greetingBytes(serverCaps | ClientSSL)[4:])
	f.Add(marshalErr(1040, "08004", "Too many connections"))
	f.Add([]byte{10, 'v', 0, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0xff, 0xff, 45, 2, 0, 0xff, 0xff, 0xff})
	f.Add([]byte{10, 0})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		g, err := ParseGreeting(p)
		if err != nil {
			return
		}
		_ = g.String()
		_ = CapNames(g.Capabilities)
		if len(g.Scramble) >= 20 && bytes.IndexByte(g.Scramble[:20], 0) < 0 && bytes.IndexByte([]byte(g.ServerVersion), 0) < 0 &&
			bytes.IndexByte([]byte(g.AuthPlugin), 0) < 0 && g.Capabilities&ClientSecureConnection != 0 && g.Capabilities&ClientPluginAuth != 0 {
			g.Scramble = g.Scramble[:20]
			g2, err := ParseGreeting(g.marshal())
			if err != nil || g2.ServerVersion != g.ServerVersion || !bytes.Equal(g2.Scramble, g.Scramble) || g2.AuthPlugin != g.AuthPlugin {
				t.Fatalf("round trip: %+v → %+v, %v", g, g2, err)
			}
		}
	})
}

// FuzzReadResult: the result-set reader is bounded and never panics.
func FuzzReadResult(f *testing.F) {
	var rs []byte
	rs = append(rs, pkt(1, []byte{2})...)
	rs = append(rs, pkt(2, marshalColumn("a"))...)
	rs = append(rs, pkt(3, marshalColumn("b"))...)
	rs = append(rs, pkt(4, marshalEOF(2))...)
	rs = append(rs, pkt(5, []byte{1, 'x', 0xfb})...)
	rs = append(rs, pkt(6, marshalEOF(2))...)
	f.Add(rs)
	f.Add(pkt(1, marshalOK(2)))
	f.Add(pkt(1, marshalErr(1064, "42000", "syntax")))
	f.Add(pkt(1, []byte("\xfb/etc/passwd")))
	f.Add(pkt(1, []byte{0xfc, 0xff, 0xff}))                                           // 65535 columns
	f.Add(append(pkt(1, []byte{1}), pkt(2, []byte{0xfe, 1, 2, 3, 4, 5, 6, 7, 8})...)) // lenenc 8-byte in a column def
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newWire(&fakeConn{r: bytes.NewReader(b)}, &starttls.Transcript{}, starttls.FromClient)
		w.seq = 1
		rs, err := w.readResult(16)
		if err == nil && len(rs.Rows) > 16 {
			t.Fatalf("%d rows past the limit", len(rs.Rows))
		}
	})
}

// FuzzParseHandshakeResponse: the server's parser of the client's first
// packets never panics.
func FuzzParseHandshakeResponse(f *testing.F) {
	g, _ := ParseGreeting(greetingBytes(serverCaps)[4:])
	f.Add(loginPacket(g, 1, false)[4:])
	f.Add(sslRequestPacket()[4:])
	h := &handshakeResponse{Capabilities: clientCaps | ClientPluginAuthLenencClientData | ClientConnectWithDB, User: "u", AuthResponse: []byte("x"), Database: "db", AuthPlugin: "p"}
	f.Add(h.marshal())
	f.Add([]byte{0, 2, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		parseHandshakeResponse(p)
	})
}
