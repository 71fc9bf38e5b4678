package xmpp

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/starttls/starttls"
)

// element is one parsed XML element with its children. Text holds the
// character data directly inside it.
type element struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []*element
	Text     string
}

// attr returns the value of the attribute with the local name (and no
// namespace).
func (e *element) attr(local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// is reports whether the element has the namespace and local name.
func (e *element) is(space, local string) bool {
	return e != nil && e.Name.Space == space && e.Name.Local == local
}

// child returns the first child with the namespace and local name.
func (e *element) child(space, local string) *element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.is(space, local) {
			return c
		}
	}
	return nil
}

// errParse marks XML the parser refused: the peer's stream is not
// well-formed or not restricted XML.
type parseError struct {
	cond string // the stream error condition to answer with
	err  error
}

func (e *parseError) Error() string { return "xmpp: " + e.err.Error() }
func (e *parseError) Unwrap() error { return e.err }

func restricted(format string, args ...any) error {
	return &parseError{cond: "restricted-xml", err: fmt.Errorf(format+": %w", append(args, starttls.ErrProtocol)...)}
}

// errStreamClosed is the peer's </stream:stream>.
var errStreamClosed = errors.New("xmpp: the peer closed the stream")

// budgetReader is the io.ByteReader encoding/xml reads from: one byte at a
// time out of the buffer, at most max bytes per element, keeping a copy
// of the bytes for the transcript. encoding/xml uses an io.ByteReader as
// is, without a buffer of its own.
type budgetReader struct {
	br   *bufio.Reader
	n    int
	max  int
	copy bytes.Buffer
}

func (b *budgetReader) ReadByte() (byte, error) {
	if b.n >= b.max {
		return 0, &parseError{cond: "policy-violation", err: fmt.Errorf("element larger than %d bytes: %w", b.max, starttls.ErrLineTooLong)}
	}
	c, err := b.br.ReadByte()
	if err != nil {
		return 0, err
	}
	b.n++
	b.copy.WriteByte(c)
	return c, nil
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c, err := b.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = c
	return 1, nil
}

// stream reads one XML stream (RFC 6120 §4) element by element.
type stream struct {
	br     *bufio.Reader
	budget budgetReader
	dec    *xml.Decoder
	opened bool // the stream header was read
	tr     *starttls.Transcript
	dir    starttls.Direction // the peer's direction, for the transcript
	tls    bool
	max    int
}

// newStream reads from br; a new stream (after TLS or SASL) gets a new one.
func newStream(br *bufio.Reader, max int, tr *starttls.Transcript, peer starttls.Direction, tlsOn bool) *stream {
	if max <= 0 {
		max = MaxStanzaSize
	}
	s := &stream{br: br, tr: tr, dir: peer, tls: tlsOn, max: max}
	s.budget = budgetReader{br: br, max: max}
	s.dec = xml.NewDecoder(&s.budget)
	s.dec.Strict = true
	return s
}

// token returns the next token, enforcing RFC 6120 §11.1.
func (s *stream) token() (xml.Token, error) {
	tok, err := s.dec.Token()
	if err != nil {
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return nil, &parseError{cond: "not-well-formed", err: fmt.Errorf("%s: %w", se.Msg, starttls.ErrProtocol)}
		}
		if err == io.EOF && s.budget.n > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, wrapIO(err)
	}
	switch t := tok.(type) {
	case xml.ProcInst:
		if t.Target != "xml" || s.opened {
			return nil, restricted("processing instruction <?%s?>", t.Target)
		}
	case xml.Directive:
		return nil, restricted("DTD or declaration <!%s>", clip(string(t), 20))
	case xml.Comment:
		return nil, restricted("comment")
	case xml.StartElement:
		if len(t.Attr) > MaxAttrs {
			return nil, &parseError{cond: "policy-violation", err: fmt.Errorf("element <%s> with %d attributes: %w", t.Name.Local, len(t.Attr), starttls.ErrProtocol)}
		}
	}
	return tok, nil
}

func wrapIO(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("xmpp: timed out waiting for the peer: %w", err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("xmpp: connection closed by the peer: %w", err)
	}
	var pe *parseError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("xmpp: %w", err)
}

// begin starts a new element budget.
func (s *stream) begin() {
	s.budget.n = 0
	s.budget.copy.Reset()
}

// record adds what was read to the transcript.
func (s *stream) record(suffix string) {
	if s.tr == nil {
		return
	}
	text := strings.TrimSpace(s.budget.copy.String())
	if text != "" || suffix != "" {
		s.tr.Add(s.dir, s.tls, text+suffix)
	}
}

// header reads the peer's stream header: the XML declaration (optional),
// then <stream:stream …>.
func (s *stream) header() (*element, error) {
	s.begin()
	for {
		tok, err := s.token()
		if err != nil {
			s.recordErr(err)
			return nil, err
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			continue
		case xml.CharData:
			if len(bytes.TrimLeft(t, " \t\r\n")) > 0 {
				s.record("")
				return nil, &parseError{cond: "not-well-formed", err: fmt.Errorf("text before the stream header: %w", starttls.ErrProtocol)}
			}
		case xml.StartElement:
			s.opened = true
			s.record("")
			return &element{Name: t.Name, Attr: t.Attr}, nil
		default:
			s.record("")
			return nil, &parseError{cond: "not-well-formed", err: fmt.Errorf("no stream header: %w", starttls.ErrProtocol)}
		}
	}
}

func (s *stream) recordErr(err error) {
	if s.budget.copy.Len() > 0 {
		s.record(" (incomplete)")
	}
}

// next reads one complete top-level element of the stream. Whitespace
// between elements is skipped; the peer's </stream:stream> is
// errStreamClosed.
func (s *stream) next() (*element, error) {
	s.begin()
	var stack []*element
	for {
		tok, err := s.token()
		if err != nil {
			s.recordErr(err)
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= MaxDepth {
				s.record(" (too deep)")
				return nil, &parseError{cond: "policy-violation", err: fmt.Errorf("elements nested deeper than %d: %w", MaxDepth, starttls.ErrProtocol)}
			}
			e := &element{Name: t.Name, Attr: t.Attr}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			if len(stack) == 0 {
				// encoding/xml checked that it closes the stream.
				s.record("")
				return nil, errStreamClosed
			}
			e := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				s.record("")
				return e, nil
			}
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimLeft(t, " \t\r\n")) > 0 {
					s.record("")
					return nil, &parseError{cond: "not-well-formed", err: fmt.Errorf("text between stanzas: %w", starttls.ErrProtocol)}
				}
				continue
			}
			e := stack[len(stack)-1]
			e.Text += string(t)
		case xml.ProcInst:
			// token refused every one after the header.
			s.record("")
			return nil, restricted("processing instruction")
		}
	}
}

// check reports an element that is a stream error as *StreamError.
func streamError(e *element) error {
	if !e.is(NSStreams, "error") {
		return nil
	}
	se := &StreamError{Condition: "undefined-condition"}
	for _, c := range e.Children {
		if c.Name.Space != NSStreamErr {
			continue
		}
		if c.Name.Local == "text" {
			se.Text = clip(strings.TrimSpace(c.Text), 200)
			continue
		}
		se.Condition = c.Name.Local
		se.Other = clip(strings.TrimSpace(c.Text), 200)
	}
	return se
}

// clip shortens s to at most n bytes without cutting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
