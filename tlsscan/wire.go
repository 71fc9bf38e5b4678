package tlsscan

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Wire limits (RFC 5246 §6.2: a TLSCiphertext fragment is at most
// 2^14+2048 bytes; handshake messages are bounded here, not by the RFC).
const (
	maxRecord       = 16384 + 2048
	maxHandshakeMsg = 64 << 10
	maxFlight       = 256 << 10 // bytes read per probe before giving up
	maxSSLv2Record  = 32767
)

// Record content types and handshake types (RFC 5246 §6.2.1, §7.4).
const (
	recChangeCipherSpec = 20
	recAlert            = 21
	recHandshake        = 22
	recApplicationData  = 23

	hsServerHello       = 2
	hsCertificate       = 11
	hsServerKeyExchange = 12
	hsCertificateStatus = 22
)

// Alert descriptions the scanner interprets (RFC 8446 §6.2, RFC 7507 §2).
const (
	alertHandshakeFailure      = 40
	alertInappropriateFallback = 86
)

// Wire versions.
const (
	vSSL2  = 0x0002
	vSSL3  = 0x0300
	vTLS10 = 0x0301
	vTLS11 = 0x0302
	vTLS12 = 0x0303
	vTLS13 = 0x0304
)

var wireVersion = map[string]uint16{SSLv2: vSSL2, SSLv3: vSSL3, TLS10: vTLS10, TLS11: vTLS11, TLS12: vTLS12, TLS13: vTLS13}

// hrrRandom is SHA-256("HelloRetryRequest"), the Random of a
// HelloRetryRequest (RFC 8446 §4.1.3).
var hrrRandom = sha256.Sum256([]byte("HelloRetryRequest"))

var (
	errShort      = errors.New("tlsscan: truncated message")
	errTooLarge   = errors.New("tlsscan: message too large")
	errNotTLS     = errors.New("tlsscan: peer did not answer with TLS")
	errUnexpected = errors.New("tlsscan: unexpected handshake message")
)

// cursor is a sticky-error decoder over a byte slice: after the first
// short read every accessor returns zero values and ok reports false.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) take(n int) []byte {
	if c.bad || n < 0 || len(c.b) < n {
		c.bad = true
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}
func (c *cursor) u8() uint8 {
	if v := c.take(1); v != nil {
		return v[0]
	}
	return 0
}
func (c *cursor) u16() uint16 {
	if v := c.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}
func (c *cursor) vec8() []byte  { return c.take(int(c.u8())) }
func (c *cursor) vec16() []byte { return c.take(int(c.u16())) }
func (c *cursor) ok() bool      { return !c.bad }
func (c *cursor) empty() bool   { return len(c.b) == 0 }

// builder appends big-endian fields and length-prefixed vectors.
type builder struct{ b []byte }

func (w *builder) u8(v uint8)     { w.b = append(w.b, v) }
func (w *builder) u16(v uint16)   { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *builder) bytes(v []byte) { w.b = append(w.b, v...) }

// vec writes a length prefix of n bytes (1, 2 or 3) around what f writes.
func (w *builder) vec(n int, f func()) {
	at := len(w.b)
	w.b = append(w.b, make([]byte, n)...)
	f()
	l := len(w.b) - at - n
	for i := range n {
		w.b[at+i] = byte(l >> (8 * (n - 1 - i)))
	}
}

// hello describes one ClientHello.
type hello struct {
	version    string   // one of Versions
	suites     []uint16 // cipher suites, in preference order
	groups     []uint16 // supported_groups
	keyShares  []keyShare
	serverName string
	deflate    bool // offer DEFLATE before null (CRIME probe)
	fallback   bool // TLS_FALLBACK_SCSV (RFC 7507)
}

type keyShare struct {
	group uint16
	key   []byte
}

// sigAlgs is the signature_algorithms list (RFC 8446 §4.2.3, RFC 5246
// §7.4.1.4.1): modern first, then the SHA-1, SHA-224 and MD5 ones old
// servers may need.
var sigAlgs = []uint16{
	0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b,
	0x081a, 0x081b, 0x081c, 0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502,
	0x0602, 0x0203, 0x0201, 0x0202, 0x0101, 0x0102,
}

// marshal returns the ClientHello as records (RFC 5246 §7.4.1.2, RFC 8446
// §4.1.2, RFC 6101 §5.6.1.2 for SSLv3).
func (h *hello) marshal(random []byte) []byte {
	if h.version == SSLv2 {
		return h.marshalSSLv2(random)
	}
	v := wireVersion[h.version]
	legacy := min(v, vTLS12)
	var body builder
	body.u16(legacy)
	body.bytes(random[:32])
	if h.version == TLS13 {
		// A legacy_session_id helps middleboxes (RFC 8446 §D.4).
		body.vec(1, func() { body.bytes(random[:32]) })
	} else {
		body.u8(0)
	}
	body.vec(2, func() {
		for _, s := range h.suites {
			body.u16(s)
		}
		if h.version == SSLv3 {
			body.u16(0x00ff) // TLS_EMPTY_RENEGOTIATION_INFO_SCSV, RFC 5746 §3.3
		}
		if h.fallback {
			body.u16(0x5600) // TLS_FALLBACK_SCSV, RFC 7507 §2
		}
	})
	if h.deflate {
		body.bytes([]byte{2, 1, 0})
	} else {
		body.bytes([]byte{1, 0})
	}
	if h.version != SSLv3 {
		body.vec(2, func() { h.extensions(&body, v) })
	}
	var hs builder
	hs.u8(1) // client_hello
	hs.vec(3, func() { hs.bytes(body.b) })
	var rec builder
	rec.u8(recHandshake)
	rec.u16(min(legacy, vTLS10))
	rec.vec(2, func() { rec.bytes(hs.b) })
	return rec.b
}

func (h *hello) extensions(w *builder, v uint16) {
	ext := func(typ uint16, f func()) {
		w.u16(typ)
		w.vec(2, f)
	}
	if h.serverName != "" { // RFC 6066 §3
		ext(0, func() {
			w.vec(2, func() {
				w.u8(0)
				w.vec(2, func() { w.bytes([]byte(h.serverName)) })
			})
		})
	}
	ext(5, func() { w.bytes([]byte{1, 0, 0, 0, 0}) }) // status_request, RFC 6066 §8
	if len(h.groups) > 0 {
		ext(10, func() { // supported_groups, RFC 8422 §5.1.1, RFC 7919 §2
			w.vec(2, func() {
				for _, g := range h.groups {
					w.u16(g)
				}
			})
		})
	}
	ext(11, func() { w.bytes([]byte{1, 0}) }) // ec_point_formats: uncompressed, RFC 8422 §5.1.2
	if v >= vTLS12 {
		ext(13, func() { // signature_algorithms
			w.vec(2, func() {
				for _, s := range sigAlgs {
					w.u16(s)
				}
			})
		})
	}
	if v <= vTLS12 {
		ext(0xff01, func() { w.u8(0) }) // renegotiation_info, RFC 5746 §3.4
		ext(35, func() {})              // session_ticket, RFC 5077 §3.2
		ext(23, func() {})              // extended_master_secret, RFC 7627
	}
	if v == vTLS13 {
		ext(43, func() { w.vec(1, func() { w.u16(vTLS13) }) }) // supported_versions, RFC 8446 §4.2.1
		ext(45, func() { w.vec(1, func() { w.u8(1) }) })       // psk_key_exchange_modes: psk_dhe_ke
		ext(51, func() {                                       // key_share, RFC 8446 §4.2.8
			w.vec(2, func() {
				for _, k := range h.keyShares {
					w.u16(k.group)
					w.vec(2, func() { w.bytes(k.key) })
				}
			})
		})
	}
}

// marshalSSLv2 builds an SSLv2 CLIENT-HELLO offering the seven SSLv2
// cipher specs (2-byte header with the high bit set;
// draft-hickman-netscape-ssl-00 "Client Only Protocol Messages").
func (h *hello) marshalSSLv2(random []byte) []byte {
	var b builder
	b.u8(1) // MSG-CLIENT-HELLO
	b.u16(vSSL2)
	b.u16(uint16(3 * len(sslv2Specs)))
	b.u16(0)  // session id
	b.u16(16) // challenge
	for _, s := range sslv2Specs {
		b.bytes([]byte{byte(s.id >> 16), byte(s.id >> 8), byte(s.id)})
	}
	b.bytes(random[:16])
	return append([]byte{0x80 | byte(len(b.b)>>8), byte(len(b.b))}, b.b...)
}

// serverHello is a parsed ServerHello or HelloRetryRequest.
type serverHello struct {
	legacyVersion uint16
	version       uint16 // supported_versions if present, else legacyVersion
	hrr           bool
	sessionID     []byte
	suite         uint16
	compression   uint8
	group         uint16 // key_share group (TLS 1.3), selected_group in an HRR
	renegInfo     bool
	ticket        bool
}

// parseServerHello parses the body of a ServerHello handshake message
// (RFC 5246 §7.4.1.3, RFC 8446 §4.1.3, §4.1.4).
func parseServerHello(b []byte) (*serverHello, error) {
	c := cursor{b: b}
	sh := &serverHello{legacyVersion: c.u16()}
	random := c.take(32)
	sh.sessionID = c.vec8()
	sh.suite = c.u16()
	sh.compression = c.u8()
	if !c.ok() {
		return nil, fmt.Errorf("%w: ServerHello", errShort)
	}
	if len(sh.sessionID) > 32 {
		return nil, errors.New("tlsscan: ServerHello session id longer than 32 bytes")
	}
	sh.hrr = bytes.Equal(random, hrrRandom[:])
	sh.version = sh.legacyVersion
	if !c.empty() {
		exts := cursor{b: c.vec16()}
		if !c.ok() || !c.empty() {
			return nil, fmt.Errorf("%w: ServerHello extensions", errShort)
		}
		seen := map[uint16]bool{}
		for !exts.empty() {
			typ := exts.u16()
			data := cursor{b: exts.vec16()}
			if !exts.ok() {
				return nil, fmt.Errorf("%w: ServerHello extension", errShort)
			}
			if seen[typ] {
				return nil, fmt.Errorf("tlsscan: duplicate ServerHello extension %d", typ)
			}
			seen[typ] = true
			switch typ {
			case 43: // supported_versions
				sh.version = data.u16()
			case 51: // key_share: KeyShareEntry, or selected_group in an HRR
				sh.group = data.u16()
			case 0xff01: // renegotiation_info: an empty renegotiated_connection
				v := data.vec8()
				sh.renegInfo = data.ok() && len(v) == 0
			case 35:
				sh.ticket = true
			}
			if !data.ok() {
				return nil, fmt.Errorf("%w: ServerHello extension %d", errShort, typ)
			}
		}
	}
	return sh, nil
}

// parseAlert parses an alert record's payload (RFC 5246 §7.2).
func parseAlert(b []byte) (level, desc uint8, err error) {
	if len(b) < 2 {
		return 0, 0, fmt.Errorf("%w: alert", errShort)
	}
	return b[0], b[1], nil
}

// parseRecordHeader parses a TLSPlaintext header (RFC 5246 §6.2.1).
func parseRecordHeader(h []byte) (typ uint8, version uint16, n int, err error) {
	if len(h) < 5 {
		return 0, 0, 0, fmt.Errorf("%w: record header", errShort)
	}
	typ, version, n = h[0], binary.BigEndian.Uint16(h[1:3]), int(binary.BigEndian.Uint16(h[3:5]))
	if typ < recChangeCipherSpec || typ > recApplicationData || h[1] != 3 {
		return 0, 0, 0, errNotTLS
	}
	if n > maxRecord {
		return 0, 0, 0, fmt.Errorf("%w: record of %d bytes", errTooLarge, n)
	}
	return typ, version, n, nil
}

// keyExchange is what a ServerKeyExchange tells.
type keyExchange struct {
	dhBits int    // finite-field DH prime size
	group  uint16 // ECDHE named curve
}

// parseServerKeyExchange reads the parameters at the start of a
// ServerKeyExchange: ServerDHParams (RFC 5246 §7.4.3) when ecdhe is
// false, ServerECDHParams with a named curve (RFC 8422 §5.4) when true.
func parseServerKeyExchange(b []byte, ecdhe bool) (keyExchange, error) {
	c := cursor{b: b}
	var kx keyExchange
	if ecdhe {
		if t := c.u8(); t != 3 { // named_curve
			if c.ok() {
				return kx, fmt.Errorf("tlsscan: ServerKeyExchange curve type %d", t)
			}
		}
		kx.group = c.u16()
		c.vec8() // public point
	} else {
		p := c.vec16()
		c.vec16() // g
		c.vec16() // Ys
		p = bytes.TrimLeft(p, "\x00")
		if len(p) > 0 {
			kx.dhBits = 8*(len(p)-1) + bitLen(p[0])
		}
	}
	if !c.ok() {
		return keyExchange{}, fmt.Errorf("%w: ServerKeyExchange", errShort)
	}
	if !ecdhe && kx.dhBits == 0 {
		return keyExchange{}, errors.New("tlsscan: ServerKeyExchange with an empty DH prime")
	}
	return kx, nil
}

func bitLen(b byte) int {
	n := 0
	for ; b != 0; b >>= 1 {
		n++
	}
	return n
}

// sslv2Hello is a parsed SSLv2 SERVER-HELLO.
type sslv2Hello struct {
	version uint16
	specs   []uint32
}

// parseSSLv2ServerHello parses an SSLv2 record body holding a
// SERVER-HELLO (message type 4).
func parseSSLv2ServerHello(b []byte) (*sslv2Hello, error) {
	c := cursor{b: b}
	if t := c.u8(); t != 4 {
		if !c.ok() {
			return nil, fmt.Errorf("%w: SSLv2 message", errShort)
		}
		return nil, fmt.Errorf("tlsscan: SSLv2 message type %d, not SERVER-HELLO", t)
	}
	c.u8() // session id hit
	c.u8() // certificate type
	h := &sslv2Hello{version: c.u16()}
	certLen, specsLen, connIDLen := int(c.u16()), int(c.u16()), int(c.u16())
	c.take(certLen)
	specs := c.take(specsLen)
	c.take(connIDLen)
	if !c.ok() {
		return nil, fmt.Errorf("%w: SSLv2 SERVER-HELLO", errShort)
	}
	if specsLen%3 != 0 {
		return nil, errors.New("tlsscan: SSLv2 cipher specs not a multiple of 3 bytes")
	}
	for i := 0; i+3 <= len(specs); i += 3 {
		h.specs = append(h.specs, uint32(specs[i])<<16|uint32(specs[i+1])<<8|uint32(specs[i+2]))
	}
	return h, nil
}

// readSSLv2 reads one SSLv2 record (2- or 3-byte header) and parses it as
// a SERVER-HELLO. A TLS record in answer (an alert) is returned as
// *alertError.
func readSSLv2(r io.Reader) (*sslv2Hello, error) {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return nil, err
	}
	if hdr[0] == recAlert || hdr[0] == recHandshake {
		var rest [5]byte
		copy(rest[:], hdr[:2])
		if _, err := io.ReadFull(r, rest[2:]); err != nil {
			return nil, err
		}
		typ, _, n, err := parseRecordHeader(rest[:])
		if err != nil {
			return nil, err
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return nil, err
		}
		if typ == recAlert {
			_, d, err := parseAlert(payload)
			if err != nil {
				return nil, err
			}
			return nil, &alertError{desc: d}
		}
		return nil, errUnexpected
	}
	var n int
	if hdr[0]&0x80 != 0 {
		n = int(hdr[0]&0x7f)<<8 | int(hdr[1])
	} else {
		n = int(hdr[0]&0x3f)<<8 | int(hdr[1])
		if _, err := io.ReadFull(r, hdr[2:3]); err != nil {
			return nil, err
		}
	}
	if n > maxSSLv2Record {
		return nil, errTooLarge
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	if len(body) > 0 && body[0] == 0 { // MSG-ERROR
		return nil, &alertError{desc: alertHandshakeFailure, sslv2: true}
	}
	return parseSSLv2ServerHello(body)
}

// alertError is a fatal alert from the server.
type alertError struct {
	desc  uint8
	sslv2 bool
}

func (e *alertError) Error() string {
	if e.sslv2 {
		return "tlsscan: SSLv2 error message"
	}
	return fmt.Sprintf("tlsscan: alert %d", e.desc)
}

// flight is what the scanner learns from the server's first flight.
type flight struct {
	sh *serverHello
	kx *keyExchange // nil unless a ServerKeyExchange was read
}

// handshakeReader reassembles handshake messages across records
// (RFC 5246 §6.2.1 allows fragmentation and coalescing).
type handshakeReader struct {
	r    io.Reader
	buf  []byte
	read int
}

func (h *handshakeReader) record() (uint8, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(h.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	typ, _, n, err := parseRecordHeader(hdr[:])
	if err != nil {
		return 0, nil, err
	}
	h.read += 5 + n
	if h.read > maxFlight {
		return 0, nil, errTooLarge
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(h.r, payload); err != nil {
		return 0, nil, unexpectedEOF(err)
	}
	return typ, payload, nil
}

// next returns the next handshake message.
func (h *handshakeReader) next() (uint8, []byte, error) {
	for {
		if len(h.buf) >= 4 {
			n := int(h.buf[1])<<16 | int(h.buf[2])<<8 | int(h.buf[3])
			if n > maxHandshakeMsg {
				return 0, nil, fmt.Errorf("%w: handshake message of %d bytes", errTooLarge, n)
			}
			if len(h.buf) >= 4+n {
				typ, body := h.buf[0], h.buf[4:4+n]
				h.buf = h.buf[4+n:]
				return typ, body, nil
			}
		}
		typ, payload, err := h.record()
		if err != nil {
			if len(h.buf) > 0 {
				err = unexpectedEOF(err)
			}
			return 0, nil, err
		}
		switch typ {
		case recHandshake:
			h.buf = append(h.buf, payload...)
		case recAlert:
			_, d, err := parseAlert(payload)
			if err != nil {
				return 0, nil, err
			}
			return 0, nil, &alertError{desc: d}
		case recChangeCipherSpec:
			// TLS 1.3 middlebox compatibility (RFC 8446 §D.4).
		default:
			return 0, nil, errUnexpected
		}
	}
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readFlight reads the ServerHello and, when wantKX says the picked suite
// has one, the ServerKeyExchange. It stops at ServerHelloDone.
func readFlight(r io.Reader, wantKX func(sh *serverHello) (want, ecdhe bool)) (*flight, error) {
	hr := &handshakeReader{r: r}
	typ, body, err := hr.next()
	if err != nil {
		return nil, err
	}
	if typ != hsServerHello {
		return nil, fmt.Errorf("%w: type %d before ServerHello", errUnexpected, typ)
	}
	sh, err := parseServerHello(body)
	if err != nil {
		return nil, err
	}
	f := &flight{sh: sh}
	want, ecdhe := false, false
	if wantKX != nil && !sh.hrr && sh.version <= vTLS12 {
		want, ecdhe = wantKX(sh)
	}
loop:
	for want {
		typ, body, err := hr.next()
		if err != nil {
			break // the ServerHello is what counts
		}
		switch typ {
		case hsCertificate, hsCertificateStatus:
		case hsServerKeyExchange:
			if kx, err := parseServerKeyExchange(body, ecdhe); err == nil {
				f.kx = &kx
			}
			break loop
		default:
			break loop
		}
	}
	return f, nil
}
