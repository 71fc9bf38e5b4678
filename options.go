package starttls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Default limits. Protocols may use tighter ones.
const (
	// DefaultMaxLineLength bounds any line read from a peer, CRLF included.
	// RFC 5321 §4.5.3.1 sets 512 octets for SMTP replies; IMAP and POP3 lines
	// can be longer, so the shared bound is larger and still small.
	DefaultMaxLineLength = 4096
	// DefaultMaxLines bounds the lines of one multi-line reply or
	// capability list.
	DefaultMaxLines = 512
	// DefaultTimeout applies to a whole dialog when the context carries no
	// deadline.
	DefaultTimeout = 30 * time.Second
	// DefaultInjectionWait is how long the injection probe waits for an
	// unsolicited answer after the handshake.
	DefaultInjectionWait = 1500 * time.Millisecond
)

// ClientOptions configures the client side of any protocol. A nil
// *ClientOptions and the zero value mean safe defaults: ModeAuto,
// certificate verification against the system roots, default limits.
type ClientOptions struct {
	// Mode is the security mode; ModeAuto (the zero value) resolves from the
	// remote port: implicit TLS on 465/993/995/…, ModeRequired elsewhere.
	Mode Mode
	// TLSConfig is cloned, never modified. nil means a default config that
	// verifies the chain and the name. ServerName is filled in from the
	// ServerName field or the dialed host when empty.
	TLSConfig *tls.Config
	// ServerName is the name checked in the certificate and sent as SNI.
	// Empty means the host the caller dialed (Dial* helpers) or, failing
	// that, TLSConfig.ServerName.
	ServerName string
	// LocalName is the name the client announces (SMTP EHLO, LMTP LHLO).
	// Empty means LocalName(): the machine's fully qualified name when it
	// has one.
	LocalName string
	// Transcript, if set, records the dialog. Credentials are masked.
	Transcript *Transcript
	// MaxLineLength bounds each line read; 0 means DefaultMaxLineLength.
	MaxLineLength int
	// MaxLines bounds multi-line replies; 0 means DefaultMaxLines.
	MaxLines int
	// ProbeInjection makes the client pipeline a harmless command after the
	// upgrade command and record in Result.Injection whether the server
	// executed it inside TLS (CVE-2011-0411). It is an audit probe: the
	// connection is still usable afterwards only if the server was safe.
	ProbeInjection bool
	// InjectionWait is how long the probe waits for an unsolicited answer;
	// 0 means DefaultInjectionWait.
	InjectionWait time.Duration
	// Intercept, if set, is called instead of the TLS handshake with the
	// raw connection at the moment TLS would start (after the server's
	// go-ahead and the injection check, or at once for implicit TLS). The
	// dialog then ends with an error wrapping ErrIntercepted (and
	// Intercept's own error, if any). The TLS audit uses it to send
	// hand-built ClientHellos through any protocol's upgrade. Intercept
	// must not close conn; the dialog does.
	Intercept func(ctx context.Context, conn net.Conn) error
}

// LineLimit returns the effective line limit.
func (o *ClientOptions) LineLimit() int {
	if o == nil || o.MaxLineLength <= 0 {
		return DefaultMaxLineLength
	}
	return o.MaxLineLength
}

// LinesLimit returns the effective multi-line limit.
func (o *ClientOptions) LinesLimit() int {
	if o == nil || o.MaxLines <= 0 {
		return DefaultMaxLines
	}
	return o.MaxLines
}

// Wait returns the effective injection-probe wait.
func (o *ClientOptions) Wait() time.Duration {
	if o == nil || o.InjectionWait <= 0 {
		return DefaultInjectionWait
	}
	return o.InjectionWait
}

// HeloFor returns the name to announce on conn: LocalName when set, else
// the machine's fully qualified name, else an address literal of conn's
// local end such as "[192.0.2.1]" (RFC 5321 §4.1.3) — never "localhost",
// which receiving MTAs treat as a forgery.
func (o *ClientOptions) HeloFor(conn net.Conn) string {
	if o != nil && o.LocalName != "" {
		return o.LocalName
	}
	if n := LocalName(); n != "starttls.invalid" {
		return n
	}
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		if ip4 := a.IP.To4(); ip4 != nil {
			return "[" + ip4.String() + "]"
		}
		return "[IPv6:" + a.IP.String() + "]"
	}
	return "starttls.invalid"
}

// ResolveMode returns the mode in force for conn: ModeAuto resolved from the
// remote port.
func (o *ClientOptions) ResolveMode(conn net.Conn) Mode {
	var m Mode
	if o != nil {
		m = o.Mode
	}
	if m != ModeAuto {
		return m
	}
	port := 0
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		port = a.Port
	}
	return m.Resolve(port)
}

// LocalName returns the machine's host name when it is a fully qualified
// domain name, else "starttls.invalid". It never returns "localhost", which
// real MTAs treat as a forgery. ClientOptions.HeloFor prefers an address
// literal of the connection's local end to the placeholder.
func LocalName() string {
	h, err := os.Hostname()
	if err == nil && strings.Contains(h, ".") && !strings.HasPrefix(strings.ToLower(h), "localhost") {
		return h
	}
	return "starttls.invalid"
}

// ClientTLSConfig returns a clone of base (or a new config) ready for a
// client handshake with serverName. A ServerName the caller already set in
// base wins; base itself is never modified.
func ClientTLSConfig(base *tls.Config, serverName string) *tls.Config {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = serverName
	}
	return c
}

// ServerNameFor picks the name to verify: opts.ServerName, else
// TLSConfig.ServerName, else the host part of the remote address (an IP
// address then must appear in the certificate's IP SANs).
func ServerNameFor(opts *ClientOptions, conn net.Conn) string {
	if opts != nil && opts.ServerName != "" {
		return opts.ServerName
	}
	if opts != nil && opts.TLSConfig != nil && opts.TLSConfig.ServerName != "" {
		return opts.TLSConfig.ServerName
	}
	host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
	if err != nil {
		return ""
	}
	return host
}

// Handshake runs a client TLS handshake on conn under ctx and returns the TLS
// connection. On failure it closes conn and returns a *HandshakeError that
// keeps the TLS cause.
func Handshake(ctx context.Context, conn net.Conn, opts *ClientOptions) (*tls.Conn, error) {
	if opts != nil && opts.Intercept != nil {
		err := opts.Intercept(ctx, conn)
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrIntercepted, err)
		}
		return nil, ErrIntercepted
	}
	var base *tls.Config
	if opts != nil {
		base = opts.TLSConfig
	}
	cfg := ClientTLSConfig(base, ServerNameFor(opts, conn))
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil, &HandshakeError{Err: fmt.Errorf("%w", err)}
		}
		return nil, &HandshakeError{Err: err}
	}
	return tc, nil
}
