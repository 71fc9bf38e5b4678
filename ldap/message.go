package ldap

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/starttls/starttls"
)

// protocolOp tags (RFC 4511 Appendix B), as identifier octets.
const (
	opBindRequest           = classApplication | constructed
	opBindResponse          = classApplication | constructed | 1
	opUnbindRequest         = classApplication | 2
	opSearchRequest         = classApplication | constructed | 3
	opSearchResultEntry     = classApplication | constructed | 4
	opSearchResultDone      = classApplication | constructed | 5
	opModifyRequest         = classApplication | constructed | 6
	opModifyResponse        = classApplication | constructed | 7
	opAddRequest            = classApplication | constructed | 8
	opAddResponse           = classApplication | constructed | 9
	opDelRequest            = classApplication | 10
	opDelResponse           = classApplication | constructed | 11
	opModifyDNRequest       = classApplication | constructed | 12
	opModifyDNResponse      = classApplication | constructed | 13
	opCompareRequest        = classApplication | constructed | 14
	opCompareResponse       = classApplication | constructed | 15
	opAbandonRequest        = classApplication | 16
	opSearchResultReference = classApplication | constructed | 19
	opExtendedRequest       = classApplication | constructed | 23
	opExtendedResponse      = classApplication | constructed | 24
	opIntermediateResponse  = classApplication | constructed | 25
)

var opNames = map[byte]string{
	opBindRequest: "BindRequest", opBindResponse: "BindResponse", opUnbindRequest: "UnbindRequest",
	opSearchRequest: "SearchRequest", opSearchResultEntry: "SearchResultEntry",
	opSearchResultDone: "SearchResultDone", opModifyRequest: "ModifyRequest",
	opModifyResponse: "ModifyResponse", opAddRequest: "AddRequest", opAddResponse: "AddResponse",
	opDelRequest: "DelRequest", opDelResponse: "DelResponse", opModifyDNRequest: "ModifyDNRequest",
	opModifyDNResponse: "ModifyDNResponse", opCompareRequest: "CompareRequest",
	opCompareResponse: "CompareResponse", opAbandonRequest: "AbandonRequest",
	opSearchResultReference: "SearchResultReference", opExtendedRequest: "ExtendedRequest",
	opExtendedResponse: "ExtendedResponse", opIntermediateResponse: "IntermediateResponse",
}

func opName(tag byte) string {
	if n, ok := opNames[tag]; ok {
		return n
	}
	return fmt.Sprintf("protocolOp 0x%02x", tag)
}

// maxMessageID is maxInt of RFC 4511 §4.1.1.
const maxMessageID = 1<<31 - 1

// message is one decoded LDAPMessage (RFC 4511 §4.1.1).
type message struct {
	id       int64
	op       element
	controls *element
}

// parseMessage decodes one LDAPMessage from a frame read by readFrame.
func parseMessage(b []byte) (*message, error) {
	e, err := parseElement(b)
	if err != nil {
		return nil, err
	}
	if e.tag != tagSequence || len(e.kids) < 2 || len(e.kids) > 3 {
		return nil, berError("LDAPMessage is not a SEQUENCE of 2 or 3 elements")
	}
	if e.kids[0].tag != tagInteger {
		return nil, berError("messageID is not an INTEGER")
	}
	id, err := intValue(&e.kids[0])
	if err != nil {
		return nil, err
	}
	if id < 0 || id > maxMessageID {
		return nil, berError("messageID %d out of range", id)
	}
	m := &message{id: id, op: e.kids[1]}
	if m.op.tag&classMask != classApplication {
		return nil, berError("protocolOp with tag 0x%02x", m.op.tag)
	}
	if len(e.kids) == 3 {
		if e.kids[2].tag != ctxConstructed0 {
			return nil, berError("element 0x%02x after the protocolOp is not controls", e.kids[2].tag)
		}
		m.controls = &e.kids[2]
	}
	return m, nil
}

// encodeMessage builds an LDAPMessage.
func encodeMessage(id int64, op []byte) []byte {
	return tlv(tagSequence, berInt(tagInteger, id), op)
}

// result is an LDAPResult (RFC 4511 §4.1.9) with the ExtendedResponse
// fields.
type result struct {
	code      ResultCode
	matchedDN string
	message   string
	name      string // ExtendedResponse responseName [10]
	value     []byte // ExtendedResponse responseValue [11]
	hasValue  bool
}

