package smtp

import (
	"slices"
	"strconv"
	"strings"
)

// extensions is a server's answer to EHLO or LHLO (RFC 5321 §4.1.1.1):
//
//	ehlo-ok-rsp = "250" SP Domain [ SP ehlo-greet ] CRLF
//	            / "250-" Domain [ SP ehlo-greet ] CRLF
//	              *( "250-" ehlo-line CRLF ) "250" SP ehlo-line CRLF
//
// The first line is always the domain, even when it looks like a keyword
// (a "250-STARTTLS" first line advertises nothing; Cisco ESA doc 212587).
type extensions struct {
	domain string
	// list holds one entry per valid keyword line, the keyword upper-cased
	// and its parameters as sent ("SIZE 10240000", "AUTH PLAIN LOGIN").
	list []string
	// params maps an upper-case keyword to its parameters.
	params map[string]string
	// auth holds the SASL mechanisms of "AUTH x y" and of the pre-standard
	// "AUTH=x y" form, upper case, without duplicates.
	auth []string
}

// parseEHLO parses the text lines of a 250 reply to EHLO/LHLO. Lines whose
// keyword is not an ehlo-keyword (ALPHA / DIGIT followed by ALPHA / DIGIT /
// "-") or that carry control bytes are ignored.
func parseEHLO(lines []string) *extensions {
	x := &extensions{params: map[string]string{}}
	if len(lines) == 0 {
		return x
	}
	x.domain = lines[0]
	for _, l := range lines[1:] {
		if hasControl(l) {
			continue
		}
		kw, args, _ := strings.Cut(strings.TrimSpace(l), " ")
		kw = strings.ToUpper(kw)
		args = strings.Join(strings.Fields(args), " ")
		if rest, ok := strings.CutPrefix(kw, "AUTH="); ok {
			// Old form, still sent for Outlook: "AUTH=LOGIN PLAIN".
			x.addAuth(rest)
			x.addAuth(args)
			x.list = append(x.list, strings.TrimSpace(kw+" "+args))
			continue
		}
		if !isKeyword(kw) {
			continue
		}
		if _, dup := x.params[kw]; !dup {
			x.params[kw] = args
		}
		if kw == "AUTH" {
			x.addAuth(args)
		}
		x.list = append(x.list, strings.TrimSpace(kw+" "+args))
	}
	return x
}

func (x *extensions) addAuth(s string) {
	for _, m := range strings.Fields(s) {
		m = strings.ToUpper(m)
		if isMechanism(m) && !slices.Contains(x.auth, m) {
			x.auth = append(x.auth, m)
		}
	}
}

// has reports whether the keyword (upper case) was announced.
func (x *extensions) has(kw string) bool {
	if x == nil {
		return false
	}
	_, ok := x.params[kw]
	return ok
}

// size returns the SIZE limit (RFC 1870), 0 when absent or unlimited.
func (x *extensions) size() int64 {
	if x == nil {
		return 0
	}
	n, err := strconv.ParseInt(x.params["SIZE"], 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// isKeyword reports whether s is an ehlo-keyword (RFC 5321 §4.1.1.1).
func isKeyword(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-') {
			return false
		}
	}
	return true
}

// isMechanism reports whether s is a SASL mechanism name (RFC 4422 §3.1:
// 1–20 of upper-case letters, digits, "-" and "_").
func isMechanism(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
