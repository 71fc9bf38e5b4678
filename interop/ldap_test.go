//go:build interop

package interop

// Module "ldap": our library, `starttls check` and `starttls connect`
// against OpenLDAP slapd (scripts/interop/modules/ldap.sh: StartTLS on
// 10389, ldaps on 10636, `security simple_bind=128`), and the real
// ldapsearch / ldapwhoami (libldap) against the starttls lab.

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/ldap"
)

// ldapLabBase is the lab directory's naming context.
const ldapLabBase = "dc=lab,dc=starttls,dc=test"

func TestOpenLDAP(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "ldap")
	addr := needEnv(t, "INTEROP_LDAP")
	addrs := needEnv(t, "INTEROP_LDAPS")
	base := needEnv(t, "INTEROP_LDAP_BASE")
	userDN := "uid=" + e.User + "," + base
	opts := func(mode starttls.Mode) *starttls.ClientOptions {
		return &starttls.ClientOptions{Mode: mode, TLSConfig: tlsConfig(t, e.CA), Transcript: &starttls.Transcript{}}
	}

	t.Run("starttls(go)→slapd", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := ldap.Dial(ctx, addr, opts(starttls.ModeRequired))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		if !res.Offered || !res.Upgraded || res.TLS == nil || !res.CapsReread || len(res.PlaintextAfterUpgrade) > 0 {
			t.Fatalf("Result %+v", res)
		}
		if !slices.Contains(res.CapsBefore, "supportedExtension="+ldap.StartTLSOID) || !slices.Contains(res.CapsAfter, "supportedLDAPVersion=3") {
			t.Errorf("CapsBefore %q, CapsAfter %q", res.CapsBefore, res.CapsAfter)
		}
		// slapd keeps listing StartTLS over TLS; that is allowed for LDAP
		// (see the ldap package doc), so OfferedAfterTLS stays false.
		if res.OfferedAfterTLS || len(res.AuthBefore) != 0 {
			t.Errorf("OfferedAfterTLS %v, AuthBefore %q", res.OfferedAfterTLS, res.AuthBefore)
		}
		t.Logf("caps after TLS: %q; StartTLS reply %q", res.CapsAfter, res.UpgradeReply)
		if err := c.Login(ctx, userDN, e.Password); err != nil {
			t.Fatalf("Login: %v", err)
		}
		who, err := c.WhoAmI(ctx)
		if err != nil || who != "dn:"+userDN {
			t.Fatalf("WhoAmI = %q, %v", who, err)
		}
		entries, err := c.Search(ctx, base, ldap.ScopeSub)
		if err != nil || len(entries) != 2 || entries[1].DN != userDN || entries[1].Values("mail") == nil {
			t.Fatalf("Search = %+v, %v", entries, err)
		}
	})

	t.Run("starttls(go,wrong-password)→slapd", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, _, err := ldap.Dial(ctx, addr, opts(starttls.ModeRequired))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var re *ldap.ResultError
		if err := c.Login(ctx, userDN, "wrong"); !errors.As(err, &re) || re.Code != ldap.ResultInvalidCredentials {
			t.Fatalf("wrong password: %v, want invalidCredentials", err)
		}
	})

	t.Run("starttls(go,plain)→slapd", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := ldap.Dial(ctx, addr, opts(starttls.ModePlain))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var re *ldap.ResultError
		if err := c.Login(ctx, userDN, e.Password); !errors.As(err, &re) || re.Code != ldap.ResultConfidentialityRequired {
			t.Fatalf("plaintext bind: %v, want confidentialityRequired", err)
		}
		if !res.Offered || res.Upgraded {
			t.Errorf("Offered %v, Upgraded %v", res.Offered, res.Upgraded)
		}
	})

	t.Run("starttls(go,implicit)→slapd", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		c, res, err := ldap.Dial(ctx, addrs, opts(starttls.ModeImplicit))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		if !res.Upgraded || res.TLS == nil || !res.CapsReread || len(res.CapsBefore) != 0 {
			t.Fatalf("Result %+v", res)
		}
		if err := c.Login(ctx, userDN, e.Password); err != nil {
			t.Fatalf("Login: %v", err)
		}
	})

	t.Run("starttls(go,injection-probe)→slapd", func(t *testing.T) {
		o := opts(starttls.ModeRequired)
		o.ProbeInjection = true
		c, res, err := ldap.Dial(testCtx(t, 30*time.Second), addr, o)
		if c != nil {
			c.Close()
		}
		// slapd either refuses StartTLS with operationsError ("cannot
		// start TLS when operations are outstanding") or, when it finished
		// the search first, answers it in plaintext and then starts TLS:
		// both are safe.
		p := res.Injection
		if p == nil || p.Vulnerable || !strings.Contains(p.Reply, "operationsError") && !strings.Contains(p.Reply, "in plaintext") {
			t.Fatalf("probe %+v (err %v), want not vulnerable", p, err)
		}
		t.Logf("probe: %+v (err %v)", p, err)
	})

	t.Run("starttls(go,plaintext-probe)→slapd", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		conn := dialFrom(ctx, t, "127.0.0.1", addr)
		ms, err := ldap.ProbePlaintextLogin(ctx, conn, nil)
		conn.Close()
		if err != nil || ms == nil || len(ms) != 0 {
			t.Fatalf("ProbePlaintextLogin = %q, %v; want no plaintext login", ms, err)
		}
	})

	t.Run("starttls-check→slapd", func(t *testing.T) {
		r := check(t, e, "--ca", e.CA, "ldap://"+addr)
		// slapd is built with GnuTLS in Debian, whose priority NORMAL
		// still accepts TLS 1.0 and 1.1: the one real finding.
		if !ldapOnlyFinding(r, "tls-version-obsolete") || !r.STARTTLS.Offered || !r.STARTTLS.Upgraded || r.has("auth-before-tls") || r.has("plaintext-auth-unknown") {
			t.Fatalf("verdict %s, findings %v; want tls-version-obsolete alone", r.Verdict, r.ids())
		}
		// The plaintext-login probe ran and saw no plaintext login.
		before := ldapCheckAuthBefore(t, e, "ldap://"+addr)
		if before == nil || len(*before) != 0 {
			t.Fatalf("auth.before_tls = %v, want []", before)
		}
	})

	t.Run("starttls-check(ldaps)→slapd", func(t *testing.T) {
		r := check(t, e, "--ca", e.CA, "ldaps://"+addrs)
		if !ldapOnlyFinding(r, "tls-version-obsolete") || r.TLS == nil {
			t.Fatalf("verdict %s, findings %v; want tls-version-obsolete alone", r.Verdict, r.ids())
		}
	})

	t.Run("starttls-connect→slapd", func(t *testing.T) {
		// stdin is sent raw over TLS: a root DSE search for namingContexts.
		req := ldapBER(0x30, ldapBER(0x02, []byte{1}), ldapBER(0x63,
			ldapBER(0x04, nil), ldapBER(0x0a, []byte{0}), ldapBER(0x0a, []byte{0}),
			ldapBER(0x02, []byte{0}), ldapBER(0x02, []byte{0}), ldapBER(0x01, []byte{0}),
			ldapBER(0x87, []byte("objectClass")), ldapBER(0x30, ldapBER(0x04, []byte("namingContexts")))))
		// No unbind after it: slapd runs operations in threads, and an
		// unbind that arrives with the search may close the connection
		// before the search is answered. --linger waits for the answer.
		r := run(t, 40*time.Second, string(req), e.needBinary(t), "connect", "--timeout", "20s", "--linger", "1s", "--ca", e.CA, "ldap://"+addr)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("starttls connect: exit %d", r.Code)
		}
		requireContains(t, "session", r.Stdout, base)
		requireContains(t, "summary", r.Stderr, "verified")
	})
}

