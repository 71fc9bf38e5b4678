// Package cli is the starttls command line: one file per command. It holds
// no protocol logic; it parses flags, calls the library and prints.
package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/starttls/starttls"
)

// Exit codes shared by the commands.
const (
	exitOK      = 0
	exitWarn    = 1
	exitFail    = 2
	exitCantRun = 3
)

// Version is set at build time with -ldflags "-X …cli.Version=…".
var Version = "devel"

type env struct {
	// ctx ends the command: SIGINT or SIGTERM, or a test.
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	name, summary string
	run           func(e *env, args []string) int
}

func commands() []command {
	return []command{
		{"connect", "connect to a server, upgrade, show the certificate, then an interactive session", runConnect},
		{"check", "audit a server's STARTTLS or implicit TLS (or every lab endpoint with --lab)", runCheck},
		{"lab", "run local correct and broken servers for every protocol", runLab},
		{"proxy", "TLS gateway: STARTTLS or implicit TLS in front of plaintext servers, TLS required to upstreams", runProxy},
		{"strip", "STRIPTLS attacker between a client under test and a server: a verdict per attack", runStrip},
		{"version", "print the version", func(e *env, _ []string) int { fmt.Fprintln(e.stdout, "starttls", Version); return 0 }},
	}
}

// Run runs the command line and returns the exit status. SIGINT and
// SIGTERM end the command.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return RunContext(ctx, args, stdin, stdout, stderr)
}

// RunContext is Run with the command ended by ctx instead of signals.
func RunContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitCantRun
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(stderr, "starttls: unknown command %q (try: starttls help)\n", args[0])
	return exitCantRun
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: starttls COMMAND [flags] [args]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "URL schemes:")
	for _, s := range starttls.Schemes() {
		how := "STARTTLS"
		if s.Implicit {
			how = "implicit TLS"
		}
		fmt.Fprintf(w, "  %-11s %-5s port %-4d %s\n", s.Name, s.Protocol, s.Port, how)
	}
	fmt.Fprintln(w, "\nRun 'starttls COMMAND -h' for the flags of a command.")
}

// parse parses flags that may come before and after positional arguments
// ("connect URL --trace" as well as "connect --trace URL").
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// clientFlags are the flags every client-side command shares.
type clientFlags struct {
	ca         string
	timeout    time.Duration
	ehlo       string
	source     string
	serverName string
	mode       string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.ca, "ca", "", "trust the CA certificates in this PEM `file` (in addition to nothing else: the system roots are not used when set)")
	fs.DurationVar(&c.timeout, "timeout", 15*time.Second, "bound on each connection's dialog")
	fs.StringVar(&c.ehlo, "ehlo", "", "`name` sent in EHLO/LHLO (default: this machine's FQDN, never localhost)")
	fs.StringVar(&c.source, "source", "", "local IP `address` to connect from (e.g. 127.0.0.2)")
	fs.StringVar(&c.serverName, "server-name", "", "`name` expected in the certificate and sent as SNI (default: the URL's host)")
	fs.StringVar(&c.mode, "mode", "", "security `mode`: plain, opportunistic, required, implicit or auto (default: from the URL)")
}

func (c *clientFlags) validate() error {
	if c.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	if strings.ContainsAny(c.ehlo, " \r\n\x00") {
		return fmt.Errorf("--ehlo %q: not a host name", c.ehlo)
	}
	return nil
}

// target parses a URL and applies --mode.
func (c *clientFlags) target(raw string) (*starttls.Target, error) {
	t, err := starttls.ParseTarget(raw)
	if err != nil {
		return nil, err
	}
	if c.mode != "" {
		m, err := starttls.ParseMode(c.mode)
		if err != nil {
			return nil, err
		}
		t.Mode = m
	}
	return t, nil
}

// roots loads --ca; nil means the system roots.
func (c *clientFlags) roots() (*x509.CertPool, error) {
	if c.ca == "" {
		return nil, nil
	}
	return loadCA(c.ca)
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate found", path)
	}
	return pool, nil
}

func flagSet(name string, e *env, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: starttls %s\n\nflags:\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// flagError reports a flag parse error: -h is not an error.
func flagError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitCantRun
}
