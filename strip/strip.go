package strip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
	"github.com/starttls/starttls/internal/certs"
)

// Defaults of Config.
const (
	DefaultWait           = time.Second
	DefaultClientTimeout  = 30 * time.Second
	DefaultSessionTimeout = 5 * time.Minute
)

// Config sets up a Simulator.
type Config struct {
	// Protocol is a scheme name of starttls.Schemes: smtp, submission,
	// imaps, … An implicit-TLS scheme has only the certificate attacks.
	Protocol string
	// Upstream is the real server, host:port.
	Upstream string
	// UpstreamName is the name checked in the upstream's certificate and
	// shown in the greeting; empty means the host part of Upstream.
	UpstreamName string
	// UpstreamTLS verifies the upstream (RootCAs); nil means the system
	// roots. It is cloned, never modified.
	UpstreamTLS *tls.Config
	// Attack is a Plan name: one attack, "attack/variant" or "all".
	Attack string
	// Certificate is the attacker's certificate, presented by
	// response-injection, command-injection, downgrade and the wrong-name
	// form of untrusted-cert. nil means a generated self-signed
	// certificate (and, for wrong-name, one for another name).
	Certificate *tls.Certificate
	// Wait is how long the simulator watches for the client's reaction:
	// the delay of the first answer inside TLS (response-injection), the
	// wait for application data and for the server's unsolicited answer.
	// 0 means DefaultWait.
	Wait time.Duration
	// ClientTimeout bounds the wait for each client command; 0 means
	// DefaultClientTimeout.
	ClientTimeout time.Duration
	// SessionTimeout bounds a whole connection; 0 means
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	// Logger receives the simulator's own problems at debug level.
	Logger *slog.Logger
}

// Simulator applies the planned attacks to successive connections and
// keeps one Entry per connection. It is safe for concurrent use.
type Simulator struct {
	cfg    Config
	scheme starttls.Scheme
	mitm   dial.MITM
	steps  []Step
	name   string // upstream name
	next   atomic.Uint64

	selfSigned, wrongName, attacker tls.Certificate
	wrongNameAbout, attackerAbout   string

	// OnEntry, if set, is called with each finished connection's entry.
	// Set it before serving.
	OnEntry func(Entry)

	mu      sync.Mutex
	entries []Entry
	dropped int
}

// MaxEntries bounds the entries a Simulator keeps; later connections are
// still attacked and passed to OnEntry, and counted by Dropped.
const MaxEntries = 10000

// Dropped returns how many entries were not kept past MaxEntries.
func (s *Simulator) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// New checks cfg and prepares the certificates.
func New(cfg Config) (*Simulator, error) {
	sc, ok := starttls.LookupScheme(cfg.Protocol)
	if !ok {
		return nil, fmt.Errorf("strip: unknown protocol %q (a scheme name: smtp, submission, imap, pop3s, …)", cfg.Protocol)
	}
	m, err := dial.MITMFor(sc.Protocol)
	if err != nil {
		return nil, fmt.Errorf("strip: %w", err)
	}
	steps, err := Plan(cfg.Attack)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(cfg.Upstream)
	if err != nil || host == "" {
		return nil, fmt.Errorf("strip: upstream %q is not host:port", cfg.Upstream)
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.ClientTimeout <= 0 {
		cfg.ClientTimeout = DefaultClientTimeout
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Simulator{cfg: cfg, scheme: sc, mitm: m, steps: steps, name: cfg.UpstreamName}
	if s.name == "" {
		s.name = host
	}
	if s.selfSigned, err = certs.SelfSigned(certs.Leaf{Names: []string{s.name}}); err != nil {
		return nil, fmt.Errorf("strip: %w", err)
	}
	s.attacker, s.attackerAbout = s.selfSigned, "a self-signed certificate for "+s.name
	s.wrongNameAbout = "a self-signed certificate for wrong-name.invalid"
	if s.wrongName, err = certs.SelfSigned(certs.Leaf{Names: []string{"wrong-name.invalid"}}); err != nil {
		return nil, fmt.Errorf("strip: %w", err)
	}
	if cfg.Certificate != nil {
		about := "the --cert certificate"
		if leaf, err := x509.ParseCertificate(cfg.Certificate.Certificate[0]); err == nil {
			about = fmt.Sprintf("the --cert certificate (%s, issued by %s)", strings.Join(leaf.DNSNames, ","), leaf.Issuer.CommonName)
		}
		s.attacker, s.attackerAbout = *cfg.Certificate, about
		s.wrongName, s.wrongNameAbout = *cfg.Certificate, about
	}
	return s, nil
}

// Steps returns the plan: the attack each successive connection gets.
func (s *Simulator) Steps() []Step { return append([]Step(nil), s.steps...) }

// Entries returns the entries of the finished connections.
func (s *Simulator) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry(nil), s.entries...)
}

