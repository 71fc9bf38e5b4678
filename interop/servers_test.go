//go:build interop

package interop

// Part A: our client library and `starttls check` against real servers,
// Postfix (SMTP, STARTTLS and implicit TLS, AUTH through Dovecot only after
// TLS) and Dovecot (IMAP and POP3, STARTTLS and implicit TLS,
// disable_plaintext_auth = yes), as scripts/interop.sh configures them.
//
// Dovecot counts a client whose address equals the local address as secure
// and then offers login before TLS. Its real pre-TLS policy is seen from
// another loopback address: env.Source (127.0.0.2). From
// env.SourcePlainLogin (127.0.0.3) a `remote` block turns
// disable_plaintext_auth off: the misconfigured server check must flag.
//
// Subtests are named "client→server"; the script prints them as the interop
// matrix.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/imap"
	"github.com/starttls/starttls/pop3"
	"github.com/starttls/starttls/smtp"
)

// hasCap reports whether caps holds the keyword kw, alone or with
// parameters ("AUTH PLAIN LOGIN", "SIZE 10240000", "SASL PLAIN").
func hasCap(caps []string, kw string) bool {
	for _, c := range caps {
		if strings.EqualFold(c, kw) || (len(c) > len(kw) && strings.EqualFold(c[:len(kw)+1], kw+" ")) {
			return true
		}
	}
	return false
}

// assertSecured checks what every successful STARTTLS upgrade must show.
func assertSecured(t *testing.T, res *starttls.Result, mode starttls.Mode) {
	t.Helper()
	if res == nil {
		t.Fatal("nil Result")
	}
	if res.Mode != mode {
		t.Errorf("Result.Mode = %v, want %v", res.Mode, mode)
	}
	if !res.Upgraded {
		t.Error("Result.Upgraded = false")
	}
	if res.TLS == nil {
		t.Fatal("Result.TLS = nil after an upgrade")
	}
	if !res.TLS.HandshakeComplete {
		t.Error("handshake not complete")
	}
	if res.TLS.Version < tls.VersionTLS12 {
		t.Errorf("negotiated %s, want TLS 1.2 or later", tls.VersionName(res.TLS.Version))
	}
	if len(res.TLS.VerifiedChains) == 0 {
		t.Error("no verified chain: the certificate was not verified against the interop CA")
	}
	if mode == starttls.ModeImplicit {
		if res.Offered || len(res.CapsBefore) > 0 {
			t.Errorf("implicit TLS: Offered=%v CapsBefore=%v, want nothing before TLS", res.Offered, res.CapsBefore)
		}
	} else {
		if !res.Offered {
			t.Error("Result.Offered = false: the server advertises the upgrade")
		}
		if !res.CapsReread {
			t.Error("Result.CapsReread = false: capabilities must be asked again over TLS")
		}
		if res.OfferedAfterTLS {
			t.Errorf("Result.OfferedAfterTLS = true; caps after TLS: %v", res.CapsAfter)
		}
	}
	if len(res.CapsAfter) == 0 {
		t.Error("no capabilities read over TLS")
	}
	t.Logf("%s %s: %s %s; before TLS: caps %v auth %v; after: caps %v auth %v",
		res.Protocol, res.Mode, tls.VersionName(res.TLS.Version), tls.CipherSuiteName(res.TLS.CipherSuite),
		res.CapsBefore, res.AuthBefore, res.CapsAfter, res.AuthAfter)
}

func opts(t *testing.T, e *env, mode starttls.Mode) *starttls.ClientOptions {
	return &starttls.ClientOptions{Mode: mode, TLSConfig: tlsConfig(t, e.CA), LocalName: "client.interop.test"}
}

