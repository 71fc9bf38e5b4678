package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runStripAsync starts `starttls strip args…` in-process and returns the
// address it listens on, its exit code channel and its stdout.
func runStripAsync(t *testing.T, ctx context.Context, args ...string) (string, <-chan int, *bytes.Buffer) {
	t.Helper()
	pr, pw := io.Pipe()
	var stdout bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- RunContext(ctx, append([]string{"strip"}, args...), strings.NewReader(""), &stdout, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("strip printed nothing: %v", err)
	}
	go io.Copy(io.Discard, pr)
	_, rest, ok := strings.Cut(line, "listening on ")
	if !ok {
		t.Fatalf("no address in %q", line)
	}
	addr, _, _ := strings.Cut(rest, " ")
	return addr, done, &stdout
}

// smtpChat plays a scripted SMTP client: each line is sent after reading
// the previous reply.
func smtpChat(t *testing.T, addr string, lines ...string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	readReply := func() {
		for {
			l, err := br.ReadString('\n')
			if err != nil || len(l) < 4 || l[3] != '-' {
				return
			}
		}
	}
	readReply()
	for _, l := range lines {
		fmt.Fprintf(c, "%s\r\n", l)
		readReply()
	}
}

type stripReport struct {
	Connections []map[string]any `json:"connections"`
}

func readStripReport(t *testing.T, path string) stripReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r stripReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return r
}

func TestStripOnceReport(t *testing.T) {
	report := filepath.Join(t.TempDir(), "r.json")
	addr, done, stdout := runStripAsync(t, context.Background(), "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1",
		"--protocol", "smtp", "--attack", "strip-capability", "--once", "--report", report)
	secret := base64.StdEncoding.EncodeToString([]byte("\x00bob\x00hunter2-secret"))
	smtpChat(t, addr, "EHLO me", "AUTH PLAIN "+secret, "QUIT")
	select {
	case code := <-done:
		if code != exitWarn {
			t.Errorf("exit %d, want %d (a vulnerable client)", code, exitWarn)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--once did not exit")
	}
	r := readStripReport(t, report)
	if len(r.Connections) != 1 {
		t.Fatalf("%d connections", len(r.Connections))
	}
	e := r.Connections[0]
	for _, k := range []string{"attack", "client", "plaintext_continued", "credentials_seen", "accepted_bad_cert", "acted_on_injection", "verdict", "evidence"} {
		if _, ok := e[k]; !ok {
			t.Errorf("report entry lacks %q: %v", k, e)
		}
	}
	if e["verdict"] != "vulnerable" || e["attack"] != "strip-capability" {
		t.Errorf("entry %v", e)
	}
	b, _ := os.ReadFile(report)
	if bytes.Contains(b, []byte("hunter2-secret")) || bytes.Contains(b, []byte(secret)) {
		t.Errorf("the report holds the secret: %s", b)
	}
	if fi, err := os.Stat(report); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("report mode %v %v", fi.Mode(), err)
	}
	if !strings.Contains(stdout.String(), "strip-capability") || !strings.Contains(stdout.String(), "vulnerable") || !strings.Contains(stdout.String(), `"bob"`) {
		t.Errorf("summary: %s", stdout)
	}
}

// TestStripStopWritesReport: stopping the command (SIGTERM, Ctrl-C: the
// context here) writes the report and the summary.
func TestStripStopWritesReport(t *testing.T) {
	report := filepath.Join(t.TempDir(), "r.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, stdout := runStripAsync(t, ctx, "--upstream", "127.0.0.1:1", "--protocol", "submission", "--attack", "reject-upgrade", "--report", report, "--json")
	smtpChat(t, addr, "EHLO me", "STARTTLS", "QUIT")
	smtpChat(t, addr, "EHLO me", "STARTTLS", "QUIT")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(report); err == nil && bytes.Count(b, []byte(`"attack": "reject-upgrade"`)) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
	r := readStripReport(t, report)
	if len(r.Connections) != 2 || r.Connections[0]["variant"] != "temporary" || r.Connections[1]["variant"] != "permanent" {
		t.Fatalf("%+v", r.Connections)
	}
	var sum []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || len(sum) != 2 || sum[0]["verdict"] != "safe" {
		t.Fatalf("--json summary %s: %v", stdout, err)
	}
}

func TestStripBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--protocol", "smtp"},
		{"--upstream", "127.0.0.1:25"},
		{"--upstream", "127.0.0.1:25", "--protocol", "gopher"},
		{"--upstream", "nohost", "--protocol", "smtp"},
		{"--upstream", "127.0.0.1:25", "--protocol", "smtp", "--attack", "nope"},
		{"--upstream", "127.0.0.1:25", "--protocol", "smtp", "--cert", "x.pem"},
		{"--upstream", "127.0.0.1:25", "--protocol", "smtp", "--upstream-ca", "/nonexistent"},
		{"--upstream", "127.0.0.1:25", "--protocol", "smtp", "--wait", "0s"},
		{"--upstream", "127.0.0.1:25", "--protocol", "smtp", "--report", "/nonexistent/dir/r.json"},
		{"--upstream", "127.0.0.1:25", "--protocol", "smtp", "extra"},
	} {
		var stderr bytes.Buffer
		// A case that wrongly starts strip ends with the context, not the
		// test's timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		code := RunContext(ctx, append([]string{"strip"}, args...), strings.NewReader(""), io.Discard, &stderr)
		cancel()
		if code != exitCantRun || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
