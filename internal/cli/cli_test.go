package cli

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestBadInput: every bad input gets one clear line on stderr and exit 3.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "bad.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, ""},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"check without target", []string{"check"}, "no target"},
		{"malformed URL", []string{"check", "smtp://h:x"}, "bad URL"},
		{"unknown scheme", []string{"check", "gopher://h"}, "unknown scheme"},
		{"not a URL", []string{"check", "just words"}, "not a URL"},
		{"unreadable CA", []string{"check", "--ca", filepath.Join(dir, "missing.pem"), "smtp://127.0.0.1:1"}, "--ca"},
		{"CA not PEM", []string{"check", "--ca", notPEM, "smtp://127.0.0.1:1"}, "no PEM certificate"},
		{"bad mode", []string{"check", "--mode", "tls", "smtp://127.0.0.1:1"}, "unknown mode"},
		{"bad timeout", []string{"check", "--timeout", "-1s", "smtp://127.0.0.1:1"}, "--timeout"},
		{"bad flag", []string{"check", "--nope"}, "flag provided but not defined"},
		{"connect two URLs", []string{"connect", "smtp://a", "smtp://b"}, "exactly one URL"},
		{"lab non-loopback", []string{"lab", "--listen", "192.0.2.1"}, "not a loopback"},
		{"bad source", []string{"check", "--source", "nowhere", "smtp://127.0.0.1:1"}, "not an IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(tt.args...)
			if code != 3 {
				t.Errorf("exit %d, want 3 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
		})
	}
}

// TestCheckUnreachable: a refused connection and a silent server end with
// exit 3 within the timeout.
func TestCheckUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := l.Addr().String()
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	code, _, stderr := run("check", "--timeout", "1s", "smtp://"+silent)
	if code != 3 || !strings.Contains(stderr, "could not check") {
		t.Errorf("silent server: exit %d, stderr %q", code, stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("silent server: took %v with --timeout 1s", d)
	}
}

func TestEscapingWriter(t *testing.T) {
	var b bytes.Buffer
	w := &escapingWriter{w: &b}
	in := "250 ok\r\n\x1b]0;owned\x07\x1b[2J caf\xc3\xa9\tx\n"
	n, err := w.Write([]byte(in))
	if err != nil || n != len(in) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	want := "250 ok\r\n\\x1b]0;owned\\x07\\x1b[2J caf\xc3\xa9\tx\n"
	if b.String() != want {
		t.Errorf("escaped %q, want %q", b.String(), want)
	}
}
