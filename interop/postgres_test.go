//go:build interop

package interop

// Module "postgres": our library, `starttls check` and `starttls connect`
// against PostgreSQL 15 (scripts/interop/modules/postgres.sh: ssl = on,
// login from 127.0.0.1 only over TLS, from 127.0.0.3 also in plaintext),
// and the real psql against the starttls lab.

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/postgres"
)

func TestPostgres(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "postgres")
	addr := needEnv(t, "INTEROP_POSTGRES")
	lax := needEnv(t, "INTEROP_POSTGRES_PLAINTEXT_SOURCE")
	opts := func(mode starttls.Mode) *starttls.ClientOptions {
		return &starttls.ClientOptions{Mode: mode, TLSConfig: tlsConfig(t, e.CA), Transcript: &starttls.Transcript{}}
	}

	t.Run("starttls(go)→postgresql", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := postgres.Dial(ctx, addr, opts(starttls.ModeRequired))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		if !res.Offered || !res.Upgraded || res.UpgradeReply != "S" || res.TLS == nil || len(res.PlaintextAfterUpgrade) > 0 {
			t.Fatalf("Result %+v", res)
		}
		if err := c.Login(ctx, e.User, e.Password); err != nil {
			t.Fatalf("Login: %v", err)
		}
		if !slices.Equal(res.AuthAfter, []string{"SCRAM-SHA-256"}) {
			t.Errorf("AuthAfter = %v, want SCRAM-SHA-256", res.AuthAfter)
		}
		rows, err := c.SimpleQuery(ctx, "SHOW ssl")
		if err != nil || len(rows) != 1 || rows[0][0] != "on" {
			t.Fatalf("SHOW ssl = %v, %v", rows, err)
		}
		rows, err = c.SimpleQuery(ctx, "SELECT version()")
		if err != nil || len(rows) != 1 || !strings.HasPrefix(rows[0][0], "PostgreSQL 15") {
			t.Fatalf("SELECT version() = %v, %v", rows, err)
		}
		rows, err = c.SimpleQuery(ctx, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
		if err != nil || len(rows) != 1 || rows[0][0] != "t" {
			t.Fatalf("pg_stat_ssl = %v, %v", rows, err)
		}
		t.Logf("pg_stat_ssl: %v; server_version %s", rows[0], c.Parameter("server_version"))
		_, err = c.SimpleQuery(ctx, "SELEC 1")
		var pe *postgres.Error
		if !errors.As(err, &pe) || pe.Code != "42601" {
			t.Errorf("syntax error: %v", err)
		}
	})

	t.Run("starttls(go,wrong-password)→postgresql", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, _, err := postgres.Dial(ctx, addr, opts(starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Login(ctx, e.User, "wrong")
		var pe *postgres.Error
		if !errors.As(err, &pe) || pe.Code != "28P01" || pe.Severity != "FATAL" {
			t.Fatalf("wrong password: %v, want FATAL 28P01", err)
		}
	})

	t.Run("starttls(go,plain)→postgresql", func(t *testing.T) {
		// pg_hba.conf: hostnossl … reject.
		ctx := testCtx(t, 30*time.Second)
		c, _, err := postgres.Dial(ctx, addr, opts(starttls.ModePlain))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Login(ctx, e.User, e.Password)
		var pe *postgres.Error
		if !errors.As(err, &pe) || pe.Code != "28000" {
			t.Fatalf("plaintext login: %v, want FATAL 28000", err)
		}
		t.Logf("refusal: %v", err)
	})

	t.Run("starttls(go,injection-probe)→postgresql", func(t *testing.T) {
		// PostgreSQL 14.1 and later answer CVE-2021-23214 with FATAL 08P01
		// inside TLS.
		o := opts(starttls.ModeRequired)
		o.ProbeInjection = true
		_, res, err := postgres.Dial(testCtx(t, 30*time.Second), addr, o)
		p := res.Injection
		if p == nil || p.Vulnerable || !p.Closed || !strings.Contains(p.Reply, "08P01") {
			t.Fatalf("probe %+v (err %v), want closed with 08P01", p, err)
		}
		t.Logf("probe: %s", p.Reply)
	})

	t.Run("starttls(go,plaintext-probe)→postgresql", func(t *testing.T) {
		for _, tt := range []struct {
			src  string
			want []string
		}{{"127.0.0.1", []string{}}, {lax, []string{"SCRAM-SHA-256"}}} {
			ctx := testCtx(t, 30*time.Second)
			conn := dialFrom(ctx, t, tt.src, addr)
			ms, err := postgres.ProbePlaintextAuth(ctx, conn, nil)
			conn.Close()
			if err != nil || !slices.Equal(ms, tt.want) {
				t.Errorf("from %s: ProbePlaintextAuth = %v, %v; want %v", tt.src, ms, err, tt.want)
			}
		}
	})

	t.Run("starttls-check→postgresql", func(t *testing.T) {
		r := check(t, e, "--ca", e.CA, "postgres://"+addr)
		if r.Verdict != "pass" {
			t.Fatalf("verdict %s, findings %v", r.Verdict, r.ids())
		}
	})

	t.Run("starttls-check(from-"+lax+")→postgresql", func(t *testing.T) {
		r := check(t, e, "--ca", e.CA, "--source", lax, "postgres://"+addr)
		if r.Verdict != "fail" || !r.has("auth-before-tls") {
			t.Fatalf("verdict %s, findings %v; want fail with auth-before-tls", r.Verdict, r.ids())
		}
	})

	t.Run("starttls-connect→postgresql", func(t *testing.T) {
		// stdin is sent raw over TLS: a StartupMessage for alice; the
		// server answers with the SCRAM request.
		var start []byte
		params := "user\x00" + e.User + "\x00database\x00" + e.User + "\x00\x00"
		n := 8 + len(params)
		start = append(start, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 3, 0, 0)
		start = append(start, params...)
		r := run(t, 40*time.Second, string(start), e.needBinary(t), "connect", "--timeout", "20s", "--linger", "1s", "--ca", e.CA, "postgres://"+addr)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("starttls connect: exit %d", r.Code)
		}
		requireContains(t, "session", r.Stdout, "SCRAM-SHA-256")
		requireContains(t, "summary", r.Stderr, "verified")
	})
}

