// Package proxy is a TLS gateway: it adds TLS in front of plaintext
// servers and enforces TLS on the way out to upstream servers, for every
// protocol in the project's table, reusing each protocol package's own
// dialog (reached through dial.Gateways, so that new protocols plug in
// without changes here).
//
// A Listener is one of three kinds:
//
//   - TLS termination (Protocol "tcp", Implicit): TLS from the first byte,
//     then a byte-exact relay to a plaintext Backend — what stunnel and
//     HAProxy do. With a protocol name and Implicit, the same for a
//     TLS-on-connect port (465, 993, 995, …): the backend greets the client.
//   - Server side STARTTLS (a protocol name, Backend, not Implicit): the
//     protocol's Server.Handshake serves the pre-TLS dialog itself
//     (advertises the upgrade, refuses login and everything else before TLS),
//     upgrades, then the proxy connects the backend, skips its greeting
//     (the client was greeted already) and relays.
//   - Client side (Upstream): a plaintext listener for legacy clients; the
//     proxy connects the upstream with the protocol's client dialog, mode
//     required or implicit, verifies the certificate, shows the client the
//     upstream's greeting and relays. A failed upgrade closes the client
//     with the protocol's "service unavailable" reply, never a plaintext
//     relay. For SMTP the upstream may be a mail domain (UpstreamDomain):
//     each client goes to one of its MX hosts under the domain's MTA-STS
//     and DANE policy (package maildomain), with TLS always.
//
// The relay holds no buffer for an idle connection: it reads without
// blocking into a 16 KiB buffer borrowed from a pool and waits for the
// socket without it; on Linux an idle connection keeps one goroutine (the
// other direction is parked in an epoll instance), elsewhere two.
// Half-closes are propagated (close_notify and FIN), every phase has a
// deadline and every pre-TLS line a limit.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
	"github.com/starttls/starttls/internal/serve"
	"github.com/starttls/starttls/internal/textline"
	"github.com/starttls/starttls/maildomain"
)

// Defaults for the zero values of Listener's limits.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultDialTimeout      = 10 * time.Second
)

// ErrUnsupported is wrapped by Check when a protocol's dialog cannot be
// proxied on the side asked for.
var ErrUnsupported = errors.New("proxy: not supported")

// Listener configures one listening address.
type Listener struct {
	// Name identifies the listener in logs and metrics; empty means Listen.
	Name string
	// Listen is the address to listen on, "127.0.0.1:2525".
	Listen string
	// Protocol is "tcp" (no protocol dialog; needs Implicit) or a protocol
	// name of dial.Gateways: "smtp", "imap", "pop3", …
	Protocol string
	// Implicit makes a server-side listener speak TLS from the first byte.
	Implicit bool
	// Backend is the plaintext server behind a server-side listener.
	Backend string
	// Upstream is the TLS server behind a client-side listener; set
	// exactly one of Backend, Upstream and UpstreamDomain.
	Upstream string
	// UpstreamDomain makes a client-side SMTP listener deliver to a mail
	// domain: for each client the proxy finds the domain's MX hosts and
	// their MTA-STS and DANE policy (package maildomain) and connects one
	// that meets the policy as DomainMode demands, always with TLS; the
	// client is greeted with that host's greeting, or gets 421 when no
	// host qualifies.
	UpstreamDomain string
	// DomainMode is required with UpstreamDomain (and applies only there).
	DomainMode DomainMode
	// DomainOptions configure UpstreamDomain's lookups and sessions
	// (resolver, roots, MTA-STS port, SMTP port, EHLO name); nil means
	// maildomain's defaults. It is copied. Without an MTASTS cache the
	// Server keeps one, so that a policy is fetched once per max_age,
	// not at every connection; an empty LocalName means Hostname and a
	// zero DialTimeout the listener's.
	DomainOptions *maildomain.Options
	// Mode is the client side's security mode: starttls.ModeRequired (the
	// zero value ModeAuto means that) or starttls.ModeImplicit.
	Mode starttls.Mode
	// ServerName is the name verified in the upstream's certificate; empty
	// means the host part of Upstream.
	ServerName string
	// ClientTLS holds the client side's roots (nil: the system's); it is
	// cloned, never modified.
	ClientTLS *tls.Config
	// TLS is the server side's configuration: set its Certificates or
	// GetCertificate (Certificates.Config does both: SNI and reload). It is
	// cloned, and session tickets stay on.
	TLS *tls.Config
	// Hostname is the name in the pre-TLS greeting (with UpstreamDomain:
	// the EHLO name given to the MX hosts); empty means "localhost"
	// (starttls.LocalName() for EHLO).
	Hostname string
	// RequireTLS refuses everything but the upgrade before TLS. The
	// protocol servers' Handshake already does so (there is no plaintext
	// path to the backend), so it is always in force; false is refused by
	// Check rather than silently ignored.
	RequireTLS *bool
	// AcceptProxy expects a PROXY protocol header (v1 or v2) from a load
	// balancer before anything else; client addresses in logs, limits and
	// a sent header are then the ones it carries.
	AcceptProxy bool
	// SendProxy sends a PROXY protocol header of that version (1 or 2) to
	// the backend or upstream; 0 sends none.
	SendProxy int
	// MaxConns bounds concurrent connections; 0 means no bound.
	MaxConns int
	// RatePerIP bounds new connections per second from one client address
	// (after PROXY protocol), with bursts of RateBurst (0: max(1, rate));
	// 0 means no bound.
	RatePerIP float64
	RateBurst int
	// HandshakeTimeout bounds everything before the relay: PROXY header,
	// pre-TLS dialog, TLS handshake, backend connection and greeting; 0
	// means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a relayed connection with no byte moving either
	// way for that long; 0 means DefaultIdleTimeout, negative none.
	IdleTimeout time.Duration
	// DialTimeout bounds the connection to the backend or upstream; 0
	// means DefaultDialTimeout (within HandshakeTimeout).
	DialTimeout time.Duration
	// MaxLineLength bounds a pre-TLS command line; 0 means the protocol's
	// default.
	MaxLineLength int
}

