package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/starttls/starttls/proxy"
	"github.com/starttls/starttls/proxy/config"
)

const proxyUsage = `proxy --listen ADDR --protocol P (--backend ADDR --cert F --key F [--implicit] | --upstream HOST:PORT [--mode required|implicit] [--ca F] | --upstream-domain DOMAIN --mode dane|mta-sts|policy [--resolver ADDR]) | --config FILE [--check]`

func runProxy(e *env, args []string) int {
	fs := flagSet("proxy", e, proxyUsage)
	var l config.Listener
	cfgPath := fs.String("config", "", "TOML configuration `file` with any number of [[listener]] (docs/proxy.md)")
	checkOnly := fs.Bool("check", false, "validate the configuration (certificates included) and exit")
	fs.StringVar(&l.Listen, "listen", "", "`address` to listen on, e.g. 127.0.0.1:2525")
	fs.StringVar(&l.Protocol, "protocol", "", "`protocol`: tcp (TLS termination, needs --implicit) or smtp, imap, pop3, …")
	fs.StringVar(&l.Backend, "backend", "", "plaintext backend `address` (server side)")
	fs.BoolVar(&l.Implicit, "implicit", false, "TLS from the first byte on the listener (server side), instead of STARTTLS")
	fs.StringVar(&l.Cert, "cert", "", "certificate chain PEM `file` (server side)")
	fs.StringVar(&l.Key, "key", "", "private key PEM `file` (server side)")
	fs.StringVar(&l.Hostname, "hostname", "", "`name` in the pre-TLS greeting (default localhost)")
	fs.StringVar(&l.Upstream, "upstream", "", "TLS upstream `HOST:PORT` (client side: plaintext listener)")
	fs.StringVar(&l.UpstreamDomain, "upstream-domain", "", "mail `domain` (client side, smtp): deliver to its MX hosts under its MTA-STS/DANE policy, TLS always")
	fs.StringVar(&l.Mode, "mode", "", "client side `mode`: required (STARTTLS, the default) or implicit; with --upstream-domain dane, mta-sts or policy")
	fs.StringVar(&l.Resolver, "resolver", "", "--upstream-domain: validating resolver `HOST:PORT` for every lookup (default: first nameserver of /etc/resolv.conf); its AD bit is trusted, so use one on loopback")
	fs.IntVar(&l.SMTPPort, "smtp-port", 0, "--upstream-domain: `port` of the MX hosts (default 25)")
	fs.IntVar(&l.MTASTSPort, "mta-sts-port", 0, "--upstream-domain: HTTPS `port` of the MTA-STS policy host (default 443; for test labs)")
	fs.StringVar(&l.CA, "ca", "", "trust only the CA certificates in this PEM `file` for the upstream (with --upstream-domain: for MTA-STS) (default: system roots)")
	fs.StringVar(&l.ServerName, "server-name", "", "`name` verified in the upstream's certificate (default: its host)")
	fs.BoolVar(&l.AcceptProxy, "accept-proxy", false, "expect a PROXY protocol v1/v2 header from a load balancer")
	fs.IntVar(&l.SendProxy, "send-proxy", 0, "send a PROXY protocol header of this `version` (1 or 2) to the backend")
	fs.IntVar(&l.MaxConns, "max-conns", 0, "bound on concurrent connections (0: none)")
	fs.Float64Var(&l.RatePerIP, "rate", 0, "new connections per second per client IP (0: no bound)")
	fs.DurationVar(&l.HandshakeTimeout.Duration, "handshake-timeout", 0, "bound on the pre-TLS dialog, handshake and backend connection (default 10s)")
	fs.DurationVar(&l.IdleTimeout.Duration, "idle-timeout", 0, "close relays idle this long (default 5m)")
	logFormat := fs.String("log-format", "text", "log `format`: text or json (with --config: the file's log_format)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error (with --config: the file's log_level)")
	metrics := fs.String("metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (with --config: the file's metrics)")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "how long to drain connections on SIGINT/SIGTERM (with --config: the file's shutdown_timeout)")
	pos, err := parse(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "starttls proxy: unexpected argument %q\n", pos[0])
		return exitCantRun
	}
	var f *config.File
	if *cfgPath != "" {
		if l.Listen != "" || l.Protocol != "" || l.Backend != "" || l.Upstream != "" || l.UpstreamDomain != "" {
			fmt.Fprintln(e.stderr, "starttls proxy: --config and listener flags do not mix; put the listener in the file")
			return exitCantRun
		}
		f, err = config.Load(*cfgPath)
	} else {
		if l.Listen == "" || l.Protocol == "" {
			fmt.Fprintf(e.stderr, "starttls proxy: --listen and --protocol are required (or --config)\nusage: starttls %s\n", proxyUsage)
			return exitCantRun
		}
		if l.IdleTimeout.Duration < 0 || l.HandshakeTimeout.Duration < 0 {
			fmt.Fprintln(e.stderr, "starttls proxy: timeouts must not be negative")
			return exitCantRun
		}
		f = &config.File{LogFormat: *logFormat, LogLevel: *logLevel, Metrics: *metrics, Listeners: []config.Listener{l}}
		f.ShutdownTimeout.Duration = *shutdown
		f, err = config.Check(f)
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "starttls proxy:", err)
		return exitCantRun
	}
	if *checkOnly {
		fmt.Fprintf(e.stdout, "starttls proxy: configuration OK (%d listeners)\n", len(f.Listeners))
		return exitOK
	}
	return runProxyFile(e, f)
}

