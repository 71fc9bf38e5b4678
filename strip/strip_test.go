package strip

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
	"github.com/starttls/starttls/imap"
	"github.com/starttls/starttls/pop3"
	"github.com/starttls/starttls/smtp"
)

// useSession does what an application does with a session once the
// dialog is over: log in and read mail, or send a message.
func useSession(ctx context.Context, s dial.Session) {
	switch c := s.(type) {
	case *smtp.Client:
		c.SendMail(ctx, "a@example.org", []string{"b@example.org"}, []byte("Subject: t\r\n\r\nhi\r\n"))
	case *imap.Client:
		if c.Login(ctx, "bob", "hunter2-secret") == nil {
			c.List(ctx)
		}
	case *pop3.Client:
		if c.Login(ctx, "bob", "hunter2-secret") == nil {
			c.Stat(ctx)
		}
	default:
		s.Login(ctx, "bob", "hunter2-secret")
	}
	s.Close()
}

// TestLibraryClients runs the library's own clients in each mode through
// every attack and checks the verdicts: required and implicit are safe to
// everything; opportunistic SMTP sends its message in plaintext when the
// upgrade is stripped or refused; opportunistic IMAP and POP3 refuse to
// log in without TLS and so send nothing that matters.
func TestLibraryClients(t *testing.T) {
	steps, _ := Plan(All)
	for _, proto := range dial.MITMProtocols() {
		for _, mode := range []starttls.Mode{starttls.ModeOpportunistic, starttls.ModeRequired, starttls.ModeImplicit} {
			t.Run(proto+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				lb := startLab(t, proto)
				sim, addr := startStrip(t, lb, schemeFor(t, proto), All, nil)
				up, err := dial.Upgrader(proto)
				if err != nil {
					t.Fatal(err)
				}
				for i, step := range steps {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					conn, err := net.Dial("tcp", addr)
					if err != nil {
						t.Fatal(err)
					}
					s, _, err := up(ctx, conn, &starttls.ClientOptions{Mode: mode, TLSConfig: lb.clientTLS, InjectionWait: 200 * time.Millisecond})
					if err == nil {
						useSession(ctx, s)
					}
					cancel()
					e := waitEntries(t, sim, i+1)[i]
					if e.Name() != step.String() {
						t.Fatalf("entry %d is %s, want %s", i, e.Name(), step)
					}
					want := Safe
					if mode == starttls.ModeOpportunistic && (proto == "smtp" || proto == "lmtp") && (step.Attack == StripCapability || step.Attack == RejectUpgrade) {
						want = Vulnerable
					}
					m, _ := dial.MITMFor(proto)
					if step.Attack == ResponseInjection && m.Forged == nil ||
						(step.Attack == StripCapability || step.Attack == RejectUpgrade) && m.Command == nil && !m.Credentials {
						want = NotApplicable
					}
					if e.Verdict != want {
						t.Errorf("%s: verdict %s, want %s; findings %q\n%s", step, e.Verdict, want, e.Findings, strings.Join(e.Evidence, "\n"))
					}
					if want == Vulnerable && (!e.PlaintextContinued || !strings.Contains(strings.Join(e.Findings, ";"), "MAIL")) {
						t.Errorf("%s: vulnerable without the evidence: %+v", step, e)
					}
					if want != NotApplicable && (len(e.Evidence) == 0 || len(e.Findings) == 0) {
						t.Errorf("%s: no evidence or findings: %+v", step, e)
					}
				}
			})
		}
	}
}

// rawClient is a scripted client for one connection.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, br: bufio.NewReader(c)}
}

func (r *rawClient) send(line string) {
	r.t.Helper()
	if _, err := fmt.Fprintf(r.conn, "%s\r\n", line); err != nil {
		r.t.Fatal(err)
	}
}

// reply reads an SMTP reply, multi-line or not, and returns its last line.
func (r *rawClient) reply() string {
	r.t.Helper()
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("reading reply: %v", err)
		}
		if len(l) < 4 || l[3] != '-' {
			return strings.TrimRight(l, "\r\n")
		}
	}
}

