//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// env is what scripts/interop.sh exports: where the real servers listen,
// the CA that signed their certificate, the mailbox user and the binary.
type env struct {
	Work, CA            string
	User, Password      string
	Rcpt, Maildir       string
	Bin                 string
	PostfixSMTP         string // STARTTLS
	PostfixSMTPS        string // implicit TLS
	IMAP, IMAPS         string
	POP3, POP3S         string
	LMTP                string // Dovecot LMTP with STARTTLS
	Source              string // a loopback source address Dovecot does not treat as secure
	SourcePlainLogin    string // a source address Dovecot offers plaintext login to
	Python, ScriptsDir  string
	PostfixClientConfig string // a main.cf directory for posttls-finger
}

var (
	envOnce sync.Once
	theEnv  *env
)

// getEnv returns the environment or skips the test when the suite was not
// started by scripts/interop.sh.
func getEnv(t testing.TB) *env {
	t.Helper()
	envOnce.Do(func() {
		if os.Getenv("INTEROP_CA") == "" {
			return
		}
		theEnv = &env{
			Work: os.Getenv("INTEROP_WORK"), CA: os.Getenv("INTEROP_CA"),
			User: os.Getenv("INTEROP_USER"), Password: os.Getenv("INTEROP_PASSWORD"),
			Rcpt: os.Getenv("INTEROP_RCPT"), Maildir: os.Getenv("INTEROP_MAILDIR"),
			Bin:         os.Getenv("INTEROP_STARTTLS"),
			PostfixSMTP: os.Getenv("INTEROP_POSTFIX_SMTP"), PostfixSMTPS: os.Getenv("INTEROP_POSTFIX_SMTPS"),
			IMAP: os.Getenv("INTEROP_DOVECOT_IMAP"), IMAPS: os.Getenv("INTEROP_DOVECOT_IMAPS"),
			POP3: os.Getenv("INTEROP_DOVECOT_POP3"), POP3S: os.Getenv("INTEROP_DOVECOT_POP3S"),
			LMTP:   os.Getenv("INTEROP_DOVECOT_LMTP"),
			Source: os.Getenv("INTEROP_SOURCE"), SourcePlainLogin: os.Getenv("INTEROP_SOURCE_PLAINTEXT_LOGIN"),
			Python: os.Getenv("INTEROP_PYTHON"), ScriptsDir: os.Getenv("INTEROP_SCRIPTS"),
			PostfixClientConfig: os.Getenv("INTEROP_POSTFIX_CLIENT_CONFIG"),
		}
		if theEnv.Python == "" {
			theEnv.Python = "python3"
		}
	})
	if theEnv == nil {
		t.Skip("interop environment not set up; run `make interop` (scripts/interop.sh)")
	}
	return theEnv
}

// needModule skips the test when scripts/interop.sh did not start the
// servers of module (run with --only).
func (e *env) needModule(t testing.TB, module string) {
	t.Helper()
	if !slices.Contains(strings.Fields(os.Getenv("INTEROP_MODULES")), module) {
		t.Skipf("interop module %q not started (scripts/interop.sh --only)", module)
	}
}

// needEnv returns the value of an INTEROP_* variable a module exports, or
// fails the test: a started module always sets its variables.
func needEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set (the module's NAME_env in scripts/interop/modules)", name)
	}
	return v
}

// needBinary returns the starttls binary's path or fails: the script always
// builds it.
func (e *env) needBinary(t testing.TB) string {
	t.Helper()
	if e.Bin == "" {
		t.Fatal("INTEROP_STARTTLS is not set")
	}
	if _, err := os.Stat(e.Bin); err != nil {
		t.Fatalf("starttls binary: %v", err)
	}
	return e.Bin
}

// roots is a pool holding only the interop CA.
func roots(t testing.TB, caFile string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", caFile)
	}
	return p
}

