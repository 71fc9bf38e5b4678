//go:build interop

package interop

// Module "telnet": netkit telnetd-ssl and telnet-ssl (Debian's telnetd-ssl
// and telnet-ssl packages).
//
// telnetd-ssl does not implement the START_TLS option (46) of
// draft-altman-telnet-starttls: on a plain connection it asks for the
// AUTHENTICATION option (RFC 2941) and offers auth type SSL (7) in its
// subnegotiation, a netkit-only scheme. Our client, which refuses
// AUTHENTICATION, therefore reports "not offered" against it, which the
// first subtest records. With -z ssl it speaks implicit TLS, a real
// server for telnets. telnet-ssl -z ssl is a real client for the lab's
// telnets endpoint; against the lab's START_TLS port it declines option 46
// (WONT) and the lab server tells it TLS is required. openssl s_client has
// no Telnet STARTTLS.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/telnet"
)

func TestTelnetdSSL(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "telnet")
	plain, implicit := needEnv(t, "INTEROP_TELNETD"), needEnv(t, "INTEROP_TELNETDS")

	t.Run("telnet.Dial(required)→telnetd-ssl(no-option-46)", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		_, res, err := telnet.Dial(ctx, plain, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: tlsConfig(t, e.CA), Transcript: &starttls.Transcript{}})
		if !errors.Is(err, starttls.ErrUpgradeNotOffered) {
			t.Fatalf("err %v, want ErrUpgradeNotOffered (telnetd-ssl negotiates SSL through AUTHENTICATION, not START_TLS)", err)
		}
		if !slices.Contains(res.CapsBefore, "DO AUTHENTICATION") || slices.Contains(res.CapsBefore, "DO START_TLS") {
			t.Errorf("CapsBefore %q, want DO AUTHENTICATION and no DO START_TLS", res.CapsBefore)
		}
	})
	t.Run("check→telnetd-ssl(no-option-46)", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "telnet://"+plain)
		if !rep.has("starttls-not-offered") {
			t.Errorf("findings %v, want starttls-not-offered", rep.ids())
		}
	})
	t.Run("telnet.Dial(implicit)→telnetd-ssl-z-ssl", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		// telnetd-ssl waits about 4 s for option answers before it prints
		// the banner: wait longer than the default for the first words.
		c, res, err := telnet.Dial(ctx, implicit, &starttls.ClientOptions{Mode: starttls.ModeImplicit, TLSConfig: tlsConfig(t, e.CA), InjectionWait: 8 * time.Second})
		if err != nil {
			t.Fatalf("telnet.Dial: %v", err)
		}
		defer c.Close()
		if !res.Upgraded || res.TLS == nil || len(res.TLS.VerifiedChains) == 0 {
			t.Fatalf("Upgraded %v TLS %v", res.Upgraded, res.TLS != nil)
		}
		if !res.CapsReread || !slices.Equal(res.AuthAfter, []string{"LOGIN"}) || !strings.Contains(c.Text(), "login:") {
			t.Errorf("CapsReread %v AuthAfter %v text %q (want the login prompt)", res.CapsReread, res.AuthAfter, c.Text())
		}
		t.Logf("greeting %q, options %q", res.Greeting, res.CapsAfter)
	})
	t.Run("check→telnetd-ssl-z-ssl", func(t *testing.T) {
		rep := check(t, e, "--ca", e.CA, "telnets://"+implicit)
		if rep.Verdict != "pass" || rep.Certificate == nil || !rep.Certificate.Trusted || !rep.Certificate.NameMatch {
			t.Errorf("verdict %s findings %v certificate %+v", rep.Verdict, rep.ids(), rep.Certificate)
		}
	})
}

func TestTelnetSSLClient(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "telnet")
	bin := needTool(t, "telnet-ssl")
	l := startLab(t)
	host, port := l.addr(t, "telnets")

	// telnet-ssl reads the session from stdin; the pauses let each prompt
	// arrive before the next answer (it sends CR LF for each newline).
	session := func(lines ...string) string {
		var b strings.Builder
		for _, s := range lines {
			b.WriteString(s + "\n")
		}
		return b.String()
	}
	t.Run("telnet-ssl-z-ssl→lab-telnets", func(t *testing.T) {
		r := telnetRunSlow(t, 20*time.Second, session(l.User, l.Password, "whoami", "exit"), bin,
			"-z", "ssl", "-z", "secure", "-z", "verify=1", "-z", "cacert="+l.CA, host, port)
		if !strings.Contains(r.Stdout, "over TLS") || !strings.Contains(r.Stdout, "Welcome "+l.User) || !strings.Contains(r.Stdout, "$ "+l.User) {
			r.dump(t)
			t.Fatal("telnet-ssl did not log in over TLS")
		}
	})
	t.Run("telnet-ssl-z-ssl→lab-telnets(untrusted)", func(t *testing.T) {
		r := telnetRunSlow(t, 20*time.Second, session("exit"), bin,
			"-z", "ssl", "-z", "secure", "-z", "verify=1", "-z", "cacert="+e.CA, host, port)
		if !strings.Contains(r.Stdout+r.Stderr, "certificate verify failed") || strings.Contains(r.Stdout, "login:") {
			r.dump(t)
			t.Fatal("telnet-ssl accepted the lab certificate without the lab CA")
		}
	})
	t.Run("telnet-ssl→lab-telnet(START_TLS)", func(t *testing.T) {
		h, p := l.addr(t, "telnet")
		r := telnetRunSlow(t, 20*time.Second, session("exit"), bin, h, p)
		if !strings.Contains(r.Stdout, "This server requires TLS.") || strings.Contains(r.Stdout, "login:") {
			r.dump(t)
			t.Fatal("want the lab's refusal: telnet-ssl has no START_TLS option and the lab demands TLS")
		}
	})
	t.Run("check→lab-telnet", func(t *testing.T) {
		h, p := l.addr(t, "telnet")
		rep := check(t, e, "--ca", l.CA, "telnet://"+net.JoinHostPort(h, p))
		if rep.Verdict != "pass" {
			t.Errorf("verdict %s, findings %v", rep.Verdict, rep.ids())
		}
	})
}

// runSlow runs an interactive client, feeding stdin one line every 700 ms
// so that each prompt has arrived before its answer.
func telnetRunSlow(t *testing.T, timeout time.Duration, stdin, name string, args ...string) result {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		time.Sleep(1500 * time.Millisecond)
		for _, line := range strings.SplitAfter(stdin, "\n") {
			if line == "" {
				continue
			}
			if _, err := io.WriteString(pw, line); err != nil {
				return
			}
			time.Sleep(700 * time.Millisecond)
		}
		time.Sleep(time.Second)
	}()
	return telnetRun(t, timeout, pr, name, args...)
}

// telnetRun is run (helpers_test.go) with stdin from a reader.
func telnetRun(t *testing.T, timeout time.Duration, stdin io.Reader, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 2 * time.Second
	t.Logf("$ %s %s", name, shellQuote(args))
	err := cmd.Run()
	r := result{Stdout: out.String(), Stderr: errb.String()}
	if ctx.Err() != nil {
		t.Fatalf("%s: no answer within %v\nstdout:\n%s\nstderr:\n%s", name, timeout, r.Stdout, r.Stderr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", name, err)
	}
	return r
}
