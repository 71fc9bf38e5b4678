package pop3

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/starttls/starttls"
)

// hostile are the byte strings of SECURITY.md for POP3 (CL-07, CL-10,
// CL-12, PR-08, PR-11) and a few of our own.
var hostile = []string{
	"+OK POP3 server ready.\r\n",
	"+OK POP3 server ready. <1234.123456789@example.org>\r\n",
	"-ERR STARTTLS not supported.\r\n",
	"-ERR [SYS/PERM] perm alert\r\n",
	"-ERR [SYS/TEMP] try later\r\n",
	"+OK Begin fake TLS negotiation now.\r\n+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n",
	"+OK Begin fake TLS negotiation now.\r\n\xb9\xb3\xb9\xb2\xb3",
	"+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n",
	"+OK\r\nSASL " + strings.Repeat("X ", 200) + "\r\n.\r\n",
	"+OK\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n",
	"+OK\r\n..stuffed\r\n.\r\n",
	"-ERR [",
	"-ERR []",
	"-ERR [A/]",
	"-ERR [" + strings.Repeat("A", 100) + "] x",
	"+ok\x00",
	"* OK IMAP",
	"+OK 1 2",
	"+OK -1 99999999999999999999",
}

// sliceLines is a lineReader over a string, for fuzzing.
type sliceLines struct{ lines []string }

func (s *sliceLines) ReadLine() (string, error) {
	if len(s.lines) == 0 {
		return "", io.EOF
	}
	l := s.lines[0]
	s.lines = s.lines[1:]
	return l, nil
}

func splitLines(s string) *sliceLines {
	return &sliceLines{lines: strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")}
}

// FuzzParseStatus: status lines and STAT answers never panic, and a
// parsed -ERR renders as an error.
func FuzzParseStatus(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		st, err := parseStatus(line)
		if err != nil {
			if !errors.Is(err, starttls.ErrProtocol) {
				t.Fatalf("parseStatus(%q) error %v does not wrap ErrProtocol", line, err)
			}
			return
		}
		if !st.OK {
			e := st.err().(*Error)
			_ = e.Error()
			_ = e.Temporary()
			if len(e.Code) > maxCodeLen {
				t.Fatalf("code %q longer than %d", e.Code, maxCodeLen)
			}
		}
		n, size, err := parseStat(st.Text)
		if err == nil && (n < 0 || size < 0) {
			t.Fatalf("parseStat(%q) = %d, %d", st.Text, n, size)
		}
	})
}

// FuzzCapa: the multi-line reader and the capability parser respect their
// bounds and never panic.
func FuzzCapa(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		r := splitLines(data)
		var lines []string
		err := readMulti(r, 16, 1024, func(l string) { lines = append(lines, l) })
		if len(lines) > 16 {
			t.Fatalf("readMulti returned %d lines, limit 16", len(lines))
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, starttls.ErrProtocol) {
			t.Fatalf("readMulti error %v", err)
		}
		caps := parseCaps(lines)
		mechs := authMechs(caps)
		if len(mechs) > maxSASLMechs+1 {
			t.Fatalf("authMechs returned %d mechanisms", len(mechs))
		}
		for _, c := range caps {
			if c == "" || strings.ContainsAny(c, "\r\n") {
				t.Fatalf("bad capability %q", c)
			}
		}
		hasCap(caps, CapSTLS)
		hasSASL(caps, "PLAIN")
	})
}

// FuzzStuff: a message sent by the server (normalize + stuff) comes back
// unchanged through the client's reader.
func FuzzStuff(f *testing.F) {
	f.Add([]byte(testMessage))
	f.Add([]byte(testMessageLF))
	f.Add([]byte(".\r\n.\r\n"))
	f.Add([]byte("a\rb\n.."))
	f.Fuzz(func(t *testing.T, msg []byte) {
		want := normalize(msg)
		wire := stuff(want, -1)
		if !bytes.HasSuffix(wire, []byte(".\r\n")) {
			t.Fatalf("stuffed message does not end with the terminator: %q", wire)
		}
		// Split like the client's CRLF line reader: at LF, dropping the CR.
		var lines []string
		for _, l := range strings.SplitAfter(string(wire), "\n") {
			if l != "" {
				lines = append(lines, strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r"))
			}
		}
		var got []byte
		err := readMulti(&sliceLines{lines: lines}, 0, 0, func(l string) {
			got = append(got, l...)
			got = append(got, '\r', '\n')
		})
		if err != nil {
			t.Fatalf("readMulti: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round trip of %q = %q, want %q", msg, got, want)
		}
		top := stuff(want, 0)
		if len(top) > len(wire) {
			t.Fatalf("TOP 0 longer than RETR")
		}
	})
}

// FuzzDecodePlain: SASL PLAIN messages from clients never panic.
func FuzzDecodePlain(f *testing.F) {
	f.Add("AGFsaWNlAHNlY3JldCBwdw==")
	f.Add("=")
	f.Add("*")
	f.Add("AAAA")
	f.Add("YQBiAGMAZA==")
	f.Fuzz(func(t *testing.T, s string) {
		authz, user, pass, err := decodePlain(s)
		if err == nil && (user == "" || strings.Contains(authz+user+pass, "\x00")) {
			t.Fatalf("decodePlain(%q) = %q, %q, %q", s, authz, user, pass)
		}
	})
}