func proxyLogger(e *env, f *config.File) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(strings.ToUpper(f.LogLevel)))
	o := &slog.HandlerOptions{Level: lv}
	if f.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, o))
	}
	return slog.New(slog.NewTextHandler(e.stderr, o))
}

// runProxyFile starts every listener and runs until e.ctx ends (SIGINT,
// SIGTERM): then it stops accepting and drains within the shutdown timeout.
// SIGHUP reloads the certificates; so does a change of their files.
func runProxyFile(e *env, f *config.File) int {
	log := proxyLogger(e, f)
	m := proxy.NewMetrics()
	var servers []*proxy.Server
	var stores []*proxy.Certificates
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	for i := range f.Listeners {
		pl, store, err := f.Listeners[i].Build()
		if err == nil {
			var s *proxy.Server
			if s, err = proxy.New(pl, log, m); err == nil {
				var ln net.Listener
				if ln, err = net.Listen("tcp", pl.Listen); err == nil {
					servers = append(servers, s)
					lns = append(lns, ln)
				}
			}
		}
		if err != nil {
			closeAll()
			fmt.Fprintln(e.stderr, "starttls proxy:", err)
			return exitCantRun
		}
		if store != nil {
			stores = append(stores, store)
		}
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var wg sync.WaitGroup
	if f.Metrics != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", m)
		hs := &http.Server{Addr: f.Metrics, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		ml, err := net.Listen("tcp", f.Metrics)
		if err != nil {
			closeAll()
			fmt.Fprintln(e.stderr, "starttls proxy: metrics:", err)
			return exitCantRun
		}
		go hs.Serve(ml)
		defer hs.Close()
		log.Info("proxy: metrics", "url", "http://"+ml.Addr().String()+"/metrics")
	}
	reload := func(why string) {
		for _, st := range stores {
			if err := st.Reload(); err != nil {
				log.Error("proxy: certificate reload failed, keeping the old ones", "why", why, "err", err)
			} else {
				log.Info("proxy: certificates reloaded", "why", why)
			}
		}
	}
	hup := make(chan os.Signal, 1)
	if reloadSignal != nil { // Notify without a signal would relay them all
		signal.Notify(hup, reloadSignal)
		defer signal.Stop(hup)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload("SIGHUP")
			}
		}
	}()
	interval := f.WatchInterval.Duration
	if interval <= 0 {
		interval = 5 * time.Second
	}
	for _, st := range stores {
		go st.Watch(ctx, interval, func(err error) {
			if err != nil {
				log.Error("proxy: certificate files changed but do not load, keeping the old ones", "err", err)
			} else {
				log.Info("proxy: certificates reloaded", "why", "files changed")
			}
		})
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- s.Serve(lns[i])
		}()
	}
	status := exitOK
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("proxy: listener failed", "err", err)
		status = exitFail
	}
	timeout := f.ShutdownTimeout.Duration
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	log.Info("proxy: shutting down", "drain", timeout.String())
	sctx, scancel := context.WithTimeout(context.Background(), timeout)
	defer scancel()
	var swg sync.WaitGroup
	for _, s := range servers {
		swg.Add(1)
		go func() {
			defer swg.Done()
			if err := s.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				log.Warn("proxy: shutdown", "err", err)
			}
		}()
	}
	swg.Wait()
	wg.Wait()
	log.Info("proxy: stopped")
	return status
}
