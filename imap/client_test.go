package imap

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

const (
	greetCaps   = "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] fake ready\r\n"
	greetNoCaps = "* OK fake ready\r\n"
	capsTLS     = "* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n"
)

// TestClientTranscript checks the client's bytes exactly against scripted
// servers.
func TestClientTranscript(t *testing.T) {
	st, _ := linetest.TLSPair(t)
	tests := []struct {
		name      string
		script    func(f *linetest.Fake)
		plain     string // everything the client sent in plaintext
		inTLS     string // everything it sent inside TLS
		capsAfter []string
	}{
		{
			name: "caps in greeting",
			script: func(f *linetest.Fake) {
				f.Send(greetCaps)
				f.Expect("a1 STARTTLS")
				f.Send("a1 OK Begin TLS negotiation now\r\n")
				if !f.StartTLS(st) {
					return
				}
				f.Expect("a2 CAPABILITY")
				f.Send(capsTLS + "a2 OK done\r\n")
				f.Expect("a3 LOGIN alice \"secret pw\"")
				f.Send("a3 OK logged in\r\n")
				f.Expect("a4 LIST \"\" \"*\"")
				f.Send("* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST () \"/\" {5}\r\nSpäm\r\n* LIST () NIL \"a \\\"q\\\"\"\r\na4 OK\r\n")
				f.Expect("a5 LOGOUT")
				f.Send("* BYE bye\r\na5 OK\r\n")
				f.Drain()
			},
			plain:     "a1 STARTTLS\r\n",
			inTLS:     "a2 CAPABILITY\r\na3 LOGIN alice \"secret pw\"\r\na4 LIST \"\" \"*\"\r\na5 LOGOUT\r\n",
			capsAfter: []string{"IMAP4REV1", "AUTH=PLAIN", "SASL-IR"},
		},
		{
			name: "no caps in greeting, AUTHENTICATE without SASL-IR",
			script: func(f *linetest.Fake) {
				f.Send(greetNoCaps)
				f.Expect("a1 CAPABILITY")
				f.Send("* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na1 OK\r\n")
				f.Expect("a2 STARTTLS")
				f.Send("a2 OK go\r\n")
				if !f.StartTLS(st) {
					return
				}
				f.Expect("a3 CAPABILITY")
				f.Send("* CAPABILITY IMAP4rev2 LOGINDISABLED AUTH=PLAIN\r\na3 OK\r\n")
				f.Expect("a4 AUTHENTICATE PLAIN")
				f.Send("+ \r\n")
				f.Expect("AGFsaWNlAHNlY3JldCBwdw==")
				f.Send("a4 OK\r\n")
				f.Expect("a5 LIST \"\" \"*\"")
				f.Send("a5 OK\r\n")
				f.Expect("a6 LOGOUT")
				f.Send("a6 OK\r\n")
				f.Drain()
			},
			plain:     "a1 CAPABILITY\r\na2 STARTTLS\r\n",
			inTLS:     "a3 CAPABILITY\r\na4 AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldCBwdw==\r\na5 LIST \"\" \"*\"\r\na6 LOGOUT\r\n",
			capsAfter: []string{"IMAP4REV2", "LOGINDISABLED", "AUTH=PLAIN"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, tt.script)
			opts := clientOpts(t, starttls.ModeRequired)
			opts.ServerName = "localhost"
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, addr, opts)
			if err != nil {
				t.Fatalf("Dial() = %v", err)
			}
			if !reflect.DeepEqual(res.CapsAfter, tt.capsAfter) || !res.CapsReread {
				t.Errorf("CapsAfter = %q (reread %v), want %q", res.CapsAfter, res.CapsReread, tt.capsAfter)
			}
			if err := c.Login(ctx, "alice", "secret pw"); err != nil {
				t.Fatalf("Login() = %v", err)
			}
			boxes, err := c.List(ctx)
			if err != nil {
				t.Fatalf("List() = %v", err)
			}
			if tt.name == "caps in greeting" && !reflect.DeepEqual(boxes, []string{"INBOX", "Späm", `a "q"`}) {
				t.Errorf("List() = %q", boxes)
			}
			c.Close()
			f := wait()
			if f.Plain() != tt.plain || f.TLS() != tt.inTLS {
				t.Errorf("client sent\nplain %q\ntls   %q\nwant\nplain %q\ntls   %q", f.Plain(), f.TLS(), tt.plain, tt.inTLS)
			}
			tr := transcriptText(opts.Transcript)
			if strings.Contains(tr, "secret") || strings.Contains(tr, "AGFsaWNl") {
				t.Errorf("transcript leaks the password:\n%s", tr)
			}
		})
	}
}

