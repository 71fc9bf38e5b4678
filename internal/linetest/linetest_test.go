package linetest

import (
	"testing"
	"time"
)

// TestRawAgainstFake: the two doubles talk to each other through a
// plaintext exchange, an upgrade and a close, and each records what it saw.
func TestRawAgainstFake(t *testing.T) {
	st, _ := TLSPair(t)
	addr, wait := FakeServer(t, func(f *Fake) {
		f.Send("* hello\r\n")
		if !f.Expect("STARTTLS") {
			return
		}
		f.Send("OK go\r\n")
		if !f.StartTLS(st) {
			t.Error("fake: handshake failed")
			return
		}
		if f.Expect("LIST") {
			f.Send("a\r\n..b\r\n.\r\n")
		}
		f.Drain()
	})
	c := Dial(t, addr)
	if g := c.Line(); g != "* hello" {
		t.Fatalf("greeting %q", g)
	}
	if got := c.Cmd("STARTTLS"); got != "OK go" {
		t.Fatalf("STARTTLS: %q", got)
	}
	c.StartTLS()
	c.Write("LIST\r\n")
	if got := c.UntilDot(); len(got) != 2 || got[1] != "..b" {
		t.Fatalf("UntilDot = %q", got)
	}
	c.ExpectSilence(50 * time.Millisecond)
	c.Write("QUIT\r\n")
	c.Conn().Close()
	f := wait()
	if f.Plain() != "STARTTLS\r\n" || f.TLS() != "LIST\r\nQUIT\r\n" {
		t.Errorf("fake saw plain %q, tls %q", f.Plain(), f.TLS())
	}
}
