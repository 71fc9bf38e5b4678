package smtp

import (
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestProbeReplyEscaped: the answer to the injection probe goes into the
// report escaped, not as the raw bytes the server sent.
func TestProbeReplyEscaped(t *testing.T) {
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		st, _ := linetest.TLSPair(t)
		f.Send("220 fake ESMTP\r\n")
		f.ReadLine() // EHLO
		f.Send("250-fake\r\n250 STARTTLS\r\n")
		if !f.Expect("STARTTLS") || !f.Expect("NOOP") {
			return
		}
		f.Send("220 go ahead\r\n")
		if !f.StartTLS(st) {
			return
		}
		f.Send("250-a\x1b[2Jb\r\n250 ok\x07\r\n")
		f.ReadLine() // EHLO
		f.Send("250 fake\r\n")
		if f.Expect("QUIT") {
			f.Send("221 bye\r\n")
		}
		f.Drain()
	})
	opts := clientOpts(t, starttls.ModeRequired)
	opts.ProbeInjection = true
	opts.InjectionWait = 2 * time.Second
	c, res, err := Dial(linetest.Ctx(t), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	wait()
	inj := res.Injection
	if !inj.Vulnerable {
		t.Fatalf("Injection = %+v, want Vulnerable", inj)
	}
	if want := "250-a\\x1b[2Jb\n250 ok\\x07"; inj.Reply != want {
		t.Errorf("Reply = %q, want %q", inj.Reply, want)
	}
	if strings.ContainsAny(inj.Reply, "\x1b\x07") {
		t.Errorf("Reply %q holds raw control bytes", inj.Reply)
	}
}