// parseResult decodes the LDAPResult components of a response op.
func parseResult(op *element) (*result, error) {
	k := op.kids
	if !op.constructed() || len(k) < 3 {
		return nil, berError("%s: LDAPResult of %d elements", opName(op.tag), len(k))
	}
	if k[0].tag != tagEnumerated || k[1].tag != tagOctetString || k[2].tag != tagOctetString {
		return nil, berError("%s: malformed LDAPResult", opName(op.tag))
	}
	code, err := intValue(&k[0])
	if err != nil {
		return nil, err
	}
	if code < 0 || code > maxMessageID {
		return nil, berError("resultCode %d out of range", code)
	}
	r := &result{code: ResultCode(code), matchedDN: string(k[1].data), message: string(k[2].data)}
	for i := 3; i < len(k); i++ {
		switch k[i].tag {
		case classContext | constructed | 3: // referral
		case classContext | 7: // BindResponse serverSaslCreds
		case classContext | 10:
			r.name = string(k[i].data)
		case classContext | 11:
			r.value, r.hasValue = k[i].data, true
		default:
			return nil, berError("%s: unexpected element 0x%02x", opName(op.tag), k[i].tag)
		}
	}
	return r, nil
}

func (r *result) err(op string) error {
	if r.code == ResultSuccess {
		return nil
	}
	return &ResultError{Op: op, Code: r.code, MatchedDN: r.matchedDN, Message: r.message}
}

// encodeResult builds a response op with an LDAPResult.
func encodeResult(tag byte, code ResultCode, matchedDN, msg string, extra ...[]byte) []byte {
	parts := [][]byte{berInt(tagEnumerated, int64(code)), berString(tagOctetString, matchedDN), berString(tagOctetString, msg)}
	return tlv(tag, append(parts, extra...)...)
}

func (r *result) summary() string {
	s := r.code.String()
	if r.name != "" {
		s += " name=" + r.name
	}
	if r.matchedDN != "" {
		s += " matchedDN=" + strconv.Quote(r.matchedDN)
	}
	if r.message != "" {
		s += " " + strconv.Quote(r.message)
	}
	return s
}

// Entry is a directory entry returned by a search (RFC 4511 §4.5.2).
type Entry struct {
	DN         string
	Attributes []Attribute
}

// Attribute is one attribute of an Entry.
type Attribute struct {
	Type   string
	Values []string
}

// Values returns the values of the attribute named typ (case-insensitive).
func (e *Entry) Values(typ string) []string {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Type, typ) {
			return a.Values
		}
	}
	return nil
}

func (e *Entry) has(typ string) bool {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Type, typ) {
			return true
		}
	}
	return false
}

// parseEntry decodes a SearchResultEntry (RFC 4511 §4.5.2).
func parseEntry(op *element) (*Entry, error) {
	k := op.kids
	if len(k) != 2 || k[0].tag != tagOctetString || k[1].tag != tagSequence {
		return nil, berError("malformed SearchResultEntry")
	}
	en := &Entry{DN: string(k[0].data)}
	for _, a := range k[1].kids {
		if a.tag != tagSequence || len(a.kids) != 2 || a.kids[0].tag != tagOctetString || a.kids[1].tag != tagSet {
			return nil, berError("malformed PartialAttribute")
		}
		at := Attribute{Type: string(a.kids[0].data)}
		for _, v := range a.kids[1].kids {
			if v.tag != tagOctetString {
				return nil, berError("attribute value with tag 0x%02x", v.tag)
			}
			at.Values = append(at.Values, string(v.data))
		}
		en.Attributes = append(en.Attributes, at)
	}
	return en, nil
}

func encodeEntry(e *Entry) []byte {
	var attrs [][]byte
	for _, a := range e.Attributes {
		var vals [][]byte
		for _, v := range a.Values {
			vals = append(vals, berString(tagOctetString, v))
		}
		attrs = append(attrs, tlv(tagSequence, berString(tagOctetString, a.Type), tlv(tagSet, vals...)))
	}
	return tlv(opSearchResultEntry, berString(tagOctetString, e.DN), tlv(tagSequence, attrs...))
}

// Scope is a SearchRequest scope (RFC 4511 §4.5.1.2).
type Scope int

// The search scopes.
const (
	ScopeBase Scope = iota
	ScopeOne
	ScopeSub
)

func (s Scope) String() string {
	switch s {
	case ScopeBase:
		return "base"
	case ScopeOne:
		return "one"
	case ScopeSub:
		return "sub"
	}
	return "scope(" + strconv.Itoa(int(s)) + ")"
}

