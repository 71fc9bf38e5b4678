package postgres

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/starttls/starttls"
)

// wire is one side of a connection: bounded message framing (§55.7), the
// transcript and the plaintext left over across the TLS upgrade.
type wire struct {
	raw   net.Conn
	r     *bufio.Reader
	w     *bufio.Writer
	tls   bool
	tr    *starttls.Transcript
	local starttls.Direction
	max   int // the longest message read, type and length included
}

func newWire(conn net.Conn, local starttls.Direction, tr *starttls.Transcript, max int) *wire {
	w := &wire{tr: tr, local: local, max: max}
	w.reset(conn)
	return w
}

func (w *wire) reset(conn net.Conn) {
	w.raw = conn
	_, w.tls = conn.(*tls.Conn)
	w.r = bufio.NewReaderSize(conn, 8192)
	w.w = bufio.NewWriter(conn)
}

// resetReader replaces the reader only (InsecureKeepPipelined).
func (w *wire) resetReader(r io.Reader) { w.r = bufio.NewReaderSize(r, 8192) }

func (w *wire) remote() starttls.Direction {
	if w.local == starttls.FromClient {
		return starttls.FromServer
	}
	return starttls.FromClient
}

func (w *wire) note(s string) { w.tr.Add(starttls.Note, w.tls, s) }

// queue buffers one message, recording shown.
func (w *wire) queue(shown string, b []byte) {
	w.tr.Add(w.local, w.tls, shown)
	w.w.Write(b)
}

func (w *wire) flush() error { return w.wrap(w.w.Flush()) }

// send writes one message and flushes.
func (w *wire) send(shown string, b []byte) error {
	w.queue(shown, b)
	return w.flush()
}

// readByte reads the one-byte answer to an SSLRequest or GSSENCRequest.
func (w *wire) readByte() (byte, error) {
	b, err := w.r.ReadByte()
	if err != nil {
		return 0, w.wrap(err)
	}
	return b, nil
}

// read reads one typed message (Byte1 type, Int32 length, body) and
// records a summary of it.
func (w *wire) read() (byte, []byte, error) {
	typ, body, err := readMessage(w.r, w.max)
	if err != nil {
		if errors.Is(err, starttls.ErrLineTooLong) || errors.Is(err, starttls.ErrProtocol) {
			w.note(err.Error())
			return 0, nil, err
		}
		return 0, nil, w.wrap(err)
	}
	w.tr.Add(w.remote(), w.tls, describe(typ, body, w.local == starttls.FromClient))
	return typ, body, nil
}

// readStartup reads one untyped start-up packet (Int32 length, Int32 code,
// rest) as the server sees it first.
func (w *wire) readStartup() ([]byte, error) {
	body, err := readStartupPacket(w.r)
	if err != nil {
		if errors.Is(err, starttls.ErrLineTooLong) || errors.Is(err, starttls.ErrProtocol) {
			return nil, err
		}
		return nil, w.wrap(err)
	}
	w.tr.Add(w.remote(), w.tls, describeStartup(body))
	return body, nil
}

func (w *wire) buffered() int { return w.r.Buffered() }

// takeBuffered returns and consumes the bytes read but not yet parsed.
func (w *wire) takeBuffered() []byte {
	n := w.r.Buffered()
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	io.ReadFull(w.r, b)
	return b
}

