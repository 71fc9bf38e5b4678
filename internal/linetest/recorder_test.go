package linetest

import (
	"io"
	"net"
	"testing"
)

func TestRecorder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var r Recorder
	rl := r.Listener(l)
	defer rl.Close()
	for _, msg := range []string{"EHLO a\r\n", "QUIT\r\n"} {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(msg))
		c.Close()
		s, err := rl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(s)
		s.Close()
	}
	if got := r.String(); got != "EHLO a\r\nQUIT\r\n" {
		t.Fatalf("recorded %q", got)
	}
}
