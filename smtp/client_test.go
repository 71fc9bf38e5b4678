package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

const (
	greeting  = "220 mx.test ESMTP\r\n"
	ehloPlain = "250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 SIZE 1000\r\n"
	ehloTLS   = "250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 1000\r\n"
	goAhead   = "220 2.0.0 Ready to start TLS\r\n"
)

func TestClientTranscript(t *testing.T) {
	addr, wait := fakeServer(t,
		S("220-mx.test ESMTP\r\n220 no UCE\r\n"),
		C(), S(ehloPlain),
		C(), S(goAhead), TLS(),
		C(), S(ehloTLS),
		C(), S("235 2.7.0 ok\r\n"),
		C(), S("250 2.1.0 ok\r\n"),
		C(), S("250 2.1.5 ok\r\n"),
		C(), S("354 go\r\n"),
		C(), C(), C(), C(), S("250 2.0.0 queued\r\n"),
		C(), S("221 bye\r\n"),
	)
	opts := clientOpts(t, starttls.ModeRequired)
	opts.Transcript = &starttls.Transcript{}
	c, res, err := Dial(linetest.Ctx(t), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(linetest.Ctx(t), "user", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail(linetest.Ctx(t), "a@b.test", []string{"c@d.test"}, []byte("Subject: x\n\n.dot\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	equalLines(t, wait(), []string{
		"EHLO client.test\r\n",
		"STARTTLS\r\n",
		"EHLO client.test\r\n",
		"AUTH PLAIN AHVzZXIAc2VjcmV0\r\n",
		"MAIL FROM:<a@b.test> SIZE=21\r\n",
		"RCPT TO:<c@d.test>\r\n",
		"DATA\r\n",
		"Subject: x\r\n", "\r\n", "..dot\r\n", ".\r\n",
		"QUIT\r\n",
	})
	if res.Greeting != "220-mx.test ESMTP\n220 no UCE" {
		t.Errorf("Greeting = %q", res.Greeting)
	}
	if !res.Offered || !res.Upgraded || !res.CapsReread || res.OfferedAfterTLS || res.TLS == nil {
		t.Errorf("Result = %+v", res)
	}
	if want := []string{"PIPELINING", "STARTTLS", "SIZE 1000"}; !slices.Equal(res.CapsBefore, want) {
		t.Errorf("CapsBefore = %q, want %q", res.CapsBefore, want)
	}
	if want := []string{"AUTH PLAIN LOGIN", "8BITMIME", "SIZE 1000"}; !slices.Equal(res.CapsAfter, want) {
		t.Errorf("CapsAfter = %q, want %q", res.CapsAfter, want)
	}
	if res.AuthBefore != nil || !slices.Equal(res.AuthAfter, []string{"PLAIN", "LOGIN"}) {
		t.Errorf("AuthBefore = %q, AuthAfter = %q", res.AuthBefore, res.AuthAfter)
	}
	if res.UpgradeReply != "220 2.0.0 Ready to start TLS" || res.Protocol != "smtp" || res.Mode != starttls.ModeRequired {
		t.Errorf("UpgradeReply = %q, Protocol = %q, Mode = %v", res.UpgradeReply, res.Protocol, res.Mode)
	}
	var texts []string
	for _, e := range opts.Transcript.Events() {
		texts = append(texts, e.Text)
		if strings.Contains(e.Text, "AHVzZXIAc2VjcmV0") {
			t.Errorf("credentials in the transcript: %q", e.Text)
		}
	}
	if !slices.Contains(texts, "AUTH PLAIN ****") {
		t.Errorf("transcript lacks the masked AUTH line: %q", texts)
	}
}

func TestClientLoginFallsBackToLOGIN(t *testing.T) {
	addr, wait := fakeServer(t,
		S(greeting), C(), S(ehloPlain), C(), S(goAhead), TLS(),
		C(), S("250-mx.test\r\n250 AUTH=LOGIN\r\n"),
		C(), S("334 VXNlcm5hbWU6\r\n"),
		C(), S("334 UGFzc3dvcmQ6\r\n"),
		C(), S("535 5.7.8 no\r\n"),
	)
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.AuthAfter, []string{"LOGIN"}) {
		t.Errorf("AuthAfter = %q", res.AuthAfter)
	}
	err = c.Login(linetest.Ctx(t), "user", "secret")
	if !errors.Is(err, ErrAuthFailed) || starttls.IsTemporary(err) {
		t.Errorf("Login = %v, want ErrAuthFailed", err)
	}
	c.Close()
	equalLines(t, wait(), []string{"EHLO client.test\r\n", "STARTTLS\r\n", "EHLO client.test\r\n",
		"AUTH LOGIN\r\n", "dXNlcg==\r\n", "c2VjcmV0\r\n", "QUIT\r\n"})
}

// PR-04 / CK-13: a first line that looks like a keyword is the domain.
func TestClientEHLOFirstLineIsDomain(t *testing.T) {
	addr, wait := fakeServer(t, S(greeting), C(), S("250-STARTTLS\r\n250 SIZE 100\r\n"))
	_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if !errors.Is(err, starttls.ErrUpgradeNotOffered) {
		t.Errorf("err = %v, want ErrUpgradeNotOffered", err)
	}
	if res.Offered || !slices.Equal(res.CapsBefore, []string{"SIZE 100"}) {
		t.Errorf("Offered = %v, CapsBefore = %q", res.Offered, res.CapsBefore)
	}
	equalLines(t, wait(), []string{"EHLO client.test\r\n"})
}

func TestClientGreeting(t *testing.T) {
	tests := []struct {
		name, greeting string
		temporary      bool
	}{
		{"421", "421 4.7.0 mx.test too many connections\r\n", true},
		{"450 multi-line", "450-busy\r\n450 try later\r\n", true},
		{"554", "554 5.7.1 no service for you\r\n", false},
		{"not a reply", "hello\r\n", false},
		{"250", "250 what\r\n", false},
		{"changing code", "220-a\r\n250 b\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := fakeServer(t, S(tt.greeting))
			c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if err == nil || c != nil || res == nil {
				t.Fatalf("Dial = %v, %v, %v; want error and a result", c, res, err)
			}
			if got := starttls.IsTemporary(err); got != tt.temporary {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, got, tt.temporary)
			}
			if errors.Is(err, starttls.ErrUpgradeNotOffered) {
				t.Errorf("a refused greeting is not 'no STARTTLS': %v", err)
			}
			if got := wait(); len(got) != 0 {
				t.Errorf("client sent %q after a bad greeting", got)
			}
		})
	}
}