// waitDelivered waits until a message containing token is in the Maildir
// Postfix delivers to (and Dovecot serves).
func waitDelivered(t *testing.T, maildir, token string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, sub := range []string{"new", "cur"} {
			files, _ := filepath.Glob(filepath.Join(maildir, sub, "*"))
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err == nil && strings.Contains(string(b), token) {
					return string(b)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message with %q in %s after %v (see the Postfix log in the work directory)", token, maildir, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func token(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

// ---------------------------------------------------------------------------
// Postfix
// ---------------------------------------------------------------------------

func TestPostfix(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mail")

	t.Run("lib-smtp(required)→postfix-smtp", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		c, res, err := smtp.Dial(ctx, e.PostfixSMTP, opts(t, e, starttls.ModeRequired))
		if err != nil {
			t.Fatalf("smtp.Dial: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeRequired)
		if !strings.Contains(res.Greeting, "mx.interop.test") {
			t.Errorf("greeting %q does not name mx.interop.test", res.Greeting)
		}
		if !hasCap(res.CapsBefore, "STARTTLS") {
			t.Errorf("EHLO before TLS %v lacks STARTTLS", res.CapsBefore)
		}
		// smtpd_tls_auth_only = yes: AUTH only over TLS.
		if len(res.AuthBefore) != 0 || hasCap(res.CapsBefore, "AUTH") {
			t.Errorf("AUTH before TLS: %v (Postfix has smtpd_tls_auth_only = yes)", res.AuthBefore)
		}
		if !hasFold(res.AuthAfter, "PLAIN") {
			t.Errorf("AUTH mechanisms over TLS %v lack PLAIN", res.AuthAfter)
		}
		if c.Result() == nil || !c.Result().Upgraded {
			t.Error("Client.Result() does not report the upgrade")
		}
	})

	t.Run("lib-smtp(login,sendmail)→postfix-smtp", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		c, res, err := smtp.Dial(ctx, e.PostfixSMTP, opts(t, e, starttls.ModeRequired))
		if err != nil {
			t.Fatalf("smtp.Dial: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeRequired)
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login over TLS: %v", err)
		}
		tok := token("lib-smtp")
		msg := fmt.Sprintf("From: Alice <%s>\r\nTo: <%s>\r\nSubject: interop %s\r\nMessage-ID: <%s@interop.test>\r\n\r\nSent by the starttls library.\r\n.leading dot\r\n",
			e.Rcpt, e.Rcpt, tok, tok)
		if err := c.SendMail(ctx, e.Rcpt, []string{e.Rcpt}, []byte(msg)); err != nil {
			t.Fatalf("SendMail: %v", err)
		}
		got := waitDelivered(t, e.Maildir, tok, 30*time.Second)
		if !strings.Contains(got, "\n.leading dot") {
			t.Errorf("dot-stuffing: delivered message lacks the line %q:\n%s", ".leading dot", got)
		}
		if !strings.Contains(got, "with ESMTPSA") {
			t.Errorf("Postfix's Received header does not say ESMTPSA (TLS + AUTH):\n%s", got)
		}
	})

	t.Run("lib-smtp(bad-password)→postfix-smtp", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		c, _, err := smtp.Dial(ctx, e.PostfixSMTP, opts(t, e, starttls.ModeRequired))
		if err != nil {
			t.Fatalf("smtp.Dial: %v", err)
		}
		defer c.Close()
		if err := c.Login(ctx, e.User, "wrong-"+e.Password); err == nil {
			t.Fatal("Login with a wrong password succeeded")
		} else {
			t.Logf("refused as it should be: %v", err)
		}
	})

	t.Run("lib-smtp(implicit)→postfix-smtps", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		c, res, err := smtp.Dial(ctx, e.PostfixSMTPS, opts(t, e, starttls.ModeImplicit))
		if err != nil {
			t.Fatalf("smtp.Dial: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeImplicit)
		if hasCap(res.CapsAfter, "STARTTLS") {
			t.Errorf("implicit TLS port advertises STARTTLS: %v", res.CapsAfter)
		}
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login: %v", err)
		}
	})

	t.Run("lib-smtp(injection-probe)→postfix-smtp", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		o := opts(t, e, starttls.ModeRequired)
		o.ProbeInjection = true
		c, res, err := smtp.Dial(ctx, e.PostfixSMTP, o)
		if err == nil {
			defer c.Close()
		} else if res == nil {
			t.Fatalf("smtp.Dial with the probe: %v", err)
		}
		if res.Injection == nil {
			t.Fatalf("no injection probe result (err %v)", err)
		}
		p := res.Injection
		t.Logf("probe: sent %q, reply %q, closed %v, err %q", p.Sent, p.Reply, p.Closed, p.Err)
		if p.Vulnerable {
			t.Errorf("Postfix reported vulnerable to CVE-2011-0411 (fixed in 2.8.0 / 2011): reply %q", p.Reply)
		}
		// Postfix discards what was pipelined after STARTTLS and completes
		// the handshake: the probe sees no answer and a usable connection.
		if p.Err != "" || p.Closed || p.Reply != "" {
			t.Errorf("probe: err %q closed %v reply %q; Postfix discards the pipelined command and goes on", p.Err, p.Closed, p.Reply)
		}
	})

	t.Run("lib-smtp(no-ca)→postfix-smtp", func(t *testing.T) {
		// No TLSConfig: the system roots, which do not hold the interop CA.
		ctx := testCtx(t, time.Minute)
		c, res, err := smtp.Dial(ctx, e.PostfixSMTP, &starttls.ClientOptions{Mode: starttls.ModeRequired, LocalName: "client.interop.test"})
		if err == nil {
			c.Close()
			t.Fatal("required mode accepted a certificate from an unknown CA")
		}
		var he *starttls.HandshakeError
		if !errors.As(err, &he) {
			t.Errorf("error %v is not a *starttls.HandshakeError", err)
		}
		if p := starttls.CertificateProblem(err); p != "untrusted" {
			t.Errorf("CertificateProblem = %q, want untrusted (err %v)", p, err)
		}
		if res != nil && res.Upgraded {
			t.Error("Result.Upgraded = true after a failed verification")
		}
	})

	t.Run("lib-smtp(wrong-name)→postfix-smtp", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		o := opts(t, e, starttls.ModeRequired)
		o.ServerName = "mail.example.org"
		c, _, err := smtp.Dial(ctx, e.PostfixSMTP, o)
		if err == nil {
			c.Close()
			t.Fatal("accepted a certificate that does not name mail.example.org")
		}
		if p := starttls.CertificateProblem(err); p != "name-mismatch" {
			t.Errorf("CertificateProblem = %q, want name-mismatch (err %v)", p, err)
		}
	})

	t.Run("check→postfix-smtp", func(t *testing.T) {
		r := check(t, e, "--ca", e.CA, "smtp://"+e.PostfixSMTP)
		assertGoodReport(t, r, "smtp", true)
	})

	t.Run("check→postfix-smtps", func(t *testing.T) {
		r := check(t, e, "--ca", e.CA, "smtps://"+e.PostfixSMTPS)
		assertGoodReport(t, r, "smtp", false)
	})

	t.Run("check(no-ca)→postfix-smtp", func(t *testing.T) {
		r := check(t, e, "smtp://"+e.PostfixSMTP)
		assertUntrusted(t, r)
	})
}

// TestDovecotLMTP: the LMTP side of the smtp package against Dovecot's LMTP
// server, which offers STARTTLS when ssl = yes.
func TestDovecotLMTP(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mail")
	if e.LMTP == "" {
		t.Fatal("INTEROP_DOVECOT_LMTP is not set")
	}

	t.Run("lib-lmtp(required,deliver)→dovecot-lmtp", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		c, res, err := smtp.DialLMTP(ctx, e.LMTP, opts(t, e, starttls.ModeRequired))
		if err != nil {
			t.Fatalf("smtp.DialLMTP: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeRequired)
		if res.Protocol != "lmtp" || !hasCap(res.CapsBefore, "STARTTLS") {
			t.Errorf("protocol %q, LHLO before TLS %v", res.Protocol, res.CapsBefore)
		}
		tok := token("lib-lmtp")
		msg := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: lmtp %s\r\nMessage-ID: <%s@interop.test>\r\n\r\nDelivered over LMTP inside TLS.\r\n", e.Rcpt, e.Rcpt, tok, tok)
		if err := c.SendMail(ctx, "bob@example.org", []string{e.Rcpt}, []byte(msg)); err != nil {
			t.Fatalf("SendMail over LMTP: %v", err)
		}
		waitDelivered(t, e.Maildir, tok, 30*time.Second)
	})

	t.Run("lib-lmtp(unknown-recipient)→dovecot-lmtp", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		c, _, err := smtp.DialLMTP(ctx, e.LMTP, opts(t, e, starttls.ModeRequired))
		if err != nil {
			t.Fatalf("smtp.DialLMTP: %v", err)
		}
		defer c.Close()
		if err := c.SendMail(ctx, "bob@example.org", []string{"nobody@interop.test"}, []byte("Subject: x\r\n\r\nx\r\n")); err == nil {
			t.Fatal("SendMail to an unknown LMTP recipient succeeded")
		}
	})

	t.Run("lib-lmtp(injection-probe)→dovecot-lmtp", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		o := opts(t, e, starttls.ModeRequired)
		o.ProbeInjection = true
		c, res, err := smtp.DialLMTP(ctx, e.LMTP, o)
		if err == nil {
			defer c.Close()
		}
		if res == nil || res.Injection == nil {
			t.Fatalf("no injection probe result (err %v)", err)
		}
		p := res.Injection
		t.Logf("probe: sent %q, reply %q, closed %v, err %q", p.Sent, p.Reply, p.Closed, p.Err)
		if p.Vulnerable {
			t.Errorf("Dovecot LMTP executed the command pipelined after STARTTLS: reply %q", p.Reply)
		}
	})

	t.Run("check→dovecot-lmtp", func(t *testing.T) {
		r := check(t, e, "--ca", e.CA, "lmtp://"+e.LMTP)
		assertGoodReport(t, r, "lmtp", true)
	})
}

