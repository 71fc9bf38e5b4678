package tlsscan

import (
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// clientHello is what the scripted servers read of a ClientHello.
type clientHello struct {
	sslv2       bool
	version     uint16
	suites      []uint16
	compression []byte
	exts        map[uint16][]byte
}

func readClientHello(r io.Reader) (*clientHello, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return nil, err
	}
	if hdr[0]&0x80 != 0 {
		body := make([]byte, int(hdr[0]&0x7f)<<8|int(hdr[1]))
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		return &clientHello{sslv2: true, version: uint16(body[1])<<8 | uint16(body[2])}, nil
	}
	if _, err := io.ReadFull(r, hdr[2:]); err != nil {
		return nil, err
	}
	_, _, n, err := parseRecordHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, err
	}
	c := cursor{b: payload}
	c.u8()
	c.u24()
	ch := &clientHello{version: c.u16(), exts: map[uint16][]byte{}}
	c.take(32)
	c.vec8()
	suites := cursor{b: c.vec16()}
	for !suites.empty() && suites.ok() {
		ch.suites = append(ch.suites, suites.u16())
	}
	ch.compression = c.vec8()
	if !c.empty() {
		exts := cursor{b: c.vec16()}
		for !exts.empty() && exts.ok() {
			typ := exts.u16()
			ch.exts[typ] = exts.vec16()
		}
	}
	if !c.ok() {
		return nil, errShort
	}
	return ch, nil
}

func (ch *clientHello) offers(id uint16) bool { return slices.Contains(ch.suites, id) }

// pick returns the first of the server's suites the client offers.
func (ch *clientHello) pick(server []uint16) (uint16, bool) {
	for _, s := range server {
		if ch.offers(s) {
			return s, true
		}
	}
	return 0, false
}

func record(typ uint8, payload []byte) []byte {
	var w builder
	w.u8(typ)
	w.u16(vTLS12)
	w.vec(2, func() { w.bytes(payload) })
	return w.b
}

func handshakeMsg(typ uint8, body []byte) []byte {
	var w builder
	w.u8(typ)
	w.vec(3, func() { w.bytes(body) })
	return w.b
}

func alertRec(desc uint8) []byte { return record(recAlert, []byte{2, desc}) }

type shOpts struct {
	version     uint16
	suite       uint16
	compression uint8
	sessionID   []byte
	renegInfo   bool
	ticket      bool
}

func serverHelloMsg(o shOpts) []byte {
	var w builder
	w.u16(o.version)
	w.bytes(make([]byte, 32))
	w.vec(1, func() { w.bytes(o.sessionID) })
	w.u16(o.suite)
	w.u8(o.compression)
	if o.renegInfo || o.ticket {
		w.vec(2, func() {
			if o.renegInfo {
				w.bytes([]byte{0xff, 0x01, 0, 1, 0})
			}
			if o.ticket {
				w.bytes([]byte{0, 35, 0, 0})
			}
		})
	}
	return handshakeMsg(hsServerHello, w.b)
}

// dhKeyExchange is a ServerKeyExchange with a bits-long prime.
func dhKeyExchange(bits int) []byte {
	p := make([]byte, bits/8)
	p[0] = 0x80
	p[len(p)-1] = 0x0b
	var w builder
	w.vec(2, func() { w.bytes(p) })
	w.vec(2, func() { w.u8(2) })
	w.vec(2, func() { w.bytes(p) })
	w.bytes([]byte{4, 1, 0, 2, 0xaa, 0xbb}) // signature, never checked
	return handshakeMsg(hsServerKeyExchange, w.b)
}

// fakeServer answers ClientHellos with script's bytes (nil: close).
func fakeServer(t *testing.T, script func(ch *clientHello) []byte) string {
	return serve(t, func(c net.Conn) {
		ch, err := readClientHello(c)
		if err != nil {
			return
		}
		if out := script(ch); out != nil {
			c.Write(out)
		}
	})
}

