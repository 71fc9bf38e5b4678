package sieve

import (
	"errors"
	"strings"
	"testing"
)

// fakeWire feeds bytes to readTokens like a textline.Conn.
type fakeWire struct{ s string }

var errEnd = errors.New("end of input")

func (w *fakeWire) ReadLine() (string, error) {
	i := strings.Index(w.s, "\r\n")
	if i < 0 {
		return "", errEnd
	}
	l := w.s[:i]
	w.s = w.s[i+2:]
	if len(l) > 4096 {
		return "", errEnd
	}
	return l, nil
}

func (w *fakeWire) ReadFull(n int) ([]byte, error) {
	if n > len(w.s) {
		return nil, errEnd
	}
	b := w.s[:n]
	w.s = w.s[n:]
	return []byte(b), nil
}

// FuzzReadTokens: the tokenizer never panics, respects the literal and
// token bounds, and every response it accepts parses or fails cleanly.
func FuzzReadTokens(f *testing.F) {
	for _, s := range []string{
		"\"IMPLEMENTATION\" \"Dovecot\"\r\n",
		"OK (SASL \"abc\") \"done\"\r\n",
		"NO (QUOTA/MAXSIZE) {5}\r\nhello\r\n",
		"{4294967296}\r\n",
		"{5+}\r\nab\r\n",
		"\"unterminated\r\n",
		"\"a\\q\"\r\n",
		"OK ((((\r\n",
		"BYE ) \"x\"\r\n",
		strings.Repeat("a ", 100) + "\r\n",
		"{1}\r\nx {1}\r\ny {1}\r\nz {1}\r\nw {1}\r\nv\r\n",
		"\x16\x03\x01\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, rule := range []literalRule{anyLiteral, nonSyncOnly} {
			toks, err := readTokens(&fakeWire{s}, 64, rule)
			if err != nil {
				continue
			}
			if len(toks) > maxTokens {
				t.Fatalf("%d tokens", len(toks))
			}
			for _, tk := range toks {
				if tk.literal && len(tk.s) > 64 {
					t.Fatalf("literal of %d octets past the bound", len(tk.s))
				}
			}
			if isResponse(toks) {
				parseResponse(toks)
			} else if c, err := parseCapLine(toks); err == nil && (c == "" || strings.HasPrefix(c, " ")) {
				t.Fatalf("capability %q", c)
			}
		}
	})
}

// FuzzQuote: quote and the tokenizer round-trip every string quote accepts.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a", `"`, `\`, `a"b\c`, "é", "\r", "{5}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := quote(s)
		if err != nil {
			return
		}
		toks, err := readTokens(&fakeWire{q + "\r\n"}, 0, anyLiteral)
		if err != nil || len(toks) != 1 || toks[0].s != s {
			t.Fatalf("round trip of %q via %q: %v %+v", s, q, err, toks)
		}
	})
}

// TestRender: the Result shows lines as received, not clipped.
func TestRender(t *testing.T) {
	toks, err := readTokens(&fakeWire{"OK (WARNINGS \"line 1\") {3}\r\na\"b\r\n"}, 10, anyLiteral)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := render(toks), `OK (WARNINGS "line 1") "a\"b"`; got != want {
		t.Errorf("render = %q, want %q", got, want)
	}
}
