package maildomain

import (
	"net/netip"
	"strings"
)

// ValidDomain reports whether s can name a mail domain such as example.org:
// a DNS name in ASCII (A-label) form of at least two labels, each of
// letters, digits, inner hyphens and underscores, at most 253 characters, a
// trailing dot allowed; not an IP address. Case is ignored. It is the one
// check of the domain of `starttls connect smtp://DOMAIN`, `starttls check
// DOMAIN` (check.RunDomain) and the proxy's upstream_domain.
func ValidDomain(s string) bool {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