func (l *Listener) name() string {
	if l.Name != "" {
		return l.Name
	}
	return l.Listen
}

func (l *Listener) handshakeTimeout() time.Duration {
	if l.HandshakeTimeout <= 0 {
		return DefaultHandshakeTimeout
	}
	return l.HandshakeTimeout
}

func (l *Listener) idleTimeout() time.Duration {
	switch {
	case l.IdleTimeout < 0:
		return 0
	case l.IdleTimeout == 0:
		return DefaultIdleTimeout
	}
	return l.IdleTimeout
}

func (l *Listener) dialTimeout() time.Duration {
	if l.DialTimeout <= 0 {
		return DefaultDialTimeout
	}
	return l.DialTimeout
}

// clientSide reports whether the listener is a plaintext listener in front
// of a TLS upstream (a server or a mail domain).
func (l *Listener) clientSide() bool { return l.Upstream != "" || l.UpstreamDomain != "" }

// Check validates the listener: addresses, the protocol and whether its
// dialog can be proxied on this side, certificates, modes and limits. A
// proxy refuses to start with an invalid listener rather than fail at the
// first client.
func (l *Listener) Check() error {
	if err := l.check(); err != nil {
		return fmt.Errorf("listener %q: %w", l.name(), err)
	}
	return nil
}

func (l *Listener) check() error {
	if _, _, err := net.SplitHostPort(l.Listen); err != nil {
		return fmt.Errorf("listen address %q: %v", l.Listen, err)
	}
	n := 0
	for _, a := range []string{l.Backend, l.Upstream, l.UpstreamDomain} {
		if a != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("set a backend (server side: TLS in front of a plaintext server), an upstream or an upstream_domain (client side)")
	case n > 1:
		return errors.New("set one of backend, upstream and upstream_domain")
	case !l.domainSide() && (l.DomainMode != "" || l.DomainOptions != nil):
		return errors.New("a policy mode (dane, mta-sts, policy) and the mail-domain options apply to upstream_domain only")
	}
	for _, a := range []string{l.Backend, l.Upstream} {
		if a == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("address %q: want HOST:PORT", a)
		}
	}
	if l.RequireTLS != nil && !*l.RequireTLS {
		return errors.New("require_tls = false is not supported: the proxy serves the pre-TLS dialog itself and has no plaintext path to the backend")
	}
	if strings.ContainsAny(l.Hostname, " \t\r\n\x00") {
		return fmt.Errorf("hostname %q: not a host name", l.Hostname)
	}
	if l.SendProxy != 0 && l.SendProxy != 1 && l.SendProxy != 2 {
		return fmt.Errorf("send_proxy = %d: want 1 or 2 (or 0 for none)", l.SendProxy)
	}
	if l.MaxConns < 0 || l.RatePerIP < 0 || l.RateBurst < 0 || l.MaxLineLength < 0 {
		return errors.New("limits must not be negative")
	}
	switch {
	case l.domainSide():
		return l.checkDomain()
	case l.clientSide():
		return l.checkClient()
	}
	return l.checkServer()
}

