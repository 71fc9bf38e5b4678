package sieve

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/starttls/starttls"
)

// Wire limits.
const (
	// MaxScriptSize bounds a script, and any literal, read by the client
	// or the server (1 MiB).
	MaxScriptSize = 1 << 20
	// maxQuoted is the longest quoted string (RFC 5804 §4: 1024 octets).
	maxQuoted = 1024
	// maxTokens bounds the tokens of one logical line.
	maxTokens = 64
	// maxLiterals bounds the literals of one logical line.
	maxLiterals = 4
)

// tokKind is the kind of a token on the wire.
type tokKind int

const (
	tokAtom   tokKind = iota // OK, NO, BYE, ACTIVE, a command name, a number
	tokString                // a quoted string or a literal
	tokOpen                  // "("
	tokClose                 // ")"
)

// token is one item of a logical line (RFC 5804 §4).
type token struct {
	kind    tokKind
	s       string
	literal bool // the string came as a literal
}

// wireReader is what readTokens needs: *textline.Conn, or a fake in tests.
type wireReader interface {
	ReadLine() (string, error)
	ReadFull(n int) ([]byte, error)
}

// literalRule says which literals a side accepts.
type literalRule int

const (
	// anyLiteral accepts "{n}" and "{n+}" (the client reading the server:
	// RFC 5804 §4 literal-s2c is "{n}", some servers send "{n+}").
	anyLiteral literalRule = iota
	// nonSyncOnly accepts only "{n+}" (the server reading a client:
	// literal-c2s, RFC 5804 §4); a "{n}" would wait for a continuation
	// that ManageSieve does not have.
	nonSyncOnly
)

// errSyncLiteral is returned for a "{n}" literal from a client.
var errSyncLiteral = starttls.ProtocolError("sieve", "synchronizing literal {n} from the client; only {n+} exists in ManageSieve")

// readTokens reads one logical line: a physical line, and when it ends in a
// literal, the literal's octets and the rest of the line after them.
// Literals are bounded by maxLiteral octets, the line by maxTokens tokens.
func readTokens(r wireReader, maxLiteral int, rule literalRule) ([]token, error) {
	line, err := r.ReadLine()
	if err != nil {
		return nil, err
	}
	var toks []token
	literals := 0
	i := 0
	for {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) {
			return toks, nil
		}
		if len(toks) >= maxTokens {
			return nil, starttls.ProtocolError("sieve", "more than %d tokens on one line", maxTokens)
		}
		switch c := line[i]; c {
		case '"':
			s, n, err := unquote(line[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokString, s: s})
			i += n
		case '(':
			toks = append(toks, token{kind: tokOpen, s: "("})
			i++
		case ')':
			toks = append(toks, token{kind: tokClose, s: ")"})
			i++
		case '{':
			n, sync, err := parseLiteralHead(line[i:])
			if err != nil {
				return nil, err
			}
			if sync && rule == nonSyncOnly {
				return nil, errSyncLiteral
			}
			if n > maxLiteral {
				return nil, starttls.ProtocolError("sieve", "literal of %d octets exceeds the limit of %d", n, maxLiteral)
			}
			if literals++; literals > maxLiterals {
				return nil, starttls.ProtocolError("sieve", "more than %d literals on one line", maxLiterals)
			}
			b, err := r.ReadFull(n)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokString, s: string(b), literal: true})
			if line, err = r.ReadLine(); err != nil {
				return nil, err
			}
			i = 0
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '(' && line[j] != ')' && line[j] != '"' && line[j] != '{' {
				if line[j] < 0x20 || line[j] == 0x7f {
					return nil, starttls.ProtocolError("sieve", "control character in %q", starttls.Escape(clip(line, 80)))
				}
				j++
			}
			toks = append(toks, token{kind: tokAtom, s: line[i:j]})
			i = j
		}
	}
}

// unquote parses a quoted string at the start of s (RFC 5804 §4: "\" escapes
// only "\" and DQUOTE) and returns it and the number of bytes used.
func unquote(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return "", 0, starttls.ProtocolError("sieve", "bad escape in quoted string %q", starttls.Escape(clip(s, 80)))
			}
			i++
			b.WriteByte(s[i])
		default:
			if c == '\r' || c == '\n' || c == 0 {
				return "", 0, starttls.ProtocolError("sieve", "CR, LF or NUL in quoted string")
			}
			b.WriteByte(c)
		}
		if b.Len() > maxQuoted {
			return "", 0, starttls.ProtocolError("sieve", "quoted string longer than %d octets", maxQuoted)
		}
	}
	return "", 0, starttls.ProtocolError("sieve", "unterminated quoted string %q", starttls.Escape(clip(s, 80)))
}

