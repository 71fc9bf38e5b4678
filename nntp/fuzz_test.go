package nntp

import (
	"strings"
	"testing"
)

// sliceReader feeds lines to readMulti.
type sliceReader struct{ lines []string }

func (r *sliceReader) ReadLine() (string, error) {
	if len(r.lines) == 0 {
		return "", errEOF
	}
	l := r.lines[0]
	r.lines = r.lines[1:]
	return l, nil
}

var errEOF = errorf("end of input")

// FuzzParseReply: any status line parses or fails cleanly; a parsed code is
// in range.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"200 ready", "201", "382 go", "580 no", "200-more", "999 x", "20", "2000", "\x16\x03\x01", "200 \x00\r", "-1 x", "1e2 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := parseReply(line)
		if err == nil && (r.Code < 100 || r.Code > 599) {
			t.Fatalf("parseReply(%q) code %d", line, r.Code)
		}
	})
}

// FuzzCaps: capability parsing and the login mechanisms never panic and
// stay bounded (hostile seeds: huge SASL lists, AUTHINFO lookalikes).
func FuzzCaps(f *testing.F) {
	for _, s := range []string{
		"VERSION 2\nREADER\nSTARTTLS\nAUTHINFO USER SASL\nSASL PLAIN",
		"AUTHINFO\nSASL PLAIN",
		"authinfo user\nsasl plain login plain",
		"SASL " + strings.Repeat("M ", 200) + "\nAUTHINFO SASL",
		"STARTTLS\x00\nAUTHINFO  USER",
		"\n\n \t\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		caps := parseCaps(strings.Split(s, "\n"))
		if m := authMechs(caps); len(m) > maxSASLMechs+1 {
			t.Fatalf("%d mechanisms", len(m))
		}
		for _, c := range caps {
			if c == "" || strings.HasPrefix(c, " ") {
				t.Fatalf("bad capability %q", c)
			}
		}
		hasCap(caps, CapSTARTTLS)
	})
}

// FuzzReadMulti: dot-unstuffing never returns the terminator and respects
// the bounds.
func FuzzReadMulti(f *testing.F) {
	for _, s := range []string{"a\n..b\n.\n", ".", "..\n.", "x\n" + strings.Repeat("y\n", 20) + ".", "...\n.\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var n int
		readMulti(&sliceReader{strings.Split(s, "\n")}, 10, 100, func(l string) { n++ })
		if n > 10 {
			t.Fatalf("%d lines past the bound", n)
		}
	})
}

// FuzzParseGroup: GROUP answers parse or fail cleanly, never negative.
func FuzzParseGroup(f *testing.F) {
	for _, s := range []string{"2 1 2 g", "0 0 0 g", "-1 1 2 g", "99999999999999999999 1 2 g", "1 2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := parseGroup(s)
		if err == nil && (g.Count < 0 || g.Low < 0 || g.High < 0 || g.Name == "") {
			t.Fatalf("parseGroup(%q) = %+v", s, g)
		}
	})
}
