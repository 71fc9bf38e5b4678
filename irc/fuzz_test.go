package irc

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
)

// FuzzParseMessage: no panic; a parsed message renders to a line that
// parses back to the same message.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		"PING :x", ":srv 670 * :STARTTLS successful", ":srv 691 nick :STARTTLS",
		":srv 451 nick :STARTTLS", "@a=b\\\\c\\;d;e :p CAP * LS * :tls sasl=PLAIN",
		"CAP * LS :sts=port=6697,duration=86400", "@" + strings.Repeat("a=b;", 300) + " PING",
		":", "@", "@;; X", "AUTHENTICATE +", "\x16\x03\x01", "A B C D E F G H I J K L M N O P :Q",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, err := ParseMessage(line)
		if err != nil {
			return
		}
		if m.validate() != nil {
			return
		}
		m2, err := ParseMessage(m.String())
		if err != nil {
			t.Fatalf("ParseMessage(%q) = %v after rendering %q", m.String(), err, line)
		}
		if m2.String() != m.String() {
			t.Fatalf("round trip %q → %q", m.String(), m2.String())
		}
	})
}

// FuzzClientDialog: whatever the server says, Upgrade returns within its
// deadline, with a Result, and never panics.
func FuzzClientDialog(f *testing.F) {
	for _, s := range []string{
		notice + capsTLS + goAhead,
		":srv CAP * LS * :a\r\n:srv CAP * LS * :b\r\n:srv CAP * LS :tls\r\n:srv 691 * :STARTTLS\r\n",
		":srv 451 * :You have not registered\r\n",
		"ERROR :Closing link (Throttled)\r\n",
		capsTLS + goAhead + ":srv CAP * LS :sasl\r\n",
		"PING :x\r\nPING\r\n:srv CAP\r\n:srv CAP * LS\r\n",
		"@" + strings.Repeat("x", 9000) + "\r\n",
		"\x00\r\n", ":srv CAP * LS * :tls\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		srv, cli := net.Pipe()
		go func() {
			go io.Copy(io.Discard, srv)
			srv.Write([]byte(script))
			srv.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, res, err := Upgrade(ctx, cli, &starttls.ClientOptions{Mode: starttls.ModeOpportunistic, InjectionWait: 10 * time.Millisecond})
		if res == nil {
			t.Fatal("nil Result")
		}
		if err == nil {
			c.conn.Close()
		}
	})
}
