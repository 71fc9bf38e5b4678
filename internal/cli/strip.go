package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/starttls/starttls/strip"
)

func runStrip(e *env, args []string) int {
	fs := flagSet("strip", e, "strip --listen ADDR --upstream HOST:PORT --protocol SCHEME [--attack NAME] [flags]")
	listen := fs.String("listen", "127.0.0.1:0", "`address` to listen on for the client under test (port 0: any free port, printed on stderr)")
	upstream := fs.String("upstream", "", "the real server, `host:port`")
	upstreamName := fs.String("upstream-name", "", "`name` checked in the upstream's certificate and shown in the greeting (default: the upstream's host)")
	upstreamCA := fs.String("upstream-ca", "", "trust the CA certificates in this PEM `file` for the upstream (default: the system roots)")
	protocol := fs.String("protocol", "", "URL scheme the client speaks: smtp, submission, imap, pop3, smtps, …")
	attack := fs.String("attack", strip.All, "attack `name`, attack/variant, or all (cycled over successive connections): "+attackNames())
	certFile := fs.String("cert", "", "attacker certificate (PEM `file`; default: a generated self-signed one)")
	keyFile := fs.String("key", "", "key of --cert (PEM `file`)")
	reportFile := fs.String("report", "", "write the JSON report (one entry per connection) to `FILE`, after each connection and at exit")
	once := fs.Bool("once", false, "exit after one client connection")
	asJSON := fs.Bool("json", false, "print the summary as JSON instead of text")
	wait := fs.Duration("wait", strip.DefaultWait, "how long to watch for the client's reaction (held-back answer, application data)")
	timeout := fs.Duration("timeout", strip.DefaultClientTimeout, "bound on the wait for each client command")
	sessionTimeout := fs.Duration("session-timeout", strip.DefaultSessionTimeout, "bound on each connection")
	pos, err := parse(fs, args)
	if err != nil {
		return flagError(err)
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "starttls strip: "+format+"\n", a...)
		return exitCantRun
	}
	if len(pos) > 0 {
		return fail("unexpected argument %q", pos[0])
	}
	if *upstream == "" || *protocol == "" {
		return fail("--upstream and --protocol are required")
	}
	if *wait <= 0 || *timeout <= 0 || *sessionTimeout <= 0 {
		return fail("--wait, --timeout and --session-timeout must be positive")
	}
	cfg := strip.Config{
		Protocol: *protocol, Upstream: *upstream, UpstreamName: *upstreamName, Attack: *attack,
		Wait: *wait, ClientTimeout: *timeout, SessionTimeout: *sessionTimeout,
	}
	if (*certFile == "") != (*keyFile == "") {
		return fail("--cert and --key go together")
	}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fail("--cert/--key: %v", err)
		}
		cfg.Certificate = &cert
	}
	if *upstreamCA != "" {
		pem, err := os.ReadFile(*upstreamCA)
		if err != nil {
			return fail("--upstream-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fail("--upstream-ca %s: no PEM certificate found", *upstreamCA)
		}
		cfg.UpstreamTLS = &tls.Config{RootCAs: pool}
	}
	if *reportFile != "" {
		// Fail now rather than after the audit.
		f, err := os.OpenFile(*reportFile, os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return fail("--report: %v", err)
		}
		f.Close()
	}
	sim, err := strip.New(cfg)
	if err != nil {
		return fail("%v", err)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail("%v", err)
	}
	steps := sim.Steps()
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.String()
	}
	fmt.Fprintf(e.stderr, "starttls strip: listening on %s for %s clients, upstream %s, attacks: %s\n", l.Addr(), *protocol, *upstream, strings.Join(names, ", "))

	var mu sync.Mutex
	writeReport := func() error {
		if *reportFile == "" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		return strip.NewReport(*protocol, l.Addr().String(), *upstream, sim.Entries()).WriteFile(*reportFile)
	}
	n := 0
	sim.OnEntry = func(en strip.Entry) {
		mu.Lock()
		n++
		fmt.Fprintf(e.stderr, "starttls strip: connection %d from %s: %s: %s\n", n, en.Client, en.Name(), en.Verdict)
		mu.Unlock()
		if err := writeReport(); err != nil {
			fmt.Fprintln(e.stderr, "starttls strip:", err)
		}
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	if *once {
		stop := context.AfterFunc(ctx, func() { l.Close() })
		conn, err := l.Accept()
		stop()
		l.Close()
		if err == nil {
			sim.ServeConn(ctx, conn)
		} else if ctx.Err() == nil {
			return fail("%v", err)
		}
	} else if err := sim.Serve(ctx, l); err != nil {
		return fail("%v", err)
	}
	if err := writeReport(); err != nil {
		fmt.Fprintln(e.stderr, "starttls strip:", err)
		return exitCantRun
	}
	entries := sim.Entries()
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(strip.Summarize(entries)); err != nil {
			return fail("%v", err)
		}
	} else {
		strip.WriteText(e.stdout, entries)
	}
	for _, en := range entries {
		if en.Verdict == strip.Vulnerable {
			return exitWarn
		}
	}
	return exitOK
}

func attackNames() string {
	var names []string
	for _, a := range strip.Attacks() {
		names = append(names, a[0])
	}
	return strings.Join(names, ", ")
}
