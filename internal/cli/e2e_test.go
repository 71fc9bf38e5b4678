package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

type labOut struct {
	CA        string `json:"ca"`
	User      string `json:"user"`
	Password  string `json:"password"`
	Endpoints []struct {
		Name     string   `json:"name"`
		URL      string   `json:"url"`
		Protocol string   `json:"protocol"`
		Broken   bool     `json:"broken"`
		Expect   []string `json:"expect"`
	} `json:"endpoints"`
}

// startLab runs `starttls lab --json` in-process and returns its first line.
func startLab(t *testing.T) labOut {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- RunContext(ctx, []string{"lab", "--json"}, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("lab --json printed nothing: %v", err)
	}
	go io.Copy(io.Discard, pr)
	var out labOut
	if err := json.Unmarshal([]byte(line), &out); err != nil {
		t.Fatalf("lab --json: %v in %q", err, line)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("lab exited %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("lab did not stop")
		}
		if _, err := os.Stat(out.CA); !os.IsNotExist(err) {
			t.Errorf("lab left its CA file behind: %v", err)
		}
	})
	return out
}

func (l labOut) url(t *testing.T, name string) string {
	for _, e := range l.Endpoints {
		if e.Name == name {
			return e.URL
		}
	}
	t.Fatalf("no lab endpoint %q", name)
	return ""
}

func TestLabCheckJSON(t *testing.T) {
	l := startLab(t)
	if len(l.Endpoints) < 30 || l.User == "" || l.Password == "" {
		t.Fatalf("lab --json: %d endpoints, user %q", len(l.Endpoints), l.User)
	}
	if _, err := os.Stat(l.CA); err != nil {
		t.Fatalf("CA file: %v", err)
	}
	tests := []struct {
		endpoint string
		code     int
		finding  string
	}{
		{"smtp", 0, ""},
		{"imaps", 0, ""},
		{"pop3", 0, ""},
		{"smtp-expired", 2, "cert-expired"},
		{"imap-no-starttls", 2, "starttls-not-offered"},
		{"pop3-injection", 2, "command-injection"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := RunContext(context.Background(), []string{"check", "--json", "--ca", l.CA, l.url(t, tt.endpoint)}, strings.NewReader(""), &out, &errb)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, errb.String())
			}
			var r map[string]any
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
			}
			for _, path := range [][]string{
				{"target"}, {"protocol"}, {"mode"}, {"starttls", "offered"}, {"starttls", "upgraded"},
				{"findings"}, {"verdict"},
			} {
				if _, ok := lookup(r, path); !ok {
					t.Errorf("JSON lacks %s", strings.Join(path, "."))
				}
			}
			if tt.code == 0 {
				for _, path := range [][]string{{"tls", "version"}, {"tls", "cipher"}, {"certificate", "subject"}, {"certificate", "issuer"}, {"certificate", "not_after"}, {"certificate", "trusted"}, {"certificate", "name_match"}} {
					if v, ok := lookup(r, path); !ok || v == nil {
						t.Errorf("JSON lacks %s", strings.Join(path, "."))
					}
				}
			}
			if tt.finding != "" && !strings.Contains(out.String(), `"id":"`+tt.finding+`"`) {
				t.Errorf("no finding %s in %s", tt.finding, out.String())
			}
		})
	}
}

func lookup(m map[string]any, path []string) (any, bool) {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// TestConnectPipe: connect works in a pipe, like openssl s_client.
func TestConnectPipe(t *testing.T) {
	l := startLab(t)
	tests := []struct {
		endpoint, input, want string
	}{
		{"smtp", "NOOP\nQUIT\n", "221 2.0.0"},
		{"imap", "x1 CAPABILITY\nx2 LOGOUT\n", "x2 OK"},
		{"pop3s", "CAPA\nQUIT\n", "+OK"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := RunContext(context.Background(), []string{"connect", l.url(t, tt.endpoint), "--ca", l.CA, "--linger", "2s"}, strings.NewReader(tt.input), &out, &errb)
			if code != 0 || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
			}
			if !strings.Contains(errb.String(), "certificate verified") {
				t.Errorf("stderr lacks the verification line: %q", errb.String())
			}
		})
	}
	// Without the lab's CA the certificate is refused and nothing is relayed.
	var out, errb bytes.Buffer
	code := RunContext(context.Background(), []string{"connect", l.url(t, "smtp")}, strings.NewReader("QUIT\n"), &out, &errb)
	if code == 0 || out.Len() != 0 || !strings.Contains(errb.String(), "certificate") {
		t.Errorf("untrusted: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestCheckLabCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := RunContext(context.Background(), []string{"check", "--lab"}, strings.NewReader(""), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "every broken one was caught") {
		t.Fatalf("check --lab: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}

// TestServerNameFlag: --server-name is the name the certificate must carry.
func TestServerNameFlag(t *testing.T) {
	l := startLab(t)
	for name, want := range map[string]int{"localhost": 0, "other.example": 2} {
		var out, errb bytes.Buffer
		code := RunContext(context.Background(), []string{"check", "--no-injection", "--ca", l.CA, "--server-name", name, l.url(t, "smtp")}, strings.NewReader(""), &out, &errb)
		if code != want {
			t.Errorf("--server-name %s: exit %d, want %d\n%s", name, code, want, out.String())
		}
		if want == 2 && !strings.Contains(out.String(), "cert-name-mismatch") {
			t.Errorf("--server-name %s: no cert-name-mismatch in\n%s", name, out.String())
		}
	}
}
