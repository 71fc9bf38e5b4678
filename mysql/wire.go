package mysql

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
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

// Packet limits.
const (
	// MaxHandshakePacket bounds the packets of the connection phase
	// (greeting, handshake response, auth exchange).
	MaxHandshakePacket = 64 << 10
	// MaxResultPacket bounds one packet of a query result.
	MaxResultPacket = 1 << 20
	// MaxResultBytes bounds a whole result set.
	MaxResultBytes = 16 << 20
	// MaxColumns bounds the columns of a result set.
	MaxColumns = 4096
	// maxPayload is the largest payload of a single packet; a packet of
	// exactly this length announces a continuation, which this package
	// never accepts.
	maxPayload = 1<<24 - 1
)

// wire is a packet connection: bounded reads, sequence ids checked, every
// packet summarised in the transcript.
type wire struct {
	conn  net.Conn
	r     *bufio.Reader
	seq   byte
	tls   bool
	tr    *starttls.Transcript
	local starttls.Direction
	// sniff makes the next readPacket fail with ErrTLSOnPlaintextPort
	// when the header looks like a TLS record (servers, before TLS).
	sniff bool
}

func newWire(conn net.Conn, tr *starttls.Transcript, local starttls.Direction) *wire {
	w := &wire{tr: tr, local: local}
	w.reset(conn)
	return w
}

func (w *wire) reset(conn net.Conn) {
	w.conn = conn
	_, w.tls = conn.(*tls.Conn)
	if _, ok := conn.(*keptConn); ok {
		w.tls = true
	}
	w.r = bufio.NewReaderSize(conn, 4096)
}

func (w *wire) remote() starttls.Direction {
	if w.local == starttls.FromClient {
		return starttls.FromServer
	}
	return starttls.FromClient
}

func (w *wire) note(s string) { w.tr.Add(starttls.Note, w.tls, s) }

// errPacketTooLong wraps starttls.ErrLineTooLong for packets.
func errPacketTooLong(n, max int) error {
	return fmt.Errorf("mysql: packet of %d bytes exceeds the limit of %d: %w", n, max, starttls.ErrLineTooLong)
}

// readPacket reads one packet of at most max payload bytes and checks its
// sequence id.
func (w *wire) readPacket(max int) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(w.r, h[:]); err != nil {
		return nil, wrapIO(err)
	}
	if w.sniff && h[0] == 0x16 && h[1] == 0x03 && h[2] >= 1 {
		w.tr.Add(w.remote(), w.tls, "(TLS ClientHello)")
		return nil, fmt.Errorf("mysql: %w", starttls.ErrTLSOnPlaintextPort)
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if n > max || n == maxPayload {
		w.tr.Add(w.remote(), w.tls, fmt.Sprintf("(packet header announcing %d bytes)", n))
		return nil, errPacketTooLong(n, max)
	}
	if h[3] != w.seq {
		w.tr.Add(w.remote(), w.tls, fmt.Sprintf("(packet with sequence id %d, %d bytes)", h[3], n))
		return nil, starttls.ProtocolError("mysql", "packet sequence id %d, want %d", h[3], w.seq)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(w.r, p); err != nil {
		w.tr.Add(w.remote(), w.tls, fmt.Sprintf("(truncated packet, %d bytes announced)", n))
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, wrapIO(err)
	}
	w.seq++
	return p, nil
}

// record adds a summary of a packet read to the transcript.
func (w *wire) record(text string) { w.tr.Add(w.remote(), w.tls, text) }

// writePacket writes one packet with the next sequence id; shown is the
// transcript's summary of it.
func (w *wire) writePacket(p []byte, shown string) error {
	return w.writePackets([][]byte{p}, []string{shown})
}

// writePackets writes packets with consecutive sequence ids in one write.
func (w *wire) writePackets(ps [][]byte, shown []string) error {
	var b []byte
	for i, p := range ps {
		if len(p) >= maxPayload {
			return errorf("refusing to send a packet of %d bytes", len(p))
		}
		b = append(b, byte(len(p)), byte(len(p)>>8), byte(len(p)>>16), w.seq)
		b = append(b, p...)
		w.seq++
		w.tr.Add(w.local, w.tls, shown[i])
	}
	_, err := w.conn.Write(b)
	return wrapIO(err)
}

func wrapIO(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("mysql: timed out waiting for the peer: %w", err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("mysql: connection closed by the peer: %w", err)
	}
	return fmt.Errorf("mysql: %w", err)
}

// keptConn is a *tls.Conn whose reads start with plaintext received before
// the handshake: the CVE-2011-0411 bug, for InsecureKeepPipelined only.
type keptConn struct {
	*tls.Conn
	r io.Reader
}

func (c *keptConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// prefixConn replays bytes already read (the start of a ClientHello)
// before the connection's own.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// decoder reads the fields of one payload; errors are sticky.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = starttls.ProtocolError("mysql", "truncated or malformed %s", what)
	}
	d.b = nil
}

