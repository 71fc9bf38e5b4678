package tlsscan

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// startOpenSSL runs `openssl s_server` on a free loopback port with args
// and returns the address; it skips when openssl is missing.
func startOpenSSL(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	rsaCert, _ := testCerts()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	der, err := x509.MarshalPKCS8PrivateKey(rsaCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rsaCert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, append([]string{"s_server", "-quiet", "-accept", addr, "-cert", certFile, "-key", keyFile}, args...)...)
	cmd.Env = append(os.Environ(), "OPENSSL_CONF=/dev/null") // no distribution MinProtocol
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("openssl s_server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScanOpenSSL(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		versions string
		ciphers  map[string][]string
		order    string
		dhBits   int
		fallback string
		groups   []string // must be among the groups found
	}{
		{
			name:     "TLS1.2 server preference with DHE",
			args:     []string{"-tls1_2", "-serverpref", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:AES128-SHA"},
			versions: "TLS1.2",
			ciphers: map[string][]string{TLS12: {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
				"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"}},
			order:    "true",
			dhBits:   2048,
			fallback: "nil",
			groups:   []string{"X25519", "P-256", "P-384"},
		},
		{
			name:     "TLS1.2 client preference",
			args:     []string{"-tls1_2", "-cipher", "AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256"},
			versions: "TLS1.2",
			// Client order: the scanner's, strongest first.
			ciphers:  map[string][]string{TLS12: {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"}},
			order:    "false",
			fallback: "nil",
		},
		{
			name:     "TLS1.0 to 1.2 at SECLEVEL 0 (this OpenSSL has no 3DES)",
			args:     []string{"-no_tls1_3", "-min_protocol", "TLSv1", "-serverpref", "-cipher", "ECDHE-RSA-AES128-SHA:AES256-SHA:@SECLEVEL=0"},
			versions: "TLS1.0 TLS1.1 TLS1.2",
			ciphers: map[string][]string{
				TLS10: {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"},
				TLS12: {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"},
			},
			order:    "true",
			fallback: "true",
		},
		{
			name:     "TLS1.3 two suites",
			args:     []string{"-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"},
			versions: "TLS1.3",
			ciphers:  map[string][]string{TLS13: {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}},
			order:    "false",
			fallback: "nil",
			groups:   []string{"X25519", "P-256", "P-384", "P-521", "X448", "ffdhe2048"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startOpenSSL(t, tt.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := Scan(ctx, dialer(addr), &Options{ServerName: "scan.test", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatalf("Scan() error = %v", err)
			}
			t.Logf("connections %d, groups %q, errors %q", res.Connections, res.Groups, res.Errors)
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
			if res.DHBits != tt.dhBits {
				t.Errorf("DHBits = %d, want %d", res.DHBits, tt.dhBits)
			}
			if got := fmtBool(res.FallbackSCSV); got != tt.fallback {
				t.Errorf("FallbackSCSV = %s, want %s", got, tt.fallback)
			}
			for _, g := range tt.groups {
				if !slices.Contains(res.Groups, g) {
					t.Errorf("Groups = %q, want %s among them", res.Groups, g)
				}
			}
			if len(res.Errors) > 0 {
				t.Errorf("Errors = %q", res.Errors)
			}
		})
	}
}
