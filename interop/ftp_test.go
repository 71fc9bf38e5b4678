//go:build interop

package interop

// Module "ftp": our FTP client library, `starttls check` and `starttls
// connect` against vsftpd (AUTH TLS on $INTEROP_FTP, implicit TLS on
// $INTEROP_FTPS, anonymous read-only, PROT P data connections with TLS
// session reuse required), and the real clients curl and Python ftplib
// against the lab's FTP endpoints.

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/ftp"
)

func TestVsftpd(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "ftp")
	plain, implicit := needEnv(t, "INTEROP_FTP"), needEnv(t, "INTEROP_FTPS")
	file, data := needEnv(t, "INTEROP_FTP_FILE"), needEnv(t, "INTEROP_FTP_FILE_DATA")

	session := func(t *testing.T, addr string, mode starttls.Mode) {
		ctx := testCtx(t, 30*time.Second)
		tr := &starttls.Transcript{}
		c, res, err := ftp.Dial(ctx, addr, &starttls.ClientOptions{Mode: mode, TLSConfig: tlsConfig(t, e.CA), Transcript: tr})
		if err != nil {
			t.Fatalf("ftp.Dial: %v", err)
		}
		defer c.Close()
		// vsftpd lists AUTH TLS in FEAT over TLS as well (a static list,
		// which RFC 4217 does not forbid): OfferedAfterTLS is true against
		// it and is not what this asserts.
		secured := *res
		secured.OfferedAfterTLS = false
		assertSecured(t, &secured, mode)
		if mode != starttls.ModeImplicit && !hasFold(res.CapsBefore, "AUTH TLS") {
			t.Errorf("CapsBefore = %q, want AUTH TLS", res.CapsBefore)
		}
		if !res.CapsReread || !c.DataProtected() {
			t.Errorf("CapsReread %v, OfferedAfterTLS %v, DataProtected %v; CapsAfter %q", res.CapsReread, res.OfferedAfterTLS, c.DataProtected(), res.CapsAfter)
		}
		if err := c.Login(ctx, "anonymous", "starttls@example.org"); err != nil {
			t.Fatalf("Login anonymous: %v", err)
		}
		names, err := c.NameList(ctx, "")
		if err != nil || !hasFold(names, file) {
			t.Fatalf("NameList = %q, %v", names, err)
		}
		lines, err := c.List(ctx, "")
		if err != nil || len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), file) {
			t.Fatalf("List = %q, %v", lines, err)
		}
		got, err := c.Retr(ctx, file)
		if err != nil || strings.TrimSpace(string(got)) != data {
			t.Fatalf("Retr = %q, %v", got, err)
		}
		resumed := 0
		for _, ev := range tr.Events() {
			if strings.Contains(ev.Text, "TLS session resumed") {
				resumed++
			}
		}
		if resumed != 3 {
			t.Errorf("%d of 3 data connections resumed the control connection's TLS session", resumed)
		}
		t.Logf("%s: %s, data connections resumed: %d", addr, tls12or13(res), resumed)
	}
	t.Run("ftp.Dial(required)→vsftpd-ftp", func(t *testing.T) { session(t, plain, starttls.ModeRequired) })
	t.Run("ftp.Dial(implicit)→vsftpd-ftps", func(t *testing.T) { session(t, implicit, starttls.ModeImplicit) })

	t.Run("ftp.ProbePlaintextLogin→vsftpd-ftp", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", plain, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mechs, err := ftp.ProbePlaintextLogin(testCtx(t, 20*time.Second), conn, nil)
		if err != nil || len(mechs) != 0 {
			t.Errorf("ProbePlaintextLogin = %q, %v; want none (vsftpd refuses USER before TLS)", mechs, err)
		}
	})

	t.Run("ftp.Dial(plain login refused)→vsftpd-ftp", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		c, _, err := ftp.Dial(ctx, plain, &starttls.ClientOptions{Mode: starttls.ModePlain})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login(ctx, "anonymous", "x@example.org"); err == nil {
			t.Error("vsftpd accepted anonymous login in plaintext")
		} else {
			t.Logf("plaintext login: %v", err)
		}
	})

	t.Run("ftp.Dial(injection probe)→vsftpd-ftp", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		c, res, err := ftp.Dial(ctx, plain, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA), ProbeInjection: true, InjectionWait: time.Second})
		if c != nil {
			c.Close()
		}
		if res.Injection == nil || res.Injection.Vulnerable {
			t.Fatalf("Injection = %+v (err %v)", res.Injection, err)
		}
		t.Logf("injection probe: %+v, err %v", res.Injection, err)
	})

	t.Run("starttls-check→vsftpd-ftp", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "ftp://"+plain)
		ftpCheckPasses(t, rep)
		if !rep.STARTTLS.Upgraded || rep.has("auth-before-tls") || rep.has("plaintext-auth-unknown") {
			t.Errorf("check: upgraded %v, findings %v", rep.STARTTLS.Upgraded, rep.ids())
		}
	})
	t.Run("starttls-check→vsftpd-ftps", func(t *testing.T) {
		ftpCheckPasses(t, check(t, e, "--ca", e.CA, "ftps://"+implicit))
	})
	t.Run("starttls-connect(pipe)→vsftpd-ftp", func(t *testing.T) {
		bin := e.needBinary(t)
		r := run(t, 30*time.Second, "USER anonymous\nPWD\nQUIT\n", bin, "connect", "--timeout", "20s", "--ca", e.CA, "ftp://"+plain)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("starttls connect: exit %d", r.Code)
		}
		requireContains(t, "session", r.Stdout, "230 ", "257 ", "221 ")
	})
}

