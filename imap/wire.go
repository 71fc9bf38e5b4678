package imap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// Limits of the wire format.
const (
	// MaxLiteral bounds one literal ({n}) in a response the client reads
	// and in a command the server reads once the user is authenticated.
	MaxLiteral = 64 << 10
	// maxResponse bounds a whole response (lines and literals) the client
	// reads.
	maxResponse = 256 << 10
	// maxCommand bounds a whole command (lines and literals) the server
	// reads.
	maxCommand = 128 << 10
	// maxPreAuthLiteral bounds a synchronising literal before login: only
	// LOGIN and AUTHENTICATE arguments are expected then.
	maxPreAuthLiteral = 1024
	// maxPreAuthNonSync bounds a non-synchronising literal ({n+}, RFC 7888)
	// before login: the server must read it without having agreed to.
	maxPreAuthNonSync = 256
	// maxDepth bounds the nesting of parenthesised lists.
	maxDepth = 16
	// maxLiteralDigits is enough for any uint32; longer numbers are refused
	// before they are converted.
	maxLiteralDigits = 10
)

var errLiteralSyntax = errors.New("invalid literal size")

// literalSuffix reports whether line ends with a literal announcement
// "{n}" or "{n+}" (RFC 3501 §4.3, RFC 7888) and returns its size. A brace
// pair holding something that is not a decimal uint32, such as "{-1}",
// "{4294967296}" or "{99999999999999999999}", is an error: the size is
// checked before anything is allocated (PR-09).
func literalSuffix(line string) (n int64, nonSync, ok bool, err error) {
	if !strings.HasSuffix(line, "}") {
		return 0, false, false, nil
	}
	open := strings.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false, false, nil
	}
	digits := line[open+1 : len(line)-1]
	if strings.HasSuffix(digits, "+") {
		digits, nonSync = digits[:len(digits)-1], true
	}
	if digits == "" || strings.Trim(digits, "0123456789-") != "" {
		// "{}" or free text ending in braces: not a literal.
		return 0, false, false, nil
	}
	if len(digits) > maxLiteralDigits || strings.ContainsRune(digits, '-') {
		return 0, nonSync, true, errLiteralSyntax
	}
	v, perr := strconv.ParseUint(digits, 10, 32)
	if perr != nil {
		return 0, nonSync, true, errLiteralSyntax
	}
	return int64(v), nonSync, true, nil
}

// readResponse reads one complete response from c: its lines and the
// literals announced at their ends, joined as they were on the wire
// ("…{5}\r\nhello…"). Each literal is bounded by maxLit, the whole by
// maxTotal.
func readResponse(c *textline.Conn, maxLit, maxTotal int) (string, error) {
	var b strings.Builder
	for {
		line, err := c.ReadLine()
		if err != nil {
			return "", err
		}
		if b.Len()+len(line) > maxTotal {
			return "", starttls.ProtocolError("imap", "response longer than %d bytes", maxTotal)
		}
		b.WriteString(line)
		n, _, ok, err := literalSuffix(line)
		if err != nil {
			return "", starttls.ProtocolError("imap", "%v in %q", err, starttls.Escape(clip(line, 80)))
		}
		if !ok {
			return b.String(), nil
		}
		if n > int64(maxLit) || int64(b.Len())+n+2 > int64(maxTotal) {
			return "", starttls.ProtocolError("imap", "literal of %d bytes exceeds the limit of %d", n, maxLit)
		}
		data, err := c.ReadFull(int(n))
		if err != nil {
			return "", err
		}
		b.WriteString("\r\n")
		b.Write(data)
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// decoder is a sticky-error tokenizer over one complete response or
// command, literals inline (as readResponse returns them). After the first
// error every method returns a zero value and the error stays in err.
type decoder struct {
	s     string
	pos   int
	err   error
	depth int
}

func newDecoder(s string) *decoder { return &decoder{s: s} }

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format+" at offset %d", append(args, d.pos)...)
	}
}

func (d *decoder) ok() bool { return d.err == nil }

// done reports whether the input is consumed.
func (d *decoder) done() bool { return d.pos >= len(d.s) }

// end fails unless the input is consumed.
func (d *decoder) end() {
	if d.err == nil && !d.done() {
		d.fail("unexpected %q", clip(d.s[d.pos:], 20))
	}
}

func (d *decoder) peek() byte {
	if d.err != nil || d.done() {
		return 0
	}
	return d.s[d.pos]
}

// maybe consumes b if it comes next.
func (d *decoder) maybe(b byte) bool {
	if d.peek() == b && b != 0 {
		d.pos++
		return true
	}
	return false
}

// expect consumes b or fails.
func (d *decoder) expect(b byte) bool {
	if d.maybe(b) {
		return true
	}
	if d.err == nil {
		if d.done() {
			d.fail("missing %q", b)
		} else {
			d.fail("expected %q, got %q", b, d.s[d.pos])
		}
	}
	return false
}

func (d *decoder) sp() bool { return d.expect(' ') }

// rest returns everything not consumed.
func (d *decoder) rest() string {
	if d.err != nil {
		return ""
	}
	r := d.s[d.pos:]
	d.pos = len(d.s)
	return r
}

