//go:build interop

package interop

// Module "xmpp": our XMPP client library, `starttls check` and `starttls
// connect` against Prosody 0.12 (c2s STARTTLS on $INTEROP_XMPP, c2s direct
// TLS on $INTEROP_XMPPS, s2s STARTTLS on $INTEROP_XMPP_S2S, VirtualHost
// "localhost"), and the real client `openssl s_client -starttls xmpp` /
// `-starttls xmpp-server` against the lab and Prosody.
//
// The stream's 'to' is the server name: Prosody serves "localhost" only, so
// every client here names it (--server-name localhost, -xmpphost
// localhost); the interop certificate is valid for it.

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/xmpp"
)

const xmppDomain = "localhost"

func xmppOpts(t *testing.T, e *env, mode starttls.Mode) *starttls.ClientOptions {
	return &starttls.ClientOptions{Mode: mode, TLSConfig: tlsConfig(t, e.CA), ServerName: xmppDomain, Transcript: &starttls.Transcript{}}
}

func TestProsody(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "xmpp")
	c2s, direct, s2s := needEnv(t, "INTEROP_XMPP"), needEnv(t, "INTEROP_XMPPS"), needEnv(t, "INTEROP_XMPP_S2S")

	t.Run("xmpp.Dial(required)→prosody-c2s", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := xmpp.Dial(ctx, c2s, xmppOpts(t, e, starttls.ModeRequired))
		if err != nil {
			t.Fatalf("xmpp.Dial: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeRequired)
		t.Logf("Greeting %s; CapsBefore %q AuthBefore %q; CapsAfter %q AuthAfter %q", res.Greeting, res.CapsBefore, res.AuthBefore, res.CapsAfter, res.AuthAfter)
		if !res.Offered || !res.UpgradeRequired {
			t.Errorf("Offered %v UpgradeRequired %v: c2s_require_encryption should mark <required/>", res.Offered, res.UpgradeRequired)
		}
		if len(res.AuthBefore) != 0 {
			t.Errorf("AuthBefore = %q, want none before TLS", res.AuthBefore)
		}
		if !hasFold(res.AuthAfter, "PLAIN") || !res.CapsReread || res.OfferedAfterTLS {
			t.Errorf("AuthAfter %q CapsReread %v OfferedAfterTLS %v", res.AuthAfter, res.CapsReread, res.OfferedAfterTLS)
		}
		if err := c.Login(ctx, e.User, "wrong-password"); err == nil {
			t.Fatal("Login with a wrong password succeeded")
		}
	})
	t.Run("xmpp.Login→prosody-c2s", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		o := xmppOpts(t, e, starttls.ModeRequired)
		c, _, err := xmpp.Dial(ctx, c2s, o)
		if err != nil {
			t.Fatalf("xmpp.Dial: %v", err)
		}
		defer c.Close()
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login: %v", err)
		}
		if !strings.HasPrefix(c.JID(), e.User+"@"+xmppDomain+"/") {
			t.Errorf("JID = %q", c.JID())
		}
		if err := c.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
		for _, ev := range o.Transcript.Events() {
			if strings.Contains(ev.Text, e.Password) {
				t.Errorf("password in the transcript: %q", ev.Text)
			}
		}
	})
	t.Run("xmpp.Dial(unknown-domain)→prosody-c2s", func(t *testing.T) {
		// The stream's 'to' is the server name: Prosody serves localhost
		// only and answers anything else with a stream error.
		ctx := testCtx(t, 30*time.Second)
		o := xmppOpts(t, e, starttls.ModeRequired)
		o.ServerName = "unknown.interop.test"
		_, _, err := xmpp.Dial(ctx, c2s, o)
		var se *xmpp.StreamError
		if !errors.As(err, &se) || se.Condition != "host-unknown" {
			t.Fatalf("err = %v, want the stream error host-unknown", err)
		}
		t.Logf("%v", err)
	})
	t.Run("xmpp.Dial(implicit)→prosody-c2s-direct-tls", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := xmpp.Dial(ctx, direct, xmppOpts(t, e, starttls.ModeImplicit))
		if err != nil {
			t.Fatalf("xmpp.Dial: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeImplicit)
		t.Logf("ALPN %q, CapsAfter %q", res.TLS.NegotiatedProtocol, res.CapsAfter)
		if !hasFold(res.AuthAfter, "PLAIN") {
			t.Errorf("AuthAfter = %q", res.AuthAfter)
		}
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login: %v", err)
		}
	})
	t.Run("xmpp.Dial(probe-injection)→prosody-c2s", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		o := xmppOpts(t, e, starttls.ModeRequired)
		o.ProbeInjection, o.InjectionWait = true, time.Second
		c, res, err := xmpp.Dial(ctx, c2s, o)
		if c != nil {
			c.Close()
		}
		if res.Injection == nil || !strings.Contains(res.Injection.Sent, "<stream:stream") {
			t.Fatalf("Injection = %+v (err %v)", res.Injection, err)
		}
		if res.Injection.Vulnerable {
			t.Errorf("Prosody answered the stream header pipelined after <starttls/> inside TLS: %q", res.Injection.Reply)
		}
		t.Logf("Prosody injection probe: %+v, err %v", res.Injection, err)
	})
	t.Run("xmpp.DialServer(required)→prosody-s2s", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		o := xmppOpts(t, e, starttls.ModeRequired)
		o.LocalName = "interop.test"
		c, res, err := xmpp.DialServer(ctx, s2s, o)
		if err != nil {
			t.Fatalf("xmpp.DialServer: %v", err)
		}
		defer c.Close()
		assertSecured(t, res, starttls.ModeRequired)
		t.Logf("Greeting %s; CapsBefore %q; CapsAfter %q AuthAfter %q", res.Greeting, res.CapsBefore, res.CapsAfter, res.AuthAfter)
		if !res.Offered || !res.UpgradeRequired {
			t.Errorf("Offered %v UpgradeRequired %v: s2s_require_encryption should mark <required/>", res.Offered, res.UpgradeRequired)
		}
	})
	t.Run("starttls-check→prosody-c2s", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "--server-name", xmppDomain, "xmpp://"+c2s)
		if rep.Verdict != "pass" || !rep.STARTTLS.Upgraded || rep.Certificate == nil || !rep.Certificate.Trusted {
			t.Errorf("verdict %s, findings %v, STARTTLS %+v", rep.Verdict, rep.ids(), rep.STARTTLS)
		}
		if !rep.has("starttls-required") {
			t.Errorf("findings %v lack starttls-required", rep.ids())
		}
	})
	t.Run("starttls-check→prosody-c2s-direct-tls", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "--server-name", xmppDomain, "xmpps://"+direct)
		if rep.Verdict != "pass" {
			t.Errorf("verdict %s, findings %v", rep.Verdict, rep.ids())
		}
	})
	t.Run("starttls-check→prosody-s2s", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "--server-name", xmppDomain, "xmpp-server://"+s2s)
		if rep.Verdict != "pass" || !rep.STARTTLS.Upgraded {
			t.Errorf("verdict %s, findings %v", rep.Verdict, rep.ids())
		}
	})
	t.Run("starttls-connect(pipe)→prosody-c2s", func(t *testing.T) {
		bin := e.needBinary(t)
		r := run(t, clientTimeout, "</stream:stream>", bin, "connect", "--timeout", "20s", "--ca", e.CA, "--server-name", xmppDomain, "xmpp://"+c2s)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("starttls connect: exit %d", r.Code)
		}
		requireContains(t, "session", r.Stdout, "</stream:stream>")
	})
	t.Run("starttls-connect(pipe)→prosody-s2s", func(t *testing.T) {
		bin := e.needBinary(t)
		r := run(t, clientTimeout, "</stream:stream>", bin, "connect", "--timeout", "20s", "--ca", e.CA, "--server-name", xmppDomain, "xmpp-server://"+s2s)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("starttls connect: exit %d", r.Code)
		}
		requireContains(t, "session", r.Stdout, "</stream:stream>")
	})
}

