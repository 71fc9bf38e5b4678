package smtp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

func TestEndToEnd(t *testing.T) {
	tests := []struct {
		name     string
		mode     starttls.Mode
		server   func(s *Server)
		upgraded bool
		offered  bool
		before   []string // CapsBefore keywords that must be there
		after    []string
		login    bool
	}{
		{name: "required", mode: starttls.ModeRequired, upgraded: true, offered: true,
			before: []string{"STARTTLS"}, after: []string{"AUTH PLAIN LOGIN"}, login: true},
		{name: "opportunistic with TLS", mode: starttls.ModeOpportunistic, upgraded: true, offered: true,
			before: []string{"STARTTLS"}, after: []string{"AUTH PLAIN LOGIN"}, login: true},
		{name: "opportunistic without TLS", mode: starttls.ModeOpportunistic,
			server: func(s *Server) { s.TLSConfig = nil }, before: []string{"PIPELINING"}},
		{name: "implicit", mode: starttls.ModeImplicit, upgraded: true,
			server: func(s *Server) { s.Implicit = true }, after: []string{"AUTH PLAIN LOGIN"}, login: true},
		{name: "plain", mode: starttls.ModePlain, offered: true,
			server: func(s *Server) { s.AllowPlaintextLogin = true }, before: []string{"STARTTLS", "AUTH PLAIN LOGIN"}, login: true},
		{name: "lmtp", mode: starttls.ModeRequired, upgraded: true, offered: true,
			server: func(s *Server) { s.LMTP = true }, before: []string{"STARTTLS"}, after: []string{"AUTH PLAIN LOGIN"}, login: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := newServer(t)
			if tt.server != nil {
				tt.server(s)
			}
			addr := start(t, s)
			dial := Dial
			if s.LMTP {
				dial = DialLMTP
			}
			c, res, err := dial(linetest.Ctx(t), addr, clientOpts(t, tt.mode))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if res.Mode != tt.mode || res.Upgraded != tt.upgraded || res.Offered != tt.offered || res.OfferedAfterTLS {
				t.Errorf("Result = %+v", res)
			}
			if (res.TLS != nil) != tt.upgraded || res.CapsReread != tt.upgraded {
				t.Errorf("TLS = %v, CapsReread = %v", res.TLS != nil, res.CapsReread)
			}
			for _, k := range tt.before {
				if !slices.Contains(res.CapsBefore, k) {
					t.Errorf("CapsBefore = %q lacks %q", res.CapsBefore, k)
				}
			}
			for _, k := range tt.after {
				if !slices.Contains(res.CapsAfter, k) {
					t.Errorf("CapsAfter = %q lacks %q", res.CapsAfter, k)
				}
			}
			if tt.upgraded {
				if slices.Contains(res.CapsAfter, "STARTTLS") || !slices.Equal(res.AuthAfter, []string{"PLAIN", "LOGIN"}) {
					t.Errorf("CapsAfter = %q, AuthAfter = %q", res.CapsAfter, res.AuthAfter)
				}
				if tt.mode != starttls.ModeImplicit && (res.AuthBefore != nil || slices.ContainsFunc(res.CapsBefore, func(s string) bool { return strings.HasPrefix(s, "AUTH") })) {
					t.Errorf("AUTH offered before TLS: %q", res.CapsBefore)
				}
			}
			if tt.login {
				if err := c.Login(linetest.Ctx(t), "user", "secret"); err != nil {
					t.Fatalf("Login: %v", err)
				}
			}
			msg := []byte("Subject: test\n\n.leading dot\nbody\n")
			if err := c.SendMail(linetest.Ctx(t), "a@b.test", []string{"c@d.test", "e@f.test"}, msg); err != nil {
				t.Fatalf("SendMail: %v", err)
			}
			if got := b.messages(); len(got) != 1 || got[0].data != "Subject: test\r\n\r\n.leading dot\r\nbody\r\n" {
				t.Errorf("delivered %+v", got)
			}
		})
	}
}

