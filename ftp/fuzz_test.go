package ftp

import (
	"io"
	"strings"
	"testing"
)

// sliceLines serves lines to readReply.
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
	return &sliceLines{lines: strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")}
}

// FuzzReadReply: any input gives a reply or an error, never a panic; the
// line count stays bounded.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"220 ok\r\n", "220-a\r\n b\r\n220 c\r\n", "220-a\r\n220-b\r\n220\r\n",
		"211-Features:\r\n AUTH TLS\r\n211 End\r\n", "234-one\r\n234 two\r\n",
		"220-a\r\n230 other code\r\n", "999 x\r\n", "22", "220x\r\n", "-220 x", "",
		"211-x\r\n" + strings.Repeat(" L\r\n", 100), "\x16\x03\x01\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := readReply(splitLines(s), 50)
		if err == nil && (r.Code < 100 || r.Code > 599 || len(r.Lines) == 0 || len(r.Lines) > 50) {
			t.Fatalf("readReply(%q) = %+v", s, r)
		}
	})
}

// FuzzFeat: the FEAT parser and the AUTH TLS detection on hostile lists
// (SECURITY PR-24, STRIPTLS FTP.StripFromCapabilities).
func FuzzFeat(f *testing.F) {
	for _, s := range []string{
		"211-Features:\r\n AUTH TLS\r\n PBSZ\r\n211 End\r\n",
		"211-Features:\r\n AUTH TLS;TLS-C;SSL;TLS-P;\r\n211 End\r\n",
		"211-Features:\r\n AUTHTLS\r\n AUTH\r\n211 End\r\n",
		"211-Features:\r\n211-AUTH TLS\r\n211 End\r\n", "211 no features\r\n",
		"211-Features:\r\n\x00AUTH\r\n  \r\n211 End\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := readReply(splitLines(s), 100)
		if err != nil {
			return
		}
		feats := parseFeat(r)
		for _, ft := range feats {
			if ft == "" || ft != strings.Join(strings.Fields(ft), " ") {
				t.Fatalf("feature %q not normalized", ft)
			}
		}
		if offersTLS(feats) && !strings.Contains(strings.ToUpper(s), "AUTH") {
			t.Fatalf("AUTH TLS found in %q", s)
		}
	})
}

// FuzzPassive: PASV and EPSV replies with hostile numbers never give a
// port outside 1–65535.
func FuzzPassive(f *testing.F) {
	for _, s := range []string{
		"Entering Passive Mode (127,0,0,1,4,1)", "=127,0,0,1,255,255", "(256,0,0,1,4,1)",
		"(1,2,3,4,0,0)", "(1,2,3,4,5)", "(1,2,3,4,5,6,7)", "(-1,2,3,4,5,6)", "(0001,2,3,4,5,6)",
		"(99999999999999999999,1,1,1,1,1)", "Entering Extended Passive Mode (|||6446|)",
		"(|||0|)", "(|||65536|)", "(|||99999999999|)", "(!!!1!)", "(111111)", "(|||+5|)",
		"(|||-5|)", "(|2|::1|5|)", "(\x00\x00\x005\x00)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ip, port, err := parsePASV(s); err == nil && (port < 1 || port > 65535 || ip.To4() == nil) {
			t.Fatalf("parsePASV(%q) = %v, %d", s, ip, port)
		}
		if port, err := parseEPSV(s); err == nil && (port < 1 || port > 65535) {
			t.Fatalf("parseEPSV(%q) = %d", s, port)
		}
	})
}

// FuzzParseCommand: the server's command parser accepts only 3–4 letter
// verbs and the resolver never leaves the root.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"USER alice", "pass secret pw", "RETR ../../etc/passwd", "CWD /..", "LIST -la /pub",
		"AUTH TLS", "X", "ÄÖÜ x", "RETR\x00x", "EPSV ALL", "CWD " + strings.Repeat("../", 100),
	} {
		f.Add(s)
	}
	ss := &session{cwd: "/pub"}
	f.Fuzz(func(t *testing.T, s string) {
		verb, arg, ok := parseCommand(s)
		if ok && (len(verb) < 3 || len(verb) > 4 || verb != strings.ToUpper(verb)) {
			t.Fatalf("parseCommand(%q) = %q, %q", s, verb, arg)
		}
		name, abs, valid := ss.resolve(arg)
		if valid && (strings.Contains("/"+name+"/", "/../") || !strings.HasPrefix(abs, "/")) {
			t.Fatalf("resolve(%q) = %q, %q", arg, name, abs)
		}
		_ = listArg(arg)
	})
}
