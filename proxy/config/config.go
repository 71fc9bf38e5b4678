// Package config reads the TOML configuration of `starttls proxy` (see
// docs/proxy.md) into proxy.Listener values. It is apart from package
// proxy so that the library does not pull in the TOML parser.
//
// TOML (github.com/BurntSushi/toml) rather than YAML: typed, no
// indentation traps, and its parser reports the line of a syntax error.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/maildomain"
	"github.com/starttls/starttls/proxy"
	"github.com/starttls/starttls/resolver"
)

// Duration is a Go duration string in the file: "10s", "5m".
type Duration struct{ time.Duration }

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. \"10s\" or \"5m\"", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q must not be negative", b)
	}
	d.Duration = v
	return nil
}

// File is the whole configuration.
type File struct {
	// LogFormat is "text" (default) or "json"; LogLevel "debug", "info"
	// (default), "warn" or "error".
	LogFormat string `toml:"log_format"`
	LogLevel  string `toml:"log_level"`
	// Metrics is the address of the Prometheus endpoint (/metrics); empty
	// means none.
	Metrics string `toml:"metrics"`
	// ShutdownTimeout bounds the drain on SIGINT/SIGTERM; default 30s.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// WatchInterval is how often certificate files are checked for
	// changes; default 5s.
	WatchInterval Duration   `toml:"watch_interval"`
	Listeners     []Listener `toml:"listener"`
}

// Listener is one [[listener]] table; see proxy.Listener for the meaning.
type Listener struct {
	Name             string   `toml:"name"`
	Listen           string   `toml:"listen"`
	Protocol         string   `toml:"protocol"`
	Implicit         bool     `toml:"implicit"`
	Backend          string   `toml:"backend"`
	Upstream         string   `toml:"upstream"`
	UpstreamDomain   string   `toml:"upstream_domain"`
	Mode             string   `toml:"mode"`
	CA               string   `toml:"ca"`
	ServerName       string   `toml:"server_name"`
	Hostname         string   `toml:"hostname"`
	RequireTLS       *bool    `toml:"require_tls"`
	AcceptProxy      bool     `toml:"accept_proxy"`
	SendProxy        int      `toml:"send_proxy"`
	MaxConns         int      `toml:"max_conns"`
	RatePerIP        float64  `toml:"rate_per_ip"`
	RateBurst        int      `toml:"rate_burst"`
	HandshakeTimeout Duration `toml:"handshake_timeout"`
	IdleTimeout      Duration `toml:"idle_timeout"`
	DialTimeout      Duration `toml:"dial_timeout"`
	MaxLineLength    int      `toml:"max_line_length"`
	// Resolver, SMTPPort and MTASTSPort configure upstream_domain: the
	// validating resolver (HOST:PORT; default the first nameserver of
	// /etc/resolv.conf), the MX hosts' port (default 25) and the MTA-STS
	// policy host's HTTPS port (default 443).
	Resolver   string `toml:"resolver"`
	SMTPPort   int    `toml:"smtp_port"`
	MTASTSPort int    `toml:"mta_sts_port"`
	// Cert and Key are the default certificate; Certs adds more, chosen by
	// SNI.
	Cert  string    `toml:"cert"`
	Key   string    `toml:"key"`
	Certs []KeyPair `toml:"certs"`
}

// KeyPair is one entry of certs = [{cert = "…", key = "…"}].
type KeyPair struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// Load reads and checks a file. Syntax errors carry file:line; other
// errors name the listener.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, string(data))
}

// Parse reads a configuration from text; name is used in errors.
func Parse(name, text string) (*File, error) {
	var f File
	md, err := toml.Decode(text, &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", name, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0].String()
		return nil, fmt.Errorf("%s:%d: unknown key %q", name, lineOf(text, und[0][len(und[0])-1]), k)
	}
	switch f.LogFormat {
	case "", "text", "json":
	default:
		return nil, fmt.Errorf("%s:%d: log_format %q: want \"text\" or \"json\"", name, lineOf(text, "log_format"), f.LogFormat)
	}
	switch strings.ToLower(f.LogLevel) {
	case "", "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("%s:%d: log_level %q: want debug, info, warn or error", name, lineOf(text, "log_level"), f.LogLevel)
	}
	if len(f.Listeners) == 0 {
		return nil, fmt.Errorf("%s: no [[listener]]", name)
	}
	seen := map[string]bool{}
	for i := range f.Listeners {
		l := &f.Listeners[i]
		if l.Name == "" {
			l.Name = l.Listen
		}
		if seen[l.Name] {
			return nil, fmt.Errorf("%s: listener %q: defined twice", name, l.Name)
		}
		seen[l.Name] = true
		if _, err := l.Proxy(); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, listenerLine(text, i), err)
		}
	}
	return &f, nil
}

// lineOf returns the line of the first "key =" in text, or 0.
func lineOf(text, key string) int {
	for i, l := range strings.Split(text, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, key) && strings.HasPrefix(strings.TrimSpace(t[len(key):]), "=") {
			return i + 1
		}
	}
	return 0
}

// listenerLine returns the line of the i-th [[listener]] header.
func listenerLine(text string, i int) int {
	n := -1
	for j, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == "[[listener]]" {
			n++
			if n == i {
				return j + 1
			}
		}
	}
	return 0
}