// TestScriptedVulnerableClients makes every verdict field come out
// vulnerable once, each from a client scripted to fall for it.
func TestScriptedVulnerableClients(t *testing.T) {
	lb := startLab(t, "smtp")
	insecure := &tls.Config{InsecureSkipVerify: true}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00bob\x00hunter2-secret"))
	cases := []struct {
		attack string
		script func(r *rawClient)
		check  func(e Entry) bool
	}{
		{StripCapability, func(r *rawClient) {
			r.reply()
			r.send("EHLO me")
			r.reply()
			r.send("MAIL FROM:<a@example.org>")
			r.reply()
			r.send("QUIT")
			r.reply()
		}, func(e Entry) bool { return e.PlaintextContinued && len(e.CredentialsSeen) == 0 }},
		{RejectUpgrade + "/" + Permanent, func(r *rawClient) {
			r.reply()
			r.send("EHLO me")
			r.reply()
			r.send("STARTTLS")
			r.reply()
			r.send("AUTH PLAIN " + plain)
			r.reply()
			r.send("QUIT")
			r.reply()
		}, func(e Entry) bool {
			return len(e.CredentialsSeen) == 1 && e.CredentialsSeen[0].User == "bob" &&
				e.CredentialsSeen[0].Secret == "h…t (14 chars)" && e.CredentialsSeen[0].Mechanism == "AUTH PLAIN"
		}},
		{UntrustedCert + "/" + SelfSigned, func(r *rawClient) {
			r.reply()
			r.send("EHLO me")
			r.reply()
			r.send("STARTTLS")
			r.reply()
			tc := tls.Client(r.conn, insecure)
			if err := tc.Handshake(); err != nil {
				r.t.Fatal(err)
			}
			fmt.Fprintf(tc, "EHLO me\r\n")
			bufio.NewReader(tc).ReadString('\n')
		}, func(e Entry) bool { return e.AcceptedBadCert }},
		{Downgrade, func(r *rawClient) {
			r.reply()
			r.send("EHLO me")
			r.reply()
			r.send("STARTTLS")
			r.reply()
			tc := tls.Client(r.conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10})
			if err := tc.Handshake(); err != nil {
				r.t.Fatal(err)
			}
			fmt.Fprintf(tc, "EHLO me\r\n")
			bufio.NewReader(tc).ReadString('\n')
		}, func(e Entry) bool {
			return e.AcceptedBadCert && strings.Contains(strings.Join(e.Findings, ";"), "TLS 1.1")
		}},
		{ResponseInjection, func(r *rawClient) {
			r.reply()
			r.send("EHLO me")
			r.reply()
			r.send("STARTTLS")
			r.reply() // the go-ahead; the forged reply stays in r.br
			tc := tls.Client(r.conn, insecure)
			if err := tc.Handshake(); err != nil {
				r.t.Fatal(err)
			}
			// The bug: the reply to EHLO is read from the plaintext buffer.
			fmt.Fprintf(tc, "EHLO me\r\n")
			r.reply()
			fmt.Fprintf(tc, "AUTH PLAIN %s\r\n", plain)
			bufio.NewReader(tc).ReadString('\n')
		}, func(e Entry) bool { return e.ActedOnInjection && len(e.CredentialsSeen) == 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.attack, func(t *testing.T) {
			t.Parallel()
			sim, addr := startStrip(t, lb, "smtp", tc.attack, nil)
			r := dialRaw(t, addr)
			tc.script(r)
			r.conn.Close()
			e := waitEntries(t, sim, 1)[0]
			if e.Verdict != Vulnerable || !tc.check(e) {
				t.Fatalf("verdict %s, entry %+v\n%s", e.Verdict, e, strings.Join(e.Evidence, "\n"))
			}
			b, _ := json.Marshal(e)
			if strings.Contains(string(b), "hunter2-secret") || strings.Contains(string(b), plain) {
				t.Fatalf("the secret leaked into the entry: %s", b)
			}
		})
	}
}

