// Package httpupgrade implements both sides of HTTP/1.1 secured with TLS:
// the in-band upgrade of RFC 2817 ("Upgrading to TLS Within HTTP/1.1") on
// the http-upgrade scheme, and plain HTTPS (RFC 2818, RFC 8314 style
// implicit TLS) on the https scheme. The server is a tiny site for the lab.
//
// Implemented:
//
//   - RFC 2817 §3.2, the mandatory upgrade: the client sends
//     "OPTIONS * HTTP/1.1" with "Upgrade: TLS/1.0" and "Connection: Upgrade";
//     §3.3, "101 Switching Protocols" then the TLS handshake, after which
//     the server answers the original request over TLS; §4.2, "426 Upgrade
//     Required" with "Upgrade: TLS/1.0" for a request that did not ask for
//     the upgrade (Result.UpgradeRequired when the client sees it).
//   - RFC 9112 (HTTP/1.1 messaging): the status line (§4), header fields
//     (§5) without obsolete line folding (§5.2: refused), Content-Length
//     bodies (§6.3), persistent connections (§9.3), "Connection: close".
//   - RFC 9110 §11, HTTP Basic authentication (RFC 7617) for Login and the
//     server's protected page; §15.6.4, 503 with Retry-After for a
//     temporary refusal of the upgrade.
//   - RFC 7301 ALPN "http/1.1" on every client handshake unless the
//     caller's tls.Config names protocols itself.
//
// # Client
//
// Upgrade and Dial send one request, the mandatory upgrade (RFC 2817
// §3.2): OPTIONS * with the upgrade headers, Host naming
// ClientOptions.ServerName (with the port unless it is the scheme's
// default). Its status line is Result.Greeting and its Server, Upgrade and
// Allow headers are Result.CapsBefore. "101" with "Upgrade: TLS/1.0" is the
// go-ahead: any byte received after the header block is response injection
// (ErrPlaintextAfterUpgrade); then the handshake, the answer to the OPTIONS
// request over TLS (§3.3), and "HEAD / HTTP/1.1", whose headers become
// Result.CapsAfter. A 503 is a temporary refusal (ErrUpgradeRefused,
// starttls.IsTemporary); any other status (200, 400, 405, 501, …) means the
// upgrade is not offered. Only one request is made before TLS, so a
// server's 426 "Upgrade Required" is seen only by a ModePlain client (or
// a later request): that is when Result.UpgradeRequired is set.
// WWW-Authenticate schemes fill AuthBefore and AuthAfter. Status lines and
// header lines are bounded by ClientOptions.LineLimit and the header count
// by ClientOptions.LinesLimit; bodies of answers the client reads are
// discarded up to MaxBody.
//
// The injection probe (ClientOptions.ProbeInjection) writes the upgrade
// request and "HEAD / HTTP/1.1" in one segment: a server that answers the
// HEAD inside TLS, after its answer to the OPTIONS request, executed
// plaintext inside TLS (CVE-2011-0411 class).
//
// # Server
//
// Server answers OPTIONS, GET and HEAD. A request with "Upgrade: TLS/1.0"
// and "Connection: Upgrade" gets "101 Switching Protocols" and the
// handshake, then the answer to that request over TLS; RefuseUpgrade
// answers 503 with Retry-After instead; over TLS the header is ignored (no
// second upgrade). Before TLS, when the upgrade is offered and
// AllowPlaintextLogin is not set, every GET and HEAD is answered "426
// Upgrade Required" (RFC 2817 §4.2); without TLSConfig the site is served
// in plaintext and /private is refused (403). After TLS "/" is a short page and
// "/private" needs Basic authentication checked by the Backend; Basic
// credentials are refused before TLS unless AllowPlaintextLogin. Request
// lines must end in CRLF, a request has at most MaxHeaders header lines,
// a body at most MaxBody bytes (Transfer-Encoding is refused with 501), and
// a connection at most MaxRequests requests. Bytes pipelined after an
// upgrade request are discarded and the connection closed after the 101
// (the client's handshake then fails); InsecureKeepPipelined instead serves
// them inside TLS, to reproduce CVE-2011-0411 in the lab. The 101 is sent
// only after the whole request, body included, was read (SV-26).
package httpupgrade

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls"
)

const (
	// MaxHeaders bounds the header lines of a request the server reads.
	MaxHeaders = 100
	// MaxBody bounds a request body the server reads, and a response body
	// the client discards to stay in step.
	MaxBody = 64 << 10
	// MaxRequests bounds the requests on one server connection.
	MaxRequests = 100
	// closeTimeout bounds the close_notify of Client.Close.
	closeTimeout = 2 * time.Second
	// upgradeToken is the protocol token of RFC 2817 §3.2.
	upgradeToken = "TLS/1.0"
)

// Error is an HTTP answer other than the one expected: a status line the
// dialog did not want, kept with its code.
type Error struct {
	Code   int
	Status string // the whole status line
}