func TestEndToEndSubmissionRequiresAuth(t *testing.T) {
	s, _ := newServer(t)
	s.RequireAuth = true
	c, _, err := Dial(linetest.Ctx(t), start(t, s), clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.SendMail(linetest.Ctx(t), "a@b", []string{"c@d"}, []byte("x"))
	if !strings.Contains(fmt.Sprint(err), "530 5.7.0 Authentication required") || !errors.Is(err, ErrAuthRequired) {
		t.Errorf("SendMail before AUTH = %v", err)
	}
	if err := c.Login(linetest.Ctx(t), "user", "wrong"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("Login = %v, want ErrAuthFailed", err)
	}
	if err := c.Login(linetest.Ctx(t), "user", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail(linetest.Ctx(t), "a@b", []string{"c@d"}, []byte("x")); err != nil {
		t.Fatal(err)
	}
}

// TestPythonSmtplib runs Python's smtplib against the server: starttls with
// the test CA, login, sendmail.
func TestPythonSmtplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH")
	}
	s, b := newServer(t)
	s.RequireAuth = true
	addr := start(t, s)
	host, port, _ := strings.Cut(addr, ":")
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, testCAPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
with smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="py.test", timeout=10) as s:
    s.ehlo()
    assert not s.has_extn("auth"), "AUTH offered before TLS"
    s.starttls(context=ctx)
    s.ehlo()
    assert not s.has_extn("starttls"), "STARTTLS offered after TLS"
    s.login("user", "secret")
    s.sendmail("py@test", ["rcpt@test"], "Subject: from python\r\n\r\n.hello\r\n")
`
	ctx := linetest.Ctx(t)
	out, err := exec.CommandContext(ctx, py, "-c", script, host, port, ca).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	msgs := b.messages()
	if len(msgs) != 1 || msgs[0].from != "py@test" || msgs[0].to[0] != "rcpt@test" || msgs[0].data != "Subject: from python\r\n\r\n.hello\r\n" {
		t.Errorf("delivered %+v", msgs)
	}
}

// TestCurl sends a message with curl --ssl-reqd and AUTH, if curl is there.
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not on PATH")
	}
	s, b := newServer(t)
	s.RequireAuth = true
	addr := start(t, s)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	msg := filepath.Join(dir, "msg")
	os.WriteFile(ca, testCAPEM(t), 0o600)
	os.WriteFile(msg, []byte("Subject: from curl\r\n\r\nhi\r\n"), 0o600)
	_, port, _ := strings.Cut(addr, ":")
	cmd := exec.CommandContext(linetest.Ctx(t), curl, "-sS", "--ssl-reqd", "--cacert", ca,
		"--resolve", "localhost:"+port+":127.0.0.1",
		"--user", "user:secret", "--mail-from", "curl@test", "--mail-rcpt", "rcpt@test",
		"--upload-file", msg, "smtp://localhost:"+port+"/client.test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Protocol \"smtp\" not supported") {
			t.Skip("curl built without SMTP")
		}
		t.Fatalf("curl: %v\n%s", err, out)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(b.messages()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if msgs := b.messages(); len(msgs) != 1 || msgs[0].data != "Subject: from curl\r\n\r\nhi\r\n" {
		t.Errorf("delivered %+v", msgs)
	}
}

// TestOpenSSLSClient checks that openssl s_client -starttls smtp upgrades
// and verifies, and that the session goes on over TLS.
func TestOpenSSLSClient(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH")
	}
	s, _ := newServer(t)
	addr := start(t, s)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, testCAPEM(t), 0o600)
	cmd := exec.CommandContext(linetest.Ctx(t), openssl, "s_client", "-starttls", "smtp", "-connect", addr,
		"-CAfile", ca, "-verify_return_error", "-verify_ip", "127.0.0.1", "-crlf", "-quiet", "-name", "client.test")
	cmd.Stdin = strings.NewReader("EHLO client.test\nNOOP\nQUIT\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	for _, want := range []string{"250 AUTH PLAIN LOGIN", "250 2.0.0 OK", "221 2.0.0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("openssl output lacks %q:\n%s", want, out)
		}
	}
}

// TestSwaks sends a message with swaks --tls --auth, if swaks is there.
func TestSwaks(t *testing.T) {
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		t.Skip("swaks not on PATH")
	}
	s, b := newServer(t)
	s.RequireAuth = true
	addr := start(t, s)
	out, err := exec.CommandContext(linetest.Ctx(t), swaks, "--server", addr, "--tls",
		"--auth", "PLAIN", "--auth-user", "user", "--auth-password", "secret",
		"--helo", "client.test", "--from", "swaks@test", "--to", "rcpt@test", "--body", "hi from swaks").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if msgs := b.messages(); len(msgs) != 1 || !strings.Contains(msgs[0].data, "hi from swaks") {
		t.Errorf("delivered %+v", msgs)
	}
}