// upgrade switches to tc with a fresh reader and writer: nothing read
// before the handshake can leak into the TLS session.
func (w *wire) upgrade(tc *tls.Conn) {
	w.reset(tc)
	st := tc.ConnectionState()
	alpn := ""
	if st.NegotiatedProtocol != "" {
		alpn = ", ALPN " + st.NegotiatedProtocol
	}
	w.note(fmt.Sprintf("TLS handshake done: %s, %s%s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), alpn))
}

// bufferedConn reads what the wire buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (w *wire) netConn() net.Conn { return &bufferedConn{Conn: w.raw, r: w.r} }

func (w *wire) wrap(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("postgres: timed out waiting for the peer: %w", err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("postgres: connection closed by the peer: %w", err)
	}
	return fmt.Errorf("postgres: %w", err)
}

// readMessage reads one typed message. The length counts itself (so at
// least 4) and type plus length may not exceed max.
func readMessage(r *bufio.Reader, max int) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return 0, nil, err
	}
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	typ := hdr[0]
	n := int64(int32(binary.BigEndian.Uint32(hdr[1:])))
	if typ == 0x16 && hdr[1] == 0x03 {
		return typ, nil, fmt.Errorf("postgres: TLS record where a message was expected: %w", starttls.ErrTLSOnPlaintextPort)
	}
	if n < 4 {
		return typ, nil, starttls.ProtocolError("postgres", "message %q with invalid length %d", typ, n)
	}
	if n+1 > int64(max) {
		return typ, nil, fmt.Errorf("postgres: message %q of %d bytes exceeds the limit of %d: %w", typ, n+1, max, starttls.ErrLineTooLong)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return typ, body, nil
}

// readStartupPacket reads an untyped packet: Int32 length (8 to
// maxStartupSize, itself included), then the code and the rest, returned
// together.
func readStartupPacket(r *bufio.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return nil, err
	}
	if hdr[0] == 0x16 {
		return nil, fmt.Errorf("postgres: TLS ClientHello where a start-up packet was expected: %w", starttls.ErrTLSOnPlaintextPort)
	}
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n := int64(int32(binary.BigEndian.Uint32(hdr[:])))
	if n < 8 {
		return nil, starttls.ProtocolError("postgres", "invalid length of start-up packet: %d", n)
	}
	if n > maxStartupSize {
		return nil, fmt.Errorf("postgres: start-up packet of %d bytes exceeds %d: %w", n, maxStartupSize, starttls.ErrLineTooLong)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// builder assembles a message.
type builder struct {
	b   []byte
	off int // where the length goes: 1 after a type byte, 0 untyped
}

// newMessage starts a message of type typ; 0 starts an untyped start-up
// packet.
func newMessage(typ byte) *builder {
	if typ == 0 {
		return &builder{b: make([]byte, 4, 64)}
	}
	return &builder{b: append(make([]byte, 0, 64), typ, 0, 0, 0, 0), off: 1}
}

func (b *builder) int32(v int32) *builder {
	b.b = binary.BigEndian.AppendUint32(b.b, uint32(v))
	return b
}
func (b *builder) int16(v int16) *builder {
	b.b = binary.BigEndian.AppendUint16(b.b, uint16(v))
	return b
}
func (b *builder) byte1(v byte) *builder { b.b = append(b.b, v); return b }
func (b *builder) bytes(v []byte) *builder {
	b.b = append(b.b, v...)
	return b
}
func (b *builder) cstring(s string) *builder { b.b = append(append(b.b, s...), 0); return b }

// done fills in the length.
func (b *builder) done() []byte {
	binary.BigEndian.PutUint32(b.b[b.off:], uint32(len(b.b)-b.off))
	return b.b
}

// decoder reads a message body; its error is sticky.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = starttls.ProtocolError("postgres", "truncated or malformed message (%s)", what)
	}
}

func (d *decoder) int32() int32 {
	if d.err != nil || len(d.b) < 4 {
		d.fail("int32")
		return 0
	}
	v := int32(binary.BigEndian.Uint32(d.b))
	d.b = d.b[4:]
	return v
}

func (d *decoder) int16() int16 {
	if d.err != nil || len(d.b) < 2 {
		d.fail("int16")
		return 0
	}
	v := int16(binary.BigEndian.Uint16(d.b))
	d.b = d.b[2:]
	return v
}

func (d *decoder) byte1() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) cstring() string {
	if d.err != nil {
		return ""
	}
	i := bytes.IndexByte(d.b, 0)
	if i < 0 {
		d.fail("string without NUL")
		return ""
	}
	s := string(d.b[:i])
	d.b = d.b[i+1:]
	return s
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.fail("bytes")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// end fails unless the body was consumed exactly.
func (d *decoder) end(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = starttls.ProtocolError("postgres", "%d trailing bytes in %s", len(d.b), what)
	}
	return d.err
}

// parseError parses the fields of an ErrorResponse or NoticeResponse
// (§55.8), bounded in count and length.
func parseError(body []byte) (*Error, error) {
	d := &decoder{b: body}
	e := &Error{}
	for n := 0; ; n++ {
		code := d.byte1()
		if d.err != nil {
			return nil, d.err
		}
		if code == 0 {
			break
		}
		if n >= maxErrorFields {
			return nil, starttls.ProtocolError("postgres", "more than %d fields in an error message", maxErrorFields)
		}
		v := d.cstring()
		if len(v) > maxFieldLen {
			v = v[:maxFieldLen] + "…"
		}
		switch code {
		case 'S':
			if e.Severity == "" {
				e.Severity = v
			}
		case 'V':
			e.Severity = v
		case 'C':
			e.Code = v
		case 'M':
			e.Message = v
		case 'D':
			e.Detail = v
		case 'H':
			e.Hint = v
		}
	}
	if err := d.end("error message"); err != nil {
		return nil, err
	}
	if e.Severity == "" {
		e.Severity = "ERROR"
	}
	return e, nil
}

// errorMessage builds an ErrorResponse.
func errorMessage(severity, code, msg string) []byte {
	return newMessage('E').
		byte1('S').cstring(severity).
		byte1('V').cstring(severity).
		byte1('C').cstring(code).
		byte1('M').cstring(msg).
		byte1(0).done()
}

// parseDataRow parses a DataRow; NULL becomes "".
func parseDataRow(body []byte) ([]string, error) {
	d := &decoder{b: body}
	n := int(d.int16())
	if d.err == nil && (n < 0 || n > maxColumns) {
		return nil, starttls.ProtocolError("postgres", "DataRow with %d columns", n)
	}
	row := make([]string, 0, min(n, 64))
	for i := 0; i < n && d.err == nil; i++ {
		l := int(d.int32())
		if l == -1 {
			row = append(row, "")
			continue
		}
		row = append(row, string(d.take(l)))
	}
	if err := d.end("DataRow"); err != nil {
		return nil, err
	}
	return row, nil
}

