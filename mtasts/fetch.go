package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/starttls/starttls/resolver"
)

// DefaultTimeout bounds a policy fetch (connection, TLS, headers and body)
// when Fetcher.Timeout is 0. RFC 8461 §3.3 asks for a timeout; a minute
// would be allowed, a few seconds keep a sender (and the audit) moving.
const DefaultTimeout = 10 * time.Second

// ErrCertificate: the policy host's certificate is not valid for
// mta-sts.DOMAIN under the trusted roots (§3.3; TLS-RPT sts-webpki-invalid).
var ErrCertificate = errors.New("mtasts: the policy host's certificate is not valid")

// Fetcher discovers a domain's MTA-STS record and fetches its policy. The
// zero value uses the system resolver and roots, port 443 and
// DefaultTimeout.
type Fetcher struct {
	// Resolver, when set, answers every lookup: the TXT record and the
	// addresses of mta-sts.DOMAIN. The system resolver is then never
	// asked. nil means the system resolver.
	Resolver *resolver.Resolver
	// Roots verify the policy host's certificate; nil means the system
	// roots.
	Roots *x509.CertPool
	// Port is the HTTPS port of the policy host; 0 means 443. Other ports
	// are for test labs: RFC 8461 §3.3 fixes 443.
	Port int
	// Timeout bounds one fetch; 0 means DefaultTimeout.
	Timeout time.Duration
	// Now, if set, is the time certificates are checked at.
	Now func() time.Time
}

// LookupRecord queries the TXT records at _mta-sts.DOMAIN and selects the
// MTA-STS record (SelectRecord). It returns every TXT string found, so
// that a report can show them, the selected one's parse, and an error
// wrapping ErrNoRecord, ErrDuplicateRecord or ErrInvalidRecord, or the DNS
// failure.
func (f *Fetcher) LookupRecord(ctx context.Context, domain string) (txts []string, rec *Record, err error) {
	domain, err = normalize(domain)
	if err != nil {
		return nil, nil, err
	}
	name := RecordName(domain)
	if f.Resolver != nil {
		ans, err := f.Resolver.TXT(ctx, name)
		if err != nil {
			return nil, nil, fmt.Errorf("mtasts: TXT %s: %w", name, err)
		}
		txts = ans.Records
	} else {
		txts, err = net.DefaultResolver.LookupTXT(ctx, name)
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			txts, err = nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("mtasts: TXT %s: %w", name, err)
		}
	}
	_, rec, err = SelectRecord(txts)
	return txts, rec, err
}

// PolicyURL returns the URL of domain's policy: https://mta-sts.DOMAIN/
// .well-known/mta-sts.txt (§3.3), with the port when it is not 443.
func (f *Fetcher) PolicyURL(domain string) string {
	host := "mta-sts." + strings.TrimSuffix(strings.ToLower(domain), ".")
	if f.Port != 0 && f.Port != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(f.Port))
	}
	return "https://" + host + "/.well-known/mta-sts.txt"
}

// FetchPolicy fetches and parses domain's policy with the rules of RFC 8461
// §3.3: HTTPS with a certificate valid for mta-sts.DOMAIN, no redirects
// followed, status 200, media type text/plain, at most MaxPolicySize bytes,
// all within the timeout. It returns the body it read (also when the parse
// fails, for reports) and an error wrapping ErrRedirect, ErrHTTPStatus,
// ErrMediaType, ErrTooLarge, ErrCertificate or ErrInvalidPolicy, or the
// network error.
func (f *Fetcher) FetchPolicy(ctx context.Context, domain string) (body string, p *Policy, err error) {
	domain, err = normalize(domain)
	if err != nil {
		return "", nil, err
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host := "mta-sts." + domain
	tlsConf := &tls.Config{RootCAs: f.Roots, ServerName: host, MinVersion: tls.VersionTLS12}
	if f.Now != nil {
		tlsConf.Time = f.Now
	}
	tr := &http.Transport{
		Proxy:                  nil, // the policy host is asked directly
		DialContext:            f.dial,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		// §3.3: "HTTP 3xx redirects MUST NOT be followed".
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
	url := f.PolicyURL(domain)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", nil, fmt.Errorf("mtasts: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return "", nil, fmt.Errorf("%w: %s: %w", ErrCertificate, host, cv.Err)
		}
		return "", nil, fmt.Errorf("mtasts: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return "", nil, fmt.Errorf("%w: GET %s: %s to %q", ErrRedirect, url, resp.Status, clip(resp.Header.Get("Location")))
	case resp.StatusCode != http.StatusOK:
		return "", nil, fmt.Errorf("%w: GET %s: %s", ErrHTTPStatus, url, resp.Status)
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "text/plain" {
		return "", nil, fmt.Errorf("%w: GET %s: Content-Type %q", ErrMediaType, url, clip(resp.Header.Get("Content-Type")))
	}
	if resp.ContentLength > MaxPolicySize {
		return "", nil, fmt.Errorf("%w: GET %s: Content-Length %d", ErrTooLarge, url, resp.ContentLength)
	}
	// Read one byte more than allowed to tell "exactly the limit" from
	// "more than the limit".
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err != nil {
		return "", nil, fmt.Errorf("mtasts: GET %s: reading the policy: %w", url, err)
	}
	if len(b) > MaxPolicySize {
		return "", nil, fmt.Errorf("%w: GET %s: more than %d bytes", ErrTooLarge, url, MaxPolicySize)
	}
	body = string(b)
	p, err = ParsePolicy(body)
	return body, p, err
}

// dial connects to the policy host, resolving its name through the
// Resolver when one is set (never the system resolver then), trying each
// address in turn.
func (f *Fetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if f.Resolver == nil {
		return d.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ans, err := f.Resolver.IPs(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("mtasts: resolving %s: %w", host, err)
	}
	if len(ans.Records) == 0 {
		return nil, fmt.Errorf("mtasts: %s has no address", host)
	}
	var errs []error
	for _, ip := range ans.Records {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// normalize lower-cases domain, drops a trailing dot and refuses what is
// not a host name (the name ends up in a URL and in DNS queries).
func normalize(domain string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if strings.HasPrefix(d, "*.") || !validPattern(d) {
		return "", fmt.Errorf("mtasts: %q is not a domain name", clip(domain))
	}
	return d, nil
}
