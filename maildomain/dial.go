package maildomain

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dane"
	"github.com/starttls/starttls/smtp"
	"github.com/starttls/starttls/tlsrpt"
)

// Session is an SMTP session to an MX host, opened under the domain's
// policy.
type Session struct {
	*smtp.Client
	// MX is the host the session is with, Addr the address dialled.
	MX   MX
	Addr string
	// Result is the dialog's record (TLS state, capabilities).
	Result *starttls.Result
	// Failures are the TLS-RPT failures of this Dial: the policy's own
	// and one per failed attempt (and, in testing mode, the failures that
	// were only reported).
	Failures []Failure
}

// Dial opens an SMTP session to the first MX host of the policy that
// satisfies its Security, trying the hosts in order of preference and
// each address in turn. Where TLS is required (DANE, MTA-STS enforce) a
// missing STARTTLS, a refused or failed upgrade or a certificate that does
// not verify ends the attempt before any mail command is sent: the client
// runs in starttls.ModeRequired. In testing mode and without a policy the
// session may be plaintext (opportunistic TLS); testing-mode failures are
// recorded. The error, when no host worked, joins every attempt's error
// and wraps ErrNoMX.
func (p *Policy) Dial(ctx context.Context, o *Options) (*Session, error) {
	if o == nil {
		o = &Options{}
	}
	failures := append([]Failure(nil), p.Failures...)
	if len(p.MX) == 0 {
		why := "no MX host"
		if p.NullMX {
			why = "the domain accepts no mail (null MX)"
		}
		return nil, fmt.Errorf("%w for %s: %s", ErrNoMX, p.Domain, why)
	}
	var errs []error
	for _, mx := range p.MX {
		for _, ip := range mx.Addrs {
			s, fs, err := attempt(ctx, mx, ip, o)
			failures = append(failures, fs...)
			if err == nil {
				s.Failures = failures
				return s, nil
			}
			errs = append(errs, fmt.Errorf("%s [%s]: %w", mx.Host, ip, err))
			if ctx.Err() != nil {
				return nil, errors.Join(append([]error{fmt.Errorf("%w for %s", ErrNoMX, p.Domain)}, errs...)...)
			}
		}
	}
	return nil, &DialError{Domain: p.Domain, Failures: failures, Err: errors.Join(errs...)}
}

// DialError is Dial's error when no MX host worked: every attempt's error
// and the TLS-RPT failures found.
type DialError struct {
	Domain   string
	Failures []Failure
	Err      error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("maildomain: no MX host of %s could be used: %v", e.Domain, e.Err)
}

// Unwrap returns ErrNoMX and the attempts' errors.
func (e *DialError) Unwrap() []error { return []error{ErrNoMX, e.Err} }

// attempt dials one address of mx with the TLS its Security demands.
func attempt(ctx context.Context, mx MX, ip netip.Addr, o *Options) (*Session, []Failure, error) {
	port := cmp.Or(o.Port, 25)
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	var failures []Failure
	var localIP string // the sending address, once connected
	record := func(rt tlsrpt.ResultType, enforced bool, info string) {
		pt := tlsrpt.PolicyNone
		switch mx.Security {
		case DANE, DANEUnauthenticated:
			pt = tlsrpt.PolicyTLSA
		case WebPKI, Testing:
			pt = tlsrpt.PolicySTS
		}
		failures = append(failures, Failure{
			Failure:  tlsrpt.Failure{ResultType: rt, SendingMTAIP: localIP, ReceivingMXHostname: mx.Host, ReceivingIP: ip.String(), AdditionalInformation: info},
			Policy:   pt,
			Enforced: enforced,
		})
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: mx.Host, Time: o.Now}
	opts := starttls.ClientOptions{Mode: starttls.ModeRequired, ServerName: mx.Host, LocalName: o.LocalName, Transcript: o.Transcript}
	switch mx.Security {
	case DANE:
		opts.TLSConfig = dane.Config(base, mx.TLSA, mx.DANENames)
	case DANEUnauthenticated:
		base.InsecureSkipVerify = true // RFC 7672 §2.2: TLS required, not authenticated
		opts.TLSConfig = base
	case WebPKI:
		base.RootCAs = o.Roots
		opts.TLSConfig = base
	case Testing:
		// Verified as enforce would, but a failure is only recorded.
		base.InsecureSkipVerify = true
		base.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := verifyWebPKI(cs, mx.Host, o.Roots, o.Now); err != nil {
				record(certResult(err), false, err.Error()+" (MTA-STS testing: not enforced)")
			}
			return nil
		}
		opts.TLSConfig = base
		opts.Mode = starttls.ModeOpportunistic
	default:
		base.InsecureSkipVerify = true // opportunistic TLS (RFC 7435)
		opts.TLSConfig = base
		opts.Mode = starttls.ModeOpportunistic
	}
	timeout := cmp.Or(o.DialTimeout, 30*time.Second)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(cctx, "tcp", addr)
	if err != nil {
		return nil, failures, err
	}
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		localIP = a.IP.String()
	}
	c, res, err := smtp.Upgrade(cctx, conn, &opts)
	if err != nil {
		enforced := mx.Security.RequiresTLS()
		var he *starttls.HandshakeError
		switch {
		case errors.Is(err, starttls.ErrUpgradeNotOffered), errors.Is(err, starttls.ErrUpgradeRefused):
			record(tlsrpt.STARTTLSNotSupported, enforced, err.Error())
		case errors.As(err, &he) && mx.Security == DANE && !isNetError(err):
			record(tlsrpt.TLSAInvalid, true, err.Error())
		case errors.As(err, &he) && mx.Security == WebPKI && !isNetError(err):
			record(certResult(err), true, err.Error())
		case errors.As(err, &he):
			record(tlsrpt.ValidationFailure, enforced, err.Error())
		}
		return nil, failures, err
	}
	if !res.Upgraded && mx.Security == Testing {
		record(tlsrpt.STARTTLSNotSupported, false, "the server did not upgrade to TLS (MTA-STS testing: not enforced)")
	}
	return &Session{Client: c, MX: mx, Addr: addr, Result: res}, failures, nil
}

// verifyWebPKI checks the chain and the name as a verifying client would.
func verifyWebPKI(cs tls.ConnectionState, host string, roots *x509.CertPool, now func() time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no certificate")
	}
	opts := x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: x509.NewCertPool()}
	if now != nil {
		opts.CurrentTime = now()
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// certResult maps a certificate error to its TLS-RPT result type
// (RFC 8460 §4.3.1).
func certResult(err error) tlsrpt.ResultType {
	var host x509.HostnameError
	var inv x509.CertificateInvalidError
	var unk x509.UnknownAuthorityError
	switch {
	case errors.As(err, &host):
		return tlsrpt.CertificateHostMismatch
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return tlsrpt.CertificateExpired
	case errors.As(err, &unk):
		return tlsrpt.CertificateNotTrusted
	}
	return tlsrpt.ValidationFailure
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// Dial resolves domain's policy (Resolve) and opens an SMTP session under
// it (Policy.Dial): the one call a program that delivers mail needs. Pass
// an Options with an mtasts.Cache so that policies persist between calls.
func Dial(ctx context.Context, domain string, o *Options) (*Session, error) {
	p, err := Resolve(ctx, domain, o)
	if err != nil {
		return nil, err
	}
	return p.Dial(ctx, o)
}