// startupParams parses the parameters of a StartupMessage (after the
// code): name/value pairs ending with an empty name.
func startupParams(rest []byte) ([][2]string, error) {
	d := &decoder{b: rest}
	var ps [][2]string
	for {
		k := d.cstring()
		if d.err != nil {
			return nil, d.err
		}
		if k == "" {
			break
		}
		v := d.cstring()
		ps = append(ps, [2]string{k, v})
	}
	return ps, d.end("StartupMessage")
}

// startupMessage builds a protocol 3.0 StartupMessage.
func startupMessage(params [][2]string) []byte {
	b := newMessage(0).int32(ProtocolVersion)
	for _, p := range params {
		b.cstring(p[0]).cstring(p[1])
	}
	return b.byte1(0).done()
}

func sslRequest() []byte { return newMessage(0).int32(SSLRequestCode).done() }

// authName is the name of an authentication request code, as in
// Result.AuthAfter.
func authName(code int32) string {
	switch code {
	case 0:
		return "TRUST"
	case 2:
		return "KERBEROS"
	case 3:
		return "CLEARTEXT"
	case 5:
		return "MD5"
	case 7:
		return "GSS"
	case 9:
		return "SSPI"
	case 10:
		return "SASL"
	}
	return "AUTH-" + strconv.Itoa(int(code))
}

// saslMechanisms parses the list of an AuthenticationSASL body (after the
// code).
func saslMechanisms(rest []byte) ([]string, error) {
	d := &decoder{b: rest}
	var ms []string
	for {
		m := d.cstring()
		if d.err != nil {
			return nil, d.err
		}
		if m == "" {
			break
		}
		if len(ms) >= 16 {
			return nil, starttls.ProtocolError("postgres", "too many SASL mechanisms")
		}
		ms = append(ms, m)
	}
	return ms, d.end("AuthenticationSASL")
}

// describe summarizes a message for the transcript. fromBackend selects
// the meaning of the type byte ('D' is DataRow from the backend, Describe
// from the frontend).
func describe(typ byte, body []byte, fromBackend bool) string {
	d := &decoder{b: body}
	if !fromBackend {
		switch typ {
		case 'Q':
			return "Query " + clipText(strings.TrimSuffix(string(body), "\x00"), 200)
		case 'X':
			return "Terminate"
		case 'p':
			return fmt.Sprintf("PasswordMessage (%d bytes)", len(body))
		}
		return fmt.Sprintf("message %q (%d bytes)", typ, len(body))
	}
	switch typ {
	case 'R':
		code := d.int32()
		if code == 10 {
			ms, _ := saslMechanisms(d.b)
			return "AuthenticationSASL " + strings.Join(ms, " ")
		}
		switch code {
		case 0:
			return "AuthenticationOk"
		case 3:
			return "AuthenticationCleartextPassword"
		case 5:
			return "AuthenticationMD5Password"
		case 11:
			return "AuthenticationSASLContinue " + clipText(string(d.b), 200)
		case 12:
			return "AuthenticationSASLFinal " + clipText(string(d.b), 200)
		}
		return fmt.Sprintf("Authentication request %d", code)
	case 'E', 'N':
		name := "ErrorResponse"
		if typ == 'N' {
			name = "NoticeResponse"
		}
		e, err := parseError(body)
		if err != nil {
			return name + " (malformed)"
		}
		return fmt.Sprintf("%s %s %s %s", name, e.Severity, e.Code, clipText(e.Message, 200))
	case 'S':
		k := d.cstring()
		v := d.cstring()
		return "ParameterStatus " + clipText(k, 64) + "=" + clipText(v, 200)
	case 'K':
		return "BackendKeyData"
	case 'Z':
		return "ReadyForQuery " + clipText(string(body), 4)
	case 'T':
		return fmt.Sprintf("RowDescription (%d bytes)", len(body))
	case 'D':
		row, err := parseDataRow(body)
		if err != nil {
			return "DataRow (malformed)"
		}
		return "DataRow " + clipText(fmt.Sprintf("%q", row), 200)
	case 'C':
		return "CommandComplete " + clipText(d.cstring(), 100)
	case 'I':
		return "EmptyQueryResponse"
	case 'v':
		return "NegotiateProtocolVersion"
	}
	return fmt.Sprintf("message %q (%d bytes)", typ, len(body))
}

// describeStartup summarizes an untyped packet (without the length).
func describeStartup(body []byte) string {
	d := &decoder{b: body}
	switch code := d.int32(); code {
	case SSLRequestCode:
		return "SSLRequest"
	case GSSENCRequestCode:
		return "GSSENCRequest"
	case CancelRequestCode:
		return "CancelRequest"
	default:
		ps, err := startupParams(d.b)
		if err != nil {
			return fmt.Sprintf("start-up packet, protocol %d.%d (malformed)", code>>16, code&0xffff)
		}
		var kv []string
		for _, p := range ps {
			kv = append(kv, clipText(p[0], 64)+"="+clipText(p[1], 64))
		}
		return fmt.Sprintf("StartupMessage %d.%d %s", code>>16, code&0xffff, strings.Join(kv, " "))
	}
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
