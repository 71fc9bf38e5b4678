package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
	"github.com/starttls/starttls/maildomain"
	"github.com/starttls/starttls/mtasts"
	"github.com/starttls/starttls/resolver"
)

// DomainMode is how much of a mail domain's policy a client-side listener
// with an UpstreamDomain demands. In every mode the session to the MX host
// must be TLS: the proxy never relays a legacy client in plaintext, even
// where the domain's policy would allow it (no policy, MTA-STS testing).
type DomainMode string

// Domain modes; they are the --mode values of `starttls connect
// smtp://DOMAIN`.
const (
	// DomainDANE uses only the MX hosts authenticated by DNSSEC-secure,
	// usable TLSA records (RFC 7672).
	DomainDANE DomainMode = "dane"
	// DomainMTASTS requires an MTA-STS policy (RFC 8461) and applies it:
	// in mode enforce only the matching MX hosts with a certificate valid
	// under the Web PKI; in mode testing TLS, with certificate failures
	// logged. MX hosts with DANE keep DANE, which takes precedence
	// (RFC 8461 §2).
	DomainMTASTS DomainMode = "mta-sts"
	// DomainPolicy applies whatever the domain publishes, as a sending MTA
	// does (DANE, else MTA-STS, else unauthenticated TLS), with TLS
	// required everywhere.
	DomainPolicy DomainMode = "policy"
)

// domainSide reports whether the listener delivers to a mail domain.
func (l *Listener) domainSide() bool { return l.UpstreamDomain != "" }

func (l *Listener) checkDomain() error {
	if l.Protocol != "smtp" {
		return fmt.Errorf("%w: upstream_domain delivers mail to a domain's MX hosts: it needs protocol smtp, not %q", ErrUnsupported, l.Protocol)
	}
	if !maildomain.ValidDomain(l.UpstreamDomain) {
		return fmt.Errorf("upstream_domain %q: not a mail domain such as example.org", l.UpstreamDomain)
	}
	switch l.DomainMode {
	case DomainDANE, DomainMTASTS, DomainPolicy:
	case "":
		return errors.New("upstream_domain needs mode dane, mta-sts or policy (how much of the domain's policy must hold)")
	default:
		return fmt.Errorf("mode %q: with upstream_domain, want dane, mta-sts or policy", l.DomainMode)
	}
	switch {
	case l.Implicit:
		return errors.New("implicit applies to the server side; the MX hosts of upstream_domain are dialled with STARTTLS")
	case l.Mode != starttls.ModeAuto:
		return errors.New("with upstream_domain the mode is a policy mode (dane, mta-sts or policy), not a STARTTLS mode")
	case l.ServerName != "":
		return errors.New("server_name does not apply to upstream_domain: each MX host is verified under its own name")
	case l.ClientTLS != nil:
		return errors.New("with upstream_domain the roots are DomainOptions.Roots, not ClientTLS")
	case l.SendProxy != 0:
		return errors.New("send_proxy is not supported with upstream_domain: the MX hosts are other parties' servers")
	}
	if o := l.DomainOptions; o != nil && (o.Port < 0 || o.Port > 65535 || o.MTASTSPort < 0 || o.MTASTSPort > 65535) {
		return errors.New("smtp_port and mta_sts_port must be ports")
	}
	return nil
}

// domainOptions returns the options every connection of a domain
// listener shares: one resolver, and one MTA-STS cache so that a policy
// is fetched once per max_age (and its id checked), not at every
// connection, and keeps applying when an attacker blocks the fetch.
func (l *Listener) domainOptions() *maildomain.Options {
	var o maildomain.Options
	if l.DomainOptions != nil {
		o = *l.DomainOptions
	}
	if o.Resolver == nil {
		o.Resolver = &resolver.Resolver{}
	}
	if o.MTASTS == nil {
		o.MTASTS = &mtasts.Cache{
			Fetcher: &mtasts.Fetcher{Resolver: o.Resolver, Roots: o.Roots, Port: o.MTASTSPort, Now: o.Now},
			Now:     o.Now,
		}
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = l.dialTimeout()
	}
	if o.LocalName == "" {
		o.LocalName = l.Hostname
	}
	o.Transcript = nil // shared by concurrent connections: no place for one
	return &o
}

