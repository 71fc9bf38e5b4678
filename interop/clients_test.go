//go:build interop

package interop

// Part B: real clients against the lab's correct endpoints (and, to show
// that those clients really verify, a few broken ones they must refuse):
// openssl s_client, curl, swaks and Python's smtplib/imaplib/poplib.
// Part C: Postfix's posttls-finger as an oracle that the lab's SMTP and
// LMTP servers do TLS right.
//
// The lab runs as `starttls lab --json --listen 127.0.0.1`, started once
// per test binary and stopped by pid in TestMain. Subtests are named
// "client→server".

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/pop3"
)

const clientTimeout = 60 * time.Second

// ---------------------------------------------------------------------------
// openssl s_client
// ---------------------------------------------------------------------------

// sClient runs openssl s_client with verification on and returns what the
// server sent after the handshake (s_client prints it after the top-level
// "Verify return code:" line; the plaintext phase goes to stderr).
func sClient(t *testing.T, l *labInfo, endpoint, starttlsProto, stdin string) (string, result) {
	t.Helper()
	bin := needTool(t, "openssl")
	host, port := l.addr(t, endpoint)
	args := []string{"s_client", "-connect", host + ":" + port, "-CAfile", l.CA,
		"-verify_return_error", "-verify_ip", host, "-ign_eof"}
	if starttlsProto != "" {
		args = append(args, "-starttls", starttlsProto)
	}
	r := run(t, clientTimeout, stdin, bin, args...)
	i := strings.Index(r.Stdout, "\nVerify return code: ")
	if i < 0 {
		return "", r
	}
	return r.Stdout[i+1:], r
}

func requireVerifiedOK(t *testing.T, post string, r result) {
	t.Helper()
	if r.Code != 0 || !strings.HasPrefix(post, "Verify return code: 0 (ok)") {
		r.dump(t)
		t.Fatalf("openssl s_client: exit %d, want a verified handshake (Verify return code: 0)", r.Code)
	}
}

func requireContains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, clip(s))
		}
	}
}

func requireLacks(t *testing.T, what, s string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(s, b) {
			t.Errorf("%s contains %q:\n%s", what, b, clip(s))
		}
	}
}

// capabilityLine returns the first "* CAPABILITY" line in s.
func capabilityLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "* CAPABILITY ") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

