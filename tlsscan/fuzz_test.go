package tlsscan

import (
	"bytes"
	"errors"
	"testing"
)

// Hostile seeds shared by the parsers: lengths that lie, truncated
// extensions, oversized records.
func hostileSeeds() [][]byte {
	sh := serverHelloMsg(shOpts{version: vTLS12, suite: 0xc02f, sessionID: []byte{1, 2, 3}, renegInfo: true, ticket: true})
	return [][]byte{
		nil,
		{0},
		sh[4:],
		sh[4 : len(sh)-3],                   // truncated extension
		append(sh[4:len(sh):len(sh)], 0, 1), // trailing bytes
		{3, 3},                              // version only
		append([]byte{3, 3}, make([]byte, 32)...),               // no session id
		append(append([]byte{3, 3}, make([]byte, 32)...), 0xff), // session id length lies
		append(append([]byte{3, 3}, hrrRandom[:]...), 0, 0x13, 0x01, 0, 0, 6, 0, 51, 0, 2, 0, 29),
		append(append([]byte{3, 3}, make([]byte, 32)...), 0, 0xc0, 0x2f, 0, 0xff, 0xff, 0, 0), // extensions length lies
		{0x16, 3, 3, 0xff, 0xff},                // oversized record
		{0x16, 3, 3, 0, 4, 2, 0xff, 0xff, 0xff}, // handshake length lies
		{0x15, 3, 3, 0, 2, 2, 40},               // alert
		{0x15, 3, 3, 0, 1, 2},                   // short alert
		{0x14, 3, 3, 0, 1, 1, 0x16, 3, 3, 0, 0}, // CCS then empty handshake record
		record(recHandshake, sh),
		append(record(recHandshake, sh[:10]), record(recHandshake, sh[10:])...), // fragmented
		{0x80, 0x05, 4, 0, 1, 0, 2},                               // SSLv2 short
		{0x80, 0x0d, 4, 0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 1, 0, 0x80}, // SSLv2, one spec
		{0x00, 0x05, 0x00, 4, 0, 1, 0, 2},                         // SSLv2 3-byte header
		{0xff, 0xff},
		dhKeyExchange(1024)[4:],
		{0, 0, 0, 0, 0, 0},
		{3, 0, 23, 65, 4},
	}
}

func FuzzServerHello(f *testing.F) {
	for _, s := range hostileSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sh, err := parseServerHello(b)
		if err == nil && len(sh.sessionID) > 32 {
			t.Fatalf("parseServerHello accepted a %d-byte session id", len(sh.sessionID))
		}
	})
}

func FuzzRecordHeader(f *testing.F) {
	for _, s := range hostileSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, _, n, err := parseRecordHeader(b)
		if err == nil && (n > maxRecord || typ < recChangeCipherSpec || typ > recApplicationData) {
			t.Fatalf("parseRecordHeader(%x) = type %d, length %d", b, typ, n)
		}
		parseAlert(b)
	})
}

func FuzzServerKeyExchange(f *testing.F) {
	for _, s := range hostileSeeds() {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, ecdhe bool) {
		kx, err := parseServerKeyExchange(b, ecdhe)
		if err == nil && !ecdhe && (kx.dhBits <= 0 || kx.dhBits > 8*len(b)) {
			t.Fatalf("parseServerKeyExchange(%x) = %d bits", b, kx.dhBits)
		}
	})
}

func FuzzSSLv2ServerHello(f *testing.F) {
	for _, s := range hostileSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseSSLv2ServerHello(b)
		h, err := readSSLv2(bytes.NewReader(b))
		if err == nil && h == nil {
			t.Fatal("readSSLv2 returned neither hello nor error")
		}
	})
}

// FuzzReadFlight feeds a whole server answer: records, reassembly,
// alerts, the ServerHello and the ServerKeyExchange.
func FuzzReadFlight(f *testing.F) {
	for _, s := range hostileSeeds() {
		f.Add(s)
	}
	f.Add(legacyServer{min: vTLS12, max: vTLS12, suites: []uint16{0x009e}, dhBits: 2048}.answer(&clientHello{version: vTLS12, suites: []uint16{0x009e}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := readFlight(bytes.NewReader(b), wantKX)
		if err == nil && (fl == nil || fl.sh == nil) {
			t.Fatal("readFlight returned neither flight nor error")
		}
		var ae *alertError
		if errors.As(err, &ae) && len(b) < 7 {
			t.Fatalf("alert from %d bytes", len(b))
		}
		failure(errOr(err)) // classification never panics
	})
}

func errOr(err error) error {
	if err == nil {
		return errShort
	}
	return err
}

func TestReadFlightBounds(t *testing.T) {
	// A handshake message that claims 16 MiB is refused before reading it.
	in := record(recHandshake, []byte{2, 0xff, 0xff, 0xff})
	if _, err := readFlight(bytes.NewReader(in), nil); !errors.Is(err, errTooLarge) {
		t.Errorf("readFlight(huge message) error = %v, want errTooLarge", err)
	}
	// An endless stream of empty-ish handshake records stops at maxFlight.
	var stream []byte
	frag := record(recHandshake, make([]byte, maxRecord))
	stream = append(stream, record(recHandshake, []byte{2, 0, 0xff, 0xff})...)
	for len(stream) < 2*maxFlight {
		stream = append(stream, frag...)
	}
	if _, err := readFlight(bytes.NewReader(stream), nil); err == nil {
		t.Error("readFlight(endless stream) succeeded")
	}
	// A record larger than the limit.
	if _, err := readFlight(bytes.NewReader([]byte{0x16, 3, 3, 0x48, 1}), nil); !errors.Is(err, errTooLarge) {
		t.Errorf("readFlight(oversized record) error = %v, want errTooLarge", err)
	}
}
