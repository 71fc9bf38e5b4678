//go:build interop

package interop

// Part T: the ground truth for `starttls strip` (issue 7). Real clients
// (curl, swaks, Python's smtplib/imaplib/poplib, openssl s_client, msmtp,
// fetchmail, mutt in batch mode and our own `starttls connect`) talk to the
// lab's correct SMTP, IMAP and POP3 endpoints through one
// `starttls strip --once --report FILE` per (client, attack), on a free
// loopback port. The verdict strip writes for that one connection must be
// the verdict the client's documentation promises (stripClients below: the
// expectation table, each row with its source). A client whose observed
// behaviour contradicts its documentation fails its subtest: that is a
// finding, the assertion is not bent. Where the documentation says nothing
// ("observe" in the table) the verdict is recorded, not asserted.
//
// Every client first runs against the lab directly ("client→lab-PROTO"):
// it must complete its whole dialog there, so that a "safe" through strip
// is the client refusing, not a broken configuration.
//
// At the end the table client × attack → verdict is printed and written to
// $INTEROP_STRIP_DIR/verdicts.md, with strip's evidence for every
// "vulnerable".

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The attacks every client meets (command-injection targets servers),
// with their variants: one `--attack NAME/VARIANT` per cell, since --once
// sees one connection and `--attack NAME` starts with its first variant.
var stripAttacks = []string{"pass", "strip-capability", "reject-upgrade/temporary", "reject-upgrade/permanent",
	"untrusted-cert/self-signed", "untrusted-cert/wrong-name", "response-injection", "downgrade"}

// attackBase is the attack without its variant (expectations are per
// attack: the documentation does not tell 454 from 554).
func attackBase(a string) string {
	b, _, _ := strings.Cut(a, "/")
	return b
}

const (
	safe          = "safe"
	vulnerable    = "vulnerable"
	notApplicable = "not applicable" // implicit TLS: no upgrade to attack
	observe       = "observe"        // undocumented: recorded, not asserted
)

// stripClient is one real client in one configuration, for one protocol.
type stripClient struct {
	name  string // as in the matrix: "curl(--ssl)"
	proto string // smtp, imap, pop3 or smtps, imaps, pop3s: strip's --protocol and the lab endpoint
	tool  string // the program that must be installed
	// expect is the documented verdict per attack without its variant
	// (safe, vulnerable or observe); an attack missing from it is not run.
	expect map[string]string
	// doc: where the expectation comes from (the option's text in the man
	// page or the library's documentation), one line per behaviour.
	doc string
	// run runs the client against host:port with its files under dir.
	run func(t *testing.T, s *stripSuite, dir, host, port string) result
	// ok: the client completed its whole dialog (checked against the lab
	// directly and through strip's "pass").
	ok func(r result) bool
}

func (c stripClient) row() string { return c.name + " " + c.proto }

// expects builds an expectation: every attack safe but those named in
// vuln (vulnerable) and obs (observe).
func expects(vuln []string, obs ...string) map[string]string {
	m := make(map[string]string, len(stripAttacks))
	for _, a := range stripAttacks {
		m[attackBase(a)] = safe
	}
	for _, a := range vuln {
		m[a] = vulnerable
	}
	for _, a := range obs {
		m[a] = observe
	}
	return m
}

func vuln(attacks ...string) []string { return attacks }

// implicitExpects: with TLS from the first byte there is no upgrade to
// strip, refuse or inject into; the certificate and the version remain.
func implicitExpects() map[string]string {
	m := expects(nil)
	for _, a := range []string{"strip-capability", "reject-upgrade", "response-injection"} {
		m[a] = notApplicable
	}
	return m
}

func exitedZero(r result) bool { return r.Code == 0 }

// stripSuite is what every cell shares.
type stripSuite struct {
	e       *env
	lab     *labInfo
	bin     string
	dir     string // $INTEROP_STRIP_DIR
	scripts string // scripts/interop/strip
	// trust is what every client trusts: the lab's CA (the upstream) and
	// the interop CA, which signed attackCert.
	trust string
	// attackCert, attackKey: the certificate strip presents for
	// response-injection and downgrade, one the clients trust (names
	// 127.0.0.1 and localhost). With strip's default self-signed one a
	// verifying client stops at the certificate and the attack itself is
	// never exercised; untrusted-cert is where certificates are tested.
	attackCert, attackKey string

	mu      sync.Mutex
	results map[string]map[string]stripCell // row → attack → cell
}

// stripCell is the outcome of one client through one attack.
type stripCell struct {
	want, got string
	evidence  string
}

