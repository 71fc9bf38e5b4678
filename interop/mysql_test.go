//go:build interop

package interop

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/mysql"
)

// TestMariaDB: our library, `starttls check` and `starttls connect` against
// MariaDB with require_secure_transport=ON (module mysql).
func TestMariaDB(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mysql")
	addr := needEnv(t, "INTEROP_MYSQL")

	t.Run("starttls(library)→mariadb", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		tr := &starttls.Transcript{}
		c, res, err := mysql.Dial(ctx, addr, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA), Transcript: tr})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		if !res.Offered || !res.Upgraded || res.TLS == nil || !slices.Contains(res.CapsBefore, "CLIENT_SSL") || len(res.AuthBefore) != 0 {
			t.Errorf("result %+v", res)
		}
		if !strings.Contains(res.Greeting, "MariaDB") {
			t.Errorf("greeting %q", res.Greeting)
		}
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login over TLS: %v", err)
		}
		rs, err := c.Query(ctx, "SHOW STATUS LIKE 'Ssl_cipher'")
		if err != nil || len(rs.Rows) != 1 || rs.Rows[0][1] == "" {
			t.Fatalf("SHOW STATUS LIKE 'Ssl_cipher' = %+v, %v", rs, err)
		}
		t.Logf("Ssl_cipher %s; AuthAfter %v", rs.Rows[0][1], res.AuthAfter)
		rs, err = c.Query(ctx, "SELECT 1, NULL")
		if err != nil || rs.Rows[0][0] != "1" || !rs.Null[0][1] {
			t.Fatalf("SELECT 1, NULL = %+v, %v", rs, err)
		}
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		for _, ev := range tr.Events() {
			if strings.Contains(ev.Text, e.Password) {
				t.Errorf("transcript shows the password: %q", ev.Text)
			}
		}
	})
	t.Run("starttls(library,wrong password)→mariadb", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		c, _, err := mysql.Dial(ctx, addr, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA)})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		var me *mysql.Error
		if err := c.Login(ctx, e.User, "wrong"); !errors.As(err, &me) || me.Code != mysql.ErAccessDenied {
			t.Fatalf("Login with a wrong password = %v, want ERR 1045", err)
		}
	})
	t.Run("starttls(library,plain mode)→mariadb", func(t *testing.T) {
		// require_secure_transport: even the right password is refused
		// without TLS (MariaDB says 1045, not MySQL's 3159).
		ctx := testCtx(t, 20*time.Second)
		c, res, err := mysql.Dial(ctx, addr, &starttls.ClientOptions{Mode: starttls.ModePlain})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		if res.Upgraded {
			t.Fatal("plain mode upgraded")
		}
		var me *mysql.Error
		if err := c.Login(ctx, e.User, e.Password); !errors.As(err, &me) {
			t.Fatalf("plaintext Login = %v, want an ERR", err)
		} else {
			t.Logf("plaintext login refused: %v", me)
		}
	})
	t.Run("starttls(plaintext-login probe)→mariadb", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mechs, err := mysql.ProbePlaintextLogin(ctx, conn, nil)
		// MariaDB answers 1045 with or without require_secure_transport.
		if err == nil || len(mechs) != 0 || !strings.Contains(err.Error(), "1045") {
			t.Fatalf("ProbePlaintextLogin = %v, %v; want the 1045 \"cannot tell\" error", mechs, err)
		}
	})
	t.Run("starttls-check→mariadb", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "mysql://"+addr)
		mysqlCheckPasses(t, rep)
		if !rep.STARTTLS.Offered || !rep.STARTTLS.Upgraded || rep.TLS == nil || rep.Certificate == nil || !rep.Certificate.Trusted {
			t.Errorf("report %+v", rep)
		}
		if rep.has("auth-before-tls") {
			t.Errorf("auth-before-tls reported for a server with require_secure_transport")
		}
	})
	t.Run("starttls-connect→mariadb", func(t *testing.T) {
		r := run(t, 40*time.Second, "", e.needBinary(t), "connect", "--timeout", "20s", "--linger", "1s", "--ca", e.CA, "mysql://"+addr)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("starttls connect: exit %d", r.Code)
		}
		requireContains(t, "summary", r.Stderr, "verified")
	})
}

// mysqlCheckPasses accepts verdict pass, or warn when the only warning is
// caps-not-reread: MySQL sends its capabilities once, before TLS, by
// design (see the mysql package doc), which the checker does not know yet.
func mysqlCheckPasses(t *testing.T, rep *report) {
	t.Helper()
	if rep.Verdict == "pass" {
		return
	}
	for _, f := range rep.Findings {
		if f.Severity != "info" && f.ID != "caps-not-reread" {
			t.Errorf("check: verdict %s, findings %v", rep.Verdict, rep.ids())
			return
		}
	}
	t.Logf("check: verdict %s only for caps-not-reread (MySQL has no capability re-read after TLS)", rep.Verdict)
}

// TestMariaDBClient: the real mariadb client against the starttls lab.
func TestMariaDBClient(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "mysql")
	bin := needTool(t, "mariadb")
	l := startLab(t)
	client := func(t *testing.T, endpoint string, args ...string) result {
		host, port := l.addr(t, endpoint)
		base := []string{"--no-defaults", "--connect-timeout=10", "-h", host, "-P", port, "-u", l.User, "-p" + l.Password}
		return run(t, 30*time.Second, "", bin, append(base, args...)...)
	}
	verify := []string{"--ssl", "--ssl-ca=" + l.CA, "--ssl-verify-server-cert"}
	t.Run("mariadb(--ssl-verify-server-cert)→starttls-lab", func(t *testing.T) {
		r := client(t, "mysql", append(verify, "-e", "SELECT 1; SHOW STATUS LIKE 'Ssl_cipher'")...)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("mariadb: exit %d", r.Code)
		}
		requireContains(t, "output", r.Stdout, "1\n", "Ssl_cipher\tTLS_")
	})
	t.Run("mariadb(--ssl-verify-server-cert)→starttls-lab(wrong-name)", func(t *testing.T) {
		r := client(t, "mysql-wrong-name", append(verify, "-e", "SELECT 1")...)
		if r.Code == 0 {
			r.dump(t)
			t.Fatal("mariadb accepted a certificate for another name")
		}
		t.Logf("refused as it should: %s", strings.TrimSpace(r.Stderr))
	})
	t.Run("mariadb(--skip-ssl)→starttls-lab", func(t *testing.T) {
		r := client(t, "mysql", "--skip-ssl", "-e", "SELECT 1")
		if r.Code == 0 || !strings.Contains(r.Stderr, "3159") {
			r.dump(t)
			t.Fatal("the lab accepted a login without TLS")
		}
	})
	t.Run("mariadb(--ssl)→starttls-lab(no-starttls)", func(t *testing.T) {
		// BACKRONYM on the client side: --ssl-verify-server-cert must not
		// fall back to plaintext when CLIENT_SSL is missing.
		r := client(t, "mysql-no-starttls", append(verify, "-e", "SELECT 1")...)
		if r.Code == 0 {
			r.dump(t)
			t.Fatal("mariadb went on without TLS")
		}
	})
}