func TestRequiredNeverFallsBack(t *testing.T) {
	untrusted := func(t *testing.T) []fakeStep {
		return []fakeStep{S(greeting), C(), S(ehloPlain), C(), S(goAhead), TLS()}
	}
	tests := []struct {
		name   string
		script func(t *testing.T) []fakeStep
		opts   func(o *starttls.ClientOptions)
		is     []error
		temp   bool
	}{
		{name: "not offered", script: func(*testing.T) []fakeStep {
			return []fakeStep{S(greeting), C(), S("250-mx.test\r\n250 AUTH PLAIN\r\n")}
		}, is: []error{starttls.ErrUpgradeNotOffered}},
		{name: "454", script: func(*testing.T) []fakeStep {
			return []fakeStep{S(greeting), C(), S(ehloPlain), C(), S("454 4.7.0 TLS not available due to temporary reason\r\n")}
		}, is: []error{starttls.ErrUpgradeRefused, ErrTLSNotAvailable}, temp: true},
		{name: "501", script: func(*testing.T) []fakeStep {
			return []fakeStep{S(greeting), C(), S(ehloPlain), C(), S("501 Syntax error\r\n")}
		}, is: []error{starttls.ErrUpgradeRefused}},
		{name: "200 STRIPTLS", script: func(*testing.T) []fakeStep {
			return []fakeStep{S(greeting), C(), S(ehloPlain), C(), S("200 STRIPTLS\r\n")}
		}, is: []error{starttls.ErrUpgradeRefused}},
		{name: "EHLO 502 (ProtocolDowngradeStripExtendedMode)", script: func(*testing.T) []fakeStep {
			return []fakeStep{S(greeting), C(), S("502 Error: command \"EHLO\" not implemented\r\n")}
		}, is: []error{starttls.ErrUpgradeNotOffered}},
		{name: "handshake failure (untrusted certificate)", script: untrusted, opts: func(o *starttls.ClientOptions) {
			o.TLSConfig = &tls.Config{} // system roots: the test CA is unknown
		}},
		{name: "go-ahead then garbage", script: func(*testing.T) []fakeStep {
			return []fakeStep{S(greeting), C(), S(ehloPlain), C(), S(goAhead), Pause(100 * time.Millisecond), S("\xb9\xb3\xb9\xb2\xb3 garbage\r\n")}
		}},
		{name: "silent server (deadline)", script: func(*testing.T) []fakeStep {
			return []fakeStep{S(greeting), C(), S(ehloPlain), C(), Pause(1500 * time.Millisecond)}
		}, is: []error{context.DeadlineExceeded}, temp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := fakeServer(t, tt.script(t)...)
			opts := clientOpts(t, starttls.ModeRequired)
			if tt.opts != nil {
				tt.opts(opts)
			}
			// Only the silent server should run into the deadline; the
			// others get room for a slow handshake (loading the system
			// roots under -race on a busy machine takes a while).
			d := linetest.Timeout
			if slices.Contains(tt.is, context.DeadlineExceeded) {
				d = 700 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			c, res, err := Dial(ctx, addr, opts)
			if err == nil || c != nil {
				t.Fatalf("Dial = %v, %v; want an error", c, err)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("err = %v, want errors.Is %v", err, target)
				}
			}
			if got := starttls.IsTemporary(err); got != tt.temp {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, got, tt.temp)
			}
			if res == nil || res.Upgraded {
				t.Errorf("Result = %+v", res)
			}
			for _, l := range wait() {
				// Commands only; a ClientHello is binary.
				if isText(l) && !strings.HasPrefix(l, "(handshake failed") && l != "EHLO client.test\r\n" && l != "STARTTLS\r\n" {
					t.Errorf("client sent %q after the failed upgrade", l)
				}
			}
		})
	}
}