// assertGoodReport checks a report on a correctly configured real server.
func assertGoodReport(t *testing.T, r *report, protocol string, starttlsPort bool) {
	t.Helper()
	if r.Verdict != "pass" && r.Verdict != "warn" {
		t.Errorf("verdict %q, want pass or warn; findings %v", r.Verdict, r.ids())
	}
	if r.Protocol != protocol {
		t.Errorf("protocol %q, want %q", r.Protocol, protocol)
	}
	if starttlsPort && (!r.STARTTLS.Offered || !r.STARTTLS.Upgraded) {
		t.Errorf("starttls = %+v, want offered and upgraded", r.STARTTLS)
	}
	if r.TLS == nil || r.TLS.Version == "" || r.TLS.Cipher == "" {
		t.Errorf("tls = %+v, want the negotiated version and cipher", r.TLS)
	}
	if r.Certificate == nil || !r.Certificate.Trusted || !r.Certificate.NameMatch {
		t.Errorf("certificate = %+v, want trusted and name_match with --ca", r.Certificate)
	}
	for _, bad := range []string{"command-injection", "auth-before-tls", "starttls-not-offered", "starttls-failed",
		"cert-untrusted", "cert-name-mismatch", "cert-expired", "tls-version-obsolete"} {
		if r.has(bad) {
			t.Errorf("finding %s on a correctly configured server; findings %v", bad, r.ids())
		}
	}
}

