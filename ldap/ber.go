package ldap

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/starttls/starttls"
)

// BER limits (RFC 4511 §5.1 allows only the definite length form).
const (
	// MaxMessageSize bounds one LDAPMessage the client reads (a search
	// result entry, the root DSE), tag and length included.
	MaxMessageSize = 1 << 20
	// DefaultMaxRequestSize bounds one LDAPMessage the server reads.
	DefaultMaxRequestSize = 64 << 10
	// maxDepth bounds the nesting of constructed elements (filters nest).
	maxDepth = 32
	// maxElements bounds the elements of one message.
	maxElements = 1 << 16
)

// BER identifier octets used by LDAP (RFC 4511 Appendix B, X.690 §8.1.2).
const (
	classApplication = 0x40
	classContext     = 0x80
	classMask        = 0xc0
	constructed      = 0x20

	tagBoolean     = 0x01
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagEnumerated  = 0x0a
	tagSequence    = 0x30
	tagSet         = 0x31

	// ctxPrimitive0 and ctxConstructed0 are the context-specific tag [0]
	// (simple credentials, requestName, controls, the and filter).
	ctxPrimitive0   = classContext
	ctxConstructed0 = classContext | constructed
)

// element is one decoded BER TLV. Only the low-tag-number form is accepted:
// LDAP never uses tag numbers above 30.
type element struct {
	tag  byte      // identifier octet: class | constructed | number
	data []byte    // contents octets
	kids []element // the parsed contents of a constructed element
}

func (e *element) constructed() bool { return e.tag&constructed != 0 }

// errBER wraps every decoding failure.
var errBER = errors.New("malformed BER")

func berError(format string, args ...any) error {
	return fmt.Errorf("ldap: %s: %w: %w", fmt.Sprintf(format, args...), errBER, starttls.ErrProtocol)
}

// parseLength decodes the length octets at b (X.690 §8.1.3): the short form
// or a long form of one to four octets; the indefinite form (0x80) and
// longer forms are refused. It returns the length and the octets used.
func parseLength(b []byte) (int, int, error) {
	if len(b) == 0 {
		return 0, 0, berError("truncated length")
	}
	l0 := b[0]
	if l0 < 0x80 {
		return int(l0), 1, nil
	}
	n := int(l0 & 0x7f)
	switch {
	case n == 0:
		return 0, 0, berError("indefinite length form (RFC 4511 §5.1)")
	case n > 4:
		return 0, 0, berError("length of %d octets", n)
	case len(b) < 1+n:
		return 0, 0, berError("truncated length")
	}
	v := 0
	for _, c := range b[1 : 1+n] {
		v = v<<8 | int(c)
	}
	// Four octets may exceed what an int32 holds; keep it non-negative on
	// every platform.
	if v < 0 || v > 1<<31-1 {
		return 0, 0, berError("length %d too large", v)
	}
	return v, 1 + n, nil
}

// decoder parses one message, counting the elements.
type decoder struct {
	elements int
}

// parseOne decodes the element at the start of b and returns it and the
// bytes after it.
func (d *decoder) parseOne(b []byte, depth int) (element, []byte, error) {
	if depth > maxDepth {
		return element{}, nil, berError("nesting deeper than %d", maxDepth)
	}
	d.elements++
	if d.elements > maxElements {
		return element{}, nil, berError("more than %d elements", maxElements)
	}
	if len(b) < 2 {
		return element{}, nil, berError("truncated element")
	}
	tag := b[0]
	if tag&0x1f == 0x1f {
		return element{}, nil, berError("high tag number form")
	}
	l, n, err := parseLength(b[1:])
	if err != nil {
		return element{}, nil, err
	}
	start := 1 + n
	if l > len(b)-start {
		return element{}, nil, berError("length %d beyond the %d bytes that follow", l, len(b)-start)
	}
	e := element{tag: tag, data: b[start : start+l]}
	if e.constructed() {
		rest := e.data
		for len(rest) > 0 {
			var k element
			k, rest, err = d.parseOne(rest, depth+1)
			if err != nil {
				return element{}, nil, err
			}
			e.kids = append(e.kids, k)
		}
	}
	return e, b[start+l:], nil
}

// parseElement decodes b, which must hold exactly one element.
func parseElement(b []byte) (element, error) {
	var d decoder
	e, rest, err := d.parseOne(b, 0)
	if err != nil {
		return element{}, err
	}
	if len(rest) > 0 {
		return element{}, berError("%d bytes after the element", len(rest))
	}
	return e, nil
}

// readFrame reads exactly one LDAPMessage (a BER SEQUENCE) from r: the tag,
// the length, then that many bytes, refusing a message larger than max
// before allocating it. It reads nothing past the message other than what
// r buffers, which stays in r for the caller to inspect.
func readFrame(r *bufio.Reader, max int, proto string) ([]byte, error) {
	hdr, err := r.Peek(2)
	if err != nil {
		if len(hdr) > 0 && (errors.Is(err, io.EOF)) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if hdr[0] == 0x16 && hdr[1] == 0x03 {
		return nil, fmt.Errorf("%s: a TLS ClientHello where an LDAPMessage was expected: %w", proto, starttls.ErrTLSOnPlaintextPort)
	}
	if hdr[0] != tagSequence {
		return nil, berError("message starts with tag 0x%02x, not a SEQUENCE", hdr[0])
	}
	n := 1
	if hdr[1] >= 0x80 {
		n += int(hdr[1] & 0x7f)
	}
	if n > 5 {
		n = 2 // enough for parseLength to refuse it
	}
	hdr, err = r.Peek(1 + n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	l, used, err := parseLength(hdr[1:])
	if err != nil {
		return nil, err
	}
	total := 1 + used + l
	if total > max {
		return nil, fmt.Errorf("%s: message of %d bytes exceeds the limit of %d: %w", proto, total, max, starttls.ErrLineTooLong)
	}
	buf := make([]byte, total)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// Encoding.

func appendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 1<<8:
		return append(b, 0x81, byte(n))
	case n < 1<<16:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// tlv encodes one element with the given contents.
func tlv(tag byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n+6)
	b = append(b, tag)
	b = appendLength(b, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func berString(tag byte, s string) []byte { return tlv(tag, []byte(s)) }

// berInt encodes an INTEGER or ENUMERATED in the fewest octets (X.690
// §8.3.2).
func berInt(tag byte, v int64) []byte {
	var c []byte
	for {
		c = append([]byte{byte(v)}, c...)
		if (v < 0x80 && v >= -0x80) || len(c) == 8 {
			break
		}
		v >>= 8
	}
	return tlv(tag, c)
}

func berBool(v bool) []byte {
	if v {
		return tlv(tagBoolean, []byte{0xff}) // RFC 4511 §5.1
	}
	return tlv(tagBoolean, []byte{0})
}

// Decoding helpers for primitive values.

// intValue decodes an INTEGER or ENUMERATED of at most 8 octets.
func intValue(e *element) (int64, error) {
	if e.constructed() || len(e.data) == 0 || len(e.data) > 8 {
		return 0, berError("INTEGER of %d octets", len(e.data))
	}
	v := int64(int8(e.data[0]))
	for _, c := range e.data[1:] {
		v = v<<8 | int64(c)
	}
	return v, nil
}