// parseLiteralHead parses "{n}" or "{n+}", which must end the line.
func parseLiteralHead(s string) (n int, sync bool, err error) {
	bad := func() (int, bool, error) {
		return 0, false, starttls.ProtocolError("sieve", "malformed literal %q", starttls.Escape(clip(s, 40)))
	}
	if !strings.HasSuffix(s, "}") || len(s) < 3 {
		return bad()
	}
	body := s[1 : len(s)-1]
	sync = true
	if strings.HasSuffix(body, "+") {
		body, sync = body[:len(body)-1], false
	}
	if body == "" || len(body) > 10 {
		return bad()
	}
	for i := 0; i < len(body); i++ {
		if body[i] < '0' || body[i] > '9' {
			return bad()
		}
	}
	n, err = strconv.Atoi(body)
	if err != nil {
		return bad()
	}
	return n, sync, nil
}

// quote renders s as a quoted string, or fails when s cannot be one
// (CR, LF, NUL, or longer than 1024 octets).
// The escapers are built once: a Replacer builds a table on first use,
// which dominated the allocations of a whole session when made per call.
var (
	quoteEscaper     = strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	mustQuoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", " ", "\n", " ", "\x00", " ")
)

func quote(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n\x00") || len(s) > maxQuoted {
		return "", errorf("string %q cannot be sent quoted", clip(s, 40))
	}
	return `"` + quoteEscaper.Replace(s) + `"`, nil
}

// mustQuote quotes strings the server itself produces (never CR, LF, NUL).
func mustQuote(s string) string {
	return `"` + mustQuoteEscaper.Replace(s) + `"`
}

// response is a parsed OK, NO or BYE line (RFC 5804 §4).
type response struct {
	Kind     string // "OK", "NO", "BYE"
	Code     string // response code, upper case, without parentheses
	CodeArgs []string
	Text     string
}

// isResponse reports whether toks start with OK, NO or BYE.
func isResponse(toks []token) bool {
	if len(toks) == 0 || toks[0].kind != tokAtom {
		return false
	}
	switch strings.ToUpper(toks[0].s) {
	case "OK", "NO", "BYE":
		return true
	}
	return false
}

// parseResponse parses OK/NO/BYE [SP "(" code [SP string…] ")"] [SP string].
func parseResponse(toks []token) (response, error) {
	if !isResponse(toks) {
		return response{}, starttls.ProtocolError("sieve", "expected OK, NO or BYE, got %s", describe(toks))
	}
	r := response{Kind: strings.ToUpper(toks[0].s)}
	rest := toks[1:]
	if len(rest) > 0 && rest[0].kind == tokOpen {
		end := -1
		for i, t := range rest {
			if t.kind == tokClose {
				end = i
				break
			}
		}
		if end < 2 || rest[1].kind != tokAtom {
			return response{}, starttls.ProtocolError("sieve", "malformed response code in %s", describe(toks))
		}
		r.Code = strings.ToUpper(rest[1].s)
		for _, t := range rest[2:end] {
			r.CodeArgs = append(r.CodeArgs, t.s)
		}
		rest = rest[end+1:]
	}
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && rest[0].kind == tokString:
		r.Text = rest[0].s
	default:
		return response{}, starttls.ProtocolError("sieve", "malformed response %s", describe(toks))
	}
	return r, nil
}

// err returns the *Error for NO and BYE, nil for OK.
func (r response) err() error {
	if r.Kind == "OK" {
		return nil
	}
	return &Error{Kind: r.Kind, Code: r.Code, Text: r.Text}
}

// String renders the response for messages and the Result.
func (r response) String() string {
	s := r.Kind
	if r.Code != "" {
		s += " (" + r.Code + ")"
	}
	if r.Text != "" {
		s += " " + strconv.Quote(r.Text)
	}
	return s
}

// parseCapLine turns a capability line `"NAME" ["value"]` into "NAME value"
// (name upper case; "NAME" alone when the value is absent or empty).
func parseCapLine(toks []token) (string, error) {
	if len(toks) == 0 || len(toks) > 2 || toks[0].kind != tokString || (len(toks) == 2 && toks[1].kind != tokString) {
		return "", starttls.ProtocolError("sieve", "malformed capability line %s", describe(toks))
	}
	name := strings.ToUpper(strings.TrimSpace(toks[0].s))
	if name == "" || strings.ContainsAny(name, " \t") {
		return "", starttls.ProtocolError("sieve", "malformed capability name %q", starttls.Escape(clip(toks[0].s, 40)))
	}
	if len(toks) == 2 {
		if v := strings.Join(strings.Fields(toks[1].s), " "); v != "" {
			return name + " " + v, nil
		}
	}
	return name, nil
}

// render renders a logical line as received, in its wire form (a literal
// shown as a quoted string), for the Result.
func render(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t.kind != tokClose && toks[i-1].kind != tokOpen {
			b.WriteByte(' ')
		}
		if t.kind == tokString {
			b.WriteString(mustQuote(t.s))
		} else {
			b.WriteString(t.s)
		}
	}
	return b.String()
}

// describe renders tokens for error messages, clipped.
func describe(toks []token) string {
	var parts []string
	for _, t := range toks {
		switch t.kind {
		case tokString:
			parts = append(parts, strconv.Quote(clip(t.s, 40)))
		default:
			parts = append(parts, starttls.Escape(clip(t.s, 40)))
		}
		if len(parts) >= 6 {
			parts = append(parts, "…")
			break
		}
	}
	return strings.Join(parts, " ")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("sieve: "+format, args...)
}