func (l *Listener) checkServer() error {
	if l.TLS == nil || (len(l.TLS.Certificates) == 0 && l.TLS.GetCertificate == nil && l.TLS.GetConfigForClient == nil) {
		return errors.New("a server-side listener needs a certificate and key")
	}
	if l.Mode != starttls.ModeAuto {
		return errors.New("mode applies to the client side (upstream) only; use implicit for a TLS-on-connect listener")
	}
	if l.Protocol == "tcp" {
		if !l.Implicit {
			return errors.New(`protocol "tcp" has no STARTTLS dialog: set implicit`)
		}
		return nil
	}
	g, err := dial.Gateways(l.Protocol)
	if err != nil {
		return err
	}
	if !l.Implicit && g.NewServer == nil {
		return fmt.Errorf("%w: STARTTLS in front of a %s backend: %s (an implicit-TLS listener works)", ErrUnsupported, l.Protocol, g.ServerUnsupported)
	}
	return nil
}

func (l *Listener) checkClient() error {
	if l.Implicit {
		return errors.New("implicit applies to the server side; on the client side use mode = implicit")
	}
	switch l.Mode {
	case starttls.ModeAuto, starttls.ModeRequired, starttls.ModeImplicit:
	default:
		return fmt.Errorf("mode %v: the client side only upgrades with required or implicit, never plaintext or opportunistic", l.Mode)
	}
	if l.Protocol == "tcp" {
		if l.Mode != starttls.ModeImplicit {
			return errors.New(`protocol "tcp" has no STARTTLS dialog: use mode implicit`)
		}
		return nil
	}
	g, err := dial.Gateways(l.Protocol)
	if err != nil {
		return err
	}
	if g.ClientGreeting == nil {
		return fmt.Errorf("%w: client side for %s: %s", ErrUnsupported, l.Protocol, g.ClientUnsupported)
	}
	if _, err := dial.Upgrader(l.Protocol); err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return nil
}

// Server runs one Listener. Create it with New.
type Server struct {
	cfg     Listener
	gw      *dial.Gateway   // nil for "tcp"
	hs      dial.Handshaker // STARTTLS server side
	up      dial.UpgradeFunc
	tls     *tls.Config
	log     *slog.Logger
	metrics *Metrics
	labels  string
	limit   *limiter

	domain *maildomain.Options // UpstreamDomain's, shared by its connections

	// loop accepts and tracks the connections; a connection's handler
	// ends once its relay runs (the relay's goroutines call done), so
	// that the handshake goroutine's grown stack goes at once.
	loop serve.Loop
	mu   sync.Mutex
	n    int // connections now
}

// New checks cfg and returns a Server for it. log may be nil (discard);
// m may be nil (no metrics).
func New(cfg Listener, log *slog.Logger, m *Metrics) (*Server, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log.With("listener", cfg.name()), metrics: m}
	s.loop.OnPanic = func(conn net.Conn, v any, stack []byte) {
		s.log.Error("proxy: panic serving a connection", "remote", conn.RemoteAddr().String(), "panic", v, "stack", string(stack))
	}
	s.labels = fmt.Sprintf(`listener=%q,protocol=%q`, cfg.name(), cfg.Protocol)
	if cfg.RatePerIP > 0 {
		s.limit = newLimiter(cfg.RatePerIP, cfg.RateBurst)
	}
	if cfg.Protocol != "tcp" {
		s.gw, _ = dial.Gateways(cfg.Protocol)
	}
	if cfg.domainSide() {
		s.domain = cfg.domainOptions()
		return s, nil
	}
	if cfg.clientSide() {
		if s.gw != nil {
			s.up, _ = dial.Upgrader(cfg.Protocol)
		}
		return s, nil
	}
	s.tls = cfg.TLS.Clone()
	s.tls.SessionTicketsDisabled = false
	if s.gw != nil && !cfg.Implicit {
		s.hs = s.gw.NewServer(starttls.ServerOptions{
			TLSConfig:     s.tls,
			Hostname:      cfg.Hostname,
			ReadTimeout:   cfg.handshakeTimeout(),
			MaxLineLength: cfg.MaxLineLength,
			Logger:        s.log,
		})
	}
	return s, nil
}

// Config returns the listener's configuration.
func (s *Server) Config() Listener { return s.cfg }

