//go:build interop

package interop

// Part P: real clients -> `starttls proxy` -> real servers (module "proxy",
// scripts/interop/modules/proxy.sh).
//
// Server side: swaks and curl send mail over STARTTLS and implicit TLS
// through the proxy to a Postfix with TLS switched off, Python's imaplib
// does STARTTLS and LOGIN through the proxy to a Dovecot with TLS switched
// off; the messages must arrive, and the TLS must have been the proxy's
// (the backends have none).
//
// Client side: plaintext clients (Python smtplib and imaplib without TLS,
// a raw socket) through `starttls proxy --upstream` to the mail module's
// Postfix and Dovecot, which must see TLS (Postfix's Received header,
// Dovecot's login line); an upstream without STARTTLS, or with a
// certificate the proxy must not trust, gives the client the protocol's
// error reply and never a plaintext relay.
//
// The proxies run as the built binary, one per case, on the module's ports
// base+2 … base+9, and are stopped by pid when their test ends.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/certs"
)

// proxyEnv is what the module exports.
type proxyEnv struct {
	*env
	postfix, dovecot       string // the plaintext-only legacy servers
	base                   int
	maildir                string // where the plaintext Postfix delivers
	postfixLog, dovecotLog string
	logs                   string // the proxies' logs
	cert, key              string // the shared PKI's server certificate
}

func getProxyEnv(t *testing.T) *proxyEnv {
	t.Helper()
	e := getEnv(t)
	e.needModule(t, "proxy")
	base, err := strconv.Atoi(needEnv(t, "INTEROP_PROXY_PORT_BASE"))
	if err != nil {
		t.Fatalf("INTEROP_PROXY_PORT_BASE: %v", err)
	}
	pki := filepath.Dir(e.CA)
	return &proxyEnv{
		env:     e,
		postfix: needEnv(t, "INTEROP_PROXY_POSTFIX"), dovecot: needEnv(t, "INTEROP_PROXY_DOVECOT"),
		base: base, maildir: needEnv(t, "INTEROP_PROXY_MAILDIR"),
		postfixLog: needEnv(t, "INTEROP_PROXY_POSTFIX_LOG"), dovecotLog: needEnv(t, "INTEROP_PROXY_DOVECOT_LOG"),
		logs: needEnv(t, "INTEROP_PROXY_LOGS"),
		cert: filepath.Join(pki, "server.pem"), key: filepath.Join(pki, "server.key"),
	}
}

// listen is 127.0.0.1:(base+off), a proxy's listener.
func (p *proxyEnv) listen(off int) string {
	return "127.0.0.1:" + strconv.Itoa(p.base+off)
}

// proxyDrain is the proxies' --shutdown-timeout: on SIGTERM each must be
// gone within it plus proxyExitSlack.
const (
	proxyDrain     = 2 * time.Second
	proxyExitSlack = 3 * time.Second
)

// startProxy runs `starttls proxy --listen addr ARGS…` until the test
// ends (or stop is called), and waits until it listens. Its log goes to
// logs/NAME.log and into the test's output when the test fails. stop sends
// SIGTERM and returns how long the proxy took to exit; one that outlives
// its drain by proxyExitSlack is killed and fails the test.
func (p *proxyEnv) startProxy(t *testing.T, name, addr string, args ...string) (stop func() time.Duration) {
	t.Helper()
	bin := p.needBinary(t)
	logf := filepath.Join(p.logs, name+".log")
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"proxy", "--listen", addr, "--shutdown-timeout", proxyDrain.String(), "--log-level", "debug"}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Stdout, cmd.Stderr = f, f
	dieWithParent(cmd)
	t.Logf("$ starttls %s", shellQuote(argv))
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starttls proxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(exited) }()
	var once sync.Once
	var took time.Duration
	stop = func() time.Duration {
		once.Do(func() {
			start := time.Now()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(proxyDrain + proxyExitSlack):
				t.Errorf("starttls proxy %s (pid %d) still running %v after SIGTERM (drain %v); killing it",
					name, cmd.Process.Pid, proxyDrain+proxyExitSlack, proxyDrain)
				_ = cmd.Process.Kill()
				<-exited
			}
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(logf)
			t.Logf("starttls proxy %s log:\n%s", name, clip(string(b)))
		}
	})
	// Wait for the listening socket in /proc/net/tcp rather than dialing
	// it: a probe connection would make a client-side proxy dial its
	// upstream and leave a session behind.
	_, port := hostPort(t, addr)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(logf)
			t.Fatalf("starttls proxy %s exited at start:\n%s", name, clip(string(b)))
		default:
		}
		if listening(t, port) {
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("starttls proxy %s: nothing listening on %s after 15s", name, addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// listening reports whether a TCP socket listens on 127.0.0.1:port (from
// /proc/net/tcp: local address "0100007F:PORT" in hex, state 0A).
func listening(t *testing.T, port string) bool {
	t.Helper()
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("port %q: %v", port, err)
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatalf("/proc/net/tcp: %v", err)
	}
	want := fmt.Sprintf("0100007F:%04X", n)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true
		}
	}
	return false
}