func assertUntrusted(t *testing.T, r *report) {
	t.Helper()
	if !r.has("cert-untrusted") {
		t.Errorf("no cert-untrusted without --ca; findings %v", r.ids())
	}
	if r.Verdict == "pass" {
		t.Errorf("verdict pass for an untrusted certificate")
	}
	if r.Certificate != nil && r.Certificate.Trusted {
		t.Errorf("certificate.trusted = true without --ca")
	}
}

// ---------------------------------------------------------------------------
// Dovecot
// ---------------------------------------------------------------------------

func TestDovecot(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mail")
	strict := "from-" + e.Source
	lax := "from-" + e.SourcePlainLogin

	t.Run("lib-imap(required,"+strict+")→dovecot-imap", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		conn := dialFrom(ctx, t, e.Source, e.IMAP)
		c, res, err := imap.Upgrade(ctx, conn, opts(t, e, starttls.ModeRequired))
		if err != nil {
			conn.Close()
			t.Fatalf("imap.Upgrade: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeRequired)
		// What Dovecot 2.3 announces to a client it does not trust yet:
		// STARTTLS and LOGINDISABLED, no AUTH= mechanism.
		if !hasFold(res.CapsBefore, "STARTTLS") || !hasFold(res.CapsBefore, "LOGINDISABLED") {
			t.Errorf("capabilities before TLS %v, want STARTTLS and LOGINDISABLED", res.CapsBefore)
		}
		if len(res.AuthBefore) != 0 {
			t.Errorf("AuthBefore = %v, want none (disable_plaintext_auth = yes)", res.AuthBefore)
		}
		if hasFold(res.CapsAfter, "LOGINDISABLED") || !hasFold(res.CapsAfter, "AUTH=PLAIN") {
			t.Errorf("capabilities over TLS %v, want AUTH=PLAIN and no LOGINDISABLED", res.CapsAfter)
		}
		if len(res.AuthAfter) == 0 {
			t.Error("AuthAfter empty: Dovecot offers login over TLS")
		}
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login over TLS: %v", err)
		}
		boxes, err := c.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if !hasFold(boxes, "INBOX") {
			t.Errorf("List = %v, want INBOX", boxes)
		}
	})

	t.Run("lib-imap(implicit)→dovecot-imaps", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		c, res, err := imap.Dial(ctx, e.IMAPS, opts(t, e, starttls.ModeImplicit))
		if err != nil {
			t.Fatalf("imap.Dial: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeImplicit)
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login: %v", err)
		}
		boxes, err := c.List(ctx)
		if err != nil || !hasFold(boxes, "INBOX") {
			t.Fatalf("List = %v, %v; want INBOX", boxes, err)
		}
	})

	t.Run("lib-imap(plain,"+strict+")→dovecot-imap", func(t *testing.T) {
		// The caller asked for plaintext explicitly; Dovecot must still
		// refuse the login before TLS.
		ctx := testCtx(t, time.Minute)
		conn := dialFrom(ctx, t, e.Source, e.IMAP)
		c, res, err := imap.Upgrade(ctx, conn, &starttls.ClientOptions{Mode: starttls.ModePlain})
		if err != nil {
			conn.Close()
			t.Fatalf("imap.Upgrade(plain): %v", err)
		}
		defer c.Close()
		if res.Upgraded || res.TLS != nil {
			t.Errorf("plain mode upgraded: %+v", res)
		}
		if err := c.Login(ctx, e.User, e.Password); err == nil {
			t.Fatal("Dovecot accepted a plaintext login from a non-local address")
		} else {
			t.Logf("refused: %v", err)
		}
	})

	t.Run("lib-imap(injection-probe,"+strict+")→dovecot-imap", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		o := opts(t, e, starttls.ModeRequired)
		o.ProbeInjection = true
		conn := dialFrom(ctx, t, e.Source, e.IMAP)
		c, res, err := imap.Upgrade(ctx, conn, o)
		if err == nil {
			defer c.Close()
		} else {
			conn.Close()
		}
		assertDovecotNotInjectable(t, res, err)
	})

	t.Run("lib-imap(required,"+lax+")→dovecot-imap", func(t *testing.T) {
		// The `remote 127.0.0.3 { disable_plaintext_auth = no }` block: the
		// library must see login offered before TLS.
		ctx := testCtx(t, time.Minute)
		conn := dialFrom(ctx, t, e.SourcePlainLogin, e.IMAP)
		c, res, err := imap.Upgrade(ctx, conn, opts(t, e, starttls.ModeRequired))
		if err != nil {
			conn.Close()
			t.Fatalf("imap.Upgrade: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeRequired)
		if hasFold(res.CapsBefore, "LOGINDISABLED") || len(res.AuthBefore) == 0 {
			t.Errorf("from %s: caps %v auth %v before TLS; want login offered", e.SourcePlainLogin, res.CapsBefore, res.AuthBefore)
		}
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login over TLS: %v", err)
		}
	})

	t.Run("lib-pop3(required,"+strict+")→dovecot-pop3", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		conn := dialFrom(ctx, t, e.Source, e.POP3)
		c, res, err := pop3.Upgrade(ctx, conn, opts(t, e, starttls.ModeRequired))
		if err != nil {
			conn.Close()
			t.Fatalf("pop3.Upgrade: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeRequired)
		// Dovecot 2.3 before TLS: STLS, no USER, an empty SASL line.
		if !hasCap(res.CapsBefore, "STLS") || hasCap(res.CapsBefore, "USER") {
			t.Errorf("CAPA before TLS %v, want STLS and no USER", res.CapsBefore)
		}
		if len(res.AuthBefore) != 0 {
			t.Errorf("AuthBefore = %v, want none", res.AuthBefore)
		}
		if !hasCap(res.CapsAfter, "USER") || len(res.AuthAfter) == 0 {
			t.Errorf("CAPA over TLS %v (auth %v), want USER and SASL mechanisms", res.CapsAfter, res.AuthAfter)
		}
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login over TLS: %v", err)
		}
		n, size, err := c.Stat(ctx)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if n < 1 || size <= 0 {
			t.Errorf("Stat = %d messages, %d bytes; the maildrop holds at least one", n, size)
		}
	})

	t.Run("lib-pop3(implicit)→dovecot-pop3s", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		c, res, err := pop3.Dial(ctx, e.POP3S, opts(t, e, starttls.ModeImplicit))
		if err != nil {
			t.Fatalf("pop3.Dial: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeImplicit)
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login: %v", err)
		}
		if n, _, err := c.Stat(ctx); err != nil || n < 1 {
			t.Fatalf("Stat = %d, %v; want at least one message", n, err)
		}
	})

	t.Run("lib-pop3(injection-probe,"+strict+")→dovecot-pop3", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		o := opts(t, e, starttls.ModeRequired)
		o.ProbeInjection = true
		conn := dialFrom(ctx, t, e.Source, e.POP3)
		c, res, err := pop3.Upgrade(ctx, conn, o)
		if err == nil {
			defer c.Close()
		} else {
			conn.Close()
		}
		assertDovecotNotInjectable(t, res, err)
	})

	t.Run("lib-pop3(required,"+lax+")→dovecot-pop3", func(t *testing.T) {
		ctx := testCtx(t, time.Minute)
		conn := dialFrom(ctx, t, e.SourcePlainLogin, e.POP3)
		c, res, err := pop3.Upgrade(ctx, conn, opts(t, e, starttls.ModeRequired))
		if err != nil {
			conn.Close()
			t.Fatalf("pop3.Upgrade: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeRequired)
		if !hasFold(res.AuthBefore, "USER") {
			t.Errorf("from %s: AuthBefore = %v (CAPA %v); want USER offered before TLS", e.SourcePlainLogin, res.AuthBefore, res.CapsBefore)
		}
	})

	for _, tc := range []struct{ scheme, addr, server string }{
		{"imap", e.IMAP, "dovecot-imap"},
		{"pop3", e.POP3, "dovecot-pop3"},
	} {
		t.Run("check("+strict+")→"+tc.server, func(t *testing.T) {
			r := check(t, e, "--ca", e.CA, "--source", e.Source, tc.scheme+"://"+tc.addr)
			assertGoodReport(t, r, tc.scheme, true)
		})
		t.Run("check("+lax+")→"+tc.server, func(t *testing.T) {
			r := check(t, e, "--ca", e.CA, "--source", e.SourcePlainLogin, tc.scheme+"://"+tc.addr)
			if !r.has("auth-before-tls") {
				t.Errorf("no auth-before-tls for a server that offers login before TLS; findings %v", r.ids())
			}
			if r.Verdict == "pass" {
				t.Error("verdict pass for a server that offers login before TLS")
			}
		})
		t.Run("check(no-ca,"+strict+")→"+tc.server, func(t *testing.T) {
			r := check(t, e, "--source", e.Source, tc.scheme+"://"+tc.addr)
			assertUntrusted(t, r)
		})
	}
	t.Run("check→dovecot-imaps", func(t *testing.T) {
		r := check(t, e, "--ca", e.CA, "imaps://"+e.IMAPS)
		assertGoodReport(t, r, "imap", false)
	})
	t.Run("check→dovecot-pop3s", func(t *testing.T) {
		r := check(t, e, "--ca", e.CA, "pop3s://"+e.POP3S)
		assertGoodReport(t, r, "pop3", false)
	})
	t.Run("check(from-127.0.0.1)→dovecot-imap", func(t *testing.T) {
		// Dovecot treats a client on its own address as secure and offers
		// login before TLS: seen from 127.0.0.1 the server looks
		// misconfigured, which is why the other checks use --source.
		r := check(t, e, "--ca", e.CA, "--source", "127.0.0.1", "imap://"+e.IMAP)
		if !r.has("auth-before-tls") {
			t.Errorf("from 127.0.0.1 Dovecot offers AUTH=PLAIN before TLS, yet no auth-before-tls; findings %v", r.ids())
		}
	})
}

// assertDovecotNotInjectable checks the CVE-2011-0411 probe against
// Dovecot. Dovecot 2.3 does not execute what was pipelined after
// STARTTLS/STLS: it hands those bytes to the TLS handshake, which fails
// ("SSL_accept() failed: wrong version number" in its log), and closes the
// connection. The probe must report exactly that: not vulnerable, closed.
func assertDovecotNotInjectable(t *testing.T, res *starttls.Result, err error) {
	t.Helper()
	if res == nil || res.Injection == nil {
		t.Fatalf("no injection probe result (err %v)", err)
	}
	p := res.Injection
	t.Logf("probe: sent %q, reply %q, closed %v, err %q (dial err %v)", p.Sent, p.Reply, p.Closed, p.Err, err)
	if p.Vulnerable {
		t.Errorf("reported vulnerable to STARTTLS command injection: reply %q", p.Reply)
	}
	if !p.Closed {
		t.Errorf("Closed = false; Dovecot closes the connection when plaintext follows the upgrade command (err %q)", p.Err)
	}
}

// ---------------------------------------------------------------------------
// `starttls connect` as a pipe (what openssl s_client -starttls is for)
// ---------------------------------------------------------------------------

func TestConnect(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mail")
	connect := func(t *testing.T, stdin string, args ...string) result {
		bin := e.needBinary(t)
		return run(t, clientTimeout, stdin, bin, append([]string{"connect", "--timeout", "20s"}, args...)...)
	}
	ok := func(t *testing.T, r result) {
		t.Helper()
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("starttls connect: exit %d", r.Code)
		}
	}

	t.Run("starttls-connect(pipe)→postfix-smtp", func(t *testing.T) {
		r := connect(t, "EHLO client.interop.test\nQUIT\n", "--ca", e.CA, "smtp://"+e.PostfixSMTP)
		ok(t, r)
		// stdout is the session over TLS: the second EHLO, where Postfix
		// offers AUTH and no longer STARTTLS.
		requireContains(t, "session", r.Stdout, "250-AUTH PLAIN", "221 ")
		requireLacks(t, "session", r.Stdout, "STARTTLS")
		requireContains(t, "summary", r.Stderr, "upgraded with STARTTLS", "verified")
	})
	t.Run("starttls-connect(pipe,"+"from-"+e.Source+")→dovecot-imap", func(t *testing.T) {
		in := fmt.Sprintf("a1 LOGIN %s %s\na2 LIST \"\" \"*\"\na3 LOGOUT\n", e.User, e.Password)
		r := connect(t, in, "--quiet", "--ca", e.CA, "--source", e.Source, "imap://"+e.IMAP)
		ok(t, r)
		requireContains(t, "session", r.Stdout, "a1 OK", "INBOX", "a2 OK", "a3 OK")
	})
	t.Run("starttls-connect(pipe,"+"from-"+e.Source+")→dovecot-pop3", func(t *testing.T) {
		in := fmt.Sprintf("USER %s\nPASS %s\nSTAT\nQUIT\n", e.User, e.Password)
		r := connect(t, in, "--quiet", "--ca", e.CA, "--source", e.Source, "pop3://"+e.POP3)
		ok(t, r)
		requireContains(t, "session", r.Stdout, "+OK Logged in.", "+OK Logging out.")
	})
	t.Run("starttls-connect(pipe)→dovecot-pop3s", func(t *testing.T) {
		in := fmt.Sprintf("USER %s\nPASS %s\nQUIT\n", e.User, e.Password)
		r := connect(t, in, "--quiet", "--ca", e.CA, "pop3s://"+e.POP3S)
		ok(t, r)
		requireContains(t, "session", r.Stdout, "+OK Logged in.")
	})
	t.Run("starttls-connect(no-ca,must-reject)→postfix-smtp", func(t *testing.T) {
		r := connect(t, "EHLO client.interop.test\nQUIT\n", "smtp://"+e.PostfixSMTP)
		if r.Code == 0 {
			r.dump(t)
			t.Fatal("connect went on with a certificate from an unknown CA")
		}
		requireContains(t, "stderr", r.Stderr, "untrusted")
		requireLacks(t, "stdout", r.Stdout, "250")
	})
}
