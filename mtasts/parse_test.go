package mtasts

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		name, in string
		id       string
		ok       bool
	}{
		{"plain", "v=STSv1; id=20160831085700Z;", "20160831085700Z", true},
		{"no trailing delimiter", "v=STSv1;id=abc", "abc", true},
		{"spaces", "v=STSv1 ;  id=abc  ; ", "abc", true},
		{"extension", "v=STSv1; id=1; foo=bar", "1", true},
		{"repeated id keeps first", "v=STSv1; id=1; id=2", "1", true},
		{"no id", "v=STSv1;", "", false},
		{"id too long", "v=STSv1; id=" + strings.Repeat("a", 33), "", false},
		{"id punctuation", "v=STSv1; id=a-b", "", false},
		{"version later", "id=1; v=STSv1", "", false},
		{"wrong version", "v=STSv2; id=1", "", false},
		{"field without =", "v=STSv1; id=1; junk", "", false},
		{"empty inner field", "v=STSv1;; id=1", "", false},
		{"bad extension value", "v=STSv1; id=1; a=b c", "", false},
		{"v again", "v=STSv1; id=1; v=STSv1", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRecord(tc.in)
			if !tc.ok {
				if err == nil || !errors.Is(err, ErrInvalidRecord) {
					t.Fatalf("ParseRecord(%q) = %+v, %v; want ErrInvalidRecord", tc.in, r, err)
				}
				return
			}
			if err != nil || r.ID != tc.id {
				t.Fatalf("ParseRecord(%q) = %+v, %v; want id %q", tc.in, r, err, tc.id)
			}
		})
	}
}

func TestSelectRecord(t *testing.T) {
	if _, _, err := SelectRecord([]string{"v=spf1 -all"}); !errors.Is(err, ErrNoRecord) {
		t.Errorf("no STS record: err = %v, want ErrNoRecord", err)
	}
	if _, _, err := SelectRecord(nil); !errors.Is(err, ErrNoRecord) {
		t.Errorf("nothing: err = %v, want ErrNoRecord", err)
	}
	if _, _, err := SelectRecord([]string{"v=STSv1; id=1", "v=STSv1; id=2"}); !errors.Is(err, ErrDuplicateRecord) {
		t.Errorf("two records: err = %v, want ErrDuplicateRecord", err)
	}
	txt, r, err := SelectRecord([]string{"other", "v=STSv1; id=7"})
	if err != nil || txt != "v=STSv1; id=7" || r.ID != "7" {
		t.Errorf("SelectRecord = %q, %+v, %v", txt, r, err)
	}
	if _, _, err := SelectRecord([]string{"v=STSv1"}); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("record without id: err = %v, want ErrInvalidRecord", err)
	}
}

func TestParsePolicy(t *testing.T) {
	good := "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\nmax_age: 604800\r\n"
	p, err := ParsePolicy(good)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != ModeEnforce || p.MaxAge != 604800*time.Second || !slices.Equal(p.MX, []string{"mail.example.com", "*.example.net"}) {
		t.Fatalf("ParsePolicy(good) = %+v", p)
	}
	tests := []struct {
		name, in, want string // want: a substring of the error, "" for success
	}{
		{"LF only", "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 1\n", ""},
		{"none without mx", "version: STSv1\nmode: none\nmax_age: 0", ""},
		{"unknown field kept", "version: STSv1\nmode: none\nmax_age: 0\nfoo: bar baz", ""},
		{"repeated mode keeps first", "version: STSv1\nmode: testing\nmode: bogus\nmx: a.example\nmax_age: 1", ""},
		{"max at limit", "version: STSv1\nmode: none\nmax_age: 31557600", ""},
		{"max_age over", "version: STSv1\nmode: none\nmax_age: 31557601", "out of range"},
		{"max_age 11 digits", "version: STSv1\nmode: none\nmax_age: 10000000000", "1 to 10 digits"},
		{"max_age negative", "version: STSv1\nmode: none\nmax_age: -1", "1 to 10 digits"},
		{"no version", "mode: none\nmax_age: 1", "no version"},
		{"wrong version", "version: STSv2\nmode: none\nmax_age: 1", "version must be"},
		{"bad mode", "version: STSv1\nmode: strict\nmax_age: 1", "mode must be"},
		{"no max_age", "version: STSv1\nmode: none", "no max_age"},
		{"enforce without mx", "version: STSv1\nmode: enforce\nmax_age: 1", "at least one mx"},
		{"bad mx", "version: STSv1\nmode: enforce\nmx: a b\nmax_age: 1", "mx"},
		{"double wildcard", "version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1", "mx"},
		{"no colon", "version: STSv1\ngarbage", "no ':'"},
		{"html", "<html><body>hello</body></html>", "no ':'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy(tc.in)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ParsePolicy(%q) = %v, want success", tc.in, err)
			case tc.want != "" && (err == nil || !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("ParsePolicy(%q) = %v, want ErrInvalidPolicy with %q", tc.in, err, tc.want)
			}
		})
	}
	if _, err := ParsePolicy(strings.Repeat("x", MaxPolicySize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized policy: err = %v, want ErrTooLarge", err)
	}
}

func TestMatch(t *testing.T) {
	p := &Policy{Mode: ModeEnforce, MX: []string{"mail.example.com", "*.example.net"}}
	tests := []struct {
		mx   string
		want bool
	}{
		{"mail.example.com", true},
		{"MAIL.Example.COM.", true},
		{"other.example.com", false},
		{"a.example.net", true},
		{"example.net", false},
		{"a.b.example.net", false},
		{".example.net", false},
		{"xexample.net", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := p.Match(tc.mx); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.mx, got, tc.want)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{"v=STSv1; id=20160831085700Z;", "v=STSv1;id=a;b=c", "v=STSv1", "", ";;;", "v=STSv1; id=1; id=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecord(s)
		if err == nil && (r.ID == "" || len(r.ID) > 32 || !strings.HasPrefix(s, "v=STSv1")) {
			t.Fatalf("ParseRecord(%q) accepted %+v", s, r)
		}
		if err != nil && !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("ParseRecord(%q): error %v does not wrap ErrInvalidRecord", s, err)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
		"version: STSv1\nmode: none\nmax_age: 0",
		"version: STSv1\nmode: testing\nmx: *.\nmax_age: 31557601",
		"\n\n:\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			return
		}
		if p.MaxAge < 0 || p.MaxAge > MaxMaxAge || (p.Mode != ModeNone && len(p.MX) == 0) {
			t.Fatalf("ParsePolicy(%q) accepted %+v", s, p)
		}
		for _, m := range p.MX {
			host := strings.TrimPrefix(m, "*.")
			if strings.HasPrefix(m, "*.") {
				host = "x." + host
			}
			if !p.Match(host) {
				t.Fatalf("policy %+v does not match %q built from its own pattern", p, host)
			}
		}
	})
}
