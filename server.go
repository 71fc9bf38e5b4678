package starttls

import (
	"crypto/tls"
	"log/slog"
	"time"
)

// Server defaults.
const (
	// DefaultServerReadTimeout bounds the wait for each client command.
	DefaultServerReadTimeout = 2 * time.Minute
	// DefaultMaxErrors is how many protocol errors a server tolerates before
	// it closes the connection (go-smtp uses 3 as well).
	DefaultMaxErrors = 3
)

// ServerOptions are the settings every protocol server shares. The zero
// value is a plaintext-only server that refuses login (there is no TLS to
// protect it); set TLSConfig to offer the upgrade.
type ServerOptions struct {
	// TLSConfig holds the certificates. nil means the upgrade is not
	// offered (and, with Implicit, the server cannot run).
	TLSConfig *tls.Config
	// Implicit makes the server speak TLS from the first byte (465, 993,
	// 995) instead of offering STARTTLS.
	Implicit bool
	// Hostname is the name in the greeting; empty means "localhost".
	Hostname string
	// AllowPlaintextLogin offers and accepts login (SMTP AUTH, IMAP LOGIN,
	// POP3 USER/PASS) before TLS. It exposes passwords to anyone on the
	// path; it exists to reproduce such servers.
	AllowPlaintextLogin bool
	// RefuseUpgrade advertises the upgrade but refuses it with the
	// protocol's temporary error (SMTP 454). For the lab.
	RefuseUpgrade bool
	// InsecureKeepPipelined keeps commands pipelined after the upgrade
	// command and executes them inside TLS: the CVE-2011-0411 bug. For the
	// lab; never set it otherwise.
	InsecureKeepPipelined bool
	// ReadTimeout bounds the wait for each command; 0 means
	// DefaultServerReadTimeout.
	ReadTimeout time.Duration
	// MaxLineLength bounds a command line; 0 means DefaultMaxLineLength.
	MaxLineLength int
	// MaxErrors closes the connection after that many protocol errors; 0
	// means DefaultMaxErrors.
	MaxErrors int
	// Logger receives one record per connection problem caused by a peer,
	// at debug level; nil discards them.
	Logger *slog.Logger

	// The fields below serve the stripping simulator (starttls strip); see
	// mitm.go.

	// RefusePermanently makes RefuseUpgrade answer with the protocol's
	// permanent error instead of the temporary one.
	RefusePermanently bool
	// OnCredentials, if set, is called with every login the client sends
	// (before the Backend judges it, TLS or not).
	OnCredentials func(Credentials)
	// InjectAfterGoAhead, if set, returns bytes written right after the
	// upgrade go-ahead in the same segment: forged replies, the response
	// injection attack. It gets the client's upgrade command. Never set it
	// outside the simulator.
	InjectAfterGoAhead func(command string) []byte
}

// CommandTimeout returns the effective per-command read timeout.
func (o *ServerOptions) CommandTimeout() time.Duration {
	if o.ReadTimeout <= 0 {
		return DefaultServerReadTimeout
	}
	return o.ReadTimeout
}

// LineLimit returns the effective line limit.
func (o *ServerOptions) LineLimit() int {
	if o.MaxLineLength <= 0 {
		return DefaultMaxLineLength
	}
	return o.MaxLineLength
}

// ErrorLimit returns the effective error limit.
func (o *ServerOptions) ErrorLimit() int {
	if o.MaxErrors <= 0 {
		return DefaultMaxErrors
	}
	return o.MaxErrors
}

// Name returns the greeting host name.
func (o *ServerOptions) Name() string {
	if o.Hostname == "" {
		return "localhost"
	}
	return o.Hostname
}

// Log returns the logger, never nil.
func (o *ServerOptions) Log() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}