// isAtomChar reports whether b is an ATOM-CHAR (RFC 3501 §9): any CHAR
// except atom-specials.
func isAtomChar(b byte) bool {
	switch b {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return b > 0x1f && b < 0x7f
}

// isAstringChar is ATOM-CHAR or resp-specials (RFC 3501 §9).
func isAstringChar(b byte) bool { return isAtomChar(b) || b == ']' }

// isTagChar is ASTRING-CHAR except "+" (RFC 3501 §9 tag).
func isTagChar(b byte) bool { return isAstringChar(b) && b != '+' }

func (d *decoder) span(ok func(byte) bool) string {
	if d.err != nil {
		return ""
	}
	start := d.pos
	for d.pos < len(d.s) && ok(d.s[d.pos]) {
		d.pos++
	}
	return d.s[start:d.pos]
}

// atom reads 1*ATOM-CHAR.
func (d *decoder) atom() string {
	a := d.span(isAtomChar)
	if a == "" {
		d.fail("expected an atom")
	}
	return a
}

// tag reads a command tag.
func (d *decoder) tag() string {
	t := d.span(isTagChar)
	if t == "" {
		d.fail("expected a tag")
	}
	return t
}

// number reads a decimal uint32 (RFC 3501 §9 number).
func (d *decoder) number() uint32 {
	digits := d.span(func(b byte) bool { return b >= '0' && b <= '9' })
	if digits == "" {
		d.fail("expected a number")
		return 0
	}
	v, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		d.fail("number %.20s out of range", digits)
		return 0
	}
	return uint32(v)
}

// astring reads an atom of ASTRING-CHARs, a quoted string or a literal.
func (d *decoder) astring() string {
	switch d.peek() {
	case '"':
		return d.quoted()
	case '{':
		return d.literal()
	}
	a := d.span(isAstringChar)
	if a == "" {
		d.fail("expected a string")
	}
	return a
}

// str reads a quoted string or a literal.
func (d *decoder) str() string {
	switch d.peek() {
	case '"':
		return d.quoted()
	case '{':
		return d.literal()
	}
	d.fail("expected a string")
	return ""
}

// nstring reads NIL or a string; ok is false for NIL.
func (d *decoder) nstring() (s string, ok bool) {
	if d.peek() == 'N' || d.peek() == 'n' {
		if a := d.atom(); !strings.EqualFold(a, "NIL") {
			d.fail("expected NIL or a string, got %q", a)
		}
		return "", false
	}
	return d.str(), true
}

// quoted reads a quoted string: TEXT-CHARs with \" and \\ escaped (RFC
// 3501 §9; 8-bit bytes are accepted as UTF-8 per RFC 9051).
func (d *decoder) quoted() string {
	if !d.expect('"') {
		return ""
	}
	var b strings.Builder
	for d.pos < len(d.s) {
		c := d.s[d.pos]
		d.pos++
		switch c {
		case '"':
			return b.String()
		case '\\':
			if d.pos >= len(d.s) || (d.s[d.pos] != '"' && d.s[d.pos] != '\\') {
				d.fail("invalid escape in quoted string")
				return ""
			}
			b.WriteByte(d.s[d.pos])
			d.pos++
		case '\r', '\n', 0:
			d.fail("control character in quoted string")
			return ""
		default:
			b.WriteByte(c)
		}
	}
	d.fail("unterminated quoted string")
	return ""
}