// ftpCheckPasses accepts verdict pass, or warn when the only warning is
// starttls-offered-after-tls: vsftpd's FEAT lists "AUTH TLS" inside TLS
// too (a static list), which RFC 4217 does not forbid; the checker's
// warning cites RFC 3207 §4.2, an SMTP rule.
func ftpCheckPasses(t *testing.T, rep *report) {
	t.Helper()
	if rep.Verdict == "pass" {
		return
	}
	for _, f := range rep.Findings {
		if f.Severity != "info" && f.ID != "starttls-offered-after-tls" {
			t.Errorf("check: verdict %s, findings %v", rep.Verdict, rep.ids())
			return
		}
	}
	t.Logf("check: verdict %s only for starttls-offered-after-tls (vsftpd lists AUTH TLS in FEAT over TLS; not an RFC 4217 violation)", rep.Verdict)
}

func tls12or13(res *starttls.Result) string {
	if res.TLS == nil {
		return "no TLS"
	}
	if res.TLS.Version == 0x0304 {
		return "TLS 1.3"
	}
	return "TLS 1.2"
}

func TestFTPClients(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "ftp")
	l := startLab(t)
	host, port := l.addr(t, "ftp")
	shost, sport := l.addr(t, "ftps")
	curl := needTool(t, "curl")
	userpass := l.User + ":" + l.Password

	t.Run("curl(--ssl-reqd list)→lab-ftp", func(t *testing.T) {
		r := run(t, 30*time.Second, "", curl, "-sS", "--ssl-reqd", "--cacert", l.CA, "--user", userpass, "ftp://"+net.JoinHostPort(host, port)+"/")
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		requireContains(t, "listing", r.Stdout, "README.txt", "inbox")
	})
	t.Run("curl(--ssl-reqd download)→lab-ftp", func(t *testing.T) {
		r := run(t, 30*time.Second, "", curl, "-sS", "--ssl-reqd", "--cacert", l.CA, "--user", userpass, "ftp://"+net.JoinHostPort(host, port)+"/README.txt")
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		requireContains(t, "file", r.Stdout, "the lab secured (AUTH TLS, PROT P)")
	})
	t.Run("curl(ftps implicit download)→lab-ftps", func(t *testing.T) {
		r := run(t, 30*time.Second, "", curl, "-sS", "--cacert", l.CA, "--user", userpass, "ftps://"+net.JoinHostPort(shost, sport)+"/inbox/1.eml")
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("curl: exit %d", r.Code)
		}
		requireContains(t, "file", r.Stdout, "Subject: Welcome to the starttls lab")
	})
	t.Run("curl(--ssl-reqd, self-signed refused)→lab-ftp-self-signed", func(t *testing.T) {
		h, p := l.addr(t, "ftp-self-signed")
		r := run(t, 30*time.Second, "", curl, "-sS", "--ssl-reqd", "--cacert", l.CA, "--user", userpass, "ftp://"+net.JoinHostPort(h, p)+"/")
		if r.Code == 0 {
			t.Fatal("curl accepted a self-signed certificate")
		}
	})
	t.Run("curl(--ssl-reqd, not offered refused)→lab-ftp-no-starttls", func(t *testing.T) {
		h, p := l.addr(t, "ftp-no-starttls")
		r := run(t, 30*time.Second, "", curl, "-sS", "--ssl-reqd", "--cacert", l.CA, "--user", userpass, "ftp://"+net.JoinHostPort(h, p)+"/")
		if r.Code == 0 {
			t.Fatal("curl --ssl-reqd went on without TLS")
		}
	})

	script := filepath.Join(ftpScriptsDir(t, e), "ftp", "ftpclient.py")
	py := func(t *testing.T, h, p string, extra ...string) map[string]any {
		args := append([]string{script, h, p, "--ca", l.CA, "--user", l.User, "--password", l.Password, "--file", "README.txt"}, extra...)
		r := run(t, 40*time.Second, "", e.Python, args...)
		var out map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || r.Code != 0 {
			r.dump(t)
			t.Fatalf("ftpclient.py: exit %d, %v", r.Code, err)
		}
		return out
	}
	t.Run("python-ftplib(FTP_TLS prot_p)→lab-ftp", func(t *testing.T) {
		out := py(t, host, port)
		if !strings.HasPrefix(out["prot_p"].(string), "200") || !strings.Contains(out["data"].(string), "the lab secured") {
			t.Errorf("ftplib: %v", out)
		}
		t.Logf("ftplib: %v %v nlst=%v", out["tls_version"], out["prot_p"], out["nlst"])
	})
	t.Run("python-ftplib(implicit)→lab-ftps", func(t *testing.T) {
		out := py(t, shost, sport, "--implicit")
		if !strings.Contains(out["data"].(string), "the lab secured") {
			t.Errorf("ftplib: %v", out)
		}
	})
}

// ftpScriptsDir returns the directory of scripts/interop.
func ftpScriptsDir(t *testing.T, e *env) string {
	if e.ScriptsDir != "" {
		return e.ScriptsDir
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "scripts", "interop")
}