// TestClientLoginMasked checks the masked transcript lines.
func TestClientLoginMasked(t *testing.T) {
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n")
		f.Expect("a1 LOGIN alice \"secret pw\"")
		f.Send("a1 OK\r\n")
		f.Drain()
	})
	opts := clientOpts(t, starttls.ModePlain)
	ctx := linetest.Ctx(t)
	c, _, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, "alice", "secret pw"); err != nil {
		t.Fatal(err)
	}
	c.conn.Close()
	wait()
	if tr := transcriptText(opts.Transcript); !strings.Contains(tr, "C a1 LOGIN alice ****\n") {
		t.Errorf("transcript:\n%s", tr)
	}
}

// TestClientGreeting covers PR-10, CL-27 and the BYE greeting.
func TestClientGreeting(t *testing.T) {
	tests := []struct {
		name     string
		greeting string
		err      error
		bye      bool
		temp     bool
	}{
		{name: "random", greeting: "1Gdo00V4 wFaIW2WP\r\n", err: starttls.ErrProtocol},
		{name: "random then OK", greeting: "Ac3cXIo1 rJzgnVlo\r\n* OK DHYw9lXw\r\n", err: starttls.ErrProtocol},
		{name: "tagged", greeting: "a1 OK hello\r\n", err: starttls.ErrProtocol},
		{name: "IMAP2 downgrade", greeting: "OK IMAP2 Server Ready\r\n", err: starttls.ErrProtocol},
		{name: "untagged data", greeting: "* CAPABILITY IMAP4rev1\r\n", err: starttls.ErrProtocol},
		{name: "numbered", greeting: "* 1 OK x\r\n", err: starttls.ErrProtocol},
		{name: "continuation", greeting: "+ go\r\n", err: starttls.ErrProtocol},
		{name: "BYE", greeting: "* BYE go away\r\n", bye: true},
		{name: "BYE unavailable", greeting: "* BYE [UNAVAILABLE] maintenance\r\n", bye: true, temp: true},
		{name: "NUL", greeting: "* OK a\x00b\r\n", err: starttls.ErrProtocol},
		{name: "huge literal", greeting: "* OK {4294967296}\r\n", err: starttls.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send(tt.greeting)
				f.Drain()
			})
			opts := clientOpts(t, starttls.ModeRequired)
			c, res, err := Dial(linetest.Ctx(t), addr, opts)
			if err == nil || c != nil {
				t.Fatalf("Dial() = %v, %v; want an error", c, err)
			}
			if res == nil || res.Protocol != "imap" {
				t.Fatalf("Result = %+v", res)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("Dial() error = %v, want %v", err, tt.err)
			}
			var ie *Error
			if tt.bye && (!errors.As(err, &ie) || ie.Type != "BYE") {
				t.Errorf("Dial() error = %v, want a BYE *Error", err)
			}
			if starttls.IsTemporary(err) != tt.temp {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, !tt.temp, tt.temp)
			}
			if f := wait(); f.Plain() != "" {
				t.Errorf("client sent %q after a bad greeting", f.Plain())
			}
		})
	}
}