// tlsConfig trusts only the CA in caFile.
func tlsConfig(t testing.TB, caFile string) *tls.Config {
	return &tls.Config{RootCAs: roots(t, caFile)}
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dialFrom connects to addr from the loopback source address src (empty:
// the kernel's choice).
func dialFrom(ctx context.Context, t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	return c
}

func hostPort(t testing.TB, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("bad address %q: %v", addr, err)
	}
	return h, p
}

func hasFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

// ---------------------------------------------------------------------------
// Running programs
// ---------------------------------------------------------------------------

// result of one external program.
type result struct {
	Stdout, Stderr string
	Code           int
}

// run runs a program with stdin and a deadline, logs it, and returns its
// output and exit code. A program that cannot start, or runs into the
// deadline, fails the test.
func run(t testing.TB, timeout time.Duration, stdin string, name string, args ...string) result {
	t.Helper()
	return runEnv(t, timeout, nil, stdin, name, args...)
}

// runEnv is run with extra environment variables ("NAME=value").
func runEnv(t testing.TB, timeout time.Duration, extraEnv []string, stdin string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if extraEnv != nil {
		cmd.Env = append(os.Environ(), extraEnv...)
	}
	cmd.Stdin = strings.NewReader(stdin)
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

// dump logs a program's output (on failure it is the evidence).
func (r result) dump(t testing.TB) {
	t.Helper()
	t.Logf("exit %d\n--- stdout\n%s\n--- stderr\n%s", r.Code, clip(r.Stdout), clip(r.Stderr))
}

func clip(s string) string {
	const max = 6000
	if len(s) > max {
		return s[:max] + fmt.Sprintf("\n… (%d more bytes)", len(s)-max)
	}
	return s
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$;&|<>*?()[]{}\\") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

// needTool returns the path of a client program or skips the subtest: a
// client that is genuinely absent is not a failure of ours (the script
// installs them all, so in CI nothing skips).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed", name)
	}
	return p
}

// ---------------------------------------------------------------------------
// `starttls check --json`
// ---------------------------------------------------------------------------

// report is the contract of `starttls check --json` (the fields the suite
// relies on; the README documents them).
type report struct {
	Target   string `json:"target"`
	Protocol string `json:"protocol"`
	Mode     string `json:"mode"`
	STARTTLS struct {
		Offered  bool `json:"offered"`
		Upgraded bool `json:"upgraded"`
	} `json:"starttls"`
	TLS *struct {
		Version string `json:"version"`
		Cipher  string `json:"cipher"`
	} `json:"tls"`
	Certificate *struct {
		Subject   string `json:"subject"`
		Issuer    string `json:"issuer"`
		NotAfter  string `json:"not_after"`
		Trusted   bool   `json:"trusted"`
		NameMatch bool   `json:"name_match"`
	} `json:"certificate"`
	Findings []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
	} `json:"findings"`
	Verdict string `json:"verdict"`
	Error   string `json:"error"`
}

func (r *report) has(id string) bool {
	for _, f := range r.Findings {
		if f.ID == id {
			return true
		}
	}
	return false
}

func (r *report) ids() []string {
	var ids []string
	for _, f := range r.Findings {
		ids = append(ids, f.ID+"("+f.Severity+")")
	}
	return ids
}

// exitFor is the documented exit code for a verdict.
var exitFor = map[string]int{"pass": 0, "warn": 1, "fail": 2}

// check runs `starttls check --json` with args and returns the parsed
// report; it fails the test when the output is not one JSON object or the
// exit code does not match the verdict.
func check(t testing.TB, e *env, args ...string) *report {
	t.Helper()
	bin := e.needBinary(t)
	args = append([]string{"check", "--json", "--timeout", "20s"}, args...)
	r := run(t, 90*time.Second, "", bin, args...)
	var rep report
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	if err := dec.Decode(&rep); err != nil {
		r.dump(t)
		t.Fatalf("check --json: output is not a JSON object: %v", err)
	}
	if dec.More() {
		r.dump(t)
		t.Fatalf("check --json: more than one JSON value for one target")
	}
	want, ok := exitFor[rep.Verdict]
	if !ok {
		r.dump(t)
		t.Fatalf("check: verdict %q (error %q); want pass, warn or fail", rep.Verdict, rep.Error)
	}
	if r.Code != want {
		r.dump(t)
		t.Fatalf("check: exit code %d for verdict %q, want %d", r.Code, rep.Verdict, want)
	}
	t.Logf("check %s: verdict %s, findings %v", rep.Target, rep.Verdict, rep.ids())
	return &rep
}

