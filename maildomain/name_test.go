package maildomain

import (
	"strings"
	"testing"
)

func TestValidDomain(t *testing.T) {
	cases := []struct {
		s    string
		want bool
	}{
		{"example.org", true},
		{"Example.ORG.", true},
		{"mx-1.example.org", true},
		{"_mta-sts.example.org", true},
		{"xn--bcher-kva.example", true},
		{strings.Repeat("a", 63) + ".org", true},
		{strings.Repeat("a.", 126) + "a", true}, // 253 characters
		{"", false},
		{".", false},
		{"localhost", false},
		{"org.", false},
		{"example..org", false},
		{".example.org", false},
		{"-mx.example.org", false},
		{"mx-.example.org", false},
		{strings.Repeat("a", 64) + ".org", false},
		{strings.Repeat("a.", 127) + "a", false}, // 255 characters
		{"127.0.0.1", false},
		{"::1", false},
		{"[::1]", false},
		{"mx example.org", false},
		{"exa*mple.org", false},
		{"bücher.example", false},
		{"example.org:25", false},
	}
	for _, c := range cases {
		if got := ValidDomain(c.s); got != c.want {
			t.Errorf("ValidDomain(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}

func FuzzValidDomain(f *testing.F) {
	for _, s := range []string{"example.org", "a..b", "127.0.0.1", "-a.b", "A.B.", "x_y.z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidDomain(s) {
			return
		}
		n := strings.ToLower(strings.TrimSuffix(s, "."))
		if len(n) > 253 || !strings.Contains(n, ".") || strings.Contains(n, "..") || strings.ContainsAny(n, " :/[]@*") {
			t.Fatalf("ValidDomain(%q) accepted a name it must refuse", s)
		}
	})
}