// TestClientIgnoresUntagged: CL-14 (untagged data right after the
// greeting), CL-15 (ALERT before TLS is marked untrusted).
func TestClientIgnoresUntagged(t *testing.T) {
	st, _ := linetest.TLSPair(t)
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Send("* OK [ALERT] Your account is compromised, log in at evil.example\r\n")
		f.Send("* LIST () \"/\" \"Click me! <Payload>\"\r\n* CAPABILITY IDLE\r\n")
		f.Expect("a1 CAPABILITY")
		f.Send("* 54321 EXISTS\r\n* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\na1 OK\r\n")
		f.Expect("a2 STARTTLS")
		f.Send("* OK [ALERT] Attacker-controlled text\r\na2 OK go\r\n")
		if !f.StartTLS(st) {
			return
		}
		f.Expect("a3 CAPABILITY")
		f.Send(capsTLS + "a3 OK\r\n")
		f.Drain()
	})
	opts := clientOpts(t, starttls.ModeRequired)
	opts.ServerName = "localhost"
	c, res, err := Dial(linetest.Ctx(t), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.conn.Close()
	wait()
	if !reflect.DeepEqual(res.CapsBefore, []string{"IMAP4REV1", "STARTTLS", "LOGINDISABLED"}) {
		t.Errorf("CapsBefore = %q", res.CapsBefore)
	}
	tr := transcriptText(opts.Transcript)
	for _, want := range []string{
		"* untrusted alert, received before TLS (could be injected): Your account is compromised",
		"* untrusted alert, received before TLS (could be injected): Attacker-controlled text",
	} {
		if !strings.Contains(tr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
}

// TestClientPreauth: CL-04, a PREAUTH greeting makes STARTTLS impossible.
func TestClientPreauth(t *testing.T) {
	for _, mode := range []starttls.Mode{starttls.ModeRequired, starttls.ModeOpportunistic} {
		t.Run(mode.String(), func(t *testing.T) {
			addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
				f.Send("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome back\r\n")
				f.Drain()
			})
			opts := clientOpts(t, mode)
			c, res, err := Dial(linetest.Ctx(t), addr, opts)
			if mode == starttls.ModeRequired {
				if !errors.Is(err, starttls.ErrUpgradeNotOffered) {
					t.Errorf("Dial() = %v, want ErrUpgradeNotOffered", err)
				}
			} else {
				if err != nil || res.Upgraded {
					t.Fatalf("Dial() = %v, upgraded %v; want plaintext session", err, res.Upgraded)
				}
				if err := c.Login(linetest.Ctx(t), "a", "b"); !errors.Is(err, starttls.ErrFallbackForbidden) {
					t.Errorf("Login() = %v", err)
				}
				c.conn.Close()
			}
			if f := wait(); f.Plain() != "" {
				t.Errorf("client sent %q after PREAUTH", f.Plain())
			}
		})
	}
}

// TestClientProbeRefused: with the probe, a refused STARTTLS still leaves
// the opportunistic session in step (the NOOP answer is consumed).
func TestClientProbeRefused(t *testing.T) {
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Send(greetCaps)
		f.Expect("a1 STARTTLS")
		f.Expect("a2 NOOP")
		f.Send("a1 NO [UNAVAILABLE] later\r\na2 OK NOOP\r\n")
		f.Expect("a3 LOGOUT")
		f.Send("a3 OK\r\n")
		f.Drain()
	})
	opts := clientOpts(t, starttls.ModeOpportunistic)
	opts.ProbeInjection = true
	opts.InjectionWait = 200 * time.Millisecond
	c, res, err := Dial(linetest.Ctx(t), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Upgraded || res.Injection == nil || res.Injection.Err != "upgrade refused" || res.UpgradeReply != "a1 NO [UNAVAILABLE] later" {
		t.Errorf("Result: upgraded %v injection %+v reply %q", res.Upgraded, res.Injection, res.UpgradeReply)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	wait()
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
		temp bool
	}{
		{&Error{Type: "NO", Code: "PRIVACYREQUIRED", Text: "use TLS"}, "imap: NO [PRIVACYREQUIRED] use TLS", false},
		{&Error{Type: "BAD", Text: "what?"}, "imap: BAD what?", false},
		{&Error{Type: "NO", Code: "UNAVAILABLE"}, "imap: NO [UNAVAILABLE]", true},
		{&Error{Type: "NO", Code: "INUSE", Text: "\x1b[31m"}, `imap: NO [INUSE] \x1b[31m`, true},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want || tt.err.Temporary() != tt.temp {
			t.Errorf("Error() = %q, Temporary() = %v; want %q, %v", got, tt.err.Temporary(), tt.want, tt.temp)
		}
	}
}
