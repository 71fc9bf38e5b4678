package irc

import (
	"encoding/base64"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestClientTranscript: the client's exact bytes for a whole session:
// NOTICE and PING before a multi-line CAP LS, STARTTLS, CAP LS again,
// SASL PLAIN, registration with a nick collision, QUIT.
func TestClientTranscript(t *testing.T) {
	payload := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret pw"))
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		st, _ := linetest.TLSPair(t)
		f.Expect("CAP LS 302")
		f.Send(notice + "PING :cookie\r\n")
		f.Expect("PONG :cookie")
		f.Send(":srv CAP * LS * :multi-prefix sts=port=6697\r\n:srv CAP * LS :tls\r\n")
		f.Expect("STARTTLS")
		f.Send(":srv NOTICE * :*** Found your hostname\r\n" + goAhead)
		if !f.StartTLS(st) {
			return
		}
		f.Expect("CAP LS 302")
		f.Send(capsPost)
		f.Expect("CAP REQ :sasl")
		f.Send(":srv CAP * ACK :sasl\r\n")
		f.Expect("AUTHENTICATE PLAIN")
		f.Send("AUTHENTICATE +\r\n")
		f.Expect("AUTHENTICATE " + payload)
		f.Send(":srv 900 * *!*@h alice :You are now logged in as alice\r\n:srv 903 * :SASL authentication successful\r\n")
		f.Expect("CAP END")
		f.Expect("NICK alice")
		f.Expect("USER alice 0 * :starttls")
		f.Send(":srv 433 * alice :Nickname is already in use\r\n")
		f.Expect("NICK alice1")
		f.Send(":srv 001 alice1 :Welcome\r\n")
		f.Expect("QUIT")
		f.Send("ERROR :Closing link\r\n")
	})
	ctx := linetest.Ctx(t)
	c, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	if res.Greeting != strings.TrimSuffix(notice, "\r\n") {
		t.Errorf("Greeting = %q", res.Greeting)
	}
	if want := []string{"multi-prefix", "sts=port=6697", "tls"}; !reflect.DeepEqual(res.CapsBefore, want) || !res.Offered {
		t.Errorf("CapsBefore = %q, Offered %v", res.CapsBefore, res.Offered)
	}
	if err := c.Login(ctx, "alice", "secret pw"); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if c.Nick() != "alice1" {
		t.Errorf("Nick() = %q", c.Nick())
	}
	c.Close()
	f := wait()
	if got := f.Plain(); got != "CAP LS 302\r\nPONG :cookie\r\nSTARTTLS\r\n" {
		t.Errorf("plaintext = %q", got)
	}
	if tr := dump(res.Transcript); strings.Contains(tr, payload) {
		t.Errorf("transcript shows the SASL payload:\n%s", tr)
	}
}

// TestSTSIsNotSTARTTLS: an sts policy without tls is not an offer.
func TestSTSIsNotSTARTTLS(t *testing.T) {
	addr, _ := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Expect("CAP LS 302")
		f.Send(":srv CAP * LS :sts=port=6697,duration=86400\r\n")
		f.Drain()
	})
	_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
	if err != nil || res.Offered || res.Upgraded || !reflect.DeepEqual(res.CapsBefore, []string{"sts=port=6697,duration=86400"}) {
		t.Errorf("Dial() = %v, Offered %v, CapsBefore %q", err, res.Offered, res.CapsBefore)
	}
}

// TestSASLChunks: a payload of exactly 400 bytes is followed by
// "AUTHENTICATE +" (IRCv3 sasl-3.1).
func TestSASLChunks(t *testing.T) {
	pass := strings.Repeat("p", 300-len("\x00alice\x00")) // 300 bytes → 400 base64
	payload := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + pass))
	if len(payload) != 400 {
		t.Fatalf("payload %d bytes", len(payload))
	}
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Expect("CAP LS 302")
		f.Send(":srv CAP * LS :sasl\r\n")
		f.Expect("CAP REQ :sasl")
		f.Send(":srv CAP * ACK :sasl\r\n")
		f.Expect("AUTHENTICATE PLAIN")
		f.Send("AUTHENTICATE +\r\n")
		f.Expect("AUTHENTICATE " + payload)
		f.Expect("AUTHENTICATE +")
		f.Send(":srv 904 * :SASL authentication failed\r\n")
		f.Drain()
	})
	ctx := linetest.Ctx(t)
	c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Login(ctx, "alice", pass)
	if e, ok := err.(*Error); !ok || e.Command != "904" {
		t.Errorf("Login() error = %v, want 904", err)
	}
	c.conn.Close()
	wait()
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		in   string
		want *Message
	}{
		{"PING :x y", &Message{Command: "PING", Params: []string{"x y"}}},
		{":srv 001 nick :Welcome home", &Message{Prefix: "srv", Command: "001", Params: []string{"nick", "Welcome home"}}},
		{"@time=2020;a=b\\sc\\:d;+x :n!u@h privmsg #c :hi", &Message{Tags: []Tag{{"time", "2020"}, {"a", "b c;d"}, {"+x", ""}}, Prefix: "n!u@h", Command: "PRIVMSG", Params: []string{"#c", "hi"}}},
		{"CAP  *   LS  * :a b", &Message{Command: "CAP", Params: []string{"*", "LS", "*", "a b"}}},
		{"CAP * LS :", &Message{Command: "CAP", Params: []string{"*", "LS", ""}}},
	}
	for _, tt := range tests {
		got, err := ParseMessage(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseMessage(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", ":srv", "@a=b", "12 x", "A B C D E F G H I J K L M N O P Q", "PING \x00", ": PING", "@ PING", "@=x PING"} {
		if m, err := ParseMessage(bad); err == nil {
			t.Errorf("ParseMessage(%q) = %+v, want an error", bad, m)
		}
	}
}

func TestRegisterBoundsMessages(t *testing.T) {
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Expect("CAP LS 302")
		f.Send(":srv CAP * LS :\r\n")
		// The client gives up after MaxLines and may hang up before the
		// rest arrives: write without failing the test.
		io.WriteString(f.Conn(), strings.Repeat(":srv 002 ann :still here\r\n", 50))
		f.Drain()
	})
	ctx, cancel := contextWithTimeout(linetest.Ctx(t), 5*time.Second)
	defer cancel()
	opts := clientOpts(t, starttls.ModePlain)
	opts.MaxLines = 10
	c, _, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Register(ctx, "ann")
	if !errors.Is(err, starttls.ErrProtocol) || !strings.Contains(err.Error(), "RPL_WELCOME") {
		t.Errorf("Register() error = %v, want a protocol error", err)
	}
	c.conn.Close()
	wait()
}
