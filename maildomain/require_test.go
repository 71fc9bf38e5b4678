package maildomain

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/starttls/starttls/mtasts"
)

func TestRequire(t *testing.T) {
	dane := MX{Host: "dane.example.org", Security: DANE, TLSAName: "_25._tcp.dane.example.org"}
	unusable := MX{Host: "unusable.example.org", Security: DANEUnauthenticated, TLSAName: "_25._tcp.unusable.example.org"}
	sts := MX{Host: "sts.example.org", Security: WebPKI}
	plain := MX{Host: "plain.example.org", Security: Opportunistic}
	cases := []struct {
		name     string
		p        Policy
		r        Requirement
		keep     []string // MX hosts left
		excluded []string // hosts added to Excluded
		err      string   // "" for none
	}{
		{"policy keeps all", Policy{MX: []MX{dane, plain}}, RequirePolicy, []string{"dane.example.org", "plain.example.org"}, nil, ""},
		{"policy null MX", Policy{NullMX: true}, RequirePolicy, nil, nil, "null MX"},
		{"policy none left", Policy{Excluded: []Excluded{{"bogus.example.org", "bogus DNSSEC"}}}, RequirePolicy, nil, nil, "no usable MX host (bogus.example.org: bogus DNSSEC)"},
		{"policy nothing", Policy{}, RequirePolicy, nil, nil, "no usable MX host"},
		{"mta-sts without policy", Policy{MX: []MX{plain}}, RequireMTASTS, []string{"plain.example.org"}, nil, "no MTA-STS policy"},
		{"mta-sts with policy", Policy{MX: []MX{dane, sts}, MTASTS: &mtasts.Entry{}}, RequireMTASTS, []string{"dane.example.org", "sts.example.org"}, nil, ""},
		{"dane keeps dane", Policy{MX: []MX{plain, dane, unusable, sts}}, RequireDANE, []string{"dane.example.org"}, []string{"plain.example.org", "unusable.example.org", "sts.example.org"}, ""},
		{"dane none", Policy{MX: []MX{unusable, plain}}, RequireDANE, nil, []string{"unusable.example.org", "plain.example.org"}, "no MX host can be authenticated with DANE"},
		{"unknown", Policy{MX: []MX{plain}}, Requirement(9), []string{"plain.example.org"}, nil, "unknown requirement"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.p
			before := len(p.Excluded)
			err := p.Require(c.r)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("error %v, want %q", err, c.err)
			case c.err != "" && c.r <= RequireDANE && !errors.Is(err, ErrNoMX):
				t.Errorf("error %v does not wrap ErrNoMX", err)
			}
			var keep, excluded []string
			for _, mx := range p.MX {
				keep = append(keep, mx.Host)
			}
			for _, x := range p.Excluded[before:] {
				if x.Reason == "" {
					t.Errorf("%s excluded without a reason", x.Host)
				}
				excluded = append(excluded, x.Host)
			}
			if !slices.Equal(keep, c.keep) || !slices.Equal(excluded, c.excluded) {
				t.Errorf("kept %v excluded %v, want %v and %v", keep, excluded, c.keep, c.excluded)
			}
		})
	}
}

func TestParseRequirement(t *testing.T) {
	for _, r := range []Requirement{RequirePolicy, RequireMTASTS, RequireDANE} {
		got, err := ParseRequirement(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRequirement(%q) = %v, %v", r.String(), got, err)
		}
	}
	for _, s := range []string{"", "DANE", "enforce", "mta_sts"} {
		if _, err := ParseRequirement(s); err == nil {
			t.Errorf("ParseRequirement(%q): no error", s)
		}
	}
}
