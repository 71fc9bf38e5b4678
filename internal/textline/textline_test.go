package textline

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
)

// pair returns a Conn reading what the returned writer sends, over loopback.
func pair(t *testing.T, opts Options) (*Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return New(c, opts), peer
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		name   string
		send   string
		strict bool
		want   []string
		err    error
	}{
		{name: "crlf", send: "a\r\nb\r\n", want: []string{"a", "b"}},
		{name: "lenient bare LF", send: "a\nb\r\n", want: []string{"a", "b"}},
		{name: "strict bare LF", send: "EHLO x\nSTARTTLS\n", strict: true, err: starttls.ErrProtocol},
		{name: "NUL", send: "EHLO a\x00b\r\n", err: starttls.ErrProtocol},
		{name: "strict bare CR", send: "MAIL FROM:<a>\rRCPT TO:<b>\r\n", strict: true, err: starttls.ErrProtocol},
		{name: "too long", send: strings.Repeat("x", 100) + "\r\n", err: starttls.ErrLineTooLong},
		{name: "exactly at limit", send: strings.Repeat("x", 62) + "\r\n", want: []string{strings.Repeat("x", 62)}},
		{name: "eof mid-line", send: "partial", err: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := pair(t, Options{Proto: "test", MaxLine: 64, StrictCRLF: tt.strict})
			go func() { peer.Write([]byte(tt.send)); peer.Close() }()
			var got []string
			var err error
			for {
				var line string
				line, err = c.ReadLine()
				if err != nil {
					break
				}
				got = append(got, line)
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ReadLine error = %v, want %v", err, tt.err)
				}
				return
			}
			if !errors.Is(err, io.EOF) {
				t.Fatalf("ReadLine final error = %v, want EOF", err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("ReadLine = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckNoBuffered(t *testing.T) {
	c, peer := pair(t, Options{Proto: "test"})
	peer.Write([]byte("220 go ahead\r\n250-AUTH XOAUTH2"))
	line, err := c.ReadLine()
	if err != nil || line != "220 go ahead" {
		t.Fatalf("ReadLine = %q, %v", line, err)
	}
	// The fragment may arrive in a later segment; wait until it is buffered.
	deadline := time.Now().Add(2 * time.Second)
	for c.Buffered() == 0 && time.Now().Before(deadline) {
		c.r.Peek(1)
	}
	b, err := c.CheckNoBuffered()
	if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) || string(b) != "250-AUTH XOAUTH2" {
		t.Fatalf("CheckNoBuffered = %q, %v; want the fragment and ErrPlaintextAfterUpgrade", b, err)
	}
	if c.Buffered() != 0 {
		t.Fatal("CheckNoBuffered left bytes in the buffer")
	}
}

func TestWriteLineRefusesCRLF(t *testing.T) {
	c, _ := pair(t, Options{Proto: "test"})
	for _, s := range []string{"RCPT TO:<a>\r\nDATA", "x\ny", "x\r"} {
		if err := c.WriteLine(s); err == nil {
			t.Errorf("WriteLine(%q) = nil, want an error", s)
		}
		if err := c.WriteLines("NOOP", s); err == nil {
			t.Errorf("WriteLines(NOOP, %q) = nil, want an error", s)
		}
	}
}

func TestTranscriptMasks(t *testing.T) {
	tr := &starttls.Transcript{}
	c, peer := pair(t, Options{Proto: "test", Local: starttls.FromClient, Transcript: tr})
	go func() {
		buf := make([]byte, 100)
		peer.Read(buf)
	}()
	if err := c.WriteLineMasked("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "AUTH PLAIN ****"); err != nil {
		t.Fatal(err)
	}
	ev := tr.Events()
	if len(ev) != 1 || ev[0].Text != "AUTH PLAIN ****" || ev[0].Dir != starttls.FromClient {
		t.Fatalf("transcript = %+v", ev)
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name  string
		send  string
		code  int
		lines []string
		err   error
	}{
		{name: "single", send: "250 ok\r\n", code: 250, lines: []string{"ok"}},
		{name: "multi", send: "250-mx.example\r\n250-STARTTLS\r\n250 SIZE 10\r\n", code: 250, lines: []string{"mx.example", "STARTTLS", "SIZE 10"}},
		{name: "bare code", send: "250\r\n", code: 250, lines: []string{""}},
		{name: "code changes", send: "250-a\r\n251 b\r\n", err: starttls.ErrProtocol},
		{name: "garbage", send: "hello\r\n", err: starttls.ErrProtocol},
		{name: "out of range", send: "999 x\r\n", err: starttls.ErrProtocol},
		{name: "bad separator", send: "250+x\r\n", err: starttls.ErrProtocol},
		{name: "no final line", send: "250-a\r\n", err: io.ErrUnexpectedEOF},
		{name: "too many lines", send: strings.Repeat("250-x\r\n", 20) + "250 y\r\n", err: starttls.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := pair(t, Options{Proto: "test"})
			go func() { peer.Write([]byte(tt.send)); peer.Close() }()
			r, err := ReadReply(c, 10)
			if tt.err != nil {
				if !errors.Is(err, tt.err) && !(tt.err == io.ErrUnexpectedEOF && errors.Is(err, io.EOF)) {
					t.Fatalf("ReadReply error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || r.Code != tt.code || strings.Join(r.Lines, "|") != strings.Join(tt.lines, "|") {
				t.Fatalf("ReadReply = %+v, %v; want %d %q", r, err, tt.code, tt.lines)
			}
		})
	}
}

func FuzzParseReplyLine(f *testing.F) {
	for _, s := range []string{"250-STARTTLS", "250 ok", "220", "2", "999 x", "250\x00", "-250 x", "250-", "25a x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, _, text, err := ParseReplyLine(s)
		if err != nil {
			return
		}
		if code < 100 || code > 599 || len(text) > len(s) {
			t.Fatalf("ParseReplyLine(%q) = %d %q", s, code, text)
		}
	})
}