// ldapBER encodes one BER element with a short-form length (< 128).
func ldapBER(tag byte, parts ...[]byte) []byte {
	var c []byte
	for _, p := range parts {
		c = append(c, p...)
	}
	return append([]byte{tag, byte(len(c))}, c...)
}

// ldapCheckAuthBefore runs `starttls check --json` and returns
// auth.before_tls (nil when absent).
func ldapCheckAuthBefore(t *testing.T, e *env, url string) *[]string {
	t.Helper()
	r := run(t, 90*time.Second, "", e.needBinary(t), "check", "--json", "--timeout", "20s", "--ca", e.CA, url)
	var rep struct {
		Auth struct {
			BeforeTLS *[]string `json:"before_tls"`
		} `json:"auth"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		r.dump(t)
		t.Fatalf("check --json: %v", err)
	}
	return rep.Auth.BeforeTLS
}

// TestLDAPClients: the real ldapsearch and ldapwhoami (OpenLDAP's libldap)
// against the lab, with StartTLS required (-ZZ) and the lab CA.
func TestLDAPClients(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "ldap")
	ldapsearch := needTool(t, "ldapsearch")
	ldapwhoami := needTool(t, "ldapwhoami")
	l := startLab(t)
	env := []string{"LDAPTLS_CACERT=" + l.CA, "LDAPTLS_REQCERT=demand", "LDAPRC=/dev/null"}
	uri := func(endpoint, scheme string) string {
		host, port := l.addr(t, endpoint)
		return scheme + "://" + host + ":" + port
	}
	userDN := "uid=" + l.User + "," + ldapLabBase

	t.Run("ldapsearch(-ZZ)→starttls-lab", func(t *testing.T) {
		r := runEnv(t, 30*time.Second, env, "", ldapsearch, "-ZZ", "-x", "-LLL", "-H", uri("ldap", "ldap"), "-b", ldapLabBase, "-s", "base")
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("ldapsearch: exit %d", r.Code)
		}
		requireContains(t, "entry", r.Stdout, "dn: "+ldapLabBase, "objectClass: dcObject")
	})
	t.Run("ldapsearch(-ZZ,root-DSE)→starttls-lab", func(t *testing.T) {
		r := runEnv(t, 30*time.Second, env, "", ldapsearch, "-ZZ", "-x", "-LLL", "-H", uri("ldap", "ldap"), "-b", "", "-s", "base", "+")
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("ldapsearch: exit %d", r.Code)
		}
		requireContains(t, "root DSE over TLS", r.Stdout, "supportedSASLMechanisms: PLAIN", "supportedExtension: "+ldap.WhoAmIOID)
		if strings.Contains(r.Stdout, ldap.StartTLSOID) {
			t.Errorf("the lab lists StartTLS over TLS:\n%s", r.Stdout)
		}
	})
	t.Run("ldapwhoami(-ZZ,simple-bind)→starttls-lab", func(t *testing.T) {
		r := runEnv(t, 30*time.Second, env, "", ldapwhoami, "-ZZ", "-x", "-H", uri("ldap", "ldap"), "-D", userDN, "-w", l.Password)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("ldapwhoami: exit %d", r.Code)
		}
		requireContains(t, "identity", r.Stdout, "dn:"+userDN)
	})
	t.Run("ldapsearch(-ZZ,simple-bind)→starttls-lab", func(t *testing.T) {
		r := runEnv(t, 30*time.Second, env, "", ldapsearch, "-ZZ", "-x", "-LLL", "-H", uri("ldap", "ldap"), "-D", userDN, "-w", l.Password,
			"-b", ldapLabBase, "(uid="+l.User+")", "mail")
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("ldapsearch: exit %d", r.Code)
		}
		requireContains(t, "entry", r.Stdout, "dn: "+userDN, "mail: ")
	})
	t.Run("ldapwhoami(ldaps,simple-bind)→starttls-lab", func(t *testing.T) {
		r := runEnv(t, 30*time.Second, env, "", ldapwhoami, "-x", "-H", uri("ldaps", "ldaps"), "-D", userDN, "-w", l.Password)
		if r.Code != 0 {
			r.dump(t)
			t.Fatalf("ldapwhoami: exit %d", r.Code)
		}
		requireContains(t, "identity", r.Stdout, "dn:"+userDN)
	})
	t.Run("ldapwhoami(plaintext,refused)→starttls-lab", func(t *testing.T) {
		r := runEnv(t, 30*time.Second, env, "", ldapwhoami, "-x", "-H", uri("ldap", "ldap"), "-D", userDN, "-w", l.Password)
		if r.Code == 0 || !strings.Contains(r.Stderr, "Confidentiality required (13)") {
			r.dump(t)
			t.Fatalf("plaintext bind: exit %d, want confidentialityRequired", r.Code)
		}
	})
	t.Run("ldapwhoami(-ZZ,wrong-password)→starttls-lab", func(t *testing.T) {
		r := runEnv(t, 30*time.Second, env, "", ldapwhoami, "-ZZ", "-x", "-H", uri("ldap", "ldap"), "-D", userDN, "-w", "wrong")
		if r.Code == 0 || !strings.Contains(r.Stderr, "Invalid credentials (49)") {
			r.dump(t)
			t.Fatalf("wrong password: exit %d, want invalidCredentials", r.Code)
		}
	})
	// An UnbindRequest over TLS ends the session, and s_client with it.
	unbind := string(ldapBER(0x30, ldapBER(0x02, []byte{2}), ldapBER(0x42, nil)))
	t.Run("openssl(s_client -starttls ldap)→starttls-lab", func(t *testing.T) {
		post, r := sClient(t, l, "ldap", "ldap", unbind)
		requireVerifiedOK(t, post, r)
	})
	t.Run("openssl(s_client)→starttls-lab-ldaps", func(t *testing.T) {
		post, r := sClient(t, l, "ldaps", "", unbind)
		requireVerifiedOK(t, post, r)
	})
	t.Run("openssl(s_client -starttls ldap,refuses)→starttls-lab-self-signed", func(t *testing.T) {
		if _, r := sClient(t, l, "ldap-self-signed", "ldap", unbind); r.Code == 0 {
			r.dump(t)
			t.Fatal("openssl s_client accepted a self-signed certificate")
		}
	})
	for _, tt := range []struct{ endpoint, want string }{
		{"ldap-no-starttls", "Protocol error"},
		{"ldap-refused", "Server is unavailable"},
		// libldap (GnuTLS on Debian) reports a failed verification only
		// as "Connect error (-11)".
		{"ldap-self-signed", "ldap_start_tls: Connect error"},
		{"ldap-wrong-name", "ldap_start_tls: Connect error"},
		{"ldap-expired", "ldap_start_tls: Connect error"},
	} {
		t.Run("ldapsearch(-ZZ,refuses)→starttls-lab-"+strings.TrimPrefix(tt.endpoint, "ldap-"), func(t *testing.T) {
			r := runEnv(t, 30*time.Second, env, "", ldapsearch, "-ZZ", "-x", "-LLL", "-H", uri(tt.endpoint, "ldap"), "-b", ldapLabBase, "-s", "base")
			if r.Code == 0 || !strings.Contains(r.Stderr, tt.want) {
				r.dump(t)
				t.Fatalf("ldapsearch -ZZ against %s: exit %d, want a failure mentioning %q", tt.endpoint, r.Code, tt.want)
			}
		})
	}
}

// ldapOnlyFinding: the report's only finding above info is id.
func ldapOnlyFinding(r *report, id string) bool {
	for _, f := range r.Findings {
		if f.Severity != "info" && f.ID != id {
			return false
		}
	}
	return r.has(id)
}