func (e *Error) Error() string { return "http: server answered " + strconv.Quote(e.Status) }

// Temporary reports whether the status says to try again later: 503
// Service Unavailable (RFC 9110 §15.6.4) or 429 Too Many Requests.
func (e *Error) Temporary() bool { return e.Code == 503 || e.Code == 429 }

func errorf(format string, args ...any) error {
	return fmt.Errorf("http: "+format, args...)
}

// header is one header field, the name in canonical form.
type header struct{ name, value string }

// headers is a parsed header block.
type headers []header

// get returns the values of name joined with ", " (RFC 9110 §5.3).
func (h headers) get(name string) string {
	var vs []string
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			vs = append(vs, f.value)
		}
	}
	return strings.Join(vs, ", ")
}

func (h headers) has(name string) bool {
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			return true
		}
	}
	return false
}

// hasToken reports whether the comma-separated header name lists token,
// ignoring case (RFC 9110 §5.6.1).
func (h headers) hasToken(name, token string) bool {
	for _, v := range strings.Split(h.get(name), ",") {
		v = strings.TrimSpace(v)
		if strings.EqualFold(v, token) {
			return true
		}
	}
	return false
}

// offersTLS reports whether an Upgrade header names TLS/1.0 (or a later
// TLS/x token, which RFC 2817 §3.1 allows).
func (h headers) offersTLS() bool {
	for _, v := range strings.Split(h.get("Upgrade"), ",") {
		v = strings.ToUpper(strings.TrimSpace(v))
		if v == "TLS" || strings.HasPrefix(v, "TLS/") {
			return true
		}
	}
	return false
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// canonical returns the canonical form of a header name (Content-Length).
func canonical(s string) string {
	b := []byte(strings.ToLower(s))
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '-'
	}
	return string(b)
}

// parseHeaderLine parses "Name: value" (RFC 9112 §5): no whitespace before
// the colon, none at the start of the line (obsolete folding, §5.2).
func parseHeaderLine(proto, line string) (header, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return header{}, starttls.ProtocolError(proto, "obsolete header line folding: %q", starttls.Escape(line))
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok || !isToken(name) {
		return header{}, starttls.ProtocolError(proto, "malformed header line %q", starttls.Escape(line))
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return header{}, starttls.ProtocolError(proto, "control character in header %s", name)
		}
	}
	return header{canonical(name), value}, nil
}

// status is a parsed status line (RFC 9112 §4).
type status struct {
	line   string
	code   int
	reason string
}

func (s status) err() error { return &Error{Code: s.code, Status: s.line} }

// parseStatus parses "HTTP/1.x NNN reason".
func parseStatus(line string) (status, error) {
	ver, rest, ok := strings.Cut(line, " ")
	if !ok || (ver != "HTTP/1.1" && ver != "HTTP/1.0") {
		return status{}, starttls.ProtocolError("http", "not an HTTP/1.x status line: %q", starttls.Escape(line))
	}
	codeStr, reason, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil || len(codeStr) != 3 || code < 100 || code > 599 {
		return status{}, starttls.ProtocolError("http", "bad status code in %q", starttls.Escape(line))
	}
	return status{line: line, code: code, reason: reason}, nil
}

// authSchemes returns the schemes of WWW-Authenticate challenges, upper
// case ("BASIC"). Parameters (realm="…", which may hold commas) are skipped
// by taking only tokens that are followed by a space or end a list item and
// contain no '='.
func authSchemes(h headers) []string {
	var out []string
	for _, f := range h {
		if f.name != "Www-Authenticate" {
			continue
		}
		for _, item := range splitChallenges(f.value) {
			s := strings.ToUpper(item)
			if isToken(s) && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// splitChallenges returns the scheme of each challenge in a
// WWW-Authenticate value (RFC 9110 §11.6.1): a token followed by a space or
// a comma, outside quoted strings, that is not a parameter name.
func splitChallenges(v string) []string {
	var out []string
	inQuote, esc := false, false
	start := 0
	var items []string
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case esc:
			esc = false
		case inQuote && c == '\\':
			esc = true
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			items = append(items, v[start:i])
			start = i + 1
		}
	}
	items = append(items, v[start:])
	for _, it := range items {
		it = strings.TrimSpace(it)
		first, _, _ := strings.Cut(it, " ")
		if first == "" || strings.Contains(first, "=") {
			continue
		}
		out = append(out, first)
	}
	return out
}

// capHeaders are the header fields recorded as capabilities.
var capHeaders = []string{"Server", "Upgrade", "Allow", "Alt-Svc", "Strict-Transport-Security"}

// caps returns the capability strings of a header block: "Name: value"
// for the fields in capHeaders.
func caps(h headers) []string {
	var out []string
	for _, f := range h {
		for _, n := range capHeaders {
			if f.name == n {
				out = append(out, f.name+": "+f.value)
			}
		}
	}
	return out
}
