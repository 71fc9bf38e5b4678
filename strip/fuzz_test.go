package strip

import (
	"encoding/base64"
	"net"
	"strings"
	"testing"

	"github.com/starttls/starttls/dial"
	"github.com/starttls/starttls/smtp"
)

// FuzzRecorderMasks feeds arbitrary client and server bytes through the
// recorder: it must never panic, and a secret the client sent, as is or
// in base64, must never appear in the evidence.
func FuzzRecorderMasks(f *testing.F) {
	f.Add([]byte("EHLO x\r\nAUTH PLAIN AGJvYgBodW50ZXIy\r\n"), []byte("250 ok\r\n"), "hunter2")
	f.Add([]byte("USER bob\r\nPASS hunter2\r\n"), []byte("+OK\r\n"), "hunter2")
	f.Add([]byte("\x16\x03\x01\x00\x05hello"), []byte("\x00\xff"), "x")
	f.Add([]byte("a1 LOGIN bob \"pw pw\"\r\n"), []byte("* OK\r\n"), "pw pw")
	f.Add([]byte(strings.Repeat("A", 5000)+"\n"), []byte{}, "AAAA")
	f.Fuzz(func(t *testing.T, client, server []byte, secret string) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		r := newRecorder(a, smtp.MITMCommand)
		half := len(client) / 2
		r.client(client[:half])
		r.server(server)
		r.client(client[half:])
		r.client([]byte("\r\n"))
		r.note("note %q", secret)
		ev := strings.Join(r.evidence([]string{secret}), "\n")
		if len(secret) < 4 || strings.ContainsAny(secret, "\r\n") {
			return
		}
		// The recorder shows client lines only as command names unless
		// they are idle and secret-free; the secret may still appear in
		// server lines and notes, which are not the client's.
		for _, line := range r.clientLines() {
			if !strings.Contains(line, secret) {
				continue
			}
			shown := r.show(line, []string{secret})
			if strings.Contains(shown, secret) {
				t.Fatalf("line %q shown as %q", line, shown)
			}
		}
		enc := base64.StdEncoding.EncodeToString([]byte("\x00u\x00" + secret))
		if shown := r.show("AUTH PLAIN "+enc, []string{secret}); strings.Contains(shown, enc) {
			t.Fatalf("base64 secret shown: %q", shown)
		}
		_ = ev
	})
}

// TestShowWithholds: what a report shows of client lines, per protocol.
func TestShowWithholds(t *testing.T) {
	for _, tc := range []struct {
		protocol, line, want string
	}{
		{"smtp", "EHLO client.example", "EHLO client.example"},
		{"smtp", "AUTH PLAIN AGJvYgBodW50ZXIy", "AUTH … (27 bytes withheld)"},
		{"smtp", "Ym9i", "(4 bytes withheld)"},
		{"imap", "a1 LOGIN bob hunter2", "LOGIN … (20 bytes withheld)"},
		{"imap", "a0 CAPABILITY", "a0 CAPABILITY"},
		{"pop3", "PASS hunter2", "PASS … (12 bytes withheld)"},
		{"http", "OPTIONS * HTTP/1.1", "OPTIONS * HTTP/1.1"},
		{"http", "Upgrade: TLS/1.0", "Upgrade: TLS/1.0"},
		{"http", "Authorization: Basic Ym9iOmh1bnRlcjI=", "Authorization … (37 bytes withheld)"},
		{"http", "X-Secret-Token: abc", "(19 bytes withheld)"},
		{"ftp", "USER bob", "USER … (8 bytes withheld)"},
	} {
		m, err := dial.MITMFor(tc.protocol)
		if err != nil {
			t.Fatal(err)
		}
		r := newRecorder(nil, m.Command)
		if got := r.show(tc.line, nil); got != tc.want {
			t.Errorf("%s %q shown as %q, want %q", tc.protocol, tc.line, got, tc.want)
		}
	}
	// An idle line that holds a known secret is withheld too.
	r := newRecorder(nil, smtp.MITMCommand)
	if got := r.show("EHLO hunter2", []string{"hunter2"}); got != "EHLO … (12 bytes withheld)" {
		t.Errorf("got %q", got)
	}
}

// FuzzMITMCommand feeds arbitrary lines to every protocol's command
// namer: it must not panic, and a name it gives is one word with no
// control bytes (it is shown in reports where the line is withheld).
func FuzzMITMCommand(f *testing.F) {
	for _, s := range []string{"EHLO x", "a1 LOGIN bob pw", "Authorization: Basic x", "@tag :nick CAP REQ :sasl", "", " ", "\x00\xff", "OPTIONS * HTTP/1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, p := range dial.MITMProtocols() {
			m, _ := dial.MITMFor(p)
			if m.Command == nil {
				continue
			}
			verb, _ := m.Command(line)
			if strings.ContainsAny(verb, " \t\r\n\x00") || len(verb) > len(line) {
				t.Fatalf("%s: %q named %q", p, line, verb)
			}
		}
	})
}