// stripEntry is one connection in strip's --report (the fields the issue
// names; credentials and evidence kept as strip wrote them).
type stripEntry struct {
	Attack             string          `json:"attack"`
	Client             string          `json:"client"`
	PlaintextContinued bool            `json:"plaintext_continued"`
	CredentialsSeen    json.RawMessage `json:"credentials_seen"`
	AcceptedBadCert    bool            `json:"accepted_bad_cert"`
	ActedOnInjection   bool            `json:"acted_on_injection"`
	Verdict            string          `json:"verdict"`
	Evidence           json.RawMessage `json:"evidence"`
	Variant            string          `json:"variant"`
	Findings           []string        `json:"findings"`
	Note               string          `json:"note"`
}

// evidenceLine is strip's findings (they name the credentials, masked, and
// what the client sent), or its transcript when it has none, as one line
// for the table.
func (en *stripEntry) evidenceLine() string {
	var s string
	var lines []string
	switch {
	case len(en.Findings) > 0:
		s = strings.Join(en.Findings, "; ")
	case json.Unmarshal(en.Evidence, &lines) == nil:
		s = strings.Join(lines, " | ")
	case json.Unmarshal(en.Evidence, &s) == nil:
	default:
		s = string(en.Evidence)
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// parseStripReport accepts the report as a JSON array of entries, or an
// object holding that array (under any key), or one entry per line.
func parseStripReport(b []byte) ([]stripEntry, error) {
	b = bytes.TrimSpace(b)
	var list []stripEntry
	if err := json.Unmarshal(b, &list); err == nil {
		return list, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err == nil {
		if _, ok := obj["attack"]; ok {
			var one stripEntry
			err := json.Unmarshal(b, &one)
			return []stripEntry{one}, err
		}
		keys := []string{"connections"} // strip's key; any other as a fallback
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys[1:])
		for _, k := range keys {
			var l []stripEntry
			if json.Unmarshal(obj[k], &l) == nil && len(l) > 0 && l[0].Attack != "" {
				return l, nil
			}
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var one stripEntry
		if err := json.Unmarshal(line, &one); err != nil {
			return nil, fmt.Errorf("not a strip report (array, object or JSON lines): %v", err)
		}
		list = append(list, one)
	}
	return list, sc.Err()
}

// stripListening finds the address in strip's "listening on ADDR for …"
// line (stderr; --listen with port 0).
var stripListening = regexp.MustCompile(`listening on (\S+) `)

// lockedBuffer collects lines written by one goroutine and read by another.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteLine(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
	l.b.WriteByte('\n')
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var unfilled = regexp.MustCompile(`@[A-Z_]+@`)

// fill copies a template from scripts/interop/strip with @NAME@ replaced.
func (s *stripSuite) fill(t *testing.T, tmpl, dst string, mode os.FileMode, vars map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.scripts, tmpl))
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for k, v := range vars {
		out = strings.ReplaceAll(out, "@"+k+"@", v)
	}
	if m := unfilled.FindString(out); m != "" {
		t.Fatalf("%s: %s not filled in", tmpl, m)
	}
	if err := os.WriteFile(dst, []byte(out), mode); err != nil {
		t.Fatal(err)
	}
	return dst
}

// ---------------------------------------------------------------------------
// The clients and their documented behaviour
// ---------------------------------------------------------------------------

// The sources, quoted (Debian 12: curl 7.88.1, swaks 20201014.0, Python
// 3.11, OpenSSL 3.0, msmtp 1.8.23, fetchmail 6.4.37, mutt 2.2.12).
const (
	// The clients linked with OpenSSL 3 (curl, Python, openssl, swaks
	// through Net::SSLeay, fetchmail) refuse the downgrade by default.
	docOpenSSL3 = ` OpenSSL 3.0 CHANGES: "SSL 3, TLS 1.0, TLS 1.1, and DTLS 1.0 ... no longer working at the default security level of 1".`
	docCurlSSL  = `curl(1) --ssl: "Try to use SSL/TLS for the connection. Reverts to a non-secure connection if the server does not support SSL/TLS."; ` +
		`-k: "By default, every SSL connection curl makes is verified to be secure"; ` +
		`response injection: CVE-2021-22947, fixed in 7.79.0 ("cached pipelined responses after STARTTLS" discarded); ` + docOpenSSL3
	docCurlSSLReqd = `curl(1) --ssl-reqd: "Require SSL/TLS for the connection. Terminates the connection if the transfer cannot be upgraded to use SSL/TLS."; ` +
		`verification and injection as for --ssl.`
	docSwaksOptional = `swaks(1) --tls-optional: "Attempt to use STARTTLS if available, continue with normal transaction if TLS was unable to be negotiated for any reason"; ` +
		`--tls-verify: "By default, Swaks does not attempt certificate verification."` + docOpenSSL3
	docSwaksTLS = `swaks(1) --tls: "Require connection to use STARTTLS. Exit if TLS not available for any reason (not advertised, negotiations failed, etc)"; ` +
		`"By default, Swaks does not attempt certificate verification."` + docOpenSSL3
	docSwaksVerify = `swaks(1) --tls as above; --tls-verify: "If this option is set and the server's certificate is not verifiable ... TLS negotiation will not succeed."` + docOpenSSL3
	docPyIfOffered = `Python: the application calls starttls()/stls() only if has_extn("starttls") / "STARTTLS" in capabilities / "STLS" in capa(): ` +
		`nothing in the library upgrades otherwise; a refused STARTTLS raises (smtplib: SMTPResponseException; imaplib: error "Couldn't establish TLS session"; poplib: error_proto); ` +
		`ssl.create_default_context(): "CERT_REQUIRED and check_hostname", "minimum TLS 1.2" (3.10+).`
	docPyAlways = `Python: starttls() unconditionally: smtplib raises SMTPNotSupportedError "STARTTLS extension not supported by server", ` +
		`imaplib.starttls raises abort "TLS not supported by server", poplib.stls raises error_proto "-ERR STLS not supported by server"; verification as above.`
	docSClient = `openssl-s_client(1): -verify_return_error: "Return verification errors instead of continuing" (so by default it continues); ` +
		`-starttls sends the upgrade even when not advertised (apps/s_client.c: "Didn't find STARTTLS in server response, trying anyway...") and does not read the reply's code.` + docOpenSSL3
	docSClientVerify = `openssl-s_client(1) -verify_return_error: "This will typically abort the handshake with a fatal error."` + docOpenSSL3
	docConnectOpp    = `starttls.ModeOpportunistic: "upgrades when the server offers it and goes on in plaintext otherwise" (smtp.Upgrade: "does not offer STARTTLS, or refuses it ... leaves an unprotected session"); certificates verified in every mode; crypto/tls: TLS 1.2 minimum.`
	docConnectReq    = `starttls.ModeRequired: "upgrades or fails: a missing, refused or failed upgrade is an error, never a plaintext fallback".`
	docConnectImpl   = `starttls.ModeImplicit: "speaks TLS from the first byte (RFC 8314)"; certificates verified; TLS 1.2 minimum.`
	docCurlImplicit  = `curl(1) smtps://, imaps://, pop3s://: TLS from the first byte; -k: "By default, every SSL connection curl makes is verified to be secure".` + docOpenSSL3
	docMsmtpOn       = `msmtp(1) tls on, tls_starttls on: "start TLS from within the session"; with tls on a server without STARTTLS is an error ("the server does not support TLS via the STARTTLS command"); tls_certcheck: "They are enabled by default"; tls_priorities: "The default is set by the TLS library" (GnuTLS: observed).`
	docMsmtpOff      = `msmtp(1) tls off: "Enable or disable TLS": off never sends STARTTLS, so the session is plaintext whatever the server offers.`
	docFetchDefault  = `fetchmail(1) --sslcertck (default since 6.4.0): "causes fetchmail to require that SSL/TLS be used and disconnect unless it can successfully negotiate SSL or TLS, or if it cannot successfully verify ... the certificate".` + docOpenSSL3
	docFetchNoCheck  = `fetchmail(1): "Only if this option [--sslproto] and --ssl are both missing for a poll, there will be opportunistic TLS"; --nosslcertck: "permits fetchmail to continue connecting even if the server certificate failed the verification checks".` + docOpenSSL3
	docFetchAuto     = `fetchmail(1) --sslproto 'auto': "Require TLS."; with --nosslcertck (no sslcertck) the certificate is not checked.` + docOpenSSL3
	docMuttStarttls  = `mutt manual $ssl_starttls: "mutt will attempt to use STARTTLS on servers advertising the capability" ... "the ability of a machine-in-the-middle to suppress the advertising of support"; ssl_force_tls unset.` + docMuttTLS
	docMuttForce     = `mutt manual $ssl_force_tls: "Mutt will require that all connections to remote servers be encrypted. Furthermore it will attempt to negotiate TLS even if the server does not advertise the capability".` + docMuttTLS
	docMuttTLS       = ` $ssl_use_tlsv1, $ssl_use_tlsv1_1: "Default: no" ("If set, Mutt will use TLSv1.0/1.1 when communicating with servers that request it"). A certificate it cannot verify is a question to the user, which batch mode cannot ask: observed.`
)

func stripClients() []stripClient {
	var cs []stripClient
	for _, proto := range []string{"smtp", "imap", "pop3"} {
		cs = append(cs,
			stripClient{name: "curl(--ssl)", proto: proto, tool: "curl", doc: docCurlSSL,
				expect: expects(vuln("strip-capability", "reject-upgrade")),
				run:    curlRun("--ssl"), ok: exitedZero},
			stripClient{name: "curl(--ssl-reqd)", proto: proto, tool: "curl", doc: docCurlSSLReqd,
				expect: expects(nil),
				run:    curlRun("--ssl-reqd"), ok: exitedZero},
			stripClient{name: "python(starttls-if-offered)", proto: proto, tool: "python3", doc: docPyIfOffered,
				expect: expects(vuln("strip-capability"), "response-injection"),
				run:    pythonRun("if-offered"), ok: exitedZero},
			stripClient{name: "python(starttls-always)", proto: proto, tool: "python3", doc: docPyAlways,
				expect: expects(nil, "response-injection"),
				run:    pythonRun("always"), ok: exitedZero},
			stripClient{name: "starttls-connect(opportunistic)", proto: proto, tool: "", doc: docConnectOpp,
				expect: expects(vuln("strip-capability", "reject-upgrade")),
				run:    connectRun("opportunistic"), ok: connectOK},
			stripClient{name: "starttls-connect(required)", proto: proto, tool: "", doc: docConnectReq,
				expect: expects(nil),
				run:    connectRun("required"), ok: connectOK},
		)
	}
	for _, proto := range []string{"smtp", "imap", "pop3"} {
		cs = append(cs,
			stripClient{name: "openssl-s_client(-starttls)", proto: proto, tool: "openssl", doc: docSClient,
				expect: expects(vuln("untrusted-cert"), "response-injection"),
				run:    sClientRun(), ok: sClientOK},
			stripClient{name: "openssl-s_client(-starttls -verify_return_error)", proto: proto, tool: "openssl", doc: docSClientVerify,
				expect: expects(nil, "response-injection"),
				run:    sClientRun("-verify_return_error"), ok: sClientOK},
		)
	}
	for _, proto := range []string{"smtps", "imaps", "pop3s"} {
		cs = append(cs,
			stripClient{name: "curl(implicit)", proto: proto, tool: "curl", doc: docCurlImplicit,
				expect: implicitExpects(), run: curlRun(""), ok: exitedZero},
			stripClient{name: "starttls-connect(implicit)", proto: proto, tool: "", doc: docConnectImpl,
				expect: implicitExpects(), run: connectRun("implicit"), ok: connectOK},
		)
	}
	for _, proto := range []string{"imap", "pop3"} {
		cs = append(cs,
			stripClient{name: "fetchmail(default: sslcertck)", proto: proto, tool: "fetchmail", doc: docFetchDefault,
				expect: expects(nil, "response-injection"),
				run:    fetchmailRun(""), ok: exitedZero},
			stripClient{name: "fetchmail(no sslcertck)", proto: proto, tool: "fetchmail", doc: docFetchNoCheck,
				expect: expects(vuln("strip-capability", "untrusted-cert"), "reject-upgrade", "response-injection"),
				run:    fetchmailRun("no sslcertck"), ok: exitedZero},
			stripClient{name: "fetchmail(sslproto auto, no sslcertck)", proto: proto, tool: "fetchmail", doc: docFetchAuto,
				expect: expects(vuln("untrusted-cert"), "response-injection"),
				run:    fetchmailRun("sslproto 'auto' no sslcertck"), ok: exitedZero},
		)
	}
	cs = append(cs,
		stripClient{name: "swaks(--tls-optional)", proto: "smtp", tool: "swaks", doc: docSwaksOptional,
			expect: expects(vuln("strip-capability", "reject-upgrade", "untrusted-cert"), "response-injection"),
			run:    swaksRun("--tls-optional"), ok: exitedZero},
		stripClient{name: "swaks(--tls)", proto: "smtp", tool: "swaks", doc: docSwaksTLS,
			expect: expects(vuln("untrusted-cert"), "response-injection"),
			run:    swaksRun("--tls"), ok: exitedZero},
		stripClient{name: "swaks(--tls --tls-verify)", proto: "smtp", tool: "swaks", doc: docSwaksVerify,
			expect: expects(nil, "response-injection"),
			run:    swaksRun("--tls", "--tls-verify"), ok: exitedZero},
		stripClient{name: "msmtp(tls on, tls_starttls on)", proto: "smtp", tool: "msmtp", doc: docMsmtpOn,
			expect: expects(nil, "response-injection", "downgrade"),
			run:    msmtpRun("on", "plain"), ok: exitedZero},
		stripClient{name: "msmtp(tls off)", proto: "smtp", tool: "msmtp", doc: docMsmtpOff,
			expect: expects(vuln("strip-capability"), "pass", "reject-upgrade", "untrusted-cert", "response-injection", "downgrade"),
			run:    msmtpRun("off", "off"), ok: exitedZero},
		stripClient{name: "mutt(ssl_starttls=yes, ssl_force_tls=no)", proto: "smtp", tool: "mutt", doc: docMuttStarttls,
			expect: expects(vuln("strip-capability"), "reject-upgrade", "untrusted-cert", "response-injection"),
			run:    muttRun("yes", "no"), ok: exitedZero},
		stripClient{name: "mutt(ssl_force_tls=yes)", proto: "smtp", tool: "mutt", doc: docMuttForce,
			expect: expects(nil, "untrusted-cert", "response-injection"),
			run:    muttRun("yes", "yes"), ok: exitedZero},
	)
	return cs
}

// ---------------------------------------------------------------------------
// Client invocations
// ---------------------------------------------------------------------------

const stripClientTimeout = 45 * time.Second

func curlRun(mode string) func(*testing.T, *stripSuite, string, string, string) result {
	return func(t *testing.T, s *stripSuite, dir, host, port string) result {
		bin := needTool(t, "curl")
		args := []string{"-sS", "--max-time", "15", "--cacert", s.trust, "--user", s.lab.User + ":" + s.lab.Password}
		if mode != "" {
			args = append(args, mode)
		}
		scheme := cellProto(dir)
		switch strings.TrimSuffix(scheme, "s") {
		case "smtp":
			msg := filepath.Join(dir, "message.txt")
			body := fmt.Sprintf("From: <%s@starttls.test>\r\nTo: <%s@starttls.test>\r\nSubject: strip interop\r\n\r\nSent by curl through starttls strip.\r\n", s.lab.User, s.lab.User)
			if err := os.WriteFile(msg, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--mail-from", s.lab.User+"@starttls.test", "--mail-rcpt", s.lab.User+"@starttls.test",
				"-T", msg, scheme+"://"+host+":"+port)
		case "imap":
			args = append(args, scheme+"://"+host+":"+port+"/INBOX", "-X", "EXAMINE INBOX")
		default:
			args = append(args, scheme+"://"+host+":"+port+"/")
		}
		return run(t, stripClientTimeout, "", bin, args...)
	}
}

func pythonRun(mode string) func(*testing.T, *stripSuite, string, string, string) result {
	return func(t *testing.T, s *stripSuite, dir, host, port string) result {
		needTool(t, s.e.Python)
		return run(t, stripClientTimeout, "", s.e.Python, filepath.Join(s.scripts, "pymail.py"), cellProto(dir), host, port,
			"--ca", s.trust, "--tls", mode, "--user", s.lab.User, "--password", s.lab.Password,
			"--rcpt", s.lab.User+"@starttls.test")
	}
}

// connectRun: our own library, through `starttls connect`, with a few
// commands on stdin (what "plaintext continued" sees).
func connectRun(mode string) func(*testing.T, *stripSuite, string, string, string) result {
	return func(t *testing.T, s *stripSuite, dir, host, port string) result {
		// One command each that is more than discovery (strip counts
		// EHLO, NOOP, CAPABILITY, CAPA… as idle), none that logs in.
		stdin := map[string]string{
			"smtp": "MAIL FROM:<" + s.lab.User + "@starttls.test>\r\nRSET\r\nQUIT\r\n",
			"imap": "a1 LIST \"\" INBOX\r\na2 LOGOUT\r\n",
			"pop3": "USER " + s.lab.User + "\r\nQUIT\r\n",
		}[strings.TrimSuffix(cellProto(dir), "s")]
		return run(t, stripClientTimeout, stdin, s.bin, "connect", "--mode", mode, "--ca", s.trust,
			"--timeout", "15s", "--linger", "2s", cellProto(dir)+"://"+host+":"+port)
	}
}

func connectOK(r result) bool {
	return r.Code == 0 && (strings.Contains(r.Stdout, "221 ") || strings.Contains(r.Stdout, "a2 OK") ||
		strings.Contains(r.Stdout, "+OK"))
}

func swaksRun(opts ...string) func(*testing.T, *stripSuite, string, string, string) result {
	return func(t *testing.T, s *stripSuite, dir, host, port string) result {
		bin := needTool(t, "swaks")
		args := []string{"--server", host + ":" + port, "--to", s.lab.User + "@starttls.test",
			"--from", s.lab.User + "@starttls.test", "--helo", "client.interop.test",
			"--auth-optional", "PLAIN", "--auth-user", s.lab.User, "--auth-password", s.lab.Password,
			"--timeout", "15", "--tls-ca-path", s.trust}
		return run(t, stripClientTimeout, "", bin, append(args, opts...)...)
	}
}

func sClientRun(opts ...string) func(*testing.T, *stripSuite, string, string, string) result {
	return func(t *testing.T, s *stripSuite, dir, host, port string) result {
		bin := needTool(t, "openssl")
		proto := cellProto(dir)
		args := []string{"s_client", "-connect", host + ":" + port, "-starttls", proto, "-CAfile", s.trust,
			"-verify_ip", host, "-ign_eof"}
		// s_client writes stdin as it comes, without waiting for answers:
		// the last command comes 3s after the first, so that it is not
		// taken for a command sent early on a forged answer (strip
		// watches for 1s).
		cmds := map[string][2]string{
			"smtp": {"EHLO client.interop.test", "QUIT"},
			"imap": {"a1 CAPABILITY", "a2 LOGOUT"},
			"pop3": {"CAPA", "QUIT"},
		}[proto]
		script := `(printf '%s\r\n' "$1"; sleep 3; printf '%s\r\n' "$2") | (shift 2; exec "$0" "$@")`
		args = append([]string{"-c", script, bin, cmds[0], cmds[1]}, append(args, opts...)...)
		return run(t, stripClientTimeout, "", "sh", args...)
	}
}

// sClientOK: a verified session in which the server answered the last
// command (SMTP 221, IMAP a2 OK, POP3 +OK after the handshake).
func sClientOK(r result) bool {
	i := strings.Index(r.Stdout, "\nVerify return code: 0 (ok)")
	if r.Code != 0 || i < 0 {
		return false
	}
	post := r.Stdout[i:]
	return strings.Contains(post, "\n221 ") || strings.Contains(post, "\na2 OK") || strings.Contains(post, "\n+OK")
}

func msmtpRun(tls, auth string) func(*testing.T, *stripSuite, string, string, string) result {
	return func(t *testing.T, s *stripSuite, dir, host, port string) result {
		bin := needTool(t, "msmtp")
		rc := s.fill(t, "msmtprc.in", filepath.Join(dir, "msmtprc"), 0o600, map[string]string{
			"DIR": dir, "HOST": host, "PORT": port, "USER": s.lab.User, "PASSWORD": s.lab.Password,
			"CA": s.trust, "TLS": tls, "AUTH": auth,
		})
		msg := fmt.Sprintf("From: <%s@starttls.test>\r\nTo: <%s@starttls.test>\r\nSubject: strip interop\r\n\r\nSent by msmtp through starttls strip.\r\n", s.lab.User, s.lab.User)
		return run(t, stripClientTimeout, msg, bin, "-C", rc, s.lab.User+"@starttls.test")
	}
}

var fetchmailMu sync.Mutex

func fetchmailRun(options string) func(*testing.T, *stripSuite, string, string, string) result {
	return func(t *testing.T, s *stripSuite, dir, host, port string) result {
		bin := needTool(t, "fetchmail")
		rc := s.fill(t, "fetchmailrc.in", filepath.Join(dir, "fetchmailrc"), 0o600, map[string]string{
			"HOST": host, "PORT": port, "PROTO": strings.ToUpper(cellProto(dir)), "USER": s.lab.User,
			"PASSWORD": s.lab.Password, "CA": s.trust, "OPTIONS": options,
		})
		// --check: log in and count the messages, fetch nothing. Exit 0:
		// there is mail (the lab's mailbox always has some). One at a
		// time: a second fetchmail to the same host refuses to start
		// ("can't check mail while another fetchmail to same host is
		// running"), even with its own FETCHMAILHOME.
		fetchmailMu.Lock()
		defer fetchmailMu.Unlock()
		return runEnv(t, stripClientTimeout, []string{"FETCHMAILHOME=" + dir, "HOME=" + dir}, "",
			bin, "--check", "--verbose", "--nosyslog", "-f", rc)
	}
}

func muttRun(starttlsOpt, force string) func(*testing.T, *stripSuite, string, string, string) result {
	return func(t *testing.T, s *stripSuite, dir, host, port string) result {
		bin := needTool(t, "mutt")
		rc := s.fill(t, "muttrc.in", filepath.Join(dir, "muttrc"), 0o600, map[string]string{
			"DIR": dir, "HOST": host, "PORT": port, "USER": s.lab.User, "PASSWORD": s.lab.Password,
			"CA": s.trust, "STARTTLS": starttlsOpt, "FORCE_TLS": force,
		})
		// Batch mode: stdin is not a terminal, the body comes from it and
		// mutt sends through smtp_url without its screen.
		return runEnv(t, stripClientTimeout, []string{"HOME=" + dir, "TERM=dumb"},
			"Sent by mutt through starttls strip.\n", bin, "-n", "-F", rc, "-s", "strip interop", s.lab.User+"@starttls.test")
	}
}

// cellProto: the protocol a cell's directory was made for (its name ends
// with "."+protocol).
func cellProto(dir string) string {
	return filepath.Ext(dir)[1:]
}

// ---------------------------------------------------------------------------
// One cell: strip on a free port, the client through it, the report
// ---------------------------------------------------------------------------

// cellDir makes a directory for one run; its name ends with the protocol
// (cellProto reads it back).
func (s *stripSuite) cellDir(t *testing.T, c stripClient, what string) string {
	t.Helper()
	clean := strings.NewReplacer("(", "_", ")", "", " ", "", ",", "_", ":", "", "=", "-", "'", "", "/", "_")
	d := filepath.Join(s.dir, "cells", clean.Replace(c.name)+"."+clean.Replace(what)+"."+c.proto)
	if err := os.RemoveAll(d); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// runStrip starts `starttls strip --once` for one attack in front of the
// lab's endpoint for c.proto, runs the client through it and returns the
// report's one entry and the client's result.
func (s *stripSuite) runStrip(t *testing.T, c stripClient, attack string) (*stripEntry, result) {
	t.Helper()
	dir := s.cellDir(t, c, attack)
	upHost, upPort := s.lab.addr(t, c.proto)
	reportFile := filepath.Join(dir, "report.json")
	// Port 0: strip takes a free port and says which on stderr.
	args := []string{"strip", "--listen", "127.0.0.1:0", "--upstream", upHost + ":" + upPort,
		"--protocol", c.proto, "--attack", attack, "--upstream-ca", s.lab.CA, "--once", "--report", reportFile}
	if attack == "response-injection" || attack == "downgrade" {
		args = append(args, "--cert", s.attackCert, "--key", s.attackKey)
	}
	cmd := exec.Command(s.bin, args...)
	var out bytes.Buffer
	var errb lockedBuffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	dieWithParent(cmd)
	t.Logf("$ starttls %s", shellQuote(args))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errb.WriteLine(sc.Text())
			if m := stripListening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // a line too long for the scanner
	}()
	done := make(chan error, 1)
	go func() { <-readDone; done <- cmd.Wait() }()
	stopped := false
	stop := func(why string) {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM) // strip writes its report on SIGTERM
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("strip (pid %d) ignored SIGTERM after %s; killing it", cmd.Process.Pid, why)
			_ = cmd.Process.Kill()
			<-done
		}
	}
	defer stop("the test ended")

	var port string
	select {
	case addr := <-addrc:
		_, port = hostPort(t, addr)
	case err := <-done:
		stopped = true
		t.Fatalf("strip exited before listening: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("strip did not say where it listens within 15s\nstderr:\n%s", errb.String())
	}

	r := c.run(t, s, dir, "127.0.0.1", port)
	select {
	case err := <-done: // --once: it exits after the client's connection
		stopped = true
		if err != nil {
			t.Logf("strip: %v", err)
		}
	case <-time.After(20 * time.Second):
		stop("the client finished (no exit 20s after it, despite --once)")
	}
	t.Logf("strip stdout:\n%s\nstrip stderr:\n%s", clip(out.String()), clip(errb.String()))
	b, err := os.ReadFile(reportFile)
	if err != nil {
		r.dump(t)
		t.Fatalf("strip wrote no report: %v", err)
	}
	entries, err := parseStripReport(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, clip(string(b)))
	}
	if len(entries) != 1 {
		r.dump(t)
		t.Fatalf("strip --once report has %d entries, want 1 (did the client connect?):\n%s", len(entries), clip(string(b)))
	}
	en := &entries[0]
	if got := strings.TrimSuffix(en.Attack+"/"+en.Variant, "/"); got != attack {
		t.Errorf("report entry for attack %q, want %q", got, attack)
	}
	if en.Verdict != safe && en.Verdict != vulnerable && en.Verdict != notApplicable {
		t.Fatalf("verdict %q, want safe, vulnerable or not applicable:\n%s", en.Verdict, clip(string(b)))
	}
	return en, r
}