func TestClientOpportunistic(t *testing.T) {
	t.Run("not offered", func(t *testing.T) {
		addr, wait := fakeServer(t, S(greeting), C(), S("250-mx.test\r\n250 AUTH PLAIN\r\n"), C(), S("221 bye\r\n"))
		c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
		if err != nil {
			t.Fatal(err)
		}
		if res.Offered || res.Upgraded || !slices.Equal(res.AuthBefore, []string{"PLAIN"}) {
			t.Errorf("Result = %+v", res)
		}
		if err := c.Login(linetest.Ctx(t), "user", "secret"); !errors.Is(err, starttls.ErrFallbackForbidden) {
			t.Errorf("Login in plaintext = %v, want ErrFallbackForbidden", err)
		}
		c.Close()
		equalLines(t, wait(), []string{"EHLO client.test\r\n", "QUIT\r\n"})
	})
	t.Run("EHLO refused, HELO", func(t *testing.T) {
		addr, wait := fakeServer(t, S(greeting), C(), S("502 5.5.1 no\r\n"), C(), S("250 mx.test\r\n"), C(), S("221 bye\r\n"))
		c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
		if err != nil {
			t.Fatal(err)
		}
		if res.Offered || res.Upgraded {
			t.Errorf("Result = %+v", res)
		}
		c.Close()
		equalLines(t, wait(), []string{"EHLO client.test\r\n", "HELO client.test\r\n", "QUIT\r\n"})
	})
	t.Run("454", func(t *testing.T) {
		addr, wait := fakeServer(t, S(greeting), C(), S(ehloPlain), C(), S("454 4.7.0 later\r\n"), C(), S("221 bye\r\n"))
		c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Offered || res.Upgraded || res.UpgradeReply != "454 4.7.0 later" {
			t.Errorf("Result = %+v", res)
		}
		c.Close()
		equalLines(t, wait(), []string{"EHLO client.test\r\n", "STARTTLS\r\n", "QUIT\r\n"})
	})
}