// literal reads "{n}" or "{n+}", CRLF and n bytes.
func (d *decoder) literal() string {
	if !d.expect('{') {
		return ""
	}
	n := d.number()
	d.maybe('+')
	d.expect('}')
	d.expect('\r')
	d.expect('\n')
	if d.err != nil {
		return ""
	}
	if uint64(len(d.s)-d.pos) < uint64(n) {
		d.fail("literal of %d bytes truncated", n)
		return ""
	}
	s := d.s[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return s
}

// list reads "(" [item *(SP item)] ")", calling item for each element.
// Nesting is bounded by maxDepth.
func (d *decoder) list(item func()) {
	if !d.expect('(') {
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		d.fail("lists nested deeper than %d", maxDepth)
		return
	}
	if d.maybe(')') {
		return
	}
	for d.ok() {
		start := d.pos
		item()
		if d.ok() && d.pos == start {
			d.fail("empty list element")
		}
		if d.maybe(')') {
			return
		}
		d.sp()
	}
}

// value skips any one value: a list, a string, or a run of non-space
// characters such as an atom, a number, a flag or "BODY[]".
func (d *decoder) value() {
	switch d.peek() {
	case '(':
		d.list(d.value)
	case '"':
		d.quoted()
	case '{':
		d.literal()
	default:
		v := d.span(func(b byte) bool { return b != ' ' && b != '(' && b != ')' && b != '\r' && b != '\n' })
		if v == "" {
			d.fail("expected a value")
		}
	}
}

// listMailbox reads a LIST pattern: list-mailbox = 1*list-char / string
// (RFC 3501 §9), where list-char admits the wildcards "%" and "*".
func (d *decoder) listMailbox() string {
	switch d.peek() {
	case '"', '{':
		return d.str()
	}
	m := d.span(func(b byte) bool { return isAstringChar(b) || b == '%' || b == '*' })
	if m == "" {
		d.fail("expected a mailbox pattern")
	}
	return m
}

// quote renders s as an IMAP string for a response or command: an atom
// when atomOK and s is a non-empty atom other than NIL, a quoted string
// when s is printable ASCII, else a literal (the caller then needs a raw
// write).
func quote(s string, atomOK bool) string {
	if atomOK && s != "" && !strings.EqualFold(s, "NIL") {
		atom := true
		for i := 0; i < len(s); i++ {
			atom = atom && isAstringChar(s[i])
		}
		if atom {
			return s
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return "{" + strconv.Itoa(len(s)) + "}\r\n" + s
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// response is one parsed server response (RFC 3501 §7).
type response struct {
	raw string
	// Tag is "*" for untagged responses, "+" for a continuation request,
	// else the tag of the command completed.
	Tag string
	// Num is the number before the type in "* 3 EXISTS" (HasNum set).
	Num    uint32
	HasNum bool
	// Type is the upper-cased response name: OK, NO, BAD, BYE, PREAUTH,
	// CAPABILITY, LIST, EXISTS, FETCH…
	Type string
	// Code and CodeArg are the response code of a status response:
	// "[CAPABILITY IMAP4rev1 …]" gives Code "CAPABILITY" and CodeArg
	// "IMAP4rev1 …".
	Code, CodeArg string
	// Text is the human-readable text of a status response or continuation.
	Text string
	// Data is what follows the type of a data response.
	Data string
}

// isStatus reports whether the response is a status response (RFC 3501
// §7.1).
func (r *response) isStatus() bool {
	switch r.Type {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return true
	}
	return false
}

// err returns nil for OK and PREAUTH, else an *Error.
func (r *response) err() error {
	if r.Type == "OK" || r.Type == "PREAUTH" {
		return nil
	}
	return &Error{Type: r.Type, Code: r.Code, Text: r.Text}
}

// parseResponse parses one complete response as readResponse returns it.
func parseResponse(s string) (*response, error) {
	r := &response{raw: s}
	d := newDecoder(s)
	if d.maybe('+') {
		// RFC 3501 §7.5: "+" SP (resp-text / base64); some servers omit
		// the space when the text is empty.
		d.maybe(' ')
		r.Tag, r.Text = "+", d.rest()
		return r, nil
	}
	if d.maybe('*') {
		r.Tag = "*"
	} else {
		r.Tag = d.tag()
	}
	d.sp()
	if r.Tag == "*" && d.peek() >= '0' && d.peek() <= '9' {
		r.Num, r.HasNum = d.number(), true
		d.sp()
	}
	r.Type = strings.ToUpper(d.atom())
	if d.err != nil {
		return nil, fmt.Errorf("malformed response %q: %v", starttls.Escape(clip(s, 80)), d.err)
	}
	if r.isStatus() && !r.HasNum {
		if r.Tag != "*" && (r.Type == "BYE" || r.Type == "PREAUTH") {
			return nil, fmt.Errorf("tagged %s response %q", r.Type, starttls.Escape(clip(s, 80)))
		}
		// resp-text = ["[" resp-text-code "]" SP] text; be lenient about a
		// missing text.
		d.maybe(' ')
		if d.maybe('[') {
			code := d.rest()
			end := strings.IndexByte(code, ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated response code in %q", starttls.Escape(clip(s, 80)))
			}
			name, arg, _ := strings.Cut(code[:end], " ")
			if name == "" {
				return nil, fmt.Errorf("empty response code in %q", starttls.Escape(clip(s, 80)))
			}
			r.Code, r.CodeArg = strings.ToUpper(name), arg
			d = newDecoder(strings.TrimPrefix(code[end+1:], " "))
		}
		r.Text = d.rest()
		return r, nil
	}
	if r.Tag != "*" {
		return nil, fmt.Errorf("tagged response of type %s in %q", r.Type, starttls.Escape(clip(s, 80)))
	}
	if d.maybe(' ') {
		r.Data = d.rest()
	}
	return r, nil
}

// listEntry is one "* LIST (attrs) delim name" response (RFC 3501 §7.2.2).
type listEntry struct {
	Attrs []string
	Delim string // "" for NIL
	Name  string
}

// parseList parses the data of a LIST or LSUB response.
func parseList(data string) (listEntry, error) {
	var e listEntry
	d := newDecoder(data)
	d.list(func() {
		d.maybe('\\')
		e.Attrs = append(e.Attrs, d.atom())
	})
	d.sp()
	e.Delim, _ = d.nstring()
	d.sp()
	e.Name = d.astring()
	if d.ok() && d.maybe(' ') {
		d.value() // RFC 5258 extended data
	}
	d.end()
	if d.err != nil {
		return listEntry{}, fmt.Errorf("malformed LIST response %q: %v", starttls.Escape(clip(data, 80)), d.err)
	}
	return e, nil
}
