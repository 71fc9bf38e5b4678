//go:build interop

package interop

// Module "irc": our IRC client library, `starttls check` and `starttls
// connect` against InspIRCd 3 (STARTTLS per the IRCv3 tls extension on
// $INTEROP_IRC, implicit TLS on $INTEROP_IRCS), and the real client
// `openssl s_client -starttls irc` against the lab and InspIRCd.
//
// InspIRCd has no SASL without services, so login is not tested against it;
// registration (NICK/USER → 001) is.

import (
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/irc"
)

func TestInspIRCd(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "irc")
	plain, implicit := needEnv(t, "INTEROP_IRC"), needEnv(t, "INTEROP_IRCS")

	t.Run("irc.Dial(required)→inspircd-irc", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		tr := &starttls.Transcript{}
		c, res, err := irc.Dial(ctx, plain, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA), Transcript: tr})
		if err != nil {
			t.Fatalf("irc.Dial: %v", err)
		}
		defer c.Close()
		if !res.Offered || !res.Upgraded || res.TLS == nil || len(res.TLS.VerifiedChains) == 0 || !res.CapsReread {
			t.Errorf("Offered %v Upgraded %v CapsReread %v TLS %v", res.Offered, res.Upgraded, res.CapsReread, res.TLS != nil)
		}
		if !hasFold(res.CapsBefore, "tls") {
			t.Errorf("CapsBefore = %q, want tls", res.CapsBefore)
		}
		if len(res.CapsAfter) == 0 {
			t.Errorf("CapsAfter empty: CAP LS not answered over TLS")
		}
		// InspIRCd 3's starttls module lists tls inside TLS too.
		t.Logf("CapsBefore %q, CapsAfter %q, OfferedAfterTLS %v", res.CapsBefore, res.CapsAfter, res.OfferedAfterTLS)
		if err := c.Register(ctx, "interop"); err != nil {
			t.Fatalf("Register: %v", err)
		}
		if !strings.HasPrefix(c.Nick(), "interop") {
			t.Errorf("Nick() = %q", c.Nick())
		}
		if err := c.Send(ctx, "JOIN", "#interop"); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			m, err := c.ReadMessage(ctx)
			if err != nil || i > 100 {
				t.Fatalf("no JOIN echo: %v", err)
			}
			if m.Command == "JOIN" {
				break
			}
		}
	})
	t.Run("irc.Dial(implicit)→inspircd-ircs", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := irc.Dial(ctx, implicit, &starttls.ClientOptions{Mode: starttls.ModeImplicit, TLSConfig: tlsConfig(t, e.CA)})
		if err != nil {
			t.Fatalf("irc.Dial: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeImplicit)
		if !res.CapsReread || len(res.CapsAfter) == 0 {
			t.Errorf("CapsAfter = %q", res.CapsAfter)
		}
		if err := c.Register(ctx, "interops"); err != nil {
			t.Fatalf("Register: %v", err)
		}
	})
	t.Run("irc.Dial(probe-injection)→inspircd-irc", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := irc.Dial(ctx, plain, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA), ProbeInjection: true, InjectionWait: time.Second})
		if c != nil {
			c.Close()
		}
		if res.Injection == nil || res.Injection.Sent != "CAP LS 302" {
			t.Fatalf("Injection = %+v (err %v)", res.Injection, err)
		}
		// InspIRCd 3.15 answers the CAP LS pipelined after STARTTLS inside
		// TLS: the CVE-2011-0411 class. Recorded, not a failure of ours.
		t.Logf("InspIRCd injection probe: vulnerable=%v closed=%v reply=%q err=%v",
			res.Injection.Vulnerable, res.Injection.Closed, res.Injection.Reply, err)
	})
	t.Run("irc.Login(no-SASL)→inspircd-irc", func(t *testing.T) {
		// InspIRCd offers SASL only with services linked, and the module
		// runs none: Login must refuse cleanly over TLS, sending nothing.
		ctx := testCtx(t, 30*time.Second)
		c, res, err := irc.Dial(ctx, plain, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA)})
		if err != nil {
			t.Fatalf("irc.Dial: %v", err)
		}
		defer c.Close()
		if len(res.AuthAfter) != 0 {
			t.Fatalf("AuthAfter = %q: InspIRCd offers SASL here after all; test Login for real", res.AuthAfter)
		}
		if err := c.Login(ctx, e.User, e.Password); err == nil {
			t.Fatal("Login succeeded without SASL on offer")
		}
	})
	t.Run("starttls-check→inspircd-irc", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "irc://"+plain)
		if rep.TLS == nil || rep.Certificate == nil || !rep.Certificate.Trusted || !rep.STARTTLS.Upgraded {
			t.Errorf("TLS %+v Certificate %+v STARTTLS %+v", rep.TLS, rep.Certificate, rep.STARTTLS)
		}
		for _, f := range rep.Findings {
			switch id := f.ID; {
			case f.Severity == "info":
			case id == "command-injection", id == "starttls-offered-after-tls":
				// InspIRCd 3.15's own findings (see the package report).
			case id == "tls-version-obsolete":
				// Debian's GnuTLS priority NORMAL still accepts TLS 1.0
				// and 1.1 (openssl s_client -tls1 with @SECLEVEL=0
				// completes a handshake with it).
			default:
				t.Errorf("unexpected finding %q", id)
			}
		}
		if !rep.has("tls-version-obsolete") || !rep.has("command-injection") {
			t.Errorf("findings %v lack tls-version-obsolete or command-injection", rep.ids())
		}
	})
	t.Run("starttls-check→inspircd-ircs", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "ircs://"+implicit)
		for _, f := range rep.Findings {
			// InspIRCd lists tls on its implicit TLS port as well, and
			// accepts TLS 1.0 and 1.1 there too.
			if f.Severity != "info" && f.ID != "starttls-offered-after-tls" && f.ID != "tls-version-obsolete" {
				t.Errorf("unexpected finding %q", f.ID)
			}
		}
	})
	t.Run("starttls-connect(pipe)→inspircd-irc", func(t *testing.T) {
		bin := e.needBinary(t)
		r := run(t, clientTimeout, "CAP LS 302\nQUIT\n", bin, "connect", "--timeout", "20s", "--ca", e.CA, "irc://"+plain)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("starttls connect: exit %d", r.Code)
		}
		requireContains(t, "session", r.Stdout, "CAP * LS", "ERROR :Closing link")
	})
	t.Run("openssl-s_client(-starttls_irc)→inspircd-irc", func(t *testing.T) {
		// InspIRCd completes registration asynchronously and would take
		// a pipelined QUIT first: CAP LS is the proof of the session.
		post, r := ircSClient(t, plain, e.CA, "irc", "CAP LS 302\r\nQUIT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "IRC over TLS", post, "CAP * LS")
	})
}

