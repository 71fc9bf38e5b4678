// Package check audits one server's STARTTLS or implicit TLS: whether the
// upgrade is offered and works, what TLS is negotiated, the certificate,
// login offered before TLS, STARTTLS command injection (CVE-2011-0411) and
// whether the capabilities change over TLS as they should. It drives the
// protocol packages through package dial and never speaks a dialog itself.
package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
	"github.com/starttls/starttls/tlsscan"
)

// Options configure a check. The zero value checks against the system roots
// with default timeouts.
type Options struct {
	// Roots are the trusted roots; nil means the system roots.
	Roots *x509.CertPool
	// ServerName is the name the certificate must carry; empty means the
	// target's host.
	ServerName string
	// LocalName is the EHLO/LHLO name; empty means starttls.LocalName().
	LocalName string
	// Source is the local IP address to connect from.
	Source string
	// Timeout bounds each connection of the check; 0 means 15 s.
	Timeout time.Duration
	// SkipInjection skips the command-injection probe (one extra connection).
	SkipInjection bool
	// InjectionWait is how long the probe waits for an answer inside TLS.
	InjectionWait time.Duration
	// Now is the time certificates are judged at; zero means time.Now().
	Now time.Time
	// Transcript, if set, receives the dialog of the main connection live.
	Transcript *starttls.Transcript
	// Quick skips the enumeration of versions, suites and groups: one
	// handshake, the foundation's check.
	Quick bool
	// MaxConns caps the enumeration's connections in flight to the
	// server; 0 means tlsscan.DefaultMaxConns.
	MaxConns int
}

// ExpiryWarning is how close to its expiry a certificate draws a warning.
const ExpiryWarning = 30 * 24 * time.Hour

// Run checks one target and returns the report; it never returns nil.
func Run(ctx context.Context, t *starttls.Target, o *Options) *Report {
	if o == nil {
		o = &Options{}
	}
	start := time.Now()
	now := o.Now
	if now.IsZero() {
		now = start
	}
	r := &Report{
		Target:   t.String(),
		Protocol: t.Scheme.Protocol,
		Mode:     t.EffectiveMode().String(),
		Address:  t.Addr(),
		Started:  start.UTC(),
		Findings: []Finding{},
	}
	defer func() { r.Duration = time.Since(start).Seconds() }()
	mode := t.EffectiveMode()
	if mode == starttls.ModePlain {
		r.fail("error", "mode plain: nothing to check (use required, opportunistic or implicit)")
		return r
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	serverName := o.ServerName
	if serverName == "" {
		serverName = t.Host
	}
	tr := o.Transcript
	if tr == nil {
		tr = &starttls.Transcript{}
	}
	// The handshake must complete whatever the certificate, so that the
	// report can say what is wrong with it; verify() judges it afterwards.
	// Old versions are allowed so that a TLS 1.0-only server is reported
	// as such instead of as a handshake failure.
	tlsConf := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, ServerName: serverName}
	dopts := &dial.Options{
		Client: starttls.ClientOptions{
			Mode: mode, TLSConfig: tlsConf, ServerName: serverName,
			LocalName: o.LocalName, Transcript: tr,
		},
		Source: o.Source,
	}

	cctx, cancel := context.WithTimeout(ctx, timeout)
	sess, res, err := dial.Dial(cctx, t, dopts)
	cancel()
	r.Transcript = transcriptLines(tr)
	if res == nil {
		res = &starttls.Result{}
	}
	r.fillFromResult(res, mode)
	if err != nil {
		if !r.classifyError(err, res, mode) {
			if r.Verdict != Error {
				r.judgeAuthAndCaps(res, mode)
				r.finish()
			}
			return r
		}
	} else {
		// Only res is used from here on: end the session now, so that
		// the server sees at most the enumeration's connections and the
		// injection probe's.
		sess.Close()
		// In opportunistic mode a missing or refused upgrade is no error
		// for the client, but it is the finding.
		if mode != starttls.ModeImplicit && !res.Upgraded {
			if res.Offered {
				r.refused(res.UpgradeReply)
			} else {
				r.notOffered()
			}
		}
	}
	// The injection probe mostly waits (for an answer a safe server never
	// sends): it runs on its own connection while the enumeration works.
	var injection chan *InjectionInfo
	if mode != starttls.ModeImplicit && res.Upgraded && !o.SkipInjection {
		injection = make(chan *InjectionInfo, 1)
		go func() { injection <- probeInjection(ctx, t, dopts, timeout, o.InjectionWait) }()
	}
	if res.TLS != nil {
		r.TLS = tlsInfo(res.TLS, serverName)
		r.peerChain = res.TLS.PeerCertificates
		r.Cert = verify(res.TLS, serverName, o.Roots, now)
		r.judgeCert(now)
		r.judgeChain(res.TLS.PeerCertificates, res.TLS.OCSPResponse)
		scanned := false
		if !o.Quick {
			// Every probe is a connection of its own, through the
			// protocol's upgrade; the whole enumeration is bounded.
			sctx, cancel := context.WithTimeout(ctx, 8*timeout)
			st := time.Now()
			sres, err := scan(sctx, t, dopts, serverName, timeout, o.MaxConns)
			cancel()
			if err != nil {
				r.add(Info, "scan-incomplete", "the enumeration of versions and suites did not complete: "+err.Error(), "")
			}
			// A partial result still says what was learnt; what was
			// not is null.
			if sres != nil {
				r.fillScan(sres, time.Since(st))
				r.judgeScan()
				scanned = true
			}
		}
		if !scanned {
			r.TLS.Versions = quickVersions(r.TLS.Version)
			r.TLS.Ciphers = []tlsscan.Cipher{}
			r.TLS.Groups = []string{}
		}
		r.judgeTLS(scanned)
	}
	if mode != starttls.ModeImplicit && dial.HasPlaintextAuthProbe(t.Scheme.Protocol) {
		// The upgrade dialog could not show whether login works without
		// TLS; a second connection asks, without a real credential.
		pctx, cancel := context.WithTimeout(ctx, timeout)
		mechs, perr := dial.ProbePlaintextAuth(pctx, t, dopts)
		cancel()
		switch {
		case perr != nil:
			r.add(Info, "plaintext-auth-unknown", "could not tell whether the server accepts login without TLS: "+perr.Error(), "")
		default:
			for _, m := range mechs {
				if !slices.Contains(res.AuthBefore, m) {
					res.AuthBefore = append(res.AuthBefore, m)
				}
			}
			r.Auth.BeforeTLS = nonNil(res.AuthBefore)
		}
	}
	r.judgeAuthAndCaps(res, mode)

	if injection != nil {
		r.Injection = <-injection
		if r.Injection.Vulnerable {
			r.add(Fail, "command-injection", fmt.Sprintf("the server executed a command pipelined in plaintext after the upgrade command, inside TLS (CVE-2011-0411 class): sent %q, got %q", r.Injection.Sent, r.Injection.Reply),
				adviceFor(t.Scheme.Protocol).injection)
		}
	}
	r.finish()
	return r
}

