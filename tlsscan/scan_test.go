package tlsscan

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// accepted returns the accepted versions, oldest first, and "?" marks
// undetermined ones.
func acceptedVersions(r *Result) string {
	var out []string
	for _, v := range Versions {
		switch b := r.Versions[v]; {
		case b == nil:
			out = append(out, v+"?")
		case *b:
			out = append(out, v)
		}
	}
	return strings.Join(out, " ")
}

func cipherNames(r *Result, version string) []string {
	var out []string
	for _, c := range r.Ciphers {
		if c.Version == version {
			out = append(out, c.Name)
		}
	}
	return out
}

func fmtBool(b *bool) string {
	if b == nil {
		return "nil"
	}
	if *b {
		return "true"
	}
	return "false"
}

func scanServer(t testing.TB, cfg *tls.Config) *Result {
	t.Helper()
	addr := serveTLS(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Scan(ctx, dialer(addr), &Options{ServerName: "scan.test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Scan() error = %v", err)
	}
	if len(res.Errors) > 0 {
		t.Errorf("Scan() Errors = %q, want none", res.Errors)
	}
	return res
}

// TestScanGoServers scans crypto/tls servers. Since Go 1.17 a Go server
// chooses by its own fixed preference order (Config.CipherSuites only
// filters; AES-GCM before ChaCha20 unless the client prefers ChaCha20),
// so ServerCipherOrder is true for TLS 1.2 and the suites come out in
// Go's order, whatever order the config lists.
func TestScanGoServers(t *testing.T) {
	rsaCert, ecCert := testCerts()
	tests := []struct {
		name      string
		cfg       *tls.Config
		versions  string
		ciphers   map[string][]string
		order     string
		groups    []string
		tickets   string
		fallback  string
		reneg     string
		sessionID string
	}{
		{
			name: "TLS1.2 two suites listed in reverse of Go's order",
			cfg: &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
				tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
			versions: "TLS1.2",
			ciphers: map[string][]string{TLS12: {
				"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}},
			order:     "true",
			groups:    []string{"X25519", "P-256", "P-384", "P-521"},
			tickets:   "true",
			fallback:  "nil",
			reneg:     "true",
			sessionID: "false",
		},
		{
			name: "TLS1.2 without tickets, RSA key exchange and 3DES configured",
			cfg: &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, SessionTicketsDisabled: true,
				CipherSuites: []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
					tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305}},
			versions: "TLS1.2",
			ciphers: map[string][]string{TLS12: {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
				"TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"}},
			order:     "true",
			groups:    []string{"X25519", "P-256", "P-384", "P-521"},
			tickets:   "false",
			fallback:  "nil",
			reneg:     "true",
			sessionID: "false",
		},
		{
			name:     "TLS1.0 only",
			cfg:      &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
			versions: "TLS1.0",
			ciphers: map[string][]string{TLS10: {
				"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"}},
			order:     "true",
			groups:    []string{"X25519", "P-256", "P-384", "P-521"},
			tickets:   "true",
			fallback:  "nil",
			reneg:     "true",
			sessionID: "false",
		},
		{
			name:     "TLS1.3 only",
			cfg:      &tls.Config{MinVersion: tls.VersionTLS13},
			versions: "TLS1.3",
			ciphers: map[string][]string{TLS13: {
				"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}},
			// Go follows the client between AES-GCM and ChaCha20 in TLS 1.3.
			order:     "false",
			groups:    []string{"X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "X25519", "P-256", "P-384", "P-521"},
			tickets:   "nil",
			fallback:  "nil",
			reneg:     "nil",
			sessionID: "nil",
		},
		{
			name:     "TLS1.3 CurvePreferences",
			cfg:      &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.CurveP384, tls.X25519}},
			versions: "TLS1.3",
			ciphers: map[string][]string{TLS13: {
				"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}},
			order:     "false",
			groups:    []string{"X25519", "P-384"}, // Go ≥1.24 ignores the order of CurvePreferences
			tickets:   "nil",
			fallback:  "nil",
			reneg:     "nil",
			sessionID: "nil",
		},
		{
			name:     "TLS1.2 CurvePreferences ECDSA",
			cfg:      &tls.Config{MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{ecCert}, CurvePreferences: []tls.CurveID{tls.CurveP521, tls.CurveP256}},
			versions: "TLS1.2",
			ciphers: map[string][]string{TLS12: {
				"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
				"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
				"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"}},
			order:     "true",
			groups:    []string{"P-256", "P-521"},
			tickets:   "true",
			fallback:  "nil",
			reneg:     "true",
			sessionID: "false",
		},
		{
			name:     "TLS1.0 to TLS1.3",
			cfg:      &tls.Config{MinVersion: tls.VersionTLS10},
			versions: "TLS1.0 TLS1.1 TLS1.2 TLS1.3",
			ciphers: map[string][]string{
				TLS10: {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"},
				TLS12: {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
					"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
					"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"}},
			order:     "true",
			groups:    []string{"X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "X25519", "P-256", "P-384", "P-521"},
			tickets:   "true",
			fallback:  "true",
			reneg:     "true",
			sessionID: "false",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Certificates == nil {
				tt.cfg.Certificates = []tls.Certificate{rsaCert}
			}
			res := scanServer(t, tt.cfg)
			if got := acceptedVersions(res); got != tt.versions {
				t.Errorf("Versions = %q, want %q", got, tt.versions)
			}
			for v, want := range tt.ciphers {
				if got := cipherNames(res, v); !slices.Equal(got, want) {
					t.Errorf("Ciphers[%s] = %q, want %q", v, got, want)
				}
			}
			if got := fmtBool(res.ServerCipherOrder); got != tt.order {
				t.Errorf("ServerCipherOrder = %s, want %s", got, tt.order)
			}
			if !slices.Equal(res.Groups, tt.groups) {
				t.Errorf("Groups = %q, want %q", res.Groups, tt.groups)
			}
			if got := fmtBool(res.SessionTickets); got != tt.tickets {
				t.Errorf("SessionTickets = %s, want %s", got, tt.tickets)
			}
			if got := fmtBool(res.FallbackSCSV); got != tt.fallback {
				t.Errorf("FallbackSCSV = %s, want %s", got, tt.fallback)
			}
			if got := fmtBool(res.SecureRenegotiation); got != tt.reneg {
				t.Errorf("SecureRenegotiation = %s, want %s", got, tt.reneg)
			}
			if got := fmtBool(res.SessionIDs); got != tt.sessionID {
				t.Errorf("SessionIDs = %s, want %s", got, tt.sessionID)
			}
			if res.DHBits != 0 {
				t.Errorf("DHBits = %d, want 0 (Go has no DHE)", res.DHBits)
			}
			if res.Connections == 0 {
				t.Error("Connections = 0")
			}
			t.Logf("connections: %d", res.Connections)
		})
	}
}

func TestScanUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res, err := Scan(context.Background(), dialer(addr), nil)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Scan() error = %v, want ErrUnreachable", err)
	}
	if res == nil || res.Connections == 0 {
		t.Fatalf("Scan() result = %+v, want the probes counted", res)
	}
	for _, v := range Versions {
		if b, ok := res.Versions[v]; !ok || b != nil {
			t.Errorf("Versions[%s] = %v (present %v), want nil", v, b, ok)
		}
	}
}

func TestScanCancel(t *testing.T) {
	// A server that never answers: every probe waits until ctx ends.
	addr := serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Scan(ctx, dialer(addr), &Options{MaxConns: 2})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Scan() error = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Scan() took %v after cancel", d)
	}
}

func TestScanProbeTimeout(t *testing.T) {
	// A tarpit: reads the hello, never answers. Versions are refusals
	// (most servers that hang mean "no"), and the timeouts are reported.
	addr := serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	res, err := Scan(context.Background(), dialer(addr), &Options{MaxConns: 8, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Scan() error = %v", err)
	}
	if got := acceptedVersions(res); got != "" {
		t.Errorf("Versions = %q, want none accepted", got)
	}
	if len(res.Errors) == 0 || !strings.Contains(strings.Join(res.Errors, "\n"), "timeout") {
		t.Errorf("Errors = %q, want timeouts", res.Errors)
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		id   uint16
		want Cipher
	}{
		{0xc02f, Cipher{ID: 0xc02f, Name: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Version: TLS12, Kex: "ECDHE", Bits: 128, ForwardSecrecy: true, AEAD: true}},
		{0xc013, Cipher{ID: 0xc013, Name: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Version: SSLv3, Kex: "ECDHE", Bits: 128, ForwardSecrecy: true, Obsolete: true}},
		{0x1303, Cipher{ID: 0x1303, Name: "TLS_CHACHA20_POLY1305_SHA256", Version: TLS13, Kex: "TLS1.3", Bits: 256, ForwardSecrecy: true, AEAD: true}},
		{0x000a, Cipher{ID: 0x000a, Name: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", Version: SSLv3, Kex: "RSA", Bits: 168, Obsolete: true}},
		{0x0003, Cipher{ID: 0x0003, Name: "TLS_RSA_EXPORT_WITH_RC4_40_MD5", Version: SSLv3, Kex: "RSA", Bits: 40, Obsolete: true}},
		{0x0001, Cipher{ID: 0x0001, Name: "TLS_RSA_WITH_NULL_MD5", Version: SSLv3, Kex: "RSA", Bits: 0, Obsolete: true}},
		{0x00a7, Cipher{ID: 0x00a7, Name: "TLS_DH_anon_WITH_AES_256_GCM_SHA384", Version: TLS12, Kex: "anon", Bits: 256, AEAD: true, Anonymous: true, Obsolete: true}},
		{0x009f, Cipher{ID: 0x009f, Name: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", Version: TLS12, Kex: "DHE", Bits: 256, ForwardSecrecy: true, AEAD: true}},
		{0x003d, Cipher{ID: 0x003d, Name: "TLS_RSA_WITH_AES_256_CBC_SHA256", Version: TLS12, Kex: "RSA", Bits: 256}},
		{0xc0ad, Cipher{ID: 0xc0ad, Name: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", Version: TLS12, Kex: "ECDHE", Bits: 256, ForwardSecrecy: true, AEAD: true}},
		{0x0064, Cipher{ID: 0x0064, Name: "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA", Version: SSLv3, Kex: "RSA", Bits: 56, Obsolete: true}},
		{0xc032, Cipher{ID: 0xc032, Name: "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384", Version: TLS12, Kex: "ECDH", Bits: 256, AEAD: true}},
		{0x00ae, Cipher{ID: 0x00ae, Name: "TLS_PSK_WITH_AES_128_CBC_SHA256", Version: TLS10, Kex: "PSK", Bits: 128}},
		{0x0007, Cipher{ID: 0x0007, Name: "TLS_RSA_WITH_IDEA_CBC_SHA", Version: SSLv3, Kex: "RSA", Bits: 128, Obsolete: true}},
		{0x0096, Cipher{ID: 0x0096, Name: "TLS_RSA_WITH_SEED_CBC_SHA", Version: SSLv3, Kex: "RSA", Bits: 128, Obsolete: true}},
	}
	for _, tt := range tests {
		if got, ok := Lookup(tt.id); !ok || got != tt.want {
			t.Errorf("Lookup(%#04x) = %+v, %v, want %+v", tt.id, got, ok, tt.want)
		}
	}
	if _, ok := Lookup(0x00ff); ok {
		t.Error("Lookup(0x00ff) found the renegotiation SCSV")
	}
	if n := len(suites); n < 340 {
		t.Errorf("table has %d suites, want ≥ 340", n)
	}
	// Every Go suite is in the table under the same name (modulo Go's
	// CHACHA20_POLY1305 without _SHA256).
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		c, ok := Lookup(s.ID)
		if !ok || strings.TrimSuffix(c.Name, "_SHA256") != strings.TrimSuffix(s.Name, "_SHA256") {
			t.Errorf("Lookup(%s) = %q, %v", s.Name, c.Name, ok)
		}
		if s.Insecure && !c.Obsolete && !strings.Contains(s.Name, "CBC_SHA256") && c.Kex != "RSA" {
			t.Errorf("Lookup(%s).Obsolete = false, Go calls it insecure", s.Name)
		}
	}
	seen := map[string]bool{}
	for _, c := range suites {
		if seen[c.Name] {
			t.Errorf("duplicate name %s", c.Name)
		}
		seen[c.Name] = true
		if c.Bits == 0 && !strings.Contains(c.Name, "NULL") {
			t.Errorf("%s: Bits = 0", c.Name)
		}
	}
}

func TestChunks(t *testing.T) {
	for _, v := range Versions[1:] {
		ids := suitesFor(v)
		if len(ids) == 0 {
			t.Errorf("suitesFor(%s) is empty", v)
		}
		h := (&hello{version: v, suites: ids[:min(len(ids), chunkSize)], groups: groupIDs(v == TLS13)}).marshal(make([]byte, 32))
		if len(h) > 1024 {
			t.Errorf("%s hello is %d bytes", v, len(h))
		}
	}
	if n := len(suitesFor(TLS12)); n <= chunkSize {
		t.Errorf("TLS1.2 offers %d suites, expected several chunks", n)
	}
}