// ListenAndServe listens on the configured address and serves.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l until Close or Shutdown, then returns a
// non-nil error.
func (s *Server) Serve(l net.Listener) error {
	s.log.Info("proxy: listening", "addr", l.Addr().String(), "protocol", s.cfg.Protocol, "side", s.side())
	return serveErr(s.loop.ServeDetached(l, s.handle))
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.loop.Close() }

// Shutdown stops accepting, then waits for the connections to end until
// ctx is done, when it closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.loop.Shutdown(ctx); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	return nil
}

func (s *Server) side() string {
	if s.cfg.clientSide() {
		return "client"
	}
	if s.cfg.Implicit {
		return "implicit"
	}
	return "starttls"
}

// handle serves one accepted connection: everything up to the relay on
// this goroutine, then the relay on two new ones.
func (s *Server) handle(conn net.Conn, done func()) {
	start := time.Now()
	s.metrics.connOpened(s.labels)
	end := func() {
		s.metrics.connClosed(s.labels, time.Since(start))
		done()
	}
	if !s.admit() {
		s.metrics.refused(s.labels, "max_conns")
		s.log.Debug("proxy: refused", "reason", "max_conns", "remote", conn.RemoteAddr().String())
		end()
		return
	}
	client, backend, src, err := s.setup(conn)
	if err != nil {
		if src != nil {
			s.log.Debug("proxy: connection failed", "remote", src.String(), "err", err)
		}
		s.release()
		end()
		return
	}
	s.metrics.handshook(s.labels, time.Since(start))
	var st relayStats
	rstart := time.Now()
	relay(client, backend, s.cfg.idleTimeout(), &st, func(err error) {
		backend.Close()
		s.metrics.relayed(s.labels, st.up.Load(), st.down.Load(), time.Since(rstart))
		if err != nil && !errors.Is(err, errAborted) {
			s.log.Debug("proxy: relay ended", "remote", src.String(), "err", err)
		}
		s.release()
		end()
	})
}

// setup runs everything before the relay: PROXY header, limits, the
// pre-TLS dialog and handshake, the backend or upstream connection. It
// returns the client's address as the relay should log it (nil when the
// failure is already logged).
func (s *Server) setup(conn net.Conn) (client, backend net.Conn, src net.Addr, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.handshakeTimeout())
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(past) })
	client = newSock(conn)
	var dst net.Addr
	src, dst = conn.RemoteAddr(), conn.LocalAddr()
	if s.cfg.AcceptProxy {
		conn.SetReadDeadline(time.Now().Add(s.cfg.handshakeTimeout()))
		hdr, err := readProxyHeader(client)
		if err != nil {
			stop()
			s.metrics.failed(s.labels, "proxy_header")
			return nil, nil, src, err
		}
		if hdr.Src != nil {
			src, dst = hdr.Src, hdr.Dst
		}
	}
	if s.limit != nil && !s.limit.allow(hostOf(src), time.Now()) {
		stop()
		s.metrics.refused(s.labels, "rate")
		return nil, nil, src, errors.New("proxy: refused: per-IP rate")
	}
	switch {
	case s.cfg.domainSide():
		client, backend, err = s.setupDomainSide(ctx, stop, client, src)
	case s.cfg.clientSide():
		client, backend, err = s.setupClientSide(ctx, stop, client, src, dst)
	default:
		client, backend, err = s.setupServerSide(ctx, stop, client, src, dst)
	}
	return client, backend, src, err
}

func (s *Server) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.MaxConns > 0 && s.n >= s.cfg.MaxConns {
		return false
	}
	s.n++
	return true
}

func (s *Server) release() {
	s.mu.Lock()
	s.n--
	s.mu.Unlock()
}

// setupServerSide terminates TLS (implicit or after the pre-TLS dialog)
// and connects the plaintext backend.
func (s *Server) setupServerSide(ctx context.Context, stop func() bool, conn net.Conn, src, dst net.Addr) (net.Conn, net.Conn, error) {
	var tc *tls.Conn
	if s.hs != nil {
		var err error
		tc, err = s.hs.Handshake(ctx, conn)
		if err != nil {
			stop()
			s.metrics.failed(s.labels, failureReason(errors.Join(err, ctx.Err())))
			return nil, nil, err
		}
	} else {
		tc = tls.Server(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			s.metrics.failed(s.labels, failureReason(err))
			return nil, nil, fmt.Errorf("proxy: TLS handshake: %w", err)
		}
	}
	s.metrics.upgraded(s.labels)
	backend, err := s.dialBackend(ctx, s.cfg.Backend, src, dst)
	if err == nil && s.gw != nil && s.gw.SkipGreeting != nil && !s.cfg.Implicit {
		var rest []byte
		rest, err = s.gw.SkipGreeting(backend, s.cfg.MaxLineLength)
		if err == nil && len(rest) > 0 {
			_, err = tc.Write(rest)
		}
		if err != nil {
			backend.Close()
			err = fmt.Errorf("proxy: backend greeting: %w", err)
		}
	}
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		s.metrics.failed(s.labels, "backend")
		s.unavailable(tc, "backend unavailable")
		return nil, nil, err
	}
	conn.SetDeadline(time.Time{})
	backend.SetDeadline(time.Time{})
	return tc, backend, nil
}