func (d *decoder) bytes(n int, what string) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.fail(what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(what string) byte {
	v := d.bytes(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

func (d *decoder) u16(what string) uint16 {
	v := d.bytes(2, what)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(v)
}

func (d *decoder) u32(what string) uint32 {
	v := d.bytes(4, what)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(v)
}

// nulString reads up to a NUL byte, which it consumes.
func (d *decoder) nulString(what string) string {
	if d.err != nil {
		return ""
	}
	i := bytes.IndexByte(d.b, 0)
	if i < 0 {
		d.fail(what)
		return ""
	}
	s := string(d.b[:i])
	d.b = d.b[i+1:]
	return s
}

// lenenc reads a length-encoded integer ("Protocol::LengthEncodedInteger").
// null reports the 0xfb NULL marker of a text row.
func (d *decoder) lenenc(what string) (v uint64, null bool) {
	c := d.u8(what)
	switch {
	case d.err != nil:
		return 0, false
	case c < 0xfb:
		return uint64(c), false
	case c == 0xfb:
		return 0, true
	case c == 0xfc:
		return uint64(d.u16(what)), false
	case c == 0xfd:
		v := d.bytes(3, what)
		if v == nil {
			return 0, false
		}
		return uint64(v[0]) | uint64(v[1])<<8 | uint64(v[2])<<16, false
	case c == 0xfe:
		v := d.bytes(8, what)
		if v == nil {
			return 0, false
		}
		return binary.LittleEndian.Uint64(v), false
	}
	d.fail(what) // 0xff
	return 0, false
}

// lenencString reads a length-encoded string; null reports NULL.
func (d *decoder) lenencString(what string) (s string, null bool) {
	n, null := d.lenenc(what)
	if null || d.err != nil {
		return "", null
	}
	if n > uint64(len(d.b)) {
		d.fail(what)
		return "", false
	}
	return string(d.bytes(int(n), what)), false
}

func appendLenenc(b []byte, v uint64) []byte {
	switch {
	case v < 0xfb:
		return append(b, byte(v))
	case v <= 0xffff:
		return append(b, 0xfc, byte(v), byte(v>>8))
	case v <= 0xffffff:
		return append(b, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	}
	b = append(b, 0xfe)
	return binary.LittleEndian.AppendUint64(b, v)
}

func appendLenencString(b []byte, s string) []byte {
	return append(appendLenenc(b, uint64(len(s))), s...)
}

// Greeting is the server's Initial Handshake Packet (protocol version 10).
type Greeting struct {
	ProtocolVersion byte
	ServerVersion   string
	ConnectionID    uint32
	// Scramble is the auth-plugin-data, both parts (20 bytes normally).
	Scramble     []byte
	Capabilities uint32
	Charset      byte
	Status       uint16
	// AuthPlugin is the default auth plugin; empty without
	// CLIENT_PLUGIN_AUTH.
	AuthPlugin string
	// MariaDBCapabilities are MariaDB's extended capabilities, sent in the
	// reserved bytes when CLIENT_LONG_PASSWORD is clear.
	MariaDBCapabilities uint32
}

// String renders the greeting as Result.Greeting shows it.
func (g *Greeting) String() string {
	return fmt.Sprintf("%s (connection id %d)", starttls.Escape(g.ServerVersion), g.ConnectionID)
}

// ParseGreeting parses an Initial Handshake Packet v10 payload. It fails
// on an ERR packet (as *Error) and on any other protocol version.
func ParseGreeting(p []byte) (*Greeting, error) {
	if len(p) > 0 && p[0] == 0xff {
		return nil, parseErr(p)
	}
	d := &decoder{b: p}
	g := &Greeting{ProtocolVersion: d.u8("greeting")}
	if d.err == nil && g.ProtocolVersion != 10 {
		return nil, starttls.ProtocolError("mysql", "greeting with protocol version %d (want 10)", g.ProtocolVersion)
	}
	g.ServerVersion = d.nulString("greeting server version")
	g.ConnectionID = d.u32("greeting connection id")
	part1 := d.bytes(8, "greeting auth-plugin-data")
	d.u8("greeting filler")
	g.Capabilities = uint32(d.u16("greeting capabilities"))
	if d.err != nil {
		return nil, d.err
	}
	g.Scramble = append([]byte(nil), part1...)
	if len(d.b) == 0 {
		// Old servers end here (protocol 10 without 4.1 extensions).
		return g, nil
	}
	g.Charset = d.u8("greeting charset")
	g.Status = d.u16("greeting status")
	g.Capabilities |= uint32(d.u16("greeting capabilities")) << 16
	authLen := int(d.u8("greeting auth data length"))
	d.bytes(6, "greeting reserved")
	ext := d.u32("greeting reserved")
	if g.Capabilities&ClientLongPassword == 0 {
		g.MariaDBCapabilities = ext
	}
	if d.err != nil {
		return nil, d.err
	}
	if g.Capabilities&ClientSecureConnection != 0 {
		// Part 2 is max(13, length - 8) bytes; its last byte is a NUL.
		n := max(13, authLen-8)
		part2 := d.bytes(n, "greeting auth-plugin-data part 2")
		if d.err != nil {
			return nil, d.err
		}
		part2 = bytes.TrimRight(part2, "\x00")
		g.Scramble = append(g.Scramble, part2...)
	}
	if g.Capabilities&ClientPluginAuth != 0 && len(d.b) > 0 {
		// Some servers omit the final NUL.
		name := d.b
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		g.AuthPlugin = string(name)
	}
	return g, nil
}

// marshal encodes the greeting (server side).
func (g *Greeting) marshal() []byte {
	b := []byte{10}
	b = append(b, g.ServerVersion...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, g.ConnectionID)
	s := g.Scramble
	b = append(b, s[:8]...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(g.Capabilities))
	b = append(b, g.Charset)
	b = binary.LittleEndian.AppendUint16(b, g.Status)
	b = binary.LittleEndian.AppendUint16(b, uint16(g.Capabilities>>16))
	b = append(b, byte(len(s)+1))
	b = append(b, make([]byte, 10)...)
	b = append(b, s[8:]...)
	b = append(b, 0)
	b = append(b, g.AuthPlugin...)
	return append(b, 0)
}

// parseErr parses an ERR packet ("Protocol::ERR_Packet", 4.1 format with
// the '#' SQLSTATE marker, or the old one without).
func parseErr(p []byte) *Error {
	if len(p) < 3 || p[0] != 0xff {
		return &Error{Code: ErUnknown, Message: "malformed ERR packet"}
	}
	e := &Error{Code: binary.LittleEndian.Uint16(p[1:3])}
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.State = string(rest[1:6])
		rest = rest[6:]
	}
	e.Message = starttls.Escape(string(rest))
	if len(e.Message) > 512 {
		e.Message = e.Message[:512] + "…"
	}
	return e
}

// marshalErr encodes an ERR packet.
func marshalErr(code uint16, state, msg string) []byte {
	b := []byte{0xff}
	b = binary.LittleEndian.AppendUint16(b, code)
	b = append(b, '#')
	b = append(b, state...)
	return append(b, msg...)
}

// marshalOK encodes an OK packet with no rows affected.
func marshalOK(status uint16) []byte {
	b := []byte{0x00, 0, 0}
	b = binary.LittleEndian.AppendUint16(b, status)
	return append(b, 0, 0) // warnings
}

// marshalEOF encodes an EOF packet.
func marshalEOF(status uint16) []byte {
	b := []byte{0xfe, 0, 0}
	return binary.LittleEndian.AppendUint16(b, status)
}

// isEOF reports an EOF packet (0xfe and shorter than 9 bytes, which tells
// it from a row starting with an 8-byte length).
func isEOF(p []byte) bool { return len(p) > 0 && p[0] == 0xfe && len(p) < 9 }

// handshakeResponse is the client's HandshakeResponse41 (or, cut after the
// filler with CLIENT_SSL set, the SSLRequest).
type handshakeResponse struct {
	Capabilities uint32
	MaxPacket    uint32
	Charset      byte
	User         string
	AuthResponse []byte
	Database     string
	AuthPlugin   string
}

// charsetUTF8MB4 is utf8mb4_general_ci.
const charsetUTF8MB4 = 45

func (h *handshakeResponse) header() []byte {
	b := binary.LittleEndian.AppendUint32(nil, h.Capabilities)
	b = binary.LittleEndian.AppendUint32(b, h.MaxPacket)
	b = append(b, h.Charset)
	return append(b, make([]byte, 23)...)
}

func (h *handshakeResponse) marshal() []byte {
	b := h.header()
	b = append(b, h.User...)
	b = append(b, 0)
	switch {
	case h.Capabilities&ClientPluginAuthLenencClientData != 0:
		b = appendLenencString(b, string(h.AuthResponse))
	case h.Capabilities&ClientSecureConnection != 0:
		b = append(b, byte(len(h.AuthResponse)))
		b = append(b, h.AuthResponse...)
	default:
		b = append(b, h.AuthResponse...)
		b = append(b, 0)
	}
	if h.Capabilities&ClientConnectWithDB != 0 {
		b = append(b, h.Database...)
		b = append(b, 0)
	}
	if h.Capabilities&ClientPluginAuth != 0 {
		b = append(b, h.AuthPlugin...)
		b = append(b, 0)
	}
	return b
}

// parseHandshakeResponse parses a HandshakeResponse41 or an SSLRequest
// (sslRequest true: exactly 32 bytes with CLIENT_SSL).
func parseHandshakeResponse(p []byte) (h *handshakeResponse, sslRequest bool, err error) {
	d := &decoder{b: p}
	h = &handshakeResponse{Capabilities: d.u32("handshake response")}
	if d.err == nil && h.Capabilities&ClientProtocol41 == 0 {
		return nil, false, starttls.ProtocolError("mysql", "pre-4.1 handshake response")
	}
	h.MaxPacket = d.u32("handshake response")
	h.Charset = d.u8("handshake response")
	d.bytes(23, "handshake response filler")
	if d.err != nil {
		return nil, false, d.err
	}
	if len(d.b) == 0 && h.Capabilities&ClientSSL != 0 {
		return h, true, nil
	}
	h.User = d.nulString("handshake response user")
	switch {
	case h.Capabilities&ClientPluginAuthLenencClientData != 0:
		s, _ := d.lenencString("handshake response auth data")
		h.AuthResponse = []byte(s)
	case h.Capabilities&ClientSecureConnection != 0:
		n := int(d.u8("handshake response auth data"))
		h.AuthResponse = append([]byte(nil), d.bytes(n, "handshake response auth data")...)
	default:
		h.AuthResponse = []byte(d.nulString("handshake response auth data"))
	}
	if h.Capabilities&ClientConnectWithDB != 0 && len(d.b) > 0 {
		h.Database = d.nulString("handshake response database")
	}
	if h.Capabilities&ClientPluginAuth != 0 && len(d.b) > 0 {
		h.AuthPlugin = d.nulString("handshake response auth plugin")
	}
	// Connection attributes, if any, are ignored.
	if d.err != nil {
		return nil, false, d.err
	}
	return h, false, nil
}

// nativePassword computes the mysql_native_password response:
// SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))); empty for an empty
// password.
func nativePassword(scramble []byte, password string) []byte {
	if password == "" {
		return nil
	}
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	s := sha1.New()
	s.Write(scrambleData(scramble))
	s.Write(h2[:])
	h3 := s.Sum(nil)
	for i := range h3 {
		h3[i] ^= h1[i]
	}
	return h3
}

// cachingSHA2Password computes the caching_sha2_password fast-path
// response: XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) + scramble)).
func cachingSHA2Password(scramble []byte, password string) []byte {
	if password == "" {
		return nil
	}
	h1 := sha256.Sum256([]byte(password))
	h2 := sha256.Sum256(h1[:])
	s := sha256.New()
	s.Write(h2[:])
	s.Write(scrambleData(scramble))
	h3 := s.Sum(nil)
	for i := range h3 {
		h3[i] ^= h1[i]
	}
	return h3
}

// scrambleData is the 20-byte scramble (a trailing NUL, sent by some
// servers in auth switch data, dropped).
func scrambleData(s []byte) []byte {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

// checkNative verifies a mysql_native_password response in constant time.
func checkNative(scramble []byte, password string, resp []byte) bool {
	want := nativePassword(scramble, password)
	if len(want) != len(resp) {
		return false
	}
	return subtle.ConstantTimeCompare(want, resp) == 1
}

// Column is one column of a result set.
type Column struct {
	Name string
	Type byte
}

// Rows is a text result set. NULL values are returned as empty strings with
// the matching Null flag set.
type Rows struct {
	Columns []Column
	Rows    [][]string
	Null    [][]bool
	// AffectedRows is set for a statement without a result set.
	AffectedRows uint64
}

// parseColumn parses a ColumnDefinition41 packet.
func parseColumn(p []byte) (Column, error) {
	d := &decoder{b: p}
	for _, f := range []string{"catalog", "schema", "table", "org_table"} {
		d.lenencString("column definition " + f)
	}
	name, _ := d.lenencString("column definition name")
	d.lenencString("column definition org_name")
	d.lenenc("column definition fixed length")
	d.u16("column definition charset")
	d.u32("column definition length")
	typ := d.u8("column definition type")
	if d.err != nil {
		return Column{}, d.err
	}
	return Column{Name: starttls.Escape(name), Type: typ}, nil
}

// columnType is MYSQL_TYPE_VAR_STRING.
const columnType = 0xfd

func marshalColumn(name string) []byte {
	var b []byte
	b = appendLenencString(b, "def")
	for range 3 {
		b = appendLenencString(b, "")
	}
	b = appendLenencString(b, name)
	b = appendLenencString(b, name)
	b = append(b, 0x0c)
	b = binary.LittleEndian.AppendUint16(b, charsetUTF8MB4)
	b = binary.LittleEndian.AppendUint32(b, 1024)
	b = append(b, columnType)
	b = append(b, 0, 0) // flags
	b = append(b, 0)    // decimals
	return append(b, 0, 0)
}

// parseRow parses a text row of n columns.
func parseRow(p []byte, n int) ([]string, []bool, error) {
	d := &decoder{b: p}
	row := make([]string, n)
	nulls := make([]bool, n)
	for i := range n {
		row[i], nulls[i] = d.lenencString("row")
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	if len(d.b) != 0 {
		return nil, nil, starttls.ProtocolError("mysql", "row with %d extra bytes", len(d.b))
	}
	return row, nulls, nil
}

// readResult reads the answer to COM_QUERY ("Protocol::COM_QUERY
// Response"): OK, ERR, or a text result set with EOF packets. maxRows
// bounds the rows.
func (w *wire) readResult(maxRows int) (*Rows, error) {
	p, err := w.readPacket(MaxResultPacket)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		w.record("(empty packet)")
		return nil, starttls.ProtocolError("mysql", "empty query response")
	}
	switch p[0] {
	case 0x00:
		w.record("OK")
		d := &decoder{b: p[1:]}
		n, _ := d.lenenc("OK packet")
		return &Rows{AffectedRows: n}, nil
	case 0xff:
		e := parseErr(p)
		w.record(e.Error())
		return nil, e
	case 0xfb:
		w.record("LOCAL INFILE request")
		return nil, errorf("server asked for a local file (LOAD DATA LOCAL INFILE), refused: %w", starttls.ErrProtocol)
	}
	d := &decoder{b: p}
	n, _ := d.lenenc("column count")
	if d.err != nil || len(d.b) != 0 || n == 0 {
		w.record(fmt.Sprintf("(malformed column count, %d bytes)", len(p)))
		return nil, starttls.ProtocolError("mysql", "malformed column count")
	}
	if n > MaxColumns {
		return nil, starttls.ProtocolError("mysql", "result set with %d columns (limit %d)", n, MaxColumns)
	}
	w.record(fmt.Sprintf("result set, %d columns", n))
	rs := &Rows{}
	total := len(p)
	for range n {
		p, err := w.readPacket(MaxResultPacket)
		if err != nil {
			return nil, err
		}
		total += len(p)
		if total > MaxResultBytes {
			return nil, errorf("result set larger than %d bytes (column definitions): %w", MaxResultBytes, starttls.ErrLineTooLong)
		}
		c, err := parseColumn(p)
		if err != nil {
			return nil, err
		}
		rs.Columns = append(rs.Columns, c)
	}
	w.record("columns: " + columnNames(rs.Columns))
	p, err = w.readPacket(MaxResultPacket)
	if err != nil {
		return nil, err
	}
	if !isEOF(p) {
		return nil, starttls.ProtocolError("mysql", "no EOF packet after the column definitions")
	}
	for {
		p, err := w.readPacket(MaxResultPacket)
		if err != nil {
			return nil, err
		}
		total += len(p)
		if total > MaxResultBytes {
			return nil, errorf("result set larger than %d bytes: %w", MaxResultBytes, starttls.ErrLineTooLong)
		}
		switch {
		case isEOF(p):
			w.record(fmt.Sprintf("EOF after %d rows", len(rs.Rows)))
			return rs, nil
		case len(p) > 0 && p[0] == 0xff:
			e := parseErr(p)
			w.record(e.Error())
			return nil, e
		}
		if len(rs.Rows) >= maxRows {
			return nil, errorf("result set with more than %d rows: %w", maxRows, starttls.ErrLineTooLong)
		}
		row, nulls, err := parseRow(p, int(n))
		if err != nil {
			return nil, err
		}
		rs.Rows = append(rs.Rows, row)
		rs.Null = append(rs.Null, nulls)
	}
}

func columnNames(cs []Column) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = strconv.Quote(c.Name)
	}
	return strings.Join(names, ", ")
}