// encodeSearch builds a SearchRequest with the filter (objectClass=*).
func encodeSearch(base string, scope Scope, attrs []string) []byte {
	var as [][]byte
	for _, a := range attrs {
		as = append(as, berString(tagOctetString, a))
	}
	return tlv(opSearchRequest,
		berString(tagOctetString, base),
		berInt(tagEnumerated, int64(scope)),
		berInt(tagEnumerated, 0),                 // neverDerefAliases
		berInt(tagInteger, 0),                    // sizeLimit
		berInt(tagInteger, 0),                    // timeLimit
		berBool(false),                           // typesOnly
		berString(classContext|7, "objectClass"), // present filter
		tlv(tagSequence, as...))
}

// encodeExtended builds an ExtendedRequest (RFC 4511 §4.12).
func encodeExtended(oid string) []byte {
	return tlv(opExtendedRequest, berString(ctxPrimitive0, oid))
}

// encodeSimpleBind builds a BindRequest with simple authentication
// (RFC 4511 §4.2).
func encodeSimpleBind(dn, password string) []byte {
	return tlv(opBindRequest, berInt(tagInteger, 3), berString(tagOctetString, dn), berString(ctxPrimitive0, password))
}

// wire is the message framing of one connection: a buffered reader that
// holds whatever the peer sent past the current message (so that
// CheckNoBuffered can find it), and the transcript.
type wire struct {
	conn       net.Conn
	r          *bufio.Reader
	max        int
	tls        bool
	local      starttls.Direction
	transcript *starttls.Transcript
}

func newWire(conn net.Conn, max int, local starttls.Direction, tr *starttls.Transcript) *wire {
	w := &wire{max: max, local: local, transcript: tr}
	w.reset(conn)
	return w
}

func (w *wire) reset(conn net.Conn) {
	w.conn = conn
	_, w.tls = conn.(*tls.Conn)
	w.r = bufio.NewReaderSize(conn, 4096)
}

func (w *wire) remote() starttls.Direction {
	if w.local == starttls.FromClient {
		return starttls.FromServer
	}
	return starttls.FromClient
}

// read reads and decodes one message.
func (w *wire) read() (*message, error) {
	b, err := readFrame(w.r, w.max, "ldap")
	if err != nil {
		return nil, w.wrap(err)
	}
	m, err := parseMessage(b)
	if err != nil {
		w.note(fmt.Sprintf("malformed message of %d bytes: %v", len(b), err))
		return nil, err
	}
	return m, nil
}

// record adds a summary of a message read to the transcript.
func (w *wire) record(m *message, text string) {
	w.transcript.Add(w.remote(), w.tls, fmt.Sprintf("#%d %s", m.id, text))
}

// write sends one message, recording shown in the transcript.
func (w *wire) write(id int64, op []byte, shown string) error {
	w.transcript.Add(w.local, w.tls, fmt.Sprintf("#%d %s", id, shown))
	_, err := w.conn.Write(encodeMessage(id, op))
	return w.wrap(err)
}

// writeRaw sends prepared messages in one write.
func (w *wire) writeRaw(b []byte) error {
	_, err := w.conn.Write(b)
	return w.wrap(err)
}

func (w *wire) note(text string) { w.transcript.Add(starttls.Note, w.tls, text) }

// Buffered returns the number of bytes received but not yet read.
func (w *wire) Buffered() int { return w.r.Buffered() }

// takeBuffered returns and consumes the buffered bytes.
func (w *wire) takeBuffered() []byte {
	n := w.r.Buffered()
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	w.r.Read(b)
	return b
}

// checkNoBuffered enforces rule 1 of the upgrade: nothing may follow the
// StartTLS response in plaintext.
func (w *wire) checkNoBuffered() ([]byte, error) {
	b := w.takeBuffered()
	if len(b) == 0 {
		return nil, nil
	}
	w.note(fmt.Sprintf("%d bytes of plaintext after the StartTLS response: %q", len(b), clip(b, 80)))
	return b, fmt.Errorf("ldap: %d bytes received after the StartTLS response, before TLS: %w", len(b), starttls.ErrPlaintextAfterUpgrade)
}

// upgrade switches to tc with a new reader: nothing read before can leak
// into the TLS session.
func (w *wire) upgrade(tc *tls.Conn) {
	w.reset(tc)
	st := tc.ConnectionState()
	w.note(fmt.Sprintf("TLS handshake done: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)))
}

func (w *wire) wrap(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("ldap: timed out waiting for the peer: %w", err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("ldap: connection closed by the peer: %w", err)
	}
	if strings.HasPrefix(err.Error(), "ldap:") {
		return err
	}
	return fmt.Errorf("ldap: %w", err)
}

// netConn returns a net.Conn reading through the buffered bytes first.
func (w *wire) netConn() net.Conn { return &bufferedConn{Conn: w.conn, r: w.r} }

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n])
	}
	return string(b)
}

