//go:build interop

package interop

// Module "nntp": our NNTP client library, `starttls check` and `starttls
// connect` against INN 2.7's nnrpd (STARTTLS per RFC 4642 on
// $INTEROP_NNTP, implicit TLS on $INTEROP_NNTPS), reading the module's one
// article back after AUTHINFO USER/PASS over TLS; and the real client
// `openssl s_client -starttls nntp` against the lab.

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/nntp"
)

func TestINN(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "nntp")
	plain, implicit := needEnv(t, "INTEROP_NNTP"), needEnv(t, "INTEROP_NNTPS")

	readArticle := func(t *testing.T, c *nntp.Client) {
		ctx := testCtx(t, 30*time.Second)
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login: %v", err)
		}
		g, err := c.Group(ctx, "local.test")
		if err != nil {
			t.Fatalf("Group: %v", err)
		}
		if g.Count != 1 || g.Low != 1 || g.High != 1 {
			t.Errorf("Group = %+v, want one article", g)
		}
		art, err := c.Article(ctx, "1")
		if err != nil {
			t.Fatalf("Article: %v", err)
		}
		if !strings.Contains(string(art), "Message-ID: <interop-1@interop.test>\r\n") ||
			!strings.HasSuffix(string(art), "\r\n.A line that starts with a dot.\r\n") {
			t.Errorf("Article = %q", art)
		}
		body, err := c.Body(ctx, "<interop-1@interop.test>")
		if err != nil || !strings.HasPrefix(string(body), "This article was read back over TLS.\r\n") {
			t.Errorf("Body(<interop-1@interop.test>) = %q, %v", body, err)
		}
	}

	t.Run("nntp.Dial(required)→nnrpd-nntp", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		tr := &starttls.Transcript{}
		c, res, err := nntp.Dial(ctx, plain, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA), Transcript: tr})
		if err != nil {
			t.Fatalf("nntp.Dial: %v", err)
		}
		defer c.Close()
		if !res.Offered || !res.Upgraded || res.TLS == nil || len(res.TLS.VerifiedChains) == 0 || !res.CapsReread || res.OfferedAfterTLS {
			t.Errorf("Offered %v Upgraded %v CapsReread %v OfferedAfterTLS %v", res.Offered, res.Upgraded, res.CapsReread, res.OfferedAfterTLS)
		}
		if len(res.AuthBefore) != 0 || !hasFold(res.AuthAfter, "USER") {
			t.Errorf("AuthBefore %q AuthAfter %q: want login only after TLS", res.AuthBefore, res.AuthAfter)
		}
		t.Logf("greeting %q; CapsBefore %q; CapsAfter %q", res.Greeting, res.CapsBefore, res.CapsAfter)
		readArticle(t, c)
		for _, ev := range tr.Events() {
			if strings.Contains(ev.Text, e.Password) {
				t.Errorf("transcript shows the password: %q", ev.Text)
			}
		}
	})
	t.Run("nntp.Dial(implicit)→nnrpd-nntps", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := nntp.Dial(ctx, implicit, &starttls.ClientOptions{Mode: starttls.ModeImplicit, TLSConfig: tlsConfig(t, e.CA)})
		if err != nil {
			t.Fatalf("nntp.Dial: %v", err)
		}
		defer c.Close()
		if !res.Upgraded || res.Offered || res.OfferedAfterTLS || !hasFold(res.AuthAfter, "USER") {
			t.Errorf("Upgraded %v Offered %v OfferedAfterTLS %v AuthAfter %q", res.Upgraded, res.Offered, res.OfferedAfterTLS, res.AuthAfter)
		}
		readArticle(t, c)
	})
	t.Run("nntp.Dial(plain)→nnrpd-nntp: AUTHINFO refused with 483", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := nntp.Dial(ctx, plain, &starttls.ClientOptions{Mode: starttls.ModePlain})
		if err != nil {
			t.Fatalf("nntp.Dial: %v", err)
		}
		defer c.Close()
		if !res.Offered || res.Upgraded || len(res.AuthBefore) != 0 {
			t.Errorf("Offered %v Upgraded %v AuthBefore %q", res.Offered, res.Upgraded, res.AuthBefore)
		}
		if err := c.Login(ctx, e.User, e.Password); err == nil {
			t.Fatal("Login in plaintext succeeded")
		}
		var ne *nntp.Error
		if _, err := c.Group(ctx, "local.test"); !errors.As(err, &ne) || ne.Code != 480 {
			t.Errorf("Group without login = %v, want 480", err)
		}
	})
	t.Run("nntp.Dial(wrong password)→nnrpd-nntp", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, _, err := nntp.Dial(ctx, plain, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA)})
		if err != nil {
			t.Fatalf("nntp.Dial: %v", err)
		}
		defer c.Close()
		var ne *nntp.Error
		if err := c.Login(ctx, e.User, "wrong"); !errors.As(err, &ne) || ne.Code != 481 {
			t.Errorf("Login(wrong) = %v, want 481", err)
		}
	})
	t.Run("nntp.Dial(probe)→nnrpd-nntp", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := nntp.Dial(ctx, plain, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA), ProbeInjection: true})
		if c != nil {
			defer c.Close()
		}
		inj := res.Injection
		if inj == nil || inj.Vulnerable {
			t.Fatalf("Injection = %+v (err %v), want not vulnerable", inj, err)
		}
		t.Logf("probe: closed %v, reply %q, err %v", inj.Closed, inj.Reply, err)
	})
	t.Run("starttls-check→nnrpd-nntp", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "nntp://"+plain)
		if rep.Verdict != "pass" || !rep.STARTTLS.Upgraded {
			t.Errorf("verdict %s, findings %v", rep.Verdict, rep.ids())
		}
	})
	t.Run("starttls-check→nnrpd-nntps", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "nntps://"+implicit)
		if rep.Verdict != "pass" {
			t.Errorf("verdict %s, findings %v", rep.Verdict, rep.ids())
		}
	})
	t.Run("starttls-check(no CA)→nnrpd-nntp", func(t *testing.T) {
		rep := check(t, e, "nntp://"+plain)
		if !rep.has("cert-untrusted") {
			t.Errorf("findings %v, want cert-untrusted", rep.ids())
		}
	})
	t.Run("starttls-connect(pipe)→nnrpd-nntp", func(t *testing.T) {
		bin := e.needBinary(t)
		r := run(t, clientTimeout, "CAPABILITIES\nQUIT\n", bin, "connect", "--timeout", "20s", "--ca", e.CA, "nntp://"+plain)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("starttls connect: exit %d", r.Code)
		}
		requireContains(t, "connect over TLS", r.Stdout, "101 ", "AUTHINFO USER", "205 ")
		requireLacks(t, "CAPABILITIES over TLS", r.Stdout, "STARTTLS")
	})
}