// logTail remembers a log file's size, to read what was written after.
type logTail struct {
	file string
	off  int64
}

func tailFrom(t *testing.T, file string) logTail {
	t.Helper()
	st, err := os.Stat(file)
	if err != nil {
		t.Fatalf("log %s: %v", file, err)
	}
	return logTail{file, st.Size()}
}

// since returns what was written after tailFrom, waiting up to d for a line
// matching re (nil: no wait).
func (l logTail) since(t *testing.T, re *regexp.Regexp, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, err := os.ReadFile(l.file)
		if err != nil {
			t.Fatalf("log %s: %v", l.file, err)
		}
		s := ""
		if int64(len(b)) > l.off {
			s = string(b[l.off:])
		}
		if re == nil || re.MatchString(s) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dovecotLogin matches Dovecot's log line for user's IMAP login, e.g.
// "imap-login: Info: Login: user=<alice>, method=PLAIN, rip=127.0.0.1,
// lip=127.0.0.1, mpid=1784, TLS, session=<…>".
func dovecotLogin(user string) *regexp.Regexp {
	return regexp.MustCompile(`imap-login: (?:Info: )?Login: user=<` + regexp.QuoteMeta(user) + `>[^\n]*`)
}

// plainOut is what scripts/interop/proxy/plainclient.py prints.
type plainOut struct {
	Caps       []string `json:"caps"`
	Sent       bool     `json:"sent"`
	LoggedIn   bool     `json:"logged_in"`
	Count      int      `json:"count"`
	FoundToken bool     `json:"found_token"`
	FirstLine  string   `json:"first_line"`
	Rest       string   `json:"rest"`
	Closed     bool     `json:"closed"`
	Error      string   `json:"error"`
	ErrorType  string   `json:"error_type"`
	Code       int      `json:"code"`
}

func plainClient(t *testing.T, e *env, wantExit int, mode, addr string, args ...string) *plainOut {
	t.Helper()
	py := needTool(t, e.Python)
	host, port := hostPort(t, addr)
	argv := append([]string{filepath.Join(e.ScriptsDir, "proxy", "plainclient.py"), mode, host, port}, args...)
	r := run(t, clientTimeout, "", py, argv...)
	var o plainOut
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &o); err != nil {
		r.dump(t)
		t.Fatalf("plainclient.py: output is not JSON: %v", err)
	}
	if r.Code != wantExit {
		r.dump(t)
		t.Fatalf("plainclient.py %s: exit %d, want %d (%s: %s)", mode, r.Code, wantExit, o.ErrorType, o.Error)
	}
	t.Logf("plainclient: %s", strings.TrimSpace(r.Stdout))
	return &o
}