func (r *Report) add(sev Severity, id, msg, fix string) {
	r.Findings = append(r.Findings, Finding{ID: id, Severity: sev, Message: msg, Fix: fix})
}

// fail marks the report as not completed.
func (r *Report) fail(id, msg string) {
	r.Error = msg
	r.Verdict = Error
	r.add(Fail, id, msg, "")
}

func (r *Report) fillFromResult(res *starttls.Result, mode starttls.Mode) {
	r.STARTTLS.Implicit = mode == starttls.ModeImplicit
	if !r.STARTTLS.Implicit {
		off := res.Offered
		r.STARTTLS.Offered = &off
	}
	r.STARTTLS.Upgraded = res.Upgraded && res.TLS != nil
	r.STARTTLS.UpgradeReply = res.UpgradeReply
	r.STARTTLS.OfferedAfterTLS = res.OfferedAfterTLS
	r.Auth = AuthInfo{BeforeTLS: nonNil(res.AuthBefore), AfterTLS: nonNil(res.AuthAfter)}
	r.Caps = CapsInfo{BeforeTLS: nonNil(res.CapsBefore), AfterTLS: nonNil(res.CapsAfter), Reread: res.CapsReread}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// refused and notOffered are the two ways an upgrade does not happen, found
// either as a dialog error (required mode) or in the result (opportunistic).
func (r *Report) refused(reply string) {
	r.add(Fail, "starttls-refused", fmt.Sprintf("the server offers the upgrade but refused it: %q", reply), "check the server's TLS certificate and key settings; a refused upgrade leaves clients in plaintext")
}

func (r *Report) notOffered() {
	r.add(Fail, "starttls-not-offered", "the server does not offer the upgrade to TLS: every client talks to it in plaintext", adviceFor(r.Protocol).notOffered)
}

// classifyError turns a dialog error into findings. It returns true when the
// check can go on with what was learnt (for example the TLS state of a
// session that failed later), false when the report is final.
func (r *Report) classifyError(err error, res *starttls.Result, mode starttls.Mode) bool {
	var he *starttls.HandshakeError
	switch {
	case errors.Is(err, starttls.ErrUpgradeRefused):
		// Even a temporary refusal (454) is a finding: clients fall back
		// to plaintext or fail, every time.
		r.refused(res.UpgradeReply)
	case isTimeout(err) && res.TLS == nil:
		r.fail("timeout", "could not check: no answer in time: "+err.Error())
		return false
	case starttls.IsTemporary(err) && !errors.As(err, new(*starttls.HandshakeError)):
		r.fail("server-unavailable", "could not check: the server answered with a temporary failure (busy, greylisting or rate limit): "+err.Error())
		return false
	case errors.Is(err, starttls.ErrUpgradeNotOffered):
		r.notOffered()
	case errors.Is(err, starttls.ErrPlaintextAfterUpgrade):
		r.add(Fail, "response-injection", fmt.Sprintf("the server sent %d bytes of plaintext after its go-ahead, before TLS (%q): a client that trusted them would be open to response injection; a middlebox may be tampering", len(res.PlaintextAfterUpgrade), clip(string(res.PlaintextAfterUpgrade), 60)), "")
	case errors.As(err, &he):
		id := "starttls-failed"
		msg := "the server accepted the upgrade command but the TLS handshake failed: " + he.Err.Error()
		if mode == starttls.ModeImplicit {
			id = "tls-failed"
			msg = "the TLS handshake failed: " + he.Err.Error()
		}
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) {
			msg += " (the server answered in plaintext)"
		}
		r.add(Fail, id, msg, "check the certificate, key and TLS versions the server accepts")
	default:
		if res.TLS != nil {
			// TLS worked; the dialog failed afterwards (say, the
			// capabilities over TLS). Report what is known.
			r.add(Fail, "dialog-failed-after-tls", "the dialog failed after the TLS handshake: "+err.Error(), "")
			return true
		}
		r.fail("error", "could not check: "+err.Error())
		return false
	}
	return res.TLS != nil
}