// Serve accepts connections on l until ctx ends (it then closes l, waits
// for the connections in progress to end, which ctx's end also cuts
// short) and returns nil; or it returns the accept error.
func (s *Simulator) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of descriptors and the like: wait and go on.
			s.cfg.Logger.Debug("strip: accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		wg.Go(func() { s.ServeConn(ctx, conn) })
	}
}

// ServeConn applies the next planned attack to conn, closes it and
// returns the connection's entry (also kept for Entries).
func (s *Simulator) ServeConn(ctx context.Context, conn net.Conn) Entry {
	step := s.steps[(s.next.Add(1)-1)%uint64(len(s.steps))]
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SessionTimeout)
	defer cancel()
	start := time.Now()
	c := &session{s: s, step: step, rec: newRecorder(conn, s.mitm.Command)}
	c.e = Entry{
		Attack: step.Attack, Variant: step.Variant, Protocol: s.scheme.Name,
		Client: conn.RemoteAddr().String(), Subject: "client", Start: start.UTC(),
	}
	func() {
		defer func() {
			if v := recover(); v != nil {
				s.cfg.Logger.Error("strip: panic", "panic", v)
				c.rec.note("internal error: %v", v)
				c.e.Note = fmt.Sprintf("strip failed on this connection (%v): the verdict is incomplete", v)
			}
		}()
		defer conn.Close()
		c.run(ctx)
	}()
	c.finish()
	c.e.Duration = time.Since(start).Seconds()
	s.mu.Lock()
	if len(s.entries) < MaxEntries {
		s.entries = append(s.entries, c.e)
	} else {
		s.dropped++
	}
	s.mu.Unlock()
	if s.OnEntry != nil {
		s.OnEntry(c.e)
	}
	return c.e
}

// session is one client connection under one attack.
type session struct {
	s    *Simulator
	step Step
	rec  *recorder
	e    Entry

	mu    sync.Mutex
	creds []starttls.Credentials

	upstream []string // the upstream dialog, formatted
}

func (c *session) sawCredentials(cr starttls.Credentials) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.creds) < 20 {
		c.creds = append(c.creds, cr)
	}
}

func (c *session) finding(format string, args ...any) {
	c.e.Findings = append(c.e.Findings, fmt.Sprintf(format, args...))
}

// notApplicable returns why the step cannot apply to this protocol, or "".
func (c *session) notApplicable() string {
	sc := c.s.scheme
	switch c.step.Attack {
	case StripCapability, RejectUpgrade, ResponseInjection, CommandInjection:
		if sc.Implicit {
			return fmt.Sprintf("%s speaks TLS from the first byte: there is no upgrade to strip, refuse or inject into", sc.Name)
		}
	}
	if (c.step.Attack == StripCapability || c.step.Attack == RejectUpgrade) && c.s.mitm.Command == nil && !c.s.mitm.Credentials {
		return fmt.Sprintf("%s has neither command lines to read nor a password login to report: strip cannot tell whether the peer goes on in plaintext", sc.Protocol)
	}
	if c.step.Attack == ResponseInjection && c.s.mitm.Forged == nil {
		return c.s.mitm.ForgedNA
	}
	return ""
}