// TestPostgresPsql: the real psql (libpq) against the lab.
func TestPostgresPsql(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "postgres")
	psql := needTool(t, "psql")
	l := startLab(t)
	env := []string{"PGPASSWORD=" + l.Password, "PGCONNECT_TIMEOUT=10", "PSQLRC=/dev/null"}
	conninfo := func(endpoint, sslmode string) string {
		host, port := l.addr(t, endpoint)
		return "host=" + host + " port=" + port + " user=" + l.User + " dbname=" + l.User + " sslmode=" + sslmode + " sslrootcert=" + l.CA
	}
	t.Run("psql(verify-full)→starttls-lab", func(t *testing.T) {
		r := runEnv(t, 30*time.Second, env, "", psql, "-X", "-At", conninfo("postgres", "verify-full"), "-c", "SELECT 1", "-c", "SHOW ssl")
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("psql: exit %d", r.Code)
		}
		if strings.Fields(r.Stdout)[0] != "1" || !strings.Contains(r.Stdout, "on") {
			t.Fatalf("psql output %q, want 1 and on", r.Stdout)
		}
	})
	t.Run("psql(wrong-password)→starttls-lab", func(t *testing.T) {
		bad := []string{"PGPASSWORD=wrong", "PGCONNECT_TIMEOUT=10", "PSQLRC=/dev/null"}
		r := runEnv(t, 30*time.Second, bad, "", psql, "-X", "-At", conninfo("postgres", "verify-full"), "-c", "SELECT 1")
		if r.Code == 0 || !strings.Contains(r.Stderr, "password authentication failed") {
			r.dump(t)
			t.Fatalf("psql with a wrong password: exit %d", r.Code)
		}
	})
	for _, tt := range []struct{ endpoint, sslmode, want string }{
		{"postgres-wrong-name", "verify-full", "does not match host name"},
		{"postgres-self-signed", "verify-full", "certificate verify failed"},
		{"postgres-self-signed", "verify-ca", "certificate verify failed"},
		{"postgres-no-starttls", "require", "server does not support SSL"},
	} {
		t.Run("psql("+tt.sslmode+",refuses)→starttls-lab-"+strings.TrimPrefix(tt.endpoint, "postgres-"), func(t *testing.T) {
			r := runEnv(t, 30*time.Second, env, "", psql, "-X", "-At", conninfo(tt.endpoint, tt.sslmode), "-c", "SELECT 1")
			if r.Code == 0 || !strings.Contains(r.Stderr, tt.want) {
				r.dump(t)
				t.Fatalf("psql sslmode=%s against %s: exit %d, want a failure mentioning %q", tt.sslmode, tt.endpoint, r.Code, tt.want)
			}
		})
	}
}