// TestCommandInjectionJudgesTheServer probes a server that runs commands
// pipelined after STARTTLS inside TLS (CVE-2011-0411) and one that does
// not, with a client that trusts strip's certificate (its session is
// relayed on a clean connection) and one that does not (the server is
// judged all the same).
func TestCommandInjectionJudgesTheServer(t *testing.T) {
	for _, vulnerable := range []bool{true, false} {
		for _, trusting := range []bool{true, false} {
			t.Run(fmt.Sprintf("vulnerable=%v/trusting=%v", vulnerable, trusting), func(t *testing.T) {
				t.Parallel()
				lb := startLab(t, "smtp")
				if vulnerable {
					lb = startLabWith(t, "smtp", func(o *starttls.ServerOptions) { o.InsecureKeepPipelined = true })
				}
				sim, addr := startStrip(t, lb, "smtp", CommandInjection, func(c *Config) {
					if trusting {
						c.Certificate = &lb.attacker
					}
				})
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				s, _, err := smtp.Upgrade(ctx, conn, &starttls.ClientOptions{Mode: starttls.ModeRequired, ServerName: "attacker.invalid", TLSConfig: lb.clientTLS})
				if err == nil {
					err = s.SendMail(ctx, "a@example.org", []string{"b@example.org"}, []byte("Subject: t\r\n\r\nhi\r\n"))
					s.Close()
				}
				if trusting != (err == nil) {
					t.Errorf("client session through strip: %v", err)
				}
				e := waitEntries(t, sim, 1)[0]
				want := Safe
				if vulnerable {
					want = Vulnerable
				}
				if e.Verdict != want || e.ActedOnInjection != vulnerable || e.Subject != "server" {
					t.Fatalf("verdict %s acted %v subject %s, want %s; %q\n%s", e.Verdict, e.ActedOnInjection, e.Subject, want, e.Findings, strings.Join(e.Evidence, "\n"))
				}
			})
		}
	}
}

// TestPassControl relays untouched: a client that upgrades is safe, one
// that ignores the offered STARTTLS and sends mail in plaintext is not.
func TestPassControl(t *testing.T) {
	lb := startLab(t, "smtp")
	sim, addr := startStrip(t, lb, "smtp", Pass, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, _, err := dial.Dial(ctx, &starttls.Target{Scheme: mustScheme(t, "smtp"), Host: "127.0.0.1", Port: port(t, addr), Mode: starttls.ModeRequired}, &dial.Options{Client: starttls.ClientOptions{TLSConfig: lb.clientTLS}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	e := waitEntries(t, sim, 1)[0]
	if e.Verdict != Safe || !strings.Contains(strings.Join(e.Findings, ";"), "started TLS") {
		t.Fatalf("required client through pass: %s %q", e.Verdict, e.Findings)
	}
	r := dialRaw(t, addr)
	r.reply()
	r.send("EHLO me")
	r.reply()
	r.send("MAIL FROM:<a@example.org>")
	r.reply()
	r.send("QUIT")
	r.reply()
	e = waitEntries(t, sim, 2)[1]
	if e.Verdict != Vulnerable || !e.PlaintextContinued {
		t.Fatalf("plaintext client through pass: %s %q", e.Verdict, e.Findings)
	}
}

// TestHostilePeers: silent clients, clients that leave mid-dialog, garbage
// from the client and from the upstream, an upstream that is down. Every
// connection ends within its bounds with an entry and no panic.
func TestHostilePeers(t *testing.T) {
	lb := startLab(t, "smtp")
	garbage := startGarbage(t)
	cases := []struct {
		name, attack string
		upstream     string
		script       func(r *rawClient)
	}{
		{"silent client", StripCapability, "", func(r *rawClient) { time.Sleep(700 * time.Millisecond) }},
		{"leaves after EHLO", RejectUpgrade, "", func(r *rawClient) { r.reply(); r.send("EHLO me") }},
		{"leaves in the handshake", UntrustedCert, "", func(r *rawClient) {
			r.reply()
			r.send("STARTTLS")
			r.reply()
			r.conn.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 1})
		}},
		{"binary garbage", StripCapability, "", func(r *rawClient) {
			r.reply()
			r.conn.Write([]byte("\x00\xff\xfe garbage \x1b[31m\r\n" + strings.Repeat("A", 10000) + "\r\n"))
			r.br.ReadString('\n')
		}},
		{"garbage upstream", UntrustedCert, "garbage", func(r *rawClient) {
			r.reply()
			r.send("STARTTLS")
			r.reply()
			tc := tls.Client(r.conn, &tls.Config{InsecureSkipVerify: true})
			if tc.Handshake() == nil {
				fmt.Fprintf(tc, "EHLO me\r\n")
				tc.SetReadDeadline(time.Now().Add(2 * time.Second))
				bufio.NewReader(tc).ReadString('\n')
			}
		}},
		{"upstream down", ResponseInjection, "down", func(r *rawClient) {
			r.reply()
			r.send("STARTTLS")
			r.reply()
			tc := tls.Client(r.conn, &tls.Config{InsecureSkipVerify: true})
			if tc.Handshake() == nil {
				fmt.Fprintf(tc, "EHLO me\r\n")
				tc.SetReadDeadline(time.Now().Add(2 * time.Second))
				bufio.NewReader(tc).ReadString('\n')
			}
		}},
		{"pass to a garbage upstream", Pass, "garbage", func(r *rawClient) {
			r.br.ReadString('\n')
			r.send("EHLO me")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := *lb
			switch tc.upstream {
			case "garbage":
				up.addr = garbage
			case "down":
				l, _ := net.Listen("tcp", "127.0.0.1:0")
				up.addr = l.Addr().String()
				l.Close()
			}
			sim, addr := startStrip(t, &up, "smtp", tc.attack, func(c *Config) { c.ClientTimeout = 500 * time.Millisecond })
			start := time.Now()
			r := dialRaw(t, addr)
			tc.script(r)
			r.conn.Close()
			e := waitEntries(t, sim, 1)[0]
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("took %s", d)
			}
			if e.Verdict == "" || len(e.Evidence) == 0 {
				t.Fatalf("entry %+v", e)
			}
			t.Logf("%s: %s %q %s", tc.name, e.Verdict, e.Findings, e.Note)
		})
	}
}