// ircSClient runs openssl s_client against addr and returns what follows
// "Verify return code".
func ircSClient(t *testing.T, addr, ca, starttlsProto, stdin string) (string, result) {
	t.Helper()
	bin := needTool(t, "openssl")
	host, port := hostPort(t, addr)
	args := []string{"s_client", "-connect", host + ":" + port, "-CAfile", ca,
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

func TestIRCOpenSSLClient(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "irc")
	l := startLab(t)
	t.Run("openssl-s_client(-starttls_irc)→lab-irc", func(t *testing.T) {
		post, r := sClient(t, l, "irc", "irc", "CAP LS 302\r\nNICK osslc\r\nUSER osslc 0 * :x\r\nCAP END\r\nQUIT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "IRC over TLS", post, "CAP * LS :sasl=PLAIN", " 001 osslc ", "ERROR :Closing link")
		requireLacks(t, "CAP LS over TLS", post, ":tls")
	})
	t.Run("openssl-s_client(implicit)→lab-ircs", func(t *testing.T) {
		post, r := sClient(t, l, "ircs", "", "CAP LS 302\r\nQUIT\r\n")
		requireVerifiedOK(t, post, r)
		requireContains(t, "IRC over implicit TLS", post, "CAP * LS :sasl=PLAIN")
	})
	t.Run("openssl-s_client(must-reject)→lab-irc-self-signed", func(t *testing.T) {
		_, r := sClient(t, l, "irc-self-signed", "irc", "QUIT\r\n")
		if r.Code == 0 {
			r.dump(t)
			t.Fatal("openssl s_client -verify_return_error accepted a self-signed certificate")
		}
	})
}