// TestXMPPOpenSSLClient: the real client `openssl s_client -starttls xmpp`
// (and xmpp-server) against our lab and against Prosody.
func TestXMPPOpenSSLClient(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "xmpp")
	l := startLab(t)
	c2sHeader := "<stream:stream to='" + xmppDomain + "' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
	s2sHeader := "<stream:stream to='" + xmppDomain + "' version='1.0' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
	for _, tt := range []struct {
		name, addr, ca, proto, stdin string
		want                         []string
	}{
		{"openssl-s_client(-starttls_xmpp)→lab-xmpp", labAddr(t, l, "xmpp"), l.CA, "xmpp", c2sHeader + "</stream:stream>", []string{"<mechanism>PLAIN</mechanism>", "</stream:stream>"}},
		{"openssl-s_client(-starttls_xmpp-server)→lab-xmpp-server", labAddr(t, l, "xmpp-server"), l.CA, "xmpp-server", s2sHeader + "</stream:stream>", []string{"<stream:features></stream:features>", "</stream:stream>"}},
		{"openssl-s_client(-starttls_xmpp)→prosody-c2s", needEnv(t, "INTEROP_XMPP"), e.CA, "xmpp", c2sHeader + "</stream:stream>", []string{"PLAIN", "</stream:stream>"}},
		{"openssl-s_client(-starttls_xmpp-server)→prosody-s2s", needEnv(t, "INTEROP_XMPP_S2S"), e.CA, "xmpp-server", s2sHeader + "</stream:stream>", []string{"<stream:features", "</stream:stream>"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bin := needTool(t, "openssl")
			host, port := hostPort(t, tt.addr)
			args := []string{"s_client", "-connect", host + ":" + port, "-CAfile", tt.ca,
				"-verify_return_error", "-verify_ip", host, "-ign_eof", "-starttls", tt.proto, "-xmpphost", xmppDomain}
			r := run(t, clientTimeout, tt.stdin, bin, args...)
			post := ""
			if i := strings.Index(r.Stdout, "\nVerify return code: "); i >= 0 {
				post = r.Stdout[i+1:]
			}
			requireVerifiedOK(t, post, r)
			requireContains(t, "XMPP over TLS", post, tt.want...)
		})
	}
}

// labAddr is host:port of a lab endpoint.
func labAddr(t *testing.T, l *labInfo, name string) string {
	host, port := l.addr(t, name)
	return host + ":" + port
}