func TestProxyServerSide(t *testing.T) {
	p := getProxyEnv(t)
	smtpSTARTTLS, smtpImplicit, imapSTARTTLS := p.listen(2), p.listen(3), p.listen(4)
	p.startProxy(t, "server-smtp-starttls", smtpSTARTTLS, "--protocol", "smtp", "--backend", p.postfix,
		"--cert", p.cert, "--key", p.key, "--hostname", "mx.interop.test")
	p.startProxy(t, "server-smtp-implicit", smtpImplicit, "--protocol", "smtp", "--implicit", "--backend", p.postfix,
		"--cert", p.cert, "--key", p.key, "--hostname", "mx.interop.test")
	p.startProxy(t, "server-imap-starttls", imapSTARTTLS, "--protocol", "imap", "--backend", p.dovecot,
		"--cert", p.cert, "--key", p.key)
	rcpt := p.Rcpt

	// delivered checks that the message with tok reached the plaintext
	// Postfix's mailbox, received over plaintext from the proxy.
	delivered := func(t *testing.T, tok string) {
		t.Helper()
		got := waitDelivered(t, p.maildir, tok, 30*time.Second)
		if !strings.Contains(got, "by legacy.interop.test (Postfix) with ESMTP id") {
			t.Errorf("not received by the plaintext Postfix over plain ESMTP:\n%s", got)
		}
	}
	var sentTok string // a message that went through, for the IMAP case to find

	swaks := func(t *testing.T, addr string, args ...string) result {
		bin := needTool(t, "swaks")
		host, port := hostPort(t, addr)
		base := []string{"--server", host, "--port", port, "--from", rcpt, "--to", rcpt,
			"--ehlo", "client.interop.test", "--timeout", "30", "--tls-verify", "--tls-ca-path", p.CA}
		return run(t, clientTimeout, "", bin, append(base, args...)...)
	}
	t.Run("swaks(--tls,--tls-verify)→proxy(smtp,STARTTLS)→Postfix(TLS_off)", func(t *testing.T) {
		tok := token("proxy-swaks-starttls")
		r := swaks(t, smtpSTARTTLS, "--tls", "--header", "Subject: interop "+tok)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("swaks: exit %d", r.Code)
		}
		// "->"/"<-" are plaintext in swaks' transcript, "~>"/"<~" inside TLS.
		requireContains(t, "swaks transcript", r.Stdout, "=== TLS started with cipher TLSv1.3", " ~> MAIL FROM", "<~  250 ")
		requireLacks(t, "swaks transcript", r.Stdout, " -> MAIL FROM", " -> DATA")
		// Postfix has TLS off: the STARTTLS offered was the proxy's.
		pre := r.Stdout[:max(0, strings.Index(r.Stdout, "=== TLS started"))]
		if !regexp.MustCompile(`(?m)^<-  250[- ]STARTTLS\r?$`).MatchString(pre) {
			t.Errorf("EHLO before TLS does not offer STARTTLS:\n%s", pre)
		}
		delivered(t, tok)
		sentTok = tok
	})
	t.Run("swaks(--tls-on-connect,--tls-verify)→proxy(smtp,implicit)→Postfix(TLS_off)", func(t *testing.T) {
		tok := token("proxy-swaks-implicit")
		r := swaks(t, smtpImplicit, "--tls-on-connect", "--header", "Subject: interop "+tok)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("swaks: exit %d", r.Code)
		}
		requireContains(t, "swaks transcript", r.Stdout, "=== TLS started with cipher TLSv1.3", "<~  220 ", " ~> MAIL FROM")
		requireLacks(t, "swaks transcript", r.Stdout, " -> ", "<-  ")
		delivered(t, tok)
	})
	t.Run("curl(--ssl-reqd)→proxy(smtp,STARTTLS)→Postfix(TLS_off)", func(t *testing.T) {
		bin := needTool(t, "curl")
		tok := token("proxy-curl")
		msg := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: interop %s\r\nMessage-ID: <%s@interop.test>\r\n\r\nSent by curl through starttls proxy.\r\n",
			rcpt, rcpt, tok, tok)
		r := run(t, clientTimeout, msg, bin, "-sS", "-v", "--ssl-reqd", "--cacert", p.CA, "--max-time", "30",
			"--mail-from", rcpt, "--mail-rcpt", rcpt, "--upload-file", "-", "smtp://"+smtpSTARTTLS+"/client.interop.test")
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		tlsAt, mailAt := strings.Index(r.Stderr, "SSL connection using TLSv1.3"), strings.Index(r.Stderr, "> MAIL FROM")
		if tlsAt < 0 || mailAt < tlsAt {
			r.dump(t)
			t.Errorf("want \"SSL connection using TLSv1.3\" before \"> MAIL FROM\" in curl -v (at %d, %d)", tlsAt, mailAt)
		}
		delivered(t, tok)
		if sentTok == "" {
			sentTok = tok
		}
	})
	t.Run("python-imaplib(starttls,login)→proxy(imap,STARTTLS)→Dovecot(TLS_off)", func(t *testing.T) {
		py := needTool(t, p.Python)
		host, port := hostPort(t, imapSTARTTLS)
		dlog := tailFrom(t, p.dovecotLog)
		args := []string{filepath.Join(p.ScriptsDir, "pyclient.py"), "imap", host, port, "--ca", p.CA,
			"--user", p.User, "--password", p.Password}
		if sentTok != "" {
			args = append(args, "--find-token", sentTok)
		}
		r := run(t, clientTimeout, "", py, args...)
		var o struct {
			CapsBefore []string `json:"caps_before"`
			CapsAfter  []string `json:"caps_after"`
			Offered    bool     `json:"offered"`
			TLSVersion string   `json:"tls_version"`
			LoggedIn   bool     `json:"logged_in"`
			Count      int      `json:"count"`
			FoundToken bool     `json:"found_token"`
			Error      string   `json:"error"`
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &o); err != nil || r.Code != 0 {
			r.dump(t)
			t.Fatalf("pyclient.py imap: exit %d, %v (%s)", r.Code, err, o.Error)
		}
		t.Logf("python: %s", strings.TrimSpace(r.Stdout))
		// Dovecot has TLS off and would take LOGIN in plaintext: the
		// upgrade and the refusal before it are the proxy's.
		if !o.Offered || !hasFold(o.CapsBefore, "LOGINDISABLED") {
			t.Errorf("CAPABILITY before TLS = %v, want STARTTLS and LOGINDISABLED", o.CapsBefore)
		}
		if hasFold(o.CapsAfter, "STARTTLS") || hasFold(o.CapsAfter, "LOGINDISABLED") {
			t.Errorf("CAPABILITY over TLS = %v, want neither STARTTLS nor LOGINDISABLED", o.CapsAfter)
		}
		if o.TLSVersion != "TLSv1.3" || !o.LoggedIn || o.Count < 1 {
			t.Errorf("tls %q, logged in %v, %d messages; want TLSv1.3, a login and the mailbox", o.TLSVersion, o.LoggedIn, o.Count)
		}
		if sentTok != "" && !o.FoundToken {
			t.Errorf("the message %s sent through the SMTP proxy is not in the mailbox read through the IMAP proxy", sentTok)
		}
		login := dovecotLogin(p.User)
		line := login.FindString(dlog.since(t, login, 10*time.Second))
		if line == "" {
			t.Errorf("no login of %s in the plaintext Dovecot's log", p.User)
		} else if strings.Contains(line, "TLS") || !strings.Contains(line, "secured") {
			// "secured": plaintext from its own address; "TLS" would mean
			// the backend leg was encrypted, which Dovecot has no way to do.
			t.Errorf("the plaintext Dovecot's login line %q: want a plaintext (\"secured\") login", line)
		}
	})
}

