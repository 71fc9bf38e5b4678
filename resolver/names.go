package resolver

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// maxName is the longest name in text form without the trailing dot
// (RFC 1035 §2.3.4: 255 octets on the wire).
const maxName = 253

// normalize checks a host or record name and returns it fully qualified, in
// lower case, with internationalised labels in A-label form (RFC 5891).
// Labels hold letters, digits, '-' and '_' (for _25._tcp and _mta-sts): a
// name with other characters cannot be a host or a mail-policy record name, and
// refusing it keeps escapes and wildcards out of the queries.
func normalize(name string) (string, error) {
	s := strings.TrimSuffix(name, ".")
	if s == "" {
		return "", errors.New("empty name")
	}
	if !isASCII(s) {
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("name %q is not valid UTF-8", name)
		}
		a, err := idna.Lookup.ToASCII(s)
		if err != nil {
			return "", fmt.Errorf("name %q: %w", name, err)
		}
		s = a
	}
	s = strings.ToLower(s)
	if len(s) > maxName {
		return "", fmt.Errorf("name %.40q… is longer than %d characters", s, maxName)
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" {
			return "", fmt.Errorf("name %q has an empty label", name)
		}
		if len(label) > 63 {
			return "", fmt.Errorf("name %q has a label longer than 63 characters", name)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isLDH(c) && c != '_' {
				return "", fmt.Errorf("name %q has an invalid character %q", name, c)
			}
		}
	}
	return s + ".", nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isLDH(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
}

// joinTXT turns the character-strings of one TXT record, as miekg/dns
// presents them (with \DDD for unprintable bytes and \" \\ escaped), back into
// the record's bytes, joined without separator (RFC 7208 §3.3, RFC 8461
// §3.1).
func joinTXT(parts []string) string {
	var b strings.Builder
	for _, p := range parts {
		unescape(&b, p)
	}
	return b.String()
}

func unescape(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); v <= 255 {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