func TestNNTPOpenSSLClient(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "nntp")
	l := startLab(t)
	login := "AUTHINFO USER " + l.User + "\r\nAUTHINFO PASS " + l.Password + "\r\n"
	t.Run("openssl-s_client(-starttls_nntp)→lab-nntp", func(t *testing.T) {
		post, r := sClient(t, l, "nntp", "nntp", "CAPABILITIES\r\n"+login+"GROUP starttls.lab\r\nHEAD <welcome@starttls.test>\r\nQUIT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "NNTP over TLS", post, "AUTHINFO USER SASL", "281 ", "211 ", "Subject: Welcome to the starttls lab", "205 ")
		requireLacks(t, "CAPABILITIES over TLS", post, "\nSTARTTLS")
	})
	t.Run("openssl-s_client(implicit)→lab-nntps", func(t *testing.T) {
		post, r := sClient(t, l, "nntps", "", "CAPABILITIES\r\n"+login+"QUIT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "NNTP over implicit TLS", post, "201 ", "AUTHINFO USER SASL", "281 ")
	})
	t.Run("openssl-s_client(-starttls_nntp)→nnrpd-nntp", func(t *testing.T) {
		plain := needEnv(t, "INTEROP_NNTP")
		host, port := hostPort(t, plain)
		r := run(t, clientTimeout, "CAPABILITIES\r\n"+"AUTHINFO USER "+e.User+"\r\nAUTHINFO PASS "+e.Password+"\r\nGROUP local.test\r\nQUIT\r\n",
			needTool(t, "openssl"), "s_client", "-connect", host+":"+port, "-CAfile", e.CA, "-verify_return_error", "-verify_ip", host, "-ign_eof", "-starttls", "nntp")
		if r.Code != 0 || !strings.Contains(r.Stdout, "Verify return code: 0 (ok)") {
			r.dump(t)
			t.Fatalf("openssl s_client: exit %d", r.Code)
		}
		requireContains(t, "nnrpd over TLS", r.Stdout, "281 ", "211 1 1 1 local.test")
	})
	t.Run("openssl-s_client(must-reject)→lab-nntp-self-signed", func(t *testing.T) {
		_, r := sClient(t, l, "nntp-self-signed", "nntp", "QUIT\r\n")
		if r.Code == 0 {
			r.dump(t)
			t.Fatal("openssl s_client -verify_return_error accepted a self-signed certificate")
		}
	})
}