func TestProxyClientSide(t *testing.T) {
	p := getProxyEnv(t)
	p.needModule(t, "mail") // the TLS upstreams: Postfix 10025, Dovecot 10143
	// A CA the upstreams' certificates do not chain to.
	other, err := certs.NewCA("not the interop CA")
	if err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherCA, other.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("python-smtplib(no_TLS)→proxy(smtp,--mode_required)→Postfix(STARTTLS)", func(t *testing.T) {
		addr := p.listen(5)
		p.startProxy(t, "client-smtp", addr, "--protocol", "smtp", "--upstream", p.PostfixSMTP, "--mode", "required", "--ca", p.CA)
		tok := token("proxy-client-smtp")
		o := plainClient(t, p.env, 0, "smtp", addr, "--send-to", p.Rcpt, "--token", tok)
		if !o.Sent {
			t.Errorf("smtplib: not sent (%s)", o.Error)
		}
		got := waitDelivered(t, p.Maildir, tok, 30*time.Second)
		// Postfix (smtpd_tls_received_header) records the TLS it received over.
		if !regexp.MustCompile(`\(using TLSv1\.3 with cipher [A-Z0-9_]+`).MatchString(got) || !strings.Contains(got, "with ESMTPS id") {
			t.Errorf("Postfix's Received header does not show TLS 1.3 (ESMTPS):\n%s", got)
		}
	})
	t.Run("python-imaplib(no_TLS,login)→proxy(imap,--mode_required)→Dovecot(STARTTLS)", func(t *testing.T) {
		addr := p.listen(6)
		p.startProxy(t, "client-imap", addr, "--protocol", "imap", "--upstream", p.IMAP, "--mode", "required", "--ca", p.CA)
		dlog := tailFrom(t, needEnv(t, "INTEROP_DOVECOT_LOG"))
		o := plainClient(t, p.env, 0, "imap", addr, "--user", p.User, "--password", p.Password)
		if !o.LoggedIn || o.Count < 1 {
			t.Errorf("imaplib: logged in %v, %d messages", o.LoggedIn, o.Count)
		}
		// Dovecot names the transport of every login: "TLS" here.
		login := dovecotLogin(p.User)
		line := login.FindString(dlog.since(t, login, 10*time.Second))
		if !regexp.MustCompile(`, TLS[,:]`).MatchString(line) {
			t.Errorf("Dovecot's login line %q does not say TLS", line)
		}
	})

	// refused runs a raw plaintext client against a client-side proxy whose
	// upstream cannot be secured, and checks that it got the protocol's
	// error reply first, that the proxy closed the connection, and that
	// nothing of the upstream's plaintext dialog came through.
	refused := func(t *testing.T, name, protocol, upstream string, wantFirst *regexp.Regexp, extra ...string) {
		addr := p.listen(7)
		args := append([]string{"--protocol", protocol, "--upstream", upstream, "--mode", "required"}, extra...)
		p.startProxy(t, name, addr, args...)
		o := plainClient(t, p.env, 0, "first-line", addr)
		if !wantFirst.MatchString(o.FirstLine) {
			t.Errorf("first line %q, want %v", o.FirstLine, wantFirst)
		}
		if !o.Closed {
			t.Errorf("the proxy kept the connection open after the error (read %q)", o.Rest)
		}
		all := o.FirstLine + "\n" + o.Rest
		requireLacks(t, "what the client received", all, "220 ", "* OK", "ESMTP Postfix", "Dovecot")
	}
	t.Run("nc-style(no_TLS)→proxy(smtp,--mode_required)→Postfix(no_STARTTLS)", func(t *testing.T) {
		refused(t, "client-smtp-no-starttls", "smtp", p.postfix, regexp.MustCompile(`^4\d\d[ -]`), "--ca", p.CA)
	})
	t.Run("nc-style(no_TLS)→proxy(imap,--mode_required)→Dovecot(no_STARTTLS)", func(t *testing.T) {
		refused(t, "client-imap-no-starttls", "imap", p.dovecot, regexp.MustCompile(`^\* BYE `), "--ca", p.CA)
	})
	t.Run("nc-style(no_TLS)→proxy(smtp,--mode_required,untrusted_CA)→Postfix(STARTTLS)", func(t *testing.T) {
		refused(t, "client-smtp-bad-cert", "smtp", p.PostfixSMTP, regexp.MustCompile(`^4\d\d[ -]`), "--ca", otherCA)
	})
	t.Run("nc-style(no_TLS)→proxy(imap,--mode_required,untrusted_CA)→Dovecot(STARTTLS)", func(t *testing.T) {
		refused(t, "client-imap-bad-cert", "imap", p.IMAP, regexp.MustCompile(`^\* BYE `), "--ca", otherCA)
	})
	// A client that hangs up at once: the proxy has dialed Postfix and
	// upgraded by then; it must end that upstream session too (Postfix
	// logs the disconnect) and still stop within its drain on SIGTERM.
	t.Run("nc-style(connect,close)→proxy(smtp,--mode_required)→Postfix(STARTTLS)", func(t *testing.T) {
		addr := p.listen(9)
		stop := p.startProxy(t, "client-smtp-abrupt", addr, "--protocol", "smtp", "--upstream", p.PostfixSMTP, "--mode", "required", "--ca", p.CA)
		plog := tailFrom(t, needEnv(t, "INTEROP_POSTFIX_LOG"))
		for range 3 {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
		// Postfix's smtpd logs "connect from" and "disconnect from" per session.
		connects := regexp.MustCompile(`: connect from [^ \n]*\[127\.0\.0\.1\]`)
		disconnects := regexp.MustCompile(`: disconnect from [^ \n]*\[127\.0\.0\.1\]`)
		three := regexp.MustCompile(`(?s)(: disconnect from [^ \n]*\[127\.0\.0\.1\].*){3}`)
		got := plog.since(t, three, 15*time.Second)
		if n, d := len(connects.FindAllString(got, -1)), len(disconnects.FindAllString(got, -1)); n != 3 || d != 3 {
			t.Errorf("Postfix saw %d sessions from the proxy and %d ended within 15s, want 3 and 3:\n%s", n, d, got)
		}
		if took := stop(); took > proxyDrain+proxyExitSlack {
			t.Errorf("the proxy took %v to stop after SIGTERM", took)
		}
	})
	t.Run("python-smtplib(no_TLS)→proxy(smtp,--mode_required,untrusted_CA)→Postfix(STARTTLS)", func(t *testing.T) {
		addr := p.listen(8)
		p.startProxy(t, "client-smtp-bad-cert-smtplib", addr, "--protocol", "smtp", "--upstream", p.PostfixSMTP,
			"--mode", "required", "--ca", otherCA)
		tok := token("proxy-client-bad-cert")
		o := plainClient(t, p.env, 1, "smtp", addr, "--send-to", p.Rcpt, "--token", tok)
		if o.Sent || o.Code < 400 || o.Code > 499 {
			t.Errorf("smtplib through a proxy whose upstream fails verification: sent %v, code %d (%s: %s); want a 4xx and nothing sent",
				o.Sent, o.Code, o.ErrorType, o.Error)
		}
	})
}