// maxSummary bounds one transcript line.
const maxSummary = 400

// summaryBudget is how much of a summary is built before it is escaped and
// clipped to maxSummary: escaping never shortens the text, and the slack of
// utf8.UTFMax keeps a rune cut at the end of the budget out of the clip.
const summaryBudget = maxSummary + utf8.UTFMax

// summaryBuf builds a summary and stops taking text once budget bytes are
// in: a message with many attributes costs no more than a short one.
type summaryBuf struct {
	b      strings.Builder
	budget int
}

func (w *summaryBuf) full() bool { return w.b.Len() >= w.budget }

func (w *summaryBuf) str(ss ...string) {
	for _, s := range ss {
		if room := w.budget - w.b.Len(); len(s) > room {
			s = s[:max(room, 0)]
		}
		w.b.WriteString(s)
	}
}

func (w *summaryBuf) printf(format string, args ...any) {
	if !w.full() {
		w.str(fmt.Sprintf(format, args...))
	}
}

// summarize describes a message for the transcript in one readable line.
// A BindRequest never shows its credentials.
func summarize(m *message) string {
	return summarizeBudget(m, summaryBudget)
}

func summarizeBudget(m *message, budget int) string {
	op := &m.op
	k := op.kids
	w := &summaryBuf{budget: budget}
	w.str(opName(op.tag))
	switch op.tag {
	case opBindRequest:
		if len(k) == 3 {
			v, _ := intValue(&k[0])
			w.printf(" v%d dn=%q", v, k[1].data)
			switch k[2].tag {
			case ctxPrimitive0:
				w.str(" simple password=****")
			case classContext | constructed | 3:
				w.str(" sasl credentials=****")
			}
		}
	case opSearchRequest:
		if len(k) == 8 {
			sc, _ := intValue(&k[1])
			w.printf(" base=%q scope=%v filter=", k[0].data, Scope(sc))
			filterString(w, &k[6], 0)
			w.str(" attrs=")
			for i, a := range k[7].kids {
				if w.full() {
					break
				}
				if i > 0 {
					w.str(",")
				}
				w.str(string(a.data))
			}
		}
	case opExtendedRequest:
		if len(k) > 0 {
			w.str(" ", string(k[0].data))
			switch string(k[0].data) {
			case StartTLSOID:
				w.str(" (StartTLS)")
			case WhoAmIOID:
				w.str(" (Who am I?)")
			}
		}
	case opSearchResultEntry:
		if en, err := parseEntry(op); err == nil {
			w.printf(" %q", en.DN)
			for _, a := range en.Attributes {
				if w.full() {
					break
				}
				w.str(" ", a.Type, "=")
				for i, v := range a.Values {
					if w.full() {
						break
					}
					if i > 0 {
						w.str(",")
					}
					w.str(v)
				}
			}
		}
	case opBindResponse, opSearchResultDone, opExtendedResponse, opModifyResponse, opAddResponse,
		opDelResponse, opModifyDNResponse, opCompareResponse:
		if r, err := parseResult(op); err == nil {
			w.str(" ", r.summary())
			if r.hasValue && op.tag == opExtendedResponse {
				w.printf(" value=%q", clip(r.value, 80))
			}
		}
	case opDelRequest:
		w.printf(" %q", clip(op.data, 80))
	}
	s := starttls.Escape(w.b.String())
	if len(s) > maxSummary {
		s = s[:maxSummary] + "…"
	}
	return s
}

// filterString renders a Filter (RFC 4511 §4.5.1.7) in the RFC 4515 form
// for the transcript, as far as it can, into w (up to w's budget).
func filterString(w *summaryBuf, f *element, depth int) {
	if w.full() {
		return
	}
	if depth > 8 {
		w.str("(…)")
		return
	}
	switch f.tag {
	case ctxConstructed0, classContext | constructed | 1:
		op := "&"
		if f.tag&0x1f == 1 {
			op = "|"
		}
		w.str("(", op)
		for i := range f.kids {
			if w.full() {
				return
			}
			filterString(w, &f.kids[i], depth+1)
		}
		w.str(")")
		return
	case classContext | constructed | 2:
		if len(f.kids) == 1 {
			w.str("(!")
			filterString(w, &f.kids[0], depth+1)
			w.str(")")
			return
		}
	case classContext | 7:
		w.str("(", string(f.data), "=*)")
		return
	case classContext | constructed | 3:
		if len(f.kids) == 2 {
			w.str("(", string(f.kids[0].data), "=", string(f.kids[1].data), ")")
			return
		}
	}
	w.printf("(filter 0x%02x)", f.tag)
}
