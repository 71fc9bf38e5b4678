package mysql

import (
	"crypto/tls"
	"io"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/linetest"
)

// TestServerHandshakeHandsOver: Handshake serves the greeting and the
// SSLRequest and returns the TLS connection with the client's
// HandshakeResponse (sequence id 2) still unread, for a proxy.
func TestServerHandshakeHandsOver(t *testing.T) {
	srv := newServer(t)
	a, b := loopbackPair(t)
	go func() {
		_, p, _ := readPkt(b)
		g, _ := ParseGreeting(p)
		b.Write(sslRequestPacket())
		_, ct := linetest.TLSPair(t)
		cfg := ct.Clone()
		cfg.ServerName = "localhost"
		tc := tls.Client(b, cfg)
		if tc.Handshake() == nil {
			tc.Write(loginPacket(g, 2, true))
		}
	}()
	tc, err := srv.Handshake(linetest.Ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	seq, p, err := readPkt(tc)
	if err != nil || seq != 2 {
		t.Fatalf("after Handshake: seq %d, %v", seq, err)
	}
	if h, ssl, err := parseHandshakeResponse(p); err != nil || ssl || h.User != testUser {
		t.Fatalf("handshake response %+v %v %v", h, ssl, err)
	}
}

// TestServerStalledClosed (SECURITY SV-28): a client that stalls before
// its first packet, in the middle of one, or after the SSLRequest in the
// middle of its ClientHello is cut by the per-read deadline.
func TestServerStalledClosed(t *testing.T) {
	srv := newServer(t)
	srv.ReadTimeout = 200 * time.Millisecond
	addr := startServer(t, srv)
	halfHello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00}
	for name, send := range map[string][]byte{
		"silent":           nil,
		"half packet":      {0x20, 0x00, 0x00, 0x01, 0x05},
		"half clienthello": append(sslRequestPacket(), halfHello...),
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := rawDial(t, addr)
			c.Write(send)
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("connection open for %v", d)
			}
		})
	}
}