// Proxy turns the table into a checked proxy.Listener, loading its
// certificates and CA file. The *proxy.Certificates is returned inside
// TLS's GetCertificate; use Certificates to reach it for reloads.
func (l *Listener) Proxy() (proxy.Listener, error) {
	pl, _, err := l.build()
	return pl, err
}

// Build is Proxy plus the listener's certificates (nil on the client side)
// for reloads.
func (l *Listener) Build() (proxy.Listener, *proxy.Certificates, error) {
	return l.build()
}

func (l *Listener) build() (proxy.Listener, *proxy.Certificates, error) {
	pl := proxy.Listener{
		Name: l.Name, Listen: l.Listen, Protocol: l.Protocol, Implicit: l.Implicit,
		Backend: l.Backend, Upstream: l.Upstream, ServerName: l.ServerName,
		Hostname: l.Hostname, RequireTLS: l.RequireTLS, AcceptProxy: l.AcceptProxy,
		SendProxy: l.SendProxy, MaxConns: l.MaxConns, RatePerIP: l.RatePerIP,
		RateBurst: l.RateBurst, HandshakeTimeout: l.HandshakeTimeout.Duration,
		IdleTimeout: l.IdleTimeout.Duration, DialTimeout: l.DialTimeout.Duration,
		MaxLineLength: l.MaxLineLength,
	}
	where := fmt.Sprintf("listener %q", l.Name)
	if l.Protocol == "" {
		return pl, nil, fmt.Errorf("%s: protocol is missing (\"tcp\", \"smtp\", \"imap\", …)", where)
	}
	if l.UpstreamDomain != "" {
		if err := l.domain(&pl); err != nil {
			return pl, nil, fmt.Errorf("%s: %w", where, err)
		}
	} else if l.Resolver != "" || l.SMTPPort != 0 || l.MTASTSPort != 0 {
		return pl, nil, fmt.Errorf("%s: resolver, smtp_port and mta_sts_port apply to upstream_domain only", where)
	}
	if l.Mode != "" && l.UpstreamDomain == "" {
		m, err := starttls.ParseMode(l.Mode)
		if err != nil {
			return pl, nil, fmt.Errorf("%s: %w", where, err)
		}
		pl.Mode = m
	}
	if l.CA != "" {
		pem, err := os.ReadFile(l.CA)
		if err != nil {
			return pl, nil, fmt.Errorf("%s: ca: %w", where, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return pl, nil, fmt.Errorf("%s: ca %s: no PEM certificate", where, l.CA)
		}
		if pl.DomainOptions != nil {
			pl.DomainOptions.Roots = pool // MTA-STS: MX hosts and policy host
		} else {
			pl.ClientTLS = &tls.Config{RootCAs: pool}
		}
	}
	var pairs []proxy.KeyPair
	if l.Cert != "" || l.Key != "" {
		if l.Cert == "" || l.Key == "" {
			return pl, nil, fmt.Errorf("%s: set both cert and key", where)
		}
		pairs = append(pairs, proxy.KeyPair{CertFile: l.Cert, KeyFile: l.Key})
	}
	for _, p := range l.Certs {
		if p.Cert == "" || p.Key == "" {
			return pl, nil, fmt.Errorf("%s: each certs entry needs cert and key", where)
		}
		pairs = append(pairs, proxy.KeyPair{CertFile: p.Cert, KeyFile: p.Key})
	}
	var store *proxy.Certificates
	if len(pairs) > 0 {
		if l.Upstream != "" {
			return pl, nil, fmt.Errorf("%s: cert/key apply to the server side (backend), not to an upstream", where)
		}
		var err error
		if store, err = proxy.LoadCertificates(pairs...); err != nil {
			return pl, nil, fmt.Errorf("%s: %w", where, err)
		}
		pl.TLS = store.Config()
	}
	if err := pl.Check(); err != nil {
		return pl, nil, err
	}
	return pl, store, nil
}

// domain fills the mail-domain settings of pl: mode is a policy mode
// there (dane, mta-sts, policy), not a STARTTLS mode.
func (l *Listener) domain(pl *proxy.Listener) error {
	pl.UpstreamDomain = l.UpstreamDomain
	pl.DomainMode = proxy.DomainMode(l.Mode)
	o := &maildomain.Options{Port: l.SMTPPort, MTASTSPort: l.MTASTSPort}
	if l.Resolver != "" {
		host, port, err := net.SplitHostPort(l.Resolver)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("resolver %q: want HOST:PORT, e.g. 127.0.0.1:53", l.Resolver)
		}
		o.Resolver = &resolver.Resolver{Addr: l.Resolver}
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"smtp_port", l.SMTPPort}, {"mta_sts_port", l.MTASTSPort}} {
		if p.v < 0 || p.v > 65535 {
			return fmt.Errorf("%s = %d: not a port", p.name, p.v)
		}
	}
	pl.DomainOptions = o
	return nil
}

// Check validates a File built in code (the command line's flags) as Parse
// validates one read from text.
func Check(f *File) (*File, error) {
	switch f.LogFormat {
	case "", "text", "json":
	default:
		return nil, fmt.Errorf("log format %q: want text or json", f.LogFormat)
	}
	switch strings.ToLower(f.LogLevel) {
	case "", "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", f.LogLevel)
	}
	for i := range f.Listeners {
		l := &f.Listeners[i]
		if l.Name == "" {
			l.Name = l.Listen
		}
		if _, err := l.Proxy(); err != nil {
			return nil, err
		}
	}
	return f, nil
}
