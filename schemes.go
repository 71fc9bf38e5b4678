package starttls

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// Scheme is one row of the protocol table: a URL scheme, the protocol that
// speaks it, its default port and whether TLS starts with the first byte.
type Scheme struct {
	Name     string // URL scheme, e.g. "submission"
	Protocol string // protocol package, e.g. "smtp"
	Port     int    // default port
	Implicit bool   // TLS from the first byte (RFC 8314)
	// Binary marks protocols whose messages are not text lines (LDAP's
	// BER, PostgreSQL's and MySQL's packets): `connect` relays them raw.
	Binary bool
}

// schemes is the one table of protocols. Ports follow IANA and the seeds'
// port table; implicit-TLS ports are RFC 8314 §3 (465, 993, 995), XEP-0368
// (5223), RFC 4513 §3 (636), RFC 4642 (563), RFC 4217 (990), IRCv3 (6697).
var schemes = []Scheme{
	{"smtp", "smtp", 25, false, false},
	{"submission", "smtp", 587, false, false},
	{"smtps", "smtp", 465, true, false},
	{"lmtp", "lmtp", 24, false, false},
	{"imap", "imap", 143, false, false},
	{"imaps", "imap", 993, true, false},
	{"pop3", "pop3", 110, false, false},
	{"pop3s", "pop3", 995, true, false},
	{"xmpp", "xmpp", 5222, false, false},
	{"xmpps", "xmpp", 5223, true, false},
	{"xmpp-server", "xmpp-server", 5269, false, false},
	{"ldap", "ldap", 389, false, true},
	{"ldaps", "ldap", 636, true, true},
	{"nntp", "nntp", 119, false, false},
	{"nntps", "nntp", 563, true, false},
	{"ftp", "ftp", 21, false, false},
	{"ftps", "ftp", 990, true, false},
	{"irc", "irc", 6667, false, false},
	{"ircs", "irc", 6697, true, false},
	{"sieve", "sieve", 4190, false, false},
	{"postgres", "postgres", 5432, false, true},
	{"mysql", "mysql", 3306, false, true},
	{"http-upgrade", "http", 80, false, false},
	{"https", "http", 443, true, false},
	{"telnet", "telnet", 23, false, false},
	{"telnets", "telnet", 992, true, false},
}

// Schemes returns a copy of the protocol table.
func Schemes() []Scheme { return append([]Scheme(nil), schemes...) }

// LookupScheme returns the table row for a URL scheme (case-insensitive).
func LookupScheme(name string) (Scheme, bool) {
	for _, s := range schemes {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return Scheme{}, false
}

// implicitPorts are the well-known ports on which TLS starts with the first
// byte, for every protocol the project knows (the seeds' port table).
var implicitPorts = map[int]bool{
	465: true, 993: true, 995: true, 563: true, 636: true,
	990: true, 443: true, 5223: true, 6697: true, 992: true,
}

// ImplicitPort reports whether port is a well-known implicit-TLS port.
func ImplicitPort(port int) bool { return implicitPorts[port] }

// Target is a parsed URL such as "smtp://mx.example.org:25?mode=required".
type Target struct {
	Scheme Scheme
	Host   string // host name or IP address, without brackets
	Port   int
	// Mode is the mode from ?mode= or the scheme's default: ModeImplicit for
	// implicit schemes, ModeAuto otherwise.
	Mode Mode
}

// Addr returns host:port, suitable for net.Dial.
func (t *Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// String returns the target as a URL.
func (t *Target) String() string {
	s := t.Scheme.Name + "://" + t.Addr()
	if t.Mode != ModeAuto && !(t.Mode == ModeImplicit && t.Scheme.Implicit) {
		s += "?mode=" + t.Mode.String()
	}
	return s
}

// EffectiveMode is the mode the client will use: ModeAuto resolved for the
// target's port, where an implicit scheme always means ModeImplicit.
func (t *Target) EffectiveMode() Mode {
	if t.Mode == ModeAuto && t.Scheme.Implicit {
		return ModeImplicit
	}
	return t.Mode.Resolve(t.Port)
}

// ParseTarget parses a target URL: scheme://host[:port][?mode=MODE]. The
// scheme must be in the protocol table; the port defaults to the scheme's.
func ParseTarget(raw string) (*Target, error) {
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("starttls: %q is not a URL (want scheme://host[:port], e.g. smtp://mx.example.org)", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("starttls: bad URL %q: %v", raw, err)
	}
	sc, ok := LookupScheme(u.Scheme)
	if !ok {
		names := make([]string, len(schemes))
		for i, s := range schemes {
			names[i] = s.Name
		}
		return nil, fmt.Errorf("starttls: unknown scheme %q (known: %s)", u.Scheme, strings.Join(names, ", "))
	}
	if u.User != nil {
		return nil, fmt.Errorf("starttls: %q: credentials in URLs are not accepted", u.Redacted())
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	if host == "" {
		return nil, fmt.Errorf("starttls: %q has no host", raw)
	}
	if net.ParseIP(host) == nil {
		// One spelling per name: bücher.example, BÜCHER.example. and
		// xn--bcher-kva.example are the same target (UTS #46 lookup).
		a, err := idna.Lookup.ToASCII(host)
		if err != nil {
			return nil, fmt.Errorf("starttls: %q: invalid host %q: %v", raw, host, err)
		}
		host = a
	}
	if !validHost(host) {
		return nil, fmt.Errorf("starttls: %q: invalid host %q", raw, host)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("starttls: %q: unexpected path %q", raw, u.Path)
	}
	t := &Target{Scheme: sc, Host: host, Port: sc.Port}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("starttls: %q: invalid port %q", raw, p)
		}
		t.Port = n
	}
	if sc.Implicit {
		t.Mode = ModeImplicit
	}
	q := u.Query()
	for k := range q {
		if k != "mode" {
			return nil, fmt.Errorf("starttls: %q: unknown parameter %q (only mode= is known)", raw, k)
		}
	}
	if m := q.Get("mode"); m != "" {
		mode, err := ParseMode(m)
		if err != nil {
			return nil, err
		}
		if sc.Implicit && mode != ModeImplicit && mode != ModeAuto {
			return nil, fmt.Errorf("starttls: %q: scheme %s is implicit TLS; mode %s makes no sense (use %s://)", raw, sc.Name, mode, strings.TrimSuffix(sc.Name, "s"))
		}
		t.Mode = mode
	}
	return t, nil
}

// validHost accepts an IP address or a DNS name of letters, digits, '-',
// '_' and '.', at most 253 characters.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}