// TestNotApplicable: an implicit-TLS scheme has no upgrade to attack.
func TestNotApplicable(t *testing.T) {
	lb := startLab(t, "smtp")
	sim, addr := startStrip(t, lb, "smtps", StripCapability, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := waitEntries(t, sim, 1)[0]
	if e.Verdict != NotApplicable || !strings.Contains(e.Note, "first byte") {
		t.Fatalf("%+v", e)
	}
}

// TestImplicitUntrustedCert: on an implicit-TLS scheme the certificate
// attacks apply; the library's implicit client refuses a self-signed
// certificate, a client that skips verification is caught.
func TestImplicitUntrustedCert(t *testing.T) {
	lb := startImplicitLab(t, "smtp")
	sim, addr := startStrip(t, lb, "smtps", UntrustedCert+"/"+SelfSigned, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _ := net.Dial("tcp", addr)
	if s, _, err := smtp.Upgrade(ctx, conn, &starttls.ClientOptions{Mode: starttls.ModeImplicit, TLSConfig: lb.clientTLS}); err == nil {
		s.Close()
		t.Fatal("the implicit client accepted a self-signed certificate")
	}
	conn, _ = net.Dial("tcp", addr)
	s, _, err := smtp.Upgrade(ctx, conn, &starttls.ClientOptions{Mode: starttls.ModeImplicit, TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatalf("relay through implicit TLS: %v", err)
	}
	s.Close()
	es := waitEntries(t, sim, 2)
	if es[0].Verdict != Safe || es[1].Verdict != Vulnerable || !es[1].AcceptedBadCert {
		t.Fatalf("%s %q / %s %q", es[0].Verdict, es[0].Findings, es[1].Verdict, es[1].Findings)
	}
}

func TestPlan(t *testing.T) {
	for _, bad := range []string{"", "nope", "pass/x", "reject-upgrade/x", "all/temporary"} {
		if _, err := Plan(bad); err == nil {
			t.Errorf("Plan(%q) accepted", bad)
		}
	}
	steps, err := Plan("reject-upgrade")
	if err != nil || len(steps) != 2 || steps[1].String() != "reject-upgrade/permanent" {
		t.Fatalf("%v %v", steps, err)
	}
	all, _ := Plan(All)
	if len(all) != 9 {
		t.Fatalf("all: %v", all)
	}
}

func TestMaskSecretInSummary(t *testing.T) {
	es := []Entry{
		{Attack: Pass, Verdict: Safe, Client: "c1", Findings: []string{"ok"}},
		{Attack: Pass, Verdict: Vulnerable, Client: "c2", Findings: []string{"bad"}},
		{Attack: StripCapability, Verdict: NotApplicable, Note: "why"},
	}
	s := Summarize(es)
	if len(s) != 2 || s[0].Verdict != Vulnerable || s[0].Connections != 2 || s[0].Evidence[0] != "c2: bad" || s[1].Verdict != NotApplicable {
		t.Fatalf("%+v", s)
	}
}

// TestPlainClientsLeakCredentials: the library's client in ModePlain logs
// in without TLS; through strip-capability every protocol's server must
// report the login, masked, and the evidence must not hold the secret.
func TestPlainClientsLeakCredentials(t *testing.T) {
	for _, proto := range dial.MITMProtocols() {
		if m, _ := dial.MITMFor(proto); !m.Credentials {
			continue // no password login (XMPP server-to-server)
		}
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			lb := startLab(t, proto)
			sim, addr := startStrip(t, lb, schemeFor(t, proto), StripCapability, nil)
			up, _ := dial.Upgrader(proto)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			s, _, err := up(ctx, conn, &starttls.ClientOptions{Mode: starttls.ModePlain})
			if err != nil {
				t.Fatalf("plain dialog: %v", err)
			}
			lerr := s.Login(ctx, "bob", "hunter2-secret")
			s.Close()
			e := waitEntries(t, sim, 1)[0]
			if e.Verdict != Vulnerable || len(e.CredentialsSeen) == 0 || e.CredentialsSeen[0].User != "bob" {
				t.Fatalf("login error %v; verdict %s creds %+v findings %q\n%s", lerr, e.Verdict, e.CredentialsSeen, e.Findings, strings.Join(e.Evidence, "\n"))
			}
			b, _ := json.Marshal(e)
			if strings.Contains(string(b), "hunter2-secret") {
				t.Fatalf("secret leaked: %s", b)
			}
			t.Logf("%s: %+v", proto, e.CredentialsSeen)
		})
	}
}

// TestResponseInjectionPerProtocol runs, per line protocol, a client with
// the classic bug (it keeps reading replies from the buffer it filled
// before TLS) and the same client without it. The forged reply must be
// taken by the first and the verdicts must differ.
func TestResponseInjectionPerProtocol(t *testing.T) {
	type script struct {
		upgrade   []string // plaintext: send each, read its answer until done(line)
		done      func(cmd, line string) bool
		first     string // first command inside TLS ("" when the server speaks first)
		firstDone func(line string) bool
		next      string // sent once the first answer is read
	}
	plainDone := func(prefix string) func(string, string) bool {
		return func(_, line string) bool { return strings.HasPrefix(line, prefix) }
	}
	scripts := map[string]script{
		"imap": {
			upgrade: []string{"", "A1 CAPABILITY", "A2 STARTTLS"},
			done: func(cmd, line string) bool {
				tag, _, _ := strings.Cut(cmd, " ")
				return cmd == "" || strings.HasPrefix(line, tag+" ")
			},
			first: "A3 CAPABILITY", firstDone: func(l string) bool { return strings.HasPrefix(l, "A3 ") },
			next: "A4 LOGIN bob hunter2-secret",
		},
		"pop3": {
			upgrade: []string{"", "STLS"}, done: plainDone("+OK"),
			first: "CAPA", firstDone: func(l string) bool { return l == "." },
			next: "USER bob",
		},
		"nntp": {
			upgrade: []string{"", "STARTTLS"},
			done:    func(cmd, line string) bool { return cmd == "" || strings.HasPrefix(line, "382") },
			first:   "CAPABILITIES", firstDone: func(l string) bool { return l == "." },
			next: "AUTHINFO USER bob",
		},
		"sieve": {
			upgrade: []string{"", "STARTTLS"}, done: plainDone("OK"),
			firstDone: func(l string) bool { return strings.HasPrefix(l, "OK") },
			next:      `AUTHENTICATE "PLAIN" "AGJvYgBodW50ZXIy"`,
		},
		"ftp": {
			upgrade: []string{"", "AUTH TLS"}, done: plainDone("2"),
			first: "PBSZ 0", firstDone: func(l string) bool { return strings.HasPrefix(l, "200") },
			next: "PROT P",
		},
	}
	for proto, sc := range scripts {
		for _, buggy := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/buggy=%v", proto, buggy), func(t *testing.T) {
				t.Parallel()
				lb := startLab(t, proto)
				sim, addr := startStrip(t, lb, schemeFor(t, proto), ResponseInjection, nil)
				r := dialRaw(t, addr)
				readUntil := func(br *bufio.Reader, done func(string) bool) {
					for {
						l, err := br.ReadString('\n')
						if err != nil {
							t.Fatalf("reading: %v", err)
						}
						if done(strings.TrimRight(l, "\r\n")) {
							return
						}
					}
				}
				for _, cmd := range sc.upgrade {
					if cmd != "" {
						r.send(cmd)
					}
					readUntil(r.br, func(l string) bool { return sc.done(cmd, l) })
				}
				tc := tls.Client(r.conn, &tls.Config{InsecureSkipVerify: true})
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				replies := bufio.NewReader(tc)
				if buggy {
					replies = r.br // the bug: the plaintext buffer is still read
				}
				if sc.first != "" {
					fmt.Fprintf(tc, "%s\r\n", sc.first)
				}
				readUntil(replies, sc.firstDone)
				fmt.Fprintf(tc, "%s\r\n", sc.next)
				tc.SetReadDeadline(time.Now().Add(2 * time.Second))
				bufio.NewReader(tc).ReadString('\n')
				r.conn.Close()
				e := waitEntries(t, sim, 1)[0]
				want := Safe
				if buggy {
					want = Vulnerable
				}
				if e.Verdict != want || e.ActedOnInjection != buggy {
					t.Fatalf("verdict %s acted %v, want %s; %q\n%s", e.Verdict, e.ActedOnInjection, want, e.Findings, strings.Join(e.Evidence, "\n"))
				}
			})
		}
	}
}

