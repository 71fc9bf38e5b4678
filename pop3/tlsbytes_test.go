package pop3

import (
	"strings"
	"testing"
)

// TestTLSSessionCommandLikeClientHello: inside TLS a command that starts
// with the bytes of a TLS record (0x16 0x03) is an unknown command, not a
// ClientHello on a plaintext port: the session goes on.
func TestTLSSessionCommandLikeClientHello(t *testing.T) {
	c := dialRaw(t, startServer(t, newServer(t)))
	if got := c.Cmd("STLS"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("STLS = %q", got)
	}
	c.StartTLS()
	if got := c.Cmd("\x16\x03 x"); !strings.HasPrefix(got, "-ERR") {
		t.Fatalf("0x16 0x03 command = %q, want -ERR", got)
	}
	if got := c.Cmd("NOOP"); got == "" {
		t.Fatal("no answer after the command")
	}
}
