//go:build interop

package interop

// Module "sieve": our ManageSieve client library, `starttls check` and
// `starttls connect` against Dovecot Pigeonhole (STARTTLS on
// $INTEROP_SIEVE, connecting from $INTEROP_SIEVE_SOURCE because Dovecot
// treats its own address as secure), and the real client `openssl s_client
// -starttls sieve` against the lab and Dovecot.

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/sieve"
)

func TestDovecotManageSieve(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "sieve")
	addr, src := needEnv(t, "INTEROP_SIEVE"), needEnv(t, "INTEROP_SIEVE_SOURCE")

	dial := func(t *testing.T, o *starttls.ClientOptions) (*sieve.Client, *starttls.Result, error) {
		ctx := testCtx(t, 30*time.Second)
		return sieve.Upgrade(ctx, dialFrom(ctx, t, src, addr), o)
	}
	tlsOpts := func(t *testing.T) *starttls.ClientOptions {
		return &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA), ServerName: "127.0.0.1", Transcript: &starttls.Transcript{}}
	}

	t.Run("sieve.Upgrade(required)→dovecot-sieve", func(t *testing.T) {
		o := tlsOpts(t)
		c, res, err := dial(t, o)
		if err != nil {
			t.Fatalf("sieve.Upgrade: %v", err)
		}
		defer c.Close()
		t.Logf("greeting %q; CapsBefore %q; CapsAfter %q", res.Greeting, res.CapsBefore, res.CapsAfter)
		if !res.Offered || !res.Upgraded || res.TLS == nil || len(res.TLS.VerifiedChains) == 0 || !res.CapsReread || res.OfferedAfterTLS {
			t.Errorf("Offered %v Upgraded %v CapsReread %v OfferedAfterTLS %v", res.Offered, res.Upgraded, res.CapsReread, res.OfferedAfterTLS)
		}
		if len(res.AuthBefore) != 0 || !hasFold(res.AuthAfter, "PLAIN") {
			t.Errorf("AuthBefore %q AuthAfter %q: want SASL only after TLS", res.AuthBefore, res.AuthAfter)
		}
		ctx := testCtx(t, 30*time.Second)
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login: %v", err)
		}
		script := "require \"fileinto\";\r\nif header :contains \"subject\" \"interop\" {\r\n  fileinto \"INBOX\";\r\n}\r\n"
		if err := c.PutScript(ctx, "interop", []byte(script)); err != nil {
			t.Fatalf("PutScript: %v", err)
		}
		if err := c.SetActive(ctx, "interop"); err != nil {
			t.Fatalf("SetActive: %v", err)
		}
		list, err := c.ListScripts(ctx)
		if err != nil {
			t.Fatalf("ListScripts: %v", err)
		}
		found := false
		for _, s := range list {
			found = found || (s.Name == "interop" && s.Active)
		}
		if !found {
			t.Errorf("ListScripts = %+v, want interop ACTIVE", list)
		}
		got, err := c.GetScript(ctx, "interop")
		if err != nil || string(got) != script {
			t.Errorf("GetScript = %q, %v", got, err)
		}
		var se *sieve.Error
		if err := c.PutScript(ctx, "broken", []byte("if {")); !errors.As(err, &se) || se.Kind != "NO" {
			t.Errorf("PutScript(invalid) = %v, want NO from Pigeonhole's compiler", err)
		}
		if err := c.SetActive(ctx, ""); err != nil {
			t.Errorf("SetActive(\"\"): %v", err)
		}
		if err := c.DeleteScript(ctx, "interop"); err != nil {
			t.Errorf("DeleteScript: %v", err)
		}
		for _, ev := range o.Transcript.Events() {
			if strings.Contains(ev.Text, "aW50ZXJvcC1zZWNyZXQ") || strings.Contains(ev.Text, e.Password) {
				t.Errorf("transcript shows the credentials: %q", ev.Text)
			}
		}
	})
	t.Run("sieve.Upgrade(plain)→dovecot-sieve: no SASL before TLS", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := dial(t, &starttls.ClientOptions{Mode: starttls.ModePlain})
		if err != nil {
			t.Fatalf("sieve.Upgrade: %v", err)
		}
		defer c.Close()
		if !res.Offered || res.Upgraded || len(res.AuthBefore) != 0 {
			t.Errorf("Offered %v Upgraded %v AuthBefore %q", res.Offered, res.Upgraded, res.AuthBefore)
		}
		if err := c.Login(ctx, e.User, e.Password); err == nil {
			t.Error("Login in plaintext succeeded")
		}
	})
	t.Run("sieve.Upgrade(wrong password)→dovecot-sieve", func(t *testing.T) {
		c, _, err := dial(t, tlsOpts(t))
		if err != nil {
			t.Fatalf("sieve.Upgrade: %v", err)
		}
		defer c.Close()
		var se *sieve.Error
		if err := c.Login(testCtx(t, 30*time.Second), e.User, "wrong"); !errors.As(err, &se) || se.Kind != "NO" {
			t.Errorf("Login(wrong) = %v, want NO", err)
		}
	})
	t.Run("sieve.Upgrade(probe)→dovecot-sieve", func(t *testing.T) {
		o := tlsOpts(t)
		o.ProbeInjection = true
		c, res, err := dial(t, o)
		if c != nil {
			defer c.Close()
		}
		inj := res.Injection
		if inj == nil || inj.Vulnerable {
			t.Fatalf("Injection = %+v (err %v), want not vulnerable", inj, err)
		}
		t.Logf("probe: closed %v, reply %q, err %v", inj.Closed, inj.Reply, err)
	})
	t.Run("starttls-check→dovecot-sieve", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "--source", src, "sieve://"+addr)
		if rep.Verdict != "pass" || !rep.STARTTLS.Upgraded {
			t.Errorf("verdict %s, findings %v", rep.Verdict, rep.ids())
		}
	})
	t.Run("starttls-check(no CA)→dovecot-sieve", func(t *testing.T) {
		rep := check(t, e, "--source", src, "sieve://"+addr)
		if !rep.has("cert-untrusted") {
			t.Errorf("findings %v, want cert-untrusted", rep.ids())
		}
	})
	t.Run("starttls-connect(pipe)→dovecot-sieve", func(t *testing.T) {
		bin := e.needBinary(t)
		r := run(t, clientTimeout, "CAPABILITY\nLOGOUT\n", bin, "connect", "--timeout", "20s", "--ca", e.CA, "sieve://"+addr)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("starttls connect: exit %d", r.Code)
		}
		requireContains(t, "connect over TLS", r.Stdout, `"SASL" "PLAIN"`, `"IMPLEMENTATION"`, "OK")
		requireLacks(t, "capabilities over TLS", r.Stdout, `"STARTTLS"`)
	})
}