// setupClientSide connects the upstream with TLS for a plaintext client.
func (s *Server) setupClientSide(ctx context.Context, stop func() bool, conn net.Conn, src, dst net.Addr) (net.Conn, net.Conn, error) {
	raw, err := s.dialBackend(ctx, s.cfg.Upstream, src, dst)
	if err != nil {
		stop()
		s.metrics.failed(s.labels, "upstream")
		s.unavailable(conn, "upstream unavailable")
		return nil, nil, err
	}
	host, _, _ := net.SplitHostPort(s.cfg.Upstream)
	opts := &starttls.ClientOptions{
		Mode:          s.cfg.Mode,
		TLSConfig:     s.cfg.ClientTLS,
		ServerName:    s.cfg.ServerName,
		MaxLineLength: s.cfg.MaxLineLength,
	}
	if opts.Mode == starttls.ModeAuto {
		opts.Mode = starttls.ModeRequired
	}
	if opts.ServerName == "" {
		opts.ServerName = host
	}
	var up net.Conn
	var greeting []byte
	if s.up == nil { // "tcp": TLS from the first byte, no dialog
		tc, herr := starttls.Handshake(ctx, raw, opts)
		up, err = tc, herr
	} else {
		var sess dial.Session
		var res *starttls.Result
		sess, res, err = s.up(ctx, raw, opts)
		if err == nil {
			up = textline.Unbuffered(sess.NetConn())
			greeting = s.gw.ClientGreeting(res)
		}
	}
	if err == nil && len(greeting) > 0 {
		_, err = conn.Write(greeting)
	}
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		raw.Close()
		s.metrics.failed(s.labels, failureReason(err))
		s.unavailable(conn, "TLS to the upstream server failed")
		return nil, nil, err
	}
	s.metrics.upgraded(s.labels)
	conn.SetDeadline(time.Time{})
	up.SetDeadline(time.Time{})
	return conn, up, nil
}

// unavailable answers the protocol's "service unavailable" (SMTP 421,
// IMAP BYE, …) on conn, briefly, before the loop closes it.
func (s *Server) unavailable(conn net.Conn, text string) {
	if s.gw == nil || s.gw.Unavailable == nil {
		return
	}
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	conn.Write(s.gw.Unavailable(text))
	if tc, ok := conn.(*tls.Conn); ok {
		tc.CloseWrite()
	}
}

// dialBackend connects addr and sends a PROXY header if configured.
func (s *Server) dialBackend(ctx context.Context, addr string, src, dst net.Addr) (net.Conn, error) {
	d := net.Dialer{Timeout: s.cfg.dialTimeout()}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if s.cfg.SendProxy != 0 {
		c.SetWriteDeadline(time.Now().Add(s.cfg.dialTimeout()))
		if _, err := c.Write(proxyHeader(s.cfg.SendProxy, src, dst)); err != nil {
			c.Close()
			return nil, fmt.Errorf("proxy: PROXY header: %w", err)
		}
		c.SetWriteDeadline(time.Time{})
	}
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	return newSock(c), nil
}

// failureReason classifies a failed handshake for the metrics.
func failureReason(err error) string {
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	switch {
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	case errors.Is(err, starttls.ErrTLSOnPlaintextPort):
		return "tls_on_plaintext_port"
	case errors.Is(err, starttls.ErrUpgradeNotOffered):
		return "upgrade_not_offered"
	case errors.Is(err, starttls.ErrUpgradeRefused):
		return "upgrade_refused"
	case errors.Is(err, starttls.ErrPlaintextAfterUpgrade):
		return "plaintext_after_upgrade"
	case errors.As(err, &cv):
		return "certificate"
	case errors.As(err, &rh):
		return "not_tls"
	case errors.As(err, &ae):
		return "tls_alert"
	case strings.Contains(err.Error(), "tls:"):
		return "tls"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	return "dialog"
}