// TestPostgresBufferedS_CVE_2021_23222: a client that reads the server's
// answer from what it buffered with the 'S' takes the forged
// AuthenticationCleartextPassword and sends its password early; one that
// does not waits for the real answer.
func TestPostgresBufferedS_CVE_2021_23222(t *testing.T) {
	for _, buggy := range []bool{true, false} {
		t.Run(fmt.Sprint("buggy=", buggy), func(t *testing.T) {
			t.Parallel()
			lb := startLab(t, "postgres")
			sim, addr := startStrip(t, lb, "postgres", ResponseInjection, nil)
			r := dialRaw(t, addr)
			r.conn.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}) // SSLRequest
			if b, err := r.br.ReadByte(); err != nil || b != 'S' {
				t.Fatalf("answer %q %v", b, err)
			}
			tc := tls.Client(r.conn, &tls.Config{InsecureSkipVerify: true})
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			startup := []byte{0, 0, 0, 0, 0, 3, 0, 0}
			startup = append(startup, "user\x00bob\x00database\x00bob\x00\x00"...)
			startup[3] = byte(len(startup))
			tc.Write(startup)
			replies := bufio.NewReader(tc)
			if buggy {
				replies = r.br
			}
			var hdr [9]byte
			if _, err := io.ReadFull(replies, hdr[:]); err != nil {
				t.Fatal(err)
			}
			if hdr[0] == 'R' && hdr[8] == 3 {
				pw := append([]byte{'p', 0, 0, 0, 0}, "hunter2-secret\x00"...)
				pw[4] = byte(len(pw) - 1)
				tc.Write(pw)
			}
			tc.SetReadDeadline(time.Now().Add(2 * time.Second))
			replies.ReadByte()
			r.conn.Close()
			e := waitEntries(t, sim, 1)[0]
			if e.ActedOnInjection != buggy {
				t.Fatalf("acted %v, want %v; %q\n%s", e.ActedOnInjection, buggy, e.Findings, strings.Join(e.Evidence, "\n"))
			}
		})
	}
}
