package imap

import (
	"strconv"
	"strings"
	"testing"
)

func TestNextTag(t *testing.T) {
	for in, want := range map[string]string{"A001": "A002", "a9": "a10", "x099": "x100", "tag": "", "": "", "7": "8", "ABCD12": "ABCD13"} {
		if got := nextTag(in); got != want {
			t.Errorf("nextTag(%q) = %q, want %q", in, got, want)
		}
	}
	if got := string(MITMForged("A7 STARTTLS")); !strings.HasSuffix(got, "A8 OK CAPABILITY completed\r\n") {
		t.Errorf("forged %q", got)
	}
}

// FuzzNextTag: the next tag keeps the prefix and its number is one more.
func FuzzNextTag(f *testing.F) {
	for _, s := range []string{"A001", "a9", "x", "", "99999999", "\xff1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		next := nextTag(tag)
		if next == "" {
			return
		}
		i := len(tag)
		for i > 0 && tag[i-1] >= '0' && tag[i-1] <= '9' {
			i--
		}
		if !strings.HasPrefix(next, tag[:i]) {
			t.Fatalf("%q → %q: prefix lost", tag, next)
		}
		a, err1 := strconv.ParseUint(tag[i:], 10, 64)
		b, err2 := strconv.ParseUint(next[i:], 10, 64)
		if err1 != nil || err2 != nil || b != a+1 {
			t.Fatalf("%q → %q", tag, next)
		}
		if strings.ContainsAny(string(MITMForged(tag+" STARTTLS")), "\x00") && !strings.Contains(tag, "\x00") {
			t.Fatal("NUL invented")
		}
	})
}