func (s *stripSuite) record(row, attack string, cell stripCell) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.results[row] == nil {
		s.results[row] = map[string]stripCell{}
	}
	s.results[row][attack] = cell
}

// TestStrip is the matrix: every client, against the lab directly (the
// control), then through strip for every attack.
func TestStrip(t *testing.T) {
	e := getEnv(t)
	e.needModule(t, "strip")
	s := &stripSuite{e: e, bin: e.needBinary(t), dir: needEnv(t, "INTEROP_STRIP_DIR"),
		scripts: filepath.Join(e.ScriptsDir, "strip"), results: map[string]map[string]stripCell{}}
	s.lab = startLab(t)
	s.attackCert = filepath.Join(e.Work, "pki", "server.pem")
	s.attackKey = filepath.Join(e.Work, "pki", "server.key")
	s.trust = filepath.Join(s.dir, "trust.pem")
	var bundle []byte
	for _, f := range []string{s.lab.CA, e.CA} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bundle = append(append(bundle, b...), '\n')
	}
	if err := os.WriteFile(s.trust, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	clients := stripClients()
	// Runs after every parallel subtest: the table.
	t.Cleanup(func() { s.writeTable(t, clients) })

	for _, c := range clients {
		t.Run(c.name+"→lab-"+c.proto, func(t *testing.T) {
			t.Parallel()
			if c.tool != "" {
				needTool(t, c.tool)
			}
			dir := s.cellDir(t, c, "direct")
			host, port := s.lab.addr(t, c.proto)
			r := c.run(t, s, dir, host, port)
			if !c.ok(r) {
				r.dump(t)
				t.Fatalf("%s does not complete its dialog against the lab directly: its configuration, not strip, is wrong", c.name)
			}
		})
	}
	for _, c := range clients {
		for _, attack := range stripAttacks {
			want, ok := c.expect[attackBase(attack)]
			if !ok {
				continue
			}
			t.Run(c.name+" "+c.proto+"→strip("+attack+")", func(t *testing.T) {
				t.Parallel()
				if c.tool != "" {
					needTool(t, c.tool)
				}
				en, r := s.runStrip(t, c, attack)
				cell := stripCell{want: want, got: en.Verdict}
				if en.Verdict == vulnerable {
					cell.evidence = en.evidenceLine()
				}
				s.record(c.row(), attack, cell)
				t.Logf("verdict %s (documented: %s); note %q; plaintext_continued=%v accepted_bad_cert=%v acted_on_injection=%v credentials=%s; evidence: %s",
					en.Verdict, want, en.Note, en.PlaintextContinued, en.AcceptedBadCert, en.ActedOnInjection, en.CredentialsSeen, en.evidenceLine())
				if attack == "pass" && want != observe && !c.ok(r) {
					r.dump(t)
					t.Errorf("%s did not complete its dialog through strip's pass (no attack)", c.name)
				}
				if want != observe && en.Verdict != want {
					r.dump(t)
					t.Errorf("FINDING: %s is %s to %s, its documentation says %s (%s)", c.row(), en.Verdict, attack, want, c.doc)
				}
			})
		}
	}
}