// setupDomainSide connects one MX host of the upstream domain under its
// policy for a plaintext client, and greets the client with that host's
// greeting; when no host meets the policy the client gets the 421 reply.
func (s *Server) setupDomainSide(ctx context.Context, stop func() bool, conn net.Conn, src net.Addr) (net.Conn, net.Conn, error) {
	sess, reason, err := s.dialDomain(ctx, src)
	if err == nil {
		_, err = conn.Write(s.gw.ClientGreeting(sess.Result))
		reason = "client"
	}
	if !stop() {
		err = errors.Join(err, ctx.Err())
		reason = "timeout"
	}
	if err != nil {
		if sess != nil {
			sess.NetConn().Close()
		}
		s.metrics.failed(s.labels, reason)
		s.unavailable(conn, fmt.Sprintf("no MX host of %s can be reached as its policy requires (mode %s)", s.cfg.UpstreamDomain, s.cfg.DomainMode))
		return nil, nil, err
	}
	s.metrics.upgraded(s.labels)
	up := textline.Unbuffered(sess.NetConn())
	conn.SetDeadline(time.Time{})
	up.SetDeadline(time.Time{})
	return conn, up, nil
}

// dialDomain resolves the domain's policy, narrows it to the mode and
// tries its MX hosts, each address in turn, until one gives a TLS session
// under the policy. It returns the metrics reason with an error.
func (s *Server) dialDomain(ctx context.Context, src net.Addr) (*maildomain.Session, string, error) {
	domain, o := s.cfg.UpstreamDomain, s.domain
	p, err := maildomain.Resolve(ctx, domain, o)
	if err != nil {
		return nil, "upstream", fmt.Errorf("proxy: %s: %w", domain, err)
	}
	for _, f := range p.Failures {
		s.logFailure(src, f)
	}
	req, err := maildomain.ParseRequirement(string(s.cfg.DomainMode))
	if err != nil {
		return nil, "policy", fmt.Errorf("proxy: %s: %w", domain, err)
	}
	if err := p.Require(req); err != nil {
		return nil, "policy", fmt.Errorf("proxy: %s: refusing (mode %s): %w", domain, s.cfg.DomainMode, err)
	}
	var errs []error
	for _, mx := range p.MX {
		for _, ip := range mx.Addrs {
			// One address at a time, so that a session without TLS (which
			// maildomain accepts where the policy allows opportunistic
			// TLS) is refused here and the next address still tried.
			one := *p
			one.Failures = nil
			m := mx
			m.Addrs = []netip.Addr{ip}
			one.MX = []maildomain.MX{m}
			sess, err := one.Dial(ctx, o)
			if err == nil && !sess.Result.Upgraded {
				sess.Close()
				cause := starttls.ErrUpgradeRefused
				if !sess.Result.Offered {
					cause = starttls.ErrUpgradeNotOffered
				}
				err = fmt.Errorf("%w: the proxy never relays in plaintext (MX security %s)", cause, mx.Security)
				sess = nil
			}
			var failures []maildomain.Failure
			var de *maildomain.DialError
			if sess != nil {
				failures = sess.Failures
			} else if errors.As(err, &de) {
				failures = de.Failures
			}
			for _, f := range failures {
				s.logFailure(src, f)
			}
			if err == nil {
				s.log.Debug("proxy: MX chosen", "remote", src.String(), "domain", domain, "mx", mx.Host, "addr", sess.Addr, "security", mx.Security.String())
				return sess, "", nil
			}
			errs = append(errs, fmt.Errorf("%s [%s]: %w", mx.Host, ip, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	err = errors.Join(errs...)
	reason := failureReason(err)
	if reason == "dialog" {
		reason = "upstream"
	}
	return nil, reason, fmt.Errorf("proxy: %s: %w: no MX host meets the policy (mode %s): %w", domain, maildomain.ErrNoMX, s.cfg.DomainMode, err)
}

func (s *Server) logFailure(src net.Addr, f maildomain.Failure) {
	s.log.Debug("proxy: TLS-RPT failure", "remote", src.String(), "domain", s.cfg.UpstreamDomain,
		"policy", string(f.Policy), "result", string(f.ResultType), "enforced", f.Enforced,
		"mx", f.ReceivingMXHostname, "ip", f.ReceivingIP, "info", f.AdditionalInformation)
}