func scanFake(t *testing.T, script func(ch *clientHello) []byte) *Result {
	t.Helper()
	addr := fakeServer(t, script)
	res, err := Scan(context.Background(), dialer(addr), &Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Scan() error = %v", err)
	}
	return res
}

// legacyServer speaks TLS 1.0–1.2 (min..max) with the given suites in
// its own order.
type legacyServer struct {
	min, max    uint16
	suites      []uint16
	scsv        bool // honour TLS_FALLBACK_SCSV
	compression bool // accept DEFLATE
	renegInfo   bool
	sessionID   bool
	dhBits      int
	groups      []uint16 // ECDHE curves, server order; nil = P-256
	clientOrder bool     // pick by the client's order
}

func (s legacyServer) answer(ch *clientHello) []byte {
	if ch.sslv2 || ch.version < s.min {
		return alertRec(alertProtocolVersion)
	}
	v := min(ch.version, s.max)
	if s.scsv && ch.offers(0x5600) && v < s.max {
		return alertRec(alertInappropriateFallback)
	}
	suite, ok := ch.pick(s.suites)
	if s.clientOrder {
		i := slices.IndexFunc(ch.suites, func(id uint16) bool { return slices.Contains(s.suites, id) })
		if ok = i >= 0; ok {
			suite = ch.suites[i]
		}
	}
	if !ok {
		return alertRec(alertHandshakeFailure)
	}
	o := shOpts{version: v, suite: suite}
	if s.compression && slices.Contains(ch.compression, 1) {
		o.compression = 1
	}
	o.renegInfo = s.renegInfo && (ch.exts[0xff01] != nil || ch.offers(0x00ff))
	if s.sessionID {
		o.sessionID = []byte("0123456789abcdef0123456789abcdef")
	}
	out := record(recHandshake, serverHelloMsg(o))
	c, _ := Lookup(suite)
	if c.Kex == "DHE" && s.dhBits > 0 {
		// Certificate and ServerKeyExchange in one record, as servers do.
		flight := append(handshakeMsg(hsCertificate, []byte{0, 0, 0}), dhKeyExchange(s.dhBits)...)
		out = append(out, record(recHandshake, flight)...)
	}
	if c.Kex == "ECDHE" {
		groups := s.groups
		if groups == nil {
			groups = []uint16{23}
		}
		offered := cursor{b: ch.exts[10]}
		offered = cursor{b: offered.vec16()}
		var list []uint16
		for !offered.empty() && offered.ok() {
			list = append(list, offered.u16())
		}
		i := slices.IndexFunc(groups, func(g uint16) bool { return slices.Contains(list, g) })
		if i < 0 {
			return alertRec(alertHandshakeFailure)
		}
		ske := []byte{3, byte(groups[i] >> 8), byte(groups[i]), 1, 4, 4, 1, 0, 0}
		out = append(out, record(recHandshake, handshakeMsg(hsServerKeyExchange, ske))...)
	}
	return append(out, record(recHandshake, handshakeMsg(hsServerHelloDone, nil))...)
}