// judgeTLS judges the negotiated session; the version only when the
// enumeration did not run (it reports every accepted version).
func (r *Report) judgeTLS(scanned bool) {
	t := r.TLS
	switch t.Version {
	case "TLS 1.0", "TLS 1.1", "SSLv3":
		if !scanned {
			r.add(Fail, "tls-version-obsolete", fmt.Sprintf("the server negotiated %s, which RFC 8996 deprecates", t.Version), adviceFor(r.Protocol).versions)
		}
	}
	if !t.ForwardSecrecy {
		r.add(Warn, "no-forward-secrecy", fmt.Sprintf("cipher %s has no forward secrecy: recorded traffic can be decrypted once the server key leaks", t.Cipher), "prefer ECDHE cipher suites")
	}
}

func (r *Report) judgeCert(now time.Time) {
	c := r.Cert
	if c == nil {
		return
	}
	if c.SelfSigned {
		r.add(Fail, "cert-self-signed", "the certificate is self-signed: clients that verify will refuse it, clients that do not are open to interception", "use a certificate from a public CA (or your private CA, and distribute it)")
	}
	if !c.Trusted {
		r.add(Fail, "cert-untrusted", "the certificate chain does not lead to a trusted root: "+c.TrustError, "serve the full chain from a trusted CA; pass --ca for a private CA")
	}
	if !c.NameMatch {
		r.add(Fail, "cert-name-mismatch", fmt.Sprintf("the certificate is not valid for %q (it names %s)", r.TLS.ServerName, strings.Join(c.Names, ", ")), "issue a certificate that includes the host name clients connect to")
	}
	switch {
	case c.Expired:
		r.add(Fail, "cert-expired", fmt.Sprintf("the certificate expired on %s", c.NotAfter.Format(time.DateOnly)), "renew the certificate")
	case now.Before(c.NotBefore):
		r.add(Fail, "cert-not-yet-valid", fmt.Sprintf("the certificate is valid only from %s", c.NotBefore.Format(time.RFC3339)), "check the server's clock and the certificate")
	case c.NotAfter.Sub(now) < ExpiryWarning:
		r.add(Warn, "cert-expires-soon", fmt.Sprintf("the certificate expires in %d days (%s)", c.DaysLeft, c.NotAfter.Format(time.DateOnly)), "renew the certificate")
	}
	switch {
	case c.KeyType == "RSA" && c.KeyBits < 2048:
		r.add(Fail, "cert-weak-key", fmt.Sprintf("RSA key of %d bits (at least 2048 expected)", c.KeyBits), "use a 2048-bit or larger RSA key, or ECDSA P-256")
	case c.KeyType == "ECDSA" && c.KeyBits < 256:
		r.add(Fail, "cert-weak-key", fmt.Sprintf("ECDSA key of %d bits", c.KeyBits), "use ECDSA P-256 or larger")
	}
	if strings.Contains(c.Signature, "SHA1") || strings.Contains(c.Signature, "MD5") {
		r.add(Fail, "cert-weak-signature", "the certificate is signed with "+c.Signature, "reissue the certificate with SHA-256")
	}
}