func TestSieveOpenSSLClient(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "sieve")
	l := startLab(t)
	t.Run("openssl-s_client(-starttls_sieve)→lab-sieve", func(t *testing.T) {
		post, r := sClient(t, l, "sieve", "sieve", "CAPABILITY\r\nLOGOUT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "ManageSieve over TLS", post, `"SASL" "PLAIN"`, `"VERSION" "1.0"`, `OK "Logout completed"`)
		requireLacks(t, "capabilities over TLS", post, `"STARTTLS"`)
	})
	t.Run("openssl-s_client(-starttls_sieve)→dovecot-sieve", func(t *testing.T) {
		host, port := hostPort(t, needEnv(t, "INTEROP_SIEVE"))
		r := run(t, clientTimeout, "CAPABILITY\r\nLOGOUT\r\n", needTool(t, "openssl"), "s_client", "-connect", host+":"+port,
			"-CAfile", e.CA, "-verify_return_error", "-verify_ip", host, "-ign_eof", "-starttls", "sieve")
		if r.Code != 0 || !strings.Contains(r.Stdout, "Verify return code: 0 (ok)") {
			r.dump(t)
			t.Fatalf("openssl s_client: exit %d", r.Code)
		}
		requireContains(t, "Dovecot over TLS", r.Stdout, `"SASL" "PLAIN"`, "OK")
	})
	t.Run("openssl-s_client(must-reject)→lab-sieve-self-signed", func(t *testing.T) {
		_, r := sClient(t, l, "sieve-self-signed", "sieve", "LOGOUT\r\n")
		if r.Code == 0 {
			r.dump(t)
			t.Fatal("openssl s_client -verify_return_error accepted a self-signed certificate")
		}
	})
}