func TestScanScriptedServers(t *testing.T) {
	tests := []struct {
		name   string
		server legacyServer
		check  func(t *testing.T, r *Result)
	}{
		{
			name:   "SSLv3 only",
			server: legacyServer{min: vSSL3, max: vSSL3, suites: []uint16{0x0005, 0x000a}},
			check: func(t *testing.T, r *Result) {
				if got := acceptedVersions(r); got != "SSLv3" {
					t.Errorf("Versions = %q, want SSLv3", got)
				}
				want := []string{"TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"}
				if got := cipherNames(r, SSLv3); !slices.Equal(got, want) {
					t.Errorf("Ciphers = %q, want %q", got, want)
				}
				for _, c := range r.Ciphers {
					if !c.Obsolete {
						t.Errorf("%s: Obsolete = false", c.Name)
					}
				}
				if fmtBool(r.ServerCipherOrder) != "true" || fmtBool(r.SecureRenegotiation) != "false" ||
					r.SessionTickets != nil || fmtBool(r.FallbackSCSV) != "nil" {
					t.Errorf("order %s reneg %s tickets %s fallback %s, want true false nil nil",
						fmtBool(r.ServerCipherOrder), fmtBool(r.SecureRenegotiation), fmtBool(r.SessionTickets), fmtBool(r.FallbackSCSV))
				}
			},
		},
		{
			name:   "compression accepted, no renegotiation_info, session ids, client order",
			server: legacyServer{min: vTLS12, max: vTLS12, suites: []uint16{0xc02f, 0xc030}, compression: true, sessionID: true, clientOrder: true},
			check: func(t *testing.T, r *Result) {
				if fmtBool(r.Compression) != "true" || fmtBool(r.SecureRenegotiation) != "false" ||
					fmtBool(r.SessionIDs) != "true" || fmtBool(r.SessionTickets) != "false" {
					t.Errorf("compression %s reneg %s ids %s tickets %s, want true false true false",
						fmtBool(r.Compression), fmtBool(r.SecureRenegotiation), fmtBool(r.SessionIDs), fmtBool(r.SessionTickets))
				}
				if fmtBool(r.ServerCipherOrder) != "false" {
					t.Errorf("ServerCipherOrder = %s, want false", fmtBool(r.ServerCipherOrder))
				}
				// Client order: ours, strongest first.
				want := []string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}
				if got := cipherNames(r, TLS12); !slices.Equal(got, want) {
					t.Errorf("Ciphers = %q, want %q", got, want)
				}
			},
		},
		{
			name:   "inappropriate_fallback",
			server: legacyServer{min: vTLS10, max: vTLS12, suites: []uint16{0xc013}, scsv: true, renegInfo: true, groups: []uint16{25, 27, 29}},
			check: func(t *testing.T, r *Result) {
				if got := acceptedVersions(r); got != "TLS1.0 TLS1.1 TLS1.2" {
					t.Errorf("Versions = %q", got)
				}
				if fmtBool(r.FallbackSCSV) != "true" || fmtBool(r.SecureRenegotiation) != "true" || fmtBool(r.Compression) != "false" {
					t.Errorf("fallback %s reneg %s compression %s, want true true false",
						fmtBool(r.FallbackSCSV), fmtBool(r.SecureRenegotiation), fmtBool(r.Compression))
				}
				if want := []string{"P-521", "brainpoolP384r1", "X25519"}; !slices.Equal(r.Groups, want) {
					t.Errorf("Groups = %q, want %q", r.Groups, want)
				}
				if r.ServerCipherOrder != nil {
					t.Errorf("ServerCipherOrder = %s with one suite, want nil", fmtBool(r.ServerCipherOrder))
				}
			},
		},
		{
			name:   "no fallback protection",
			server: legacyServer{min: vTLS10, max: vTLS12, suites: []uint16{0xc013}},
			check: func(t *testing.T, r *Result) {
				if fmtBool(r.FallbackSCSV) != "false" {
					t.Errorf("FallbackSCSV = %s, want false", fmtBool(r.FallbackSCSV))
				}
			},
		},
		{
			// The accepted suites sit in different chunks: the scanner
			// re-sorts them into the server's order.
			name:   "server order across chunks",
			server: legacyServer{min: vTLS12, max: vTLS12, suites: []uint16{0x0034, 0x002f, 0x009c}},
			check: func(t *testing.T, r *Result) {
				ids := suitesFor(TLS12)
				if slices.Index(ids, 0x0034)/chunkSize == slices.Index(ids, 0x002f)/chunkSize {
					t.Fatal("the test needs 0x0034 and 0x002f in different chunks")
				}
				want := []string{"TLS_DH_anon_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_GCM_SHA256"}
				if got := cipherNames(r, TLS12); !slices.Equal(got, want) {
					t.Errorf("Ciphers = %q, want %q", got, want)
				}
				if fmtBool(r.ServerCipherOrder) != "true" {
					t.Errorf("ServerCipherOrder = %s, want true", fmtBool(r.ServerCipherOrder))
				}
			},
		},
		{
			name:   "DHE with a 1024-bit prime",
			server: legacyServer{min: vTLS12, max: vTLS12, suites: []uint16{0x009e, 0x0033, 0x002f}, dhBits: 1024},
			check: func(t *testing.T, r *Result) {
				if r.DHBits != 1024 {
					t.Errorf("DHBits = %d, want 1024", r.DHBits)
				}
				want := []string{"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"}
				if got := cipherNames(r, TLS12); !slices.Equal(got, want) {
					t.Errorf("Ciphers = %q, want %q", got, want)
				}
				if r.Groups != nil {
					t.Errorf("Groups = %q, want none without ECDHE", r.Groups)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := scanFake(t, tt.server.answer)
			if len(r.Errors) > 0 {
				t.Errorf("Errors = %q", r.Errors)
			}
			tt.check(t, r)
		})
	}
}