// ---------------------------------------------------------------------------
// The lab, run as `starttls lab --json` (one per test binary)
// ---------------------------------------------------------------------------

type labEndpoint struct {
	Name     string   `json:"name"`
	URL      string   `json:"url"`
	Protocol string   `json:"protocol"`
	Broken   bool     `json:"broken"`
	Expect   []string `json:"expect"`
}

type labInfo struct {
	CA        string        `json:"ca"`
	User      string        `json:"user"`
	Password  string        `json:"password"`
	Endpoints []labEndpoint `json:"endpoints"`
}

// addr returns host:port of the endpoint named name, or fails.
func (l *labInfo) addr(t testing.TB, name string) (host, port string) {
	t.Helper()
	for _, ep := range l.Endpoints {
		if ep.Name == name {
			u := ep.URL[strings.Index(ep.URL, "://")+3:]
			return hostPort(t, u)
		}
	}
	t.Fatalf("the lab has no endpoint %q", name)
	return "", ""
}

var lab struct {
	sync.Mutex
	started bool
	info    *labInfo
	err     error
	cmd     *exec.Cmd
	stderr  *os.File
	done    chan struct{}
}

// startLab starts `starttls lab --json --listen 127.0.0.1` once and returns
// what it printed. stopLab (from TestMain) stops it by pid.
func startLab(t testing.TB) *labInfo {
	t.Helper()
	e := getEnv(t)
	bin := e.needBinary(t)
	lab.Lock()
	defer lab.Unlock()
	if !lab.started {
		lab.started = true
		lab.info, lab.err = launchLab(e, bin)
	}
	if lab.err != nil {
		t.Fatalf("starttls lab: %v", lab.err)
	}
	return lab.info
}

func launchLab(e *env, bin string) (*labInfo, error) {
	dir := filepath.Join(e.Work, "lab")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	errf, err := os.Create(filepath.Join(dir, "lab.stderr"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "lab", "--json", "--listen", "127.0.0.1")
	cmd.Stderr = errf
	dieWithParent(cmd) // even if TestMain never gets to stop it
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lab.cmd, lab.stderr, lab.done = cmd, errf, make(chan struct{})
	go func() { cmd.Wait(); close(lab.done) }()

	line := make(chan string, 1)
	go func() {
		br := bufio.NewReader(out)
		s, _ := br.ReadString('\n')
		line <- s
		_, _ = br.WriteTo(io.Discard) // keep the pipe drained
	}()
	var s string
	select {
	case s = <-line:
	case <-time.After(30 * time.Second):
		return nil, errors.New("no JSON line within 30s")
	}
	var info labInfo
	if err := json.Unmarshal([]byte(s), &info); err != nil {
		b, _ := os.ReadFile(errf.Name())
		return nil, fmt.Errorf("first line %q is not the lab's JSON: %v; stderr: %s", s, err, b)
	}
	if info.CA == "" || len(info.Endpoints) == 0 {
		return nil, fmt.Errorf("lab JSON without ca or endpoints: %s", s)
	}
	return &info, nil
}

// stopLab stops the lab by its pid: SIGTERM, then SIGKILL after 10s.
func stopLab() {
	lab.Lock()
	defer lab.Unlock()
	if lab.cmd == nil || lab.cmd.Process == nil {
		return
	}
	_ = lab.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-lab.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "interop: lab (pid %d) ignored SIGTERM; killing it\n", lab.cmd.Process.Pid)
		_ = lab.cmd.Process.Kill()
		<-lab.done
	}
	if lab.stderr != nil {
		lab.stderr.Close()
	}
	lab.cmd = nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopLab()
	os.Exit(code)
}