// options are the server settings every attack starts from.
func (c *session) options() starttls.ServerOptions {
	return starttls.ServerOptions{
		Hostname:            c.s.name,
		Implicit:            c.s.scheme.Implicit,
		AllowPlaintextLogin: true, // an attacker wants the password
		ReadTimeout:         c.s.cfg.ClientTimeout,
		Logger:              c.s.cfg.Logger,
		OnCredentials:       c.sawCredentials,
	}
}

func (c *session) run(ctx context.Context) {
	if why := c.notApplicable(); why != "" {
		c.e.Verdict, c.e.Note = NotApplicable, why
		c.rec.note("not applicable: %s", why)
		return
	}
	o := c.options()
	switch c.step.Attack {
	case StripCapability:
		c.rec.note("attack: the upgrade is not offered")
		c.serve(ctx, o)
	case RejectUpgrade:
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{c.s.attacker}}
		o.RefuseUpgrade = true
		o.RefusePermanently = c.step.Variant == Permanent
		c.rec.note("attack: the upgrade is offered and refused with a %s error", c.step.Variant)
		c.serve(ctx, o)
	case UntrustedCert:
		cert, about := c.s.selfSigned, "a self-signed certificate for "+c.s.name
		if c.step.Variant == WrongName {
			cert, about = c.s.wrongName, c.s.wrongNameAbout
		}
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		c.rec.note("attack: TLS with %s", about)
		c.tlsAttack(ctx, o, about, relayMode{})
	case Downgrade:
		o.TLSConfig = obsoleteTLS(c.s.attacker)
		c.rec.note("attack: only TLS 1.0 and 1.1 with CBC, 3DES and RC4 suites, with %s", c.s.attackerAbout)
		c.tlsAttack(ctx, o, c.s.attackerAbout, relayMode{})
	case ResponseInjection:
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{c.s.attacker}}
		o.InjectAfterGoAhead = func(cmd string) []byte {
			b := c.s.mitm.Forged(cmd)
			c.rec.note("injected after the go-ahead: %q", string(b))
			return b
		}
		c.tlsAttack(ctx, o, c.s.attackerAbout, relayMode{watch: true})
	case CommandInjection:
		c.e.Subject = "server"
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{c.s.attacker}}
		c.rec.note("attack: a command pipelined after the upgrade command, toward %s", c.s.cfg.Upstream)
		c.tlsAttack(ctx, o, c.s.attackerAbout, relayMode{probe: true})
	case Pass:
		c.pass(ctx)
	}
}

// serve plays the whole session as the protocol's server.
func (c *session) serve(ctx context.Context, o starttls.ServerOptions) {
	err := c.s.mitm.Server(o).ServeConn(ctx, c.rec)
	if err != nil {
		c.rec.note("session ended: %v", err)
	}
}

// obsoleteTLS offers only TLS 1.0 and 1.1 with suites a current client
// refuses.
func obsoleteTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS11,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA,
			tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA,
			tls.TLS_RSA_WITH_AES_128_CBC_SHA,
			tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
			tls.TLS_RSA_WITH_RC4_128_SHA,
		},
	}
}