func TestScanSSLv2(t *testing.T) {
	r := scanFake(t, func(ch *clientHello) []byte {
		if !ch.sslv2 {
			return nil // close, as SSLv2-only servers do to TLS
		}
		var w builder
		w.u8(4) // SERVER-HELLO
		w.u8(0)
		w.u8(1)
		w.u16(vSSL2)
		w.u16(3) // certificate
		w.u16(6) // two specs
		w.u16(16)
		w.bytes([]byte{1, 2, 3})
		w.bytes([]byte{0x01, 0x00, 0x80, 0x07, 0x00, 0xc0})
		w.bytes(make([]byte, 16))
		return append([]byte{0x80 | byte(len(w.b)>>8), byte(len(w.b))}, w.b...)
	})
	if got := acceptedVersions(r); got != "SSLv2" {
		t.Errorf("Versions = %q, want SSLv2", got)
	}
	want := []string{"SSL_CK_DES_192_EDE3_CBC_WITH_MD5", "SSL_CK_RC4_128_WITH_MD5"}
	if got := cipherNames(r, SSLv2); !slices.Equal(got, want) {
		t.Errorf("Ciphers = %q, want %q", got, want)
	}
}

func TestScanGarbage(t *testing.T) {
	// A plaintext answer where TLS should start (the upgrade went wrong):
	// undetermined, reported, never a panic.
	r := scanFake(t, func(*clientHello) []byte { return []byte("421 4.7.0 too many connections\r\n") })
	for _, v := range Versions[1:] {
		if r.Versions[v] != nil {
			t.Errorf("Versions[%s] = %s, want nil", v, fmtBool(r.Versions[v]))
		}
	}
	if !strings.Contains(strings.Join(r.Errors, "\n"), "did not answer with TLS") {
		t.Errorf("Errors = %q", r.Errors)
	}
}

func TestScanWrongSuite(t *testing.T) {
	// A server that picks a suite it was not offered.
	r := scanFake(t, func(ch *clientHello) []byte {
		if ch.sslv2 || ch.version != vTLS12 {
			return alertRec(alertProtocolVersion)
		}
		return record(recHandshake, serverHelloMsg(shOpts{version: vTLS12, suite: 0x1301}))
	})
	if r.Versions[TLS12] != nil || !strings.Contains(strings.Join(r.Errors, "\n"), "not offered") {
		t.Errorf("TLS1.2 = %s, Errors = %q", fmtBool(r.Versions[TLS12]), r.Errors)
	}
}

// Wire constants and helpers only the scripted servers use.
const (
	hsServerHelloDone    = 14
	alertProtocolVersion = 70
)

func (c *cursor) u24() int {
	if v := c.take(3); v != nil {
		return int(v[0])<<16 | int(v[1])<<8 | int(v[2])
	}
	return 0
}