// judgeAuthAndCaps reports login offered before TLS and how the
// capabilities changed over TLS.
func (r *Report) judgeAuthAndCaps(res *starttls.Result, mode starttls.Mode) {
	if mode != starttls.ModeImplicit && len(res.AuthBefore) > 0 {
		r.add(Fail, "auth-before-tls", fmt.Sprintf("the server offers login before TLS (%s): passwords can be sent in plaintext and stolen", strings.Join(res.AuthBefore, ", ")),
			adviceFor(r.Protocol).authBeforeTLS)
	}
	if res.UpgradeRequired && mode != starttls.ModeImplicit {
		r.add(Info, "starttls-required", "the server marks the upgrade mandatory: clients cannot go on in plaintext", "")
	}
	if res.OfferedAfterTLS && !adviceFor(r.Protocol).staticOffer {
		r.add(Warn, "starttls-offered-after-tls", "the server still advertises the upgrade inside TLS (RFC 3207 §4.2 forbids it for SMTP, and a client that believes it may try to upgrade twice)", "")
	}
	if res.Upgraded && res.TLS != nil && mode != starttls.ModeImplicit {
		// A protocol without capabilities before TLS (PostgreSQL) has
		// nothing to read again.
		if !res.CapsReread && len(res.CapsBefore) > 0 && !adviceFor(r.Protocol).capsOnce {
			r.add(Warn, "caps-not-reread", "the capabilities could not be read again over TLS", "")
		} else if added := diff(res.AuthAfter, res.AuthBefore); len(added) > 0 {
			r.add(Info, "auth-after-tls", "login mechanisms offered only inside TLS: "+strings.Join(added, ", "), "")
		}
	}
	if res.Upgraded && res.TLS != nil && len(res.AuthAfter) == 0 && !adviceFor(r.Protocol).noLoginList {
		r.add(Info, "no-login-after-tls", "no login mechanism is offered even inside TLS", "")
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func (r *Report) finish() {
	if r.Verdict == Error {
		return
	}
	r.Verdict = Pass
	for _, f := range r.Findings {
		switch f.Severity {
		case Fail:
			r.Verdict = Fails
		case Warn:
			if r.Verdict == Pass {
				r.Verdict = Warns
			}
		}
	}
}

// Has reports whether the report contains a finding with id.
func (r *Report) Has(id string) bool {
	for _, f := range r.Findings {
		if f.ID == id {
			return true
		}
	}
	return false
}

func probeInjection(ctx context.Context, t *starttls.Target, base *dial.Options, timeout, wait time.Duration) *InjectionInfo {
	o := *base
	o.Client.Transcript = nil
	o.Client.ProbeInjection = true
	o.Client.InjectionWait = wait
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sess, res, err := dial.Dial(cctx, t, &o)
	if sess != nil {
		sess.Close()
	}
	if res != nil && res.Injection == nil && err == nil {
		return &InjectionInfo{Note: "the " + t.Scheme.Protocol + " client has no injection probe (no pipelined command stream to test)"}
	}
	info := &InjectionInfo{Tested: true}
	if res != nil && res.Injection != nil {
		p := res.Injection
		info.Sent, info.Reply, info.Vulnerable = p.Sent, p.Reply, p.Vulnerable
		switch {
		case p.Vulnerable:
			info.Note = "the injected command was answered inside TLS"
		case p.Closed:
			info.Note = "the server closed the connection (safe)"
		case p.Err != "":
			info.Note = p.Err
		default:
			info.Note = "no answer to the injected command (safe)"
		}
	}
	// A probe that got its answer (a refusal, a plaintext reply) is
	// complete even if the connection then failed: no need to say so.
	answered := res != nil && res.Injection != nil && (res.Injection.Closed || res.Injection.Reply != "")
	if err != nil && !info.Vulnerable && !answered {
		info.Note = strings.TrimSpace(info.Note + " (probe connection: " + err.Error() + ")")
		if res == nil || res.Injection == nil {
			info.Tested = false
		}
	}
	return info
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func transcriptLines(t *starttls.Transcript) []TranscriptLine {
	evs := t.Events()
	if len(evs) == 0 {
		return nil
	}
	start := evs[0].Time
	out := make([]TranscriptLine, len(evs))
	for i, e := range evs {
		out[i] = TranscriptLine{T: e.Time.Sub(start).Seconds(), Dir: e.Dir.String(), TLS: e.TLS, Text: starttls.Escape(e.Text)}
	}
	return out
}

// isTimeout tells a server that did not answer in time (or a dial that
// did not complete) from one that answered with a temporary refusal.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