// CL-08…CL-11, EAST Buffering B_*, nodemailer#1835.
func TestClientRejectsResponseInjection(t *testing.T) {
	tests := []struct{ name, goAhead string }{
		{"injected capabilities", "220 2.0.0 Ready\r\n250-x\r\n250 AUTH LOGIN\r\n"},
		{"partial line", "220 ok\r\n250-AUTH XOAUTH2"},
		{"one byte", "220 ok\r\nX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := fakeServer(t, S(greeting), C(), S(ehloPlain), C(), S(tt.goAhead))
			c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) || c != nil {
				t.Fatalf("Dial = %v, want ErrPlaintextAfterUpgrade", err)
			}
			_, after, _ := strings.Cut(tt.goAhead, "\r\n")
			if string(res.PlaintextAfterUpgrade) != after {
				t.Errorf("PlaintextAfterUpgrade = %q, want %q", res.PlaintextAfterUpgrade, after)
			}
			if res.Upgraded || res.AuthAfter != nil {
				t.Errorf("Result = %+v", res)
			}
			equalLines(t, wait(), []string{"EHLO client.test\r\n", "STARTTLS\r\n"})
		})
	}
	// CL-41, the control case: a go-ahead split across segments and a
	// multi-line go-ahead are not injections.
	t.Run("fragmented go-ahead", func(t *testing.T) {
		addr, wait := fakeServer(t, S(greeting), C(), S(ehloPlain), C(),
			S("22"), Pause(50*time.Millisecond), S("0-2.0.0 Ready\r\n"), Pause(50*time.Millisecond), S("220 go\r\n"), TLS(),
			C(), S(ehloTLS), C(), S("221 bye\r\n"))
		c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Upgraded || res.PlaintextAfterUpgrade != nil {
			t.Errorf("Result = %+v", res)
		}
		c.Close()
		equalLines(t, wait(), []string{"EHLO client.test\r\n", "STARTTLS\r\n", "EHLO client.test\r\n", "QUIT\r\n"})
	})
}

// RFC 3207 §4.2, CL-17, CL-40: only the post-TLS capabilities count.
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	addr, wait := fakeServer(t, S(greeting),
		C(), S("250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250-X-INJECTED\r\n250 STARTTLS\r\n"),
		C(), S(goAhead), TLS(),
		C(), S("250-mx.test\r\n250-AUTH SCRAM-SHA-256 LOGIN\r\n250-STARTTLS\r\n250 SIZE 1000\r\n"),
		C(), S("334 VXNlcm5hbWU6\r\n"), C(), S("334 UGFzc3dvcmQ6\r\n"), C(), S("235 ok\r\n"),
		C(), S("221 bye\r\n"))
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"AUTH SCRAM-SHA-256 LOGIN", "STARTTLS", "SIZE 1000"}; !slices.Equal(res.CapsAfter, want) {
		t.Errorf("CapsAfter = %q, want %q", res.CapsAfter, want)
	}
	if !slices.Equal(res.AuthAfter, []string{"SCRAM-SHA-256", "LOGIN"}) || !res.CapsReread {
		t.Errorf("AuthAfter = %q, CapsReread = %v", res.AuthAfter, res.CapsReread)
	}
	if !res.OfferedAfterTLS {
		t.Error("OfferedAfterTLS = false, the server announced STARTTLS over TLS")
	}
	if ok, _ := c.Extension("X-INJECTED"); ok {
		t.Error("a pre-TLS extension survived the upgrade")
	}
	if ok, p := c.Extension("size"); !ok || p != "1000" {
		t.Errorf(`Extension("size") = %v, %q`, ok, p)
	}
	// PLAIN was offered only in plaintext: LOGIN is used.
	if err := c.Login(linetest.Ctx(t), "user", "secret"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	equalLines(t, wait(), []string{"EHLO client.test\r\n", "STARTTLS\r\n", "EHLO client.test\r\n",
		"AUTH LOGIN\r\n", "dXNlcg==\r\n", "c2VjcmV0\r\n", "QUIT\r\n"})
}