// stripShort: the attacks' column headers in the printed table.
var stripShort = map[string]string{
	"pass": "pass", "strip-capability": "strip-cap", "reject-upgrade/temporary": "reject/temp",
	"reject-upgrade/permanent": "reject/perm", "untrusted-cert/self-signed": "cert/self",
	"untrusted-cert/wrong-name": "cert/name", "response-injection": "inject", "downgrade": "downgrade",
}

// writeTable prints the client × attack table and writes it as Markdown to
// $INTEROP_STRIP_DIR/verdicts.md, with the evidence of every vulnerable
// cell and the source of every row's expectation.
func (s *stripSuite) writeTable(t *testing.T, clients []stripClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.results) == 0 {
		return
	}
	var md, txt bytes.Buffer
	md.WriteString("| client | " + strings.Join(stripAttacks, " | ") + " |\n|---|" + strings.Repeat("---|", len(stripAttacks)) + "\n")
	fmt.Fprintf(&txt, "%-58s", "client \\ attack")
	for _, a := range stripAttacks {
		fmt.Fprintf(&txt, " %-14s", stripShort[a])
	}
	txt.WriteString("\n")
	var evidence, docs []string
	seen := map[string]bool{}
	for _, c := range clients {
		row := c.row()
		if seen[row] {
			continue
		}
		seen[row] = true
		cells := s.results[row]
		if len(cells) == 0 { // not run (go test -run)
			continue
		}
		md.WriteString("| " + row + " |")
		fmt.Fprintf(&txt, "%-58s", row)
		for _, a := range stripAttacks {
			cell, ok := cells[a]
			var v string
			switch {
			case !ok:
				v = "—"
			case cell.want == observe:
				v = cell.got + " (observed)"
			case cell.got != cell.want:
				v = "**" + cell.got + "** (documented: " + cell.want + ")"
			default:
				v = cell.got
			}
			md.WriteString(" " + v + " |")
			short := map[string]string{"": "—", safe: "safe", vulnerable: "VULN", notApplicable: "n/a"}[cell.got]
			switch {
			case ok && cell.want == observe:
				short += " (obs)"
			case ok && cell.got != cell.want:
				short += " ≠DOC"
			}
			fmt.Fprintf(&txt, " %-14s", short)
			if ok && cell.got == vulnerable {
				evidence = append(evidence, fmt.Sprintf("- %s, %s: %s", row, a, cell.evidence))
			}
		}
		md.WriteString("\n")
		txt.WriteString("\n")
		docs = append(docs, "- "+row+": "+c.doc)
	}
	md.WriteString("\nEvidence (strip's report) for every `vulnerable`:\n\n" + strings.Join(evidence, "\n") + "\n")
	md.WriteString("\nDocumented behaviour (the expectation of each row):\n\n" + strings.Join(docs, "\n") + "\n")
	f := filepath.Join(s.dir, "verdicts.md")
	if err := os.WriteFile(f, md.Bytes(), 0o644); err != nil {
		t.Errorf("writing %s: %v", f, err)
	}
	fmt.Printf("\n=== starttls strip: client × attack → verdict (also %s)\n%s\n", f, txt.String())
	for _, ev := range evidence {
		fmt.Println(ev)
	}
}