func TestOpenSSLClient(t *testing.T) {
	getEnv(t)
	l := startLab(t)
	user, pass := l.User, l.Password

	t.Run("openssl-s_client(-starttls_smtp)→lab-smtp", func(t *testing.T) {
		post, r := sClient(t, l, "smtp", "smtp", "EHLO client.interop.test\r\nQUIT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "EHLO over TLS", post, "250-", "221 ")
		// RFC 3207 §4.2: STARTTLS is not advertised again over TLS.
		requireLacks(t, "EHLO over TLS", post, "STARTTLS")
	})
	t.Run("openssl-s_client(-starttls_smtp)→lab-submission", func(t *testing.T) {
		post, r := sClient(t, l, "submission", "smtp", "EHLO client.interop.test\r\nQUIT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "EHLO over TLS", post, "AUTH PLAIN", "221 ")
		requireLacks(t, "EHLO over TLS", post, "STARTTLS")
	})
	t.Run("openssl-s_client(-starttls_lmtp)→lab-lmtp", func(t *testing.T) {
		post, r := sClient(t, l, "lmtp", "lmtp", "LHLO client.interop.test\r\nQUIT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "LHLO over TLS", post, "250", "221 ")
		requireLacks(t, "LHLO over TLS", post, "STARTTLS")
	})
	t.Run("openssl-s_client(-starttls_imap)→lab-imap", func(t *testing.T) {
		in := fmt.Sprintf("a1 CAPABILITY\r\na2 LOGIN %s %s\r\na3 LIST \"\" \"*\"\r\na4 LOGOUT\r\n", user, pass)
		post, r := sClient(t, l, "imap", "imap", in)
		requireVerifiedOK(t, post, r)
		caps := capabilityLine(post)
		if caps == "" {
			t.Fatalf("no CAPABILITY answered over TLS:\n%s", post)
		}
		requireContains(t, "CAPABILITY over TLS", caps, "IMAP4rev1", "AUTH=PLAIN")
		requireLacks(t, "CAPABILITY over TLS", caps, "STARTTLS", "LOGINDISABLED")
		requireContains(t, "IMAP session over TLS", post, "a1 OK", "a2 OK", "INBOX", "a3 OK", "a4 OK")
	})
	t.Run("openssl-s_client(-starttls_pop3)→lab-pop3", func(t *testing.T) {
		in := fmt.Sprintf("CAPA\r\nUSER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n", user, pass)
		post, r := sClient(t, l, "pop3", "pop3", in)
		requireVerifiedOK(t, post, r)
		requireContains(t, "CAPA over TLS", post, "+OK", "\nUSER", "\n.")
		requireLacks(t, "CAPA over TLS", post, "STLS")
		if !regexp.MustCompile(`(?m)^\+OK [1-9][0-9]* [0-9]+\r?$`).MatchString(post) {
			t.Errorf("no STAT answer with at least one message over TLS:\n%s", post)
		}
	})
	t.Run("openssl-s_client(implicit)→lab-smtps", func(t *testing.T) {
		post, r := sClient(t, l, "smtps", "", "EHLO client.interop.test\r\nQUIT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "SMTP over implicit TLS", post, "220 ", "250", "AUTH PLAIN", "221 ")
		requireLacks(t, "SMTP over implicit TLS", post, "STARTTLS")
	})
	t.Run("openssl-s_client(implicit)→lab-imaps", func(t *testing.T) {
		post, r := sClient(t, l, "imaps", "", "a1 CAPABILITY\r\na2 LOGOUT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "IMAP over implicit TLS", post, "* OK", "a1 OK", "a2 OK")
		requireLacks(t, "CAPABILITY over implicit TLS", capabilityLine(post), "STARTTLS", "LOGINDISABLED")
	})
	t.Run("openssl-s_client(implicit)→lab-pop3s", func(t *testing.T) {
		post, r := sClient(t, l, "pop3s", "", "CAPA\r\nQUIT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "POP3 over implicit TLS", post, "+OK", "\nUSER")
		requireLacks(t, "POP3 over implicit TLS", post, "STLS")
	})
	// The same client refuses the lab's broken certificates: the lab shows
	// real clients what `check` flags.
	for _, tc := range []struct{ endpoint, code string }{
		{"smtp-self-signed", "Verify return code: 18 "}, // X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
		{"smtp-expired", "Verify return code: 10 "},     // X509_V_ERR_CERT_HAS_EXPIRED
		{"smtp-wrong-name", "Verify return code: 64 "},  // X509_V_ERR_IP_ADDRESS_MISMATCH
	} {
		t.Run("openssl-s_client(must-reject)→lab-"+tc.endpoint, func(t *testing.T) {
			post, r := sClient(t, l, tc.endpoint, "smtp", "EHLO client.interop.test\r\nQUIT\r\n")
			if r.Code == 0 {
				r.dump(t)
				t.Fatal("openssl s_client -verify_return_error accepted the certificate")
			}
			if !strings.HasPrefix(post, tc.code) {
				r.dump(t)
				t.Errorf("want %q", tc.code)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------

func TestCurl(t *testing.T) {
	getEnv(t)
	l := startLab(t)
	url := func(t *testing.T, scheme, endpoint, path string) string {
		host, port := l.addr(t, endpoint)
		return scheme + "://" + host + ":" + port + "/" + path
	}
	curl := func(t *testing.T, stdin string, args ...string) result {
		bin := needTool(t, "curl")
		base := []string{"-sS", "--max-time", "30", "--cacert", l.CA, "--user", l.User + ":" + l.Password}
		return run(t, clientTimeout, stdin, bin, append(base, args...)...)
	}
	mail := func(tok string) string {
		return fmt.Sprintf("From: <%s@starttls.test>\r\nTo: <%s@starttls.test>\r\nSubject: interop %s\r\nMessage-ID: <%s@interop.test>\r\n\r\nSent by curl. %s\r\n",
			l.User, l.User, tok, tok, tok)
	}
	rcpt := l.User + "@starttls.test"
	// popHas reads every message over POP3 with curl and looks for tok.
	popHas := func(t *testing.T, tok string) bool {
		r := curl(t, "", "--ssl-reqd", url(t, "pop3", "pop3", ""))
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl POP3 LIST: exit %d", r.Code)
		}
		for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
			n := strings.Fields(line)
			if len(n) == 0 {
				continue
			}
			m := curl(t, "", "--ssl-reqd", url(t, "pop3", "pop3", n[0]))
			if strings.Contains(m.Stdout, tok) {
				return true
			}
		}
		return false
	}

	t.Run("curl(--ssl-reqd,send)→lab-submission", func(t *testing.T) {
		tok := token("curl-submission")
		r := curl(t, mail(tok), "-v", "--ssl-reqd", "--mail-from", rcpt, "--mail-rcpt", rcpt, "--upload-file", "-",
			url(t, "smtp", "submission", ""))
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		// The credentials leave only after the handshake.
		tlsAt := strings.Index(r.Stderr, "SSL connection using")
		authAt := strings.Index(r.Stderr, "> AUTH")
		if tlsAt < 0 || authAt < 0 || authAt < tlsAt {
			r.dump(t)
			t.Errorf("want \"SSL connection using\" before \"> AUTH\" in curl -v (tls at %d, auth at %d)", tlsAt, authAt)
		}
		if !popHas(t, tok) {
			t.Errorf("message %s sent with curl is not in the lab's maildrop", tok)
		}
	})
	t.Run("curl(send)→lab-smtps", func(t *testing.T) {
		tok := token("curl-smtps")
		r := curl(t, mail(tok), "--mail-from", rcpt, "--mail-rcpt", rcpt, "--upload-file", "-", url(t, "smtps", "smtps", ""))
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		if !popHas(t, tok) {
			t.Errorf("message %s sent with curl is not in the lab's maildrop", tok)
		}
	})
	t.Run("curl(--ssl-reqd,list)→lab-imap", func(t *testing.T) {
		r := curl(t, "", "--ssl-reqd", url(t, "imap", "imap", ""))
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		requireContains(t, "IMAP LIST", r.Stdout, "* LIST", "INBOX")
	})
	t.Run("curl(--ssl-reqd,fetch)→lab-imap", func(t *testing.T) {
		r := curl(t, "", "--ssl-reqd", url(t, "imap", "imap", "INBOX;UID=1"))
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		requireContains(t, "message UID 1", r.Stdout, "Subject:", "Message-ID:")
	})
	t.Run("curl(list)→lab-imaps", func(t *testing.T) {
		r := curl(t, "", url(t, "imaps", "imaps", ""))
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		requireContains(t, "IMAP LIST", r.Stdout, "INBOX")
	})
	t.Run("curl(--ssl-reqd,list)→lab-pop3", func(t *testing.T) {
		r := curl(t, "", "--ssl-reqd", url(t, "pop3", "pop3", ""))
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		if !regexp.MustCompile(`(?m)^1 [0-9]+\r?$`).MatchString(r.Stdout) {
			t.Errorf("POP3 LIST without message 1:\n%s", r.Stdout)
		}
	})
	t.Run("curl(list)→lab-pop3s", func(t *testing.T) {
		r := curl(t, "", url(t, "pop3s", "pop3s", ""))
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		if !regexp.MustCompile(`(?m)^1 [0-9]+\r?$`).MatchString(r.Stdout) {
			t.Errorf("POP3 LIST without message 1:\n%s", r.Stdout)
		}
	})
	// curl's exit codes: 64 "Requested SSL level failed", 60 "Peer
	// certificate cannot be authenticated with known CA certificates".
	t.Run("curl(--ssl-reqd,must-reject)→lab-smtp-no-starttls", func(t *testing.T) {
		r := curl(t, mail("x"), "--ssl-reqd", "--mail-from", rcpt, "--mail-rcpt", rcpt, "--upload-file", "-",
			url(t, "smtp", "smtp-no-starttls", ""))
		if r.Code != 64 {
			r.dump(t)
			t.Errorf("curl --ssl-reqd: exit %d, want 64 (STARTTLS not supported)", r.Code)
		}
	})
	t.Run("curl(--ssl-reqd,must-reject)→lab-imap-self-signed", func(t *testing.T) {
		r := curl(t, "", "--ssl-reqd", url(t, "imap", "imap-self-signed", ""))
		if r.Code != 60 {
			r.dump(t)
			t.Errorf("curl: exit %d, want 60 (certificate problem)", r.Code)
		}
	})
}

// ---------------------------------------------------------------------------
// swaks
// ---------------------------------------------------------------------------

// labHasToken reads the lab's maildrop with the library's POP3 client over
// implicit TLS and reports whether a message contains tok.
func labHasToken(t *testing.T, l *labInfo, tok string) bool {
	t.Helper()
	host, port := l.addr(t, "pop3s")
	ctx := testCtx(t, time.Minute)
	c, _, err := pop3.Dial(ctx, host+":"+port, &starttls.ClientOptions{Mode: starttls.ModeImplicit, TLSConfig: tlsConfig(t, l.CA)})
	if err != nil {
		t.Fatalf("pop3.Dial lab: %v", err)
	}
	defer c.Close()
	if err := c.Login(ctx, l.User, l.Password); err != nil {
		t.Fatalf("pop3 Login lab: %v", err)
	}
	n, _, err := c.Stat(ctx)
	if err != nil {
		t.Fatalf("pop3 Stat lab: %v", err)
	}
	for i := n; i >= 1; i-- {
		b, err := c.Retr(ctx, i)
		if err != nil {
			t.Fatalf("pop3 Retr %d: %v", i, err)
		}
		if strings.Contains(string(b), tok) {
			return true
		}
	}
	return false
}

func TestSwaks(t *testing.T) {
	getEnv(t)
	l := startLab(t)
	rcpt := l.User + "@starttls.test"
	swaks := func(t *testing.T, endpoint string, args ...string) result {
		bin := needTool(t, "swaks")
		host, port := l.addr(t, endpoint)
		base := []string{"--server", host, "--port", port, "--from", rcpt, "--to", rcpt,
			"--ehlo", "client.interop.test", "--timeout", "30", "--tls-verify", "--tls-ca-path", l.CA}
		return run(t, clientTimeout, "", bin, append(base, args...)...)
	}
	auth := []string{"--auth", "PLAIN", "--auth-user", l.User, "--auth-password", l.Password}

	// In swaks' transcript "->"/"<-" are plaintext, "~>"/"<~" inside TLS.
	checkTLSDialog := func(t *testing.T, r result, withAuth bool) {
		t.Helper()
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("swaks: exit %d", r.Code)
		}
		requireContains(t, "swaks transcript", r.Stdout, "=== TLS started with cipher", "<~  250 2.0.0")
		requireLacks(t, "swaks transcript", r.Stdout, " -> MAIL FROM", " -> AUTH")
		if withAuth {
			requireContains(t, "swaks transcript", r.Stdout, " ~> AUTH PLAIN", "<~  235 ")
		}
	}

	t.Run("swaks(--tls,--auth_PLAIN)→lab-submission", func(t *testing.T) {
		tok := token("swaks-submission")
		r := swaks(t, "submission", append([]string{"--tls", "--header", "Subject: interop " + tok}, auth...)...)
		checkTLSDialog(t, r, true)
		// Before TLS the lab offers no AUTH (submission requires TLS first).
		pre := r.Stdout[:strings.Index(r.Stdout, "=== TLS started")]
		requireLacks(t, "EHLO before TLS", pre, "AUTH")
		if !labHasToken(t, l, tok) {
			t.Errorf("message %s sent with swaks is not in the lab's maildrop", tok)
		}
	})
	t.Run("swaks(--tls)→lab-smtp", func(t *testing.T) {
		r := swaks(t, "smtp", "--tls")
		checkTLSDialog(t, r, false)
	})
	t.Run("swaks(--tls-on-connect,--auth_PLAIN)→lab-smtps", func(t *testing.T) {
		r := swaks(t, "smtps", append([]string{"--tls-on-connect"}, auth...)...)
		checkTLSDialog(t, r, true)
	})
	t.Run("swaks(--protocol_LMTP,--tls)→lab-lmtp", func(t *testing.T) {
		r := swaks(t, "lmtp", "--protocol", "LMTP", "--tls")
		checkTLSDialog(t, r, false)
		requireContains(t, "swaks transcript", r.Stdout, " -> LHLO", " ~> LHLO")
	})
	t.Run("swaks(--tls-verify,must-reject)→lab-smtp-self-signed", func(t *testing.T) {
		r := swaks(t, "smtp-self-signed", "--tls")
		if r.Code == 0 {
			r.dump(t)
			t.Fatal("swaks --tls --tls-verify delivered over a self-signed certificate")
		}
		requireContains(t, "swaks transcript", r.Stdout+r.Stderr, "TLS startup failed")
		requireLacks(t, "swaks transcript", r.Stdout, "MAIL FROM")
	})
}

// ---------------------------------------------------------------------------
// Python smtplib / imaplib / poplib
// ---------------------------------------------------------------------------

type pyOut struct {
	CapsBefore []string `json:"caps_before"`
	CapsAfter  []string `json:"caps_after"`
	Offered    bool     `json:"offered"`
	TLSVersion string   `json:"tls_version"`
	LoggedIn   bool     `json:"logged_in"`
	Sent       bool     `json:"sent"`
	Mailboxes  []string `json:"mailboxes"`
	Count      int      `json:"count"`
	FoundToken bool     `json:"found_token"`
	Error      string   `json:"error"`
	ErrorType  string   `json:"error_type"`
}

// python runs scripts/interop/pyclient.py against a lab endpoint.
func python(t *testing.T, e *env, l *labInfo, scheme, endpoint string, wantExit int, args ...string) *pyOut {
	t.Helper()
	py := needTool(t, e.Python)
	host, port := l.addr(t, endpoint)
	argv := append([]string{e.ScriptsDir + "/pyclient.py", scheme, host, port, "--ca", l.CA}, args...)
	r := run(t, clientTimeout, "", py, argv...)
	var o pyOut
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &o); err != nil {
		r.dump(t)
		t.Fatalf("pyclient.py: output is not JSON: %v", err)
	}
	if r.Code != wantExit {
		r.dump(t)
		t.Fatalf("pyclient.py: exit %d, want %d (%s: %s)", r.Code, wantExit, o.ErrorType, o.Error)
	}
	t.Logf("python: %s", strings.TrimSpace(r.Stdout))
	return &o
}

func TestPython(t *testing.T) {
	e := getEnv(t)
	l := startLab(t)
	login := []string{"--user", l.User, "--password", l.Password}
	rcpt := l.User + "@starttls.test"

	t.Run("python-smtplib(starttls,login,sendmail)→lab-submission", func(t *testing.T) {
		tok := token("py-submission")
		o := python(t, e, l, "submission", "submission", 0, append(login, "--send-to", rcpt, "--token", tok)...)
		if !o.Offered || !o.LoggedIn || !o.Sent {
			t.Errorf("offered %v, logged in %v, sent %v", o.Offered, o.LoggedIn, o.Sent)
		}
		if hasFold(o.CapsBefore, "auth") {
			t.Errorf("EHLO before TLS offers AUTH: %v", o.CapsBefore)
		}
		if hasFold(o.CapsAfter, "starttls") || !hasFold(o.CapsAfter, "auth") {
			t.Errorf("EHLO over TLS %v, want AUTH and no STARTTLS", o.CapsAfter)
		}
		f := python(t, e, l, "pop3s", "pop3s", 0, append(login, "--find-token", tok)...)
		if !f.FoundToken {
			t.Errorf("message %s sent with smtplib not found with poplib", tok)
		}
	})
	t.Run("python-smtplib(starttls,sendmail)→lab-smtp", func(t *testing.T) {
		o := python(t, e, l, "smtp", "smtp", 0, "--send-to", rcpt, "--token", token("py-smtp"))
		if !o.Offered || !o.Sent {
			t.Errorf("offered %v, sent %v", o.Offered, o.Sent)
		}
	})
	t.Run("python-smtplib(SMTP_SSL,login)→lab-smtps", func(t *testing.T) {
		o := python(t, e, l, "smtps", "smtps", 0, append(login, "--send-to", rcpt, "--token", token("py-smtps"))...)
		if !o.LoggedIn || !o.Sent {
			t.Errorf("logged in %v, sent %v", o.LoggedIn, o.Sent)
		}
	})
	t.Run("python-smtplib(LMTP,starttls)→lab-lmtp", func(t *testing.T) {
		o := python(t, e, l, "lmtp", "lmtp", 0, "--send-to", rcpt, "--token", token("py-lmtp"))
		if !o.Offered || !o.Sent {
			t.Errorf("offered %v, sent %v", o.Offered, o.Sent)
		}
	})
	t.Run("python-imaplib(starttls,login,list)→lab-imap", func(t *testing.T) {
		o := python(t, e, l, "imap", "imap", 0, login...)
		if !hasFold(o.CapsBefore, "STARTTLS") || !hasFold(o.CapsBefore, "LOGINDISABLED") {
			t.Errorf("capabilities before TLS %v, want STARTTLS and LOGINDISABLED", o.CapsBefore)
		}
		if hasFold(o.CapsAfter, "STARTTLS") || hasFold(o.CapsAfter, "LOGINDISABLED") {
			t.Errorf("capabilities over TLS %v still carry STARTTLS or LOGINDISABLED", o.CapsAfter)
		}
		if !o.LoggedIn || !hasFold(o.Mailboxes, "INBOX") || o.Count < 1 {
			t.Errorf("logged in %v, mailboxes %v, INBOX count %d", o.LoggedIn, o.Mailboxes, o.Count)
		}
	})
	t.Run("python-imaplib(IMAP4_SSL,login,list)→lab-imaps", func(t *testing.T) {
		o := python(t, e, l, "imaps", "imaps", 0, login...)
		if !o.LoggedIn || !hasFold(o.Mailboxes, "INBOX") || o.Count < 1 {
			t.Errorf("logged in %v, mailboxes %v, INBOX count %d", o.LoggedIn, o.Mailboxes, o.Count)
		}
	})
	t.Run("python-poplib(stls,login,stat)→lab-pop3", func(t *testing.T) {
		o := python(t, e, l, "pop3", "pop3", 0, login...)
		if !hasFold(o.CapsBefore, "STLS") || hasFold(o.CapsBefore, "USER") {
			t.Errorf("CAPA before TLS %v, want STLS and no USER", o.CapsBefore)
		}
		if hasFold(o.CapsAfter, "STLS") || !hasFold(o.CapsAfter, "USER") {
			t.Errorf("CAPA over TLS %v, want USER and no STLS", o.CapsAfter)
		}
		if !o.LoggedIn || o.Count < 1 {
			t.Errorf("logged in %v, count %d", o.LoggedIn, o.Count)
		}
	})
	t.Run("python-poplib(POP3_SSL,login,stat)→lab-pop3s", func(t *testing.T) {
		o := python(t, e, l, "pop3s", "pop3s", 0, login...)
		if !o.LoggedIn || o.Count < 1 {
			t.Errorf("logged in %v, count %d", o.LoggedIn, o.Count)
		}
	})
	for _, tc := range []struct{ scheme, endpoint string }{
		{"smtp", "smtp-self-signed"},
		{"imap", "imap-wrong-name"},
		{"pop3", "pop3-expired"},
	} {
		t.Run("python-"+map[string]string{"smtp": "smtplib", "imap": "imaplib", "pop3": "poplib"}[tc.scheme]+"(must-reject)→lab-"+tc.endpoint, func(t *testing.T) {
			o := python(t, e, l, tc.scheme, tc.endpoint, 2, login...)
			if o.ErrorType != "SSLCertVerificationError" || o.LoggedIn {
				t.Errorf("error %s (%s), logged in %v; want SSLCertVerificationError before any login", o.ErrorType, o.Error, o.LoggedIn)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// posttls-finger (Postfix's TLS probe) as an oracle
// ---------------------------------------------------------------------------

func TestPosttlsFinger(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mail") // its main.cf directory comes from the mail module
	l := startLab(t)
	finger := func(t *testing.T, endpoint string, extra ...string) result {
		bin := needTool(t, "posttls-finger")
		host, port := l.addr(t, endpoint)
		// -l secure: verify the chain and match the name; Postfix does not
		// match IP addresses against IP SANs, so the match name is
		// "localhost", which the lab's certificate also carries.
		args := append([]string{"-l", "secure", "-F", l.CA, "-t", "30", "-T", "30"}, extra...)
		args = append(args, "["+host+"]:"+port, "localhost")
		var env []string
		if e.PostfixClientConfig != "" {
			env = []string{"MAIL_CONFIG=" + e.PostfixClientConfig}
		}
		return runEnv(t, clientTimeout, env, "", bin, args...)
	}
	verified := func(t *testing.T, r result) (before, after string) {
		t.Helper()
		out := r.Stdout + r.Stderr
		i := strings.Index(out, "Verified TLS connection established")
		if r.Code != 0 || i < 0 {
			r.dump(t)
			t.Fatalf("posttls-finger: exit %d, no verified TLS connection", r.Code)
		}
		return out[:i], out[i:]
	}

	t.Run("posttls-finger(-l_secure)→lab-smtp", func(t *testing.T) {
		before, after := verified(t, finger(t, "smtp"))
		requireContains(t, "EHLO before TLS", before, "< 250 STARTTLS", "> STARTTLS")
		requireContains(t, "dialog over TLS", after, "> EHLO", "< 221 ")
		requireLacks(t, "EHLO over TLS", after, "STARTTLS")
	})
	t.Run("posttls-finger(-l_secure)→lab-submission", func(t *testing.T) {
		before, after := verified(t, finger(t, "submission"))
		requireLacks(t, "EHLO before TLS", before, "AUTH")
		requireContains(t, "EHLO over TLS", after, "AUTH PLAIN")
	})
	t.Run("posttls-finger(-S,-l_secure)→lab-lmtp", func(t *testing.T) {
		_, after := verified(t, finger(t, "lmtp", "-S"))
		requireLacks(t, "LHLO over TLS", after, "STARTTLS")
	})
	for _, tc := range []struct{ endpoint, why string }{
		{"smtp-self-signed", "self-signed certificate"},
		{"smtp-wrong-name", "hostname mismatch"},
		{"smtp-expired", "certificate has expired"},
	} {
		t.Run("posttls-finger(-l_secure,must-reject)→lab-"+tc.endpoint, func(t *testing.T) {
			r := finger(t, tc.endpoint, "-c")
			out := r.Stdout + r.Stderr
			if strings.Contains(out, "Verified TLS connection") || !strings.Contains(out, "Untrusted TLS connection") {
				r.dump(t)
				t.Fatal("posttls-finger -l secure did not find the certificate untrusted")
			}
			requireContains(t, "posttls-finger", out, tc.why)
		})
	}
}