// tlsAttack serves the dialog up to the upgrade with the attack's server,
// then relays the TLS session to the upstream, watching the client. With
// mode.probe (command-injection) the server is probed at once on a
// connection of its own, whatever the client does.
func (c *session) tlsAttack(ctx context.Context, o starttls.ServerOptions, certAbout string, mode relayMode) {
	var probe *probeResult
	done := make(chan struct{})
	if mode.probe {
		go func() {
			defer close(done)
			probe = c.probeServer(ctx)
		}()
	} else {
		close(done)
	}
	defer func() {
		<-done
		if probe != nil {
			c.judgeProbe(probe)
		}
	}()
	tconn, err := c.s.mitm.Server(o).Handshake(ctx, c.rec)
	if err != nil {
		c.rec.note("no TLS session with the client: %v", err)
		if c.rec.startedTLS() {
			c.finding("the client refused the TLS session (%s)", short(err))
			if c.step.Attack != UntrustedCert && c.step.Attack != CommandInjection && strings.Contains(err.Error(), "certificate") {
				c.e.Note = "not exercised: the client refused strip's certificate before the attack could show; give --cert/--key with a certificate the client trusts"
			}
		} else if c.step.Attack == ResponseInjection {
			c.finding("the client did not start TLS after the go-ahead with forged replies: it noticed them (%s)", short(err))
		} else {
			c.finding("the client did not start TLS (%s)", short(err))
		}
		return
	}
	cs := tconn.ConnectionState()
	c.rec.note("TLS session with the client: %s, %s, %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), certAbout)
	st := c.relayUpstream(ctx, tconn, relayMode{watch: mode.watch, writes: c.s.mitm.Command == nil})
	c.judgeTLS(cs, certAbout, st)
}

// probeResult is the command-injection probe of the upstream.
type probeResult struct {
	inj        *starttls.InjectionProbe
	err        error
	transcript []string
}

// probeServer runs the protocol client's own injection probe
// (ClientOptions.ProbeInjection, CVE-2011-0411) against the upstream on a
// connection of its own: the client knows how its protocol's servers
// answer a refused pipelined command.
func (c *session) probeServer(ctx context.Context) *probeResult {
	up, err := dial.Upgrader(c.s.scheme.Protocol)
	if err != nil {
		return &probeResult{err: err}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", c.s.cfg.Upstream)
	if err != nil {
		return &probeResult{err: err}
	}
	tr := &starttls.Transcript{}
	s, res, err := up(ctx, raw, &starttls.ClientOptions{
		Mode: starttls.ModeRequired, ServerName: c.s.name, TLSConfig: c.s.cfg.UpstreamTLS,
		Transcript: tr, ProbeInjection: true, InjectionWait: c.s.cfg.Wait,
	})
	if s != nil {
		s.Close()
	}
	p := &probeResult{err: err}
	if res != nil {
		p.inj = res.Injection
	}
	for _, ev := range tr.Events() {
		p.transcript = append(p.transcript, "probe "+ev.Format(tr.Start))
	}
	return p
}

// judgeProbe records the command-injection verdict on the server.
func (c *session) judgeProbe(p *probeResult) {
	c.upstream = append(c.upstream, p.transcript...)
	inj := p.inj
	switch {
	case inj == nil || inj.Err != "" && !inj.Vulnerable:
		why := "no probe made"
		if inj != nil && inj.Err != "" {
			why = inj.Err
		} else if p.err != nil {
			why = short(p.err)
		}
		c.e.Note = "not exercised toward the server: " + why
	case inj.Vulnerable:
		c.e.ActedOnInjection = true
		c.finding("the server answered %q, pipelined after the upgrade command in plaintext, inside TLS: %q", inj.Sent, starttls.Escape(inj.Reply))
	case inj.Closed:
		c.finding("the server closed the connection rather than run %q, pipelined after the upgrade command", inj.Sent)
	default:
		c.finding("the server did not run %q, pipelined after the upgrade command, inside TLS", inj.Sent)
	}
}

// judgeTLS turns what the relay saw into the entry's fields.
func (c *session) judgeTLS(cs tls.ConnectionState, certAbout string, st *relayStats) {
	switch c.step.Attack {
	case UntrustedCert, Downgrade:
		what := certAbout
		if c.step.Attack == Downgrade {
			what = tls.VersionName(cs.Version) + " with " + tls.CipherSuiteName(cs.CipherSuite)
		}
		if st.clientBytes > 0 {
			c.e.AcceptedBadCert = true
			c.finding("the client completed the TLS handshake with %s and sent %d bytes of application data", what, st.clientBytes)
		} else {
			c.finding("the TLS handshake with %s completed but the client sent no application data", what)
		}
	case ResponseInjection:
		switch {
		case st.early >= c.earlyLimit():
			c.e.ActedOnInjection = true
			c.finding("the client sent %d command lines inside TLS before any real answer: it took the forged reply for an answer", st.early)
		case st.clientBytes > 0:
			c.finding("the client sent its first command inside TLS and waited %s for the real answer", c.s.cfg.Wait)
		default:
			c.finding("the client completed the TLS handshake but sent nothing: not exercised")
		}
	}
	if st.upstreamErr != nil && c.e.Note == "" {
		c.e.Note = "upstream unavailable: " + short(st.upstreamErr) + "; the client was observed for " + c.s.cfg.Wait.String() + " only"
	}
}

// earlyLimit is how many command lines inside TLS before the first real
// answer show that the client took the forged reply for it.
func (c *session) earlyLimit() int {
	if c.s.mitm.ServerFirst {
		return 1
	}
	return 2
}

// pass relays the client to the upstream untouched.
func (c *session) pass(ctx context.Context) {
	c.rec.note("control: relayed untouched to %s", c.s.cfg.Upstream)
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", c.s.cfg.Upstream)
	if err != nil {
		c.rec.note("upstream unavailable: %v", err)
		c.e.Note = "upstream unavailable: " + short(err)
		return
	}
	st := &relayStats{}
	relay(ctx, c.rec, up, relayMode{}, c.s.cfg.Wait, st)
	if c.rec.startedTLS() {
		c.finding("the client started TLS with the upstream")
	}
}

// finish fills the evidence fields common to every attack and decides.
func (c *session) finish() {
	c.mu.Lock()
	creds := append([]starttls.Credentials(nil), c.creds...)
	c.mu.Unlock()
	secrets := make([]string, 0, len(creds))
	for _, cr := range creds {
		secrets = append(secrets, cr.Secret)
		c.e.CredentialsSeen = append(c.e.CredentialsSeen, Credential{
			Mechanism: cr.Mechanism, User: cr.User, Secret: starttls.MaskSecret(cr.Secret), TLS: cr.TLS,
		})
		where := "in plaintext"
		if cr.TLS {
			where = "inside the attacker's TLS"
		}
		c.finding("the client sent credentials %s: %s user %q password %s", where, cr.Mechanism, cr.User, starttls.MaskSecret(cr.Secret))
	}
	if c.e.Verdict != NotApplicable {
		if c.s.mitm.Command != nil {
			var sent []string
			for _, l := range c.rec.clientLines() {
				if verb, idle := c.s.mitm.Command(l); !idle {
					if verb == "" {
						verb = "(data)"
					}
					sent = append(sent, verb)
				}
			}
			if len(sent) > 0 && c.step.Attack != CommandInjection {
				c.e.PlaintextContinued = true
				c.finding("the client went on in plaintext: %s", strings.Join(dedupe(sent), ", "))
			}
		}
		if c.s.mitm.Command == nil && (c.step.Attack == StripCapability || c.step.Attack == RejectUpgrade) && len(creds) == 0 {
			c.finding("%s is not line-based: going on in plaintext is judged from credentials only (%d plaintext bytes from the client)", c.s.scheme.Protocol, c.rec.plainBinary())
		}
		if !c.e.PlaintextContinued && len(creds) == 0 && len(c.e.Findings) == 0 {
			c.finding("the client sent nothing in plaintext beyond discovery, upgrade and quit")
		}
	}
	c.e.Evidence = append(c.rec.evidence(secrets), c.upstream...)
	c.e.decide()
	if c.e.Subject == "server" && c.e.Verdict == Vulnerable && !c.e.ActedOnInjection {
		// The client's own behaviour is not what command-injection judges.
		c.e.Verdict = Safe
	}
	if c.e.Findings == nil {
		c.e.Findings = []string{}
	}
	if c.e.CredentialsSeen == nil {
		c.e.CredentialsSeen = []Credential{}
	}
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// short renders an error on one line, bounded.
func short(err error) string {
	s := starttls.Escape(err.Error())
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