func TestClientLMTP(t *testing.T) {
	addr, wait := fakeServer(t, S("220 lmtp.test LMTP\r\n"),
		C(), S("250-lmtp.test\r\n250 PIPELINING\r\n"),
		C(), S("250 ok\r\n"), C(), S("250 ok\r\n"), C(), S("250 ok\r\n"),
		C(), S("354 go\r\n"), C(), C(), S("250 2.0.0 a ok\r\n452 4.2.2 b over quota\r\n"),
		C(), S("221 bye\r\n"))
	opts := clientOpts(t, starttls.ModeOpportunistic)
	c, res, err := DialLMTP(linetest.Ctx(t), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Protocol != "lmtp" {
		t.Errorf("Protocol = %q", res.Protocol)
	}
	err = c.SendMail(linetest.Ctx(t), "", []string{"a@x", "b@x"}, []byte("hi"))
	if err == nil || !starttls.IsTemporary(err) || !strings.Contains(err.Error(), "<b@x>") || strings.Contains(err.Error(), "<a@x>") {
		t.Errorf("SendMail = %v, want a temporary failure for b@x only", err)
	}
	c.Close()
	equalLines(t, wait(), []string{"LHLO client.test\r\n", "MAIL FROM:<>\r\n", "RCPT TO:<a@x>\r\n", "RCPT TO:<b@x>\r\n",
		"DATA\r\n", "hi\r\n", ".\r\n", "QUIT\r\n"})
}

func TestClientLineTooLong(t *testing.T) {
	addr, _ := fakeServer(t, S("220 "+strings.Repeat("x", 600)+"\r\n"))
	opts := clientOpts(t, starttls.ModeRequired)
	opts.MaxLineLength = 512
	_, _, err := Dial(linetest.Ctx(t), addr, opts)
	if !errors.Is(err, starttls.ErrLineTooLong) {
		t.Errorf("err = %v, want ErrLineTooLong", err)
	}
}

func TestClientTooManyLines(t *testing.T) {
	addr, _ := fakeServer(t, S(greeting), C(), S("250-mx\r\n"+strings.Repeat("250-X\r\n", 50)+"250 Y\r\n"))
	opts := clientOpts(t, starttls.ModeRequired)
	opts.MaxLines = 20
	_, _, err := Dial(linetest.Ctx(t), addr, opts)
	if !errors.Is(err, starttls.ErrProtocol) {
		t.Errorf("err = %v, want ErrProtocol", err)
	}
}

func TestSendMailRejectsBadAddresses(t *testing.T) {
	addr, wait := fakeServer(t, S(greeting), C(), S("250 mx\r\n"), C(), S("221 bye\r\n"))
	c, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]string{{"a@b\r\nRCPT TO:<evil@x>", "c@d"}, {"a@b", "c@d>\nDATA"}, {"a@b", ""}, {"a@b", "x\x00y"}} {
		if err := c.SendMail(linetest.Ctx(t), bad[0], []string{bad[1]}, []byte("x")); err == nil {
			t.Errorf("SendMail(%q, %q) = nil", bad[0], bad[1])
		}
	}
	c.Close()
	equalLines(t, wait(), []string{"EHLO client.test\r\n", "QUIT\r\n"})
}

func TestEncodeData(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ".\r\n"},
		{"a", "a\r\n.\r\n"},
		{"a\nb\n", "a\r\nb\r\n.\r\n"},
		{"a\r\nb", "a\r\nb\r\n.\r\n"},
		{"a\rb", "a\r\nb\r\n.\r\n"},
		{".\n", "..\r\n.\r\n"},
		{"x\n.y\n..z", "x\r\n..y\r\n...z\r\n.\r\n"},
		{"a\n.\nb", "a\r\n..\r\nb\r\n.\r\n"},
	}
	for _, tt := range tests {
		if got := string(encodeData([]byte(tt.in))); got != tt.want {
			t.Errorf("encodeData(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// isText reports whether l is a printable ASCII line, as a command is.
func isText(l string) bool {
	l = strings.TrimSuffix(l, "\r\n")
	for i := 0; i < len(l); i++ {
		if l[i] < 0x20 || l[i] > 0x7e {
			return false
		}
	}
	return l != ""
}
