package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one proxy's measurements, the JSON that bench prints and table
// reads. Rates use decimal units: MB = 10^6 bytes, GB = 10^9 bytes.
type Result struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	TLS     string `json:"tls"` // what was negotiated: version, suite, group, certificate key

	// Bulk throughput, MB/s: backend→client (the proxy encrypts) and
	// client→backend (the proxy decrypts), through 1 connection and through
	// BulkConns at once.
	Down1          float64 `json:"down_1_mbps"`
	DownN          float64 `json:"down_n_mbps"`
	Up1            float64 `json:"up_1_mbps"`
	UpN            float64 `json:"up_n_mbps"`
	BulkConns      int     `json:"bulk_conns"`
	BulkBytes      int64   `json:"bulk_bytes"`
	BulkCPUSeconds float64 `json:"bulk_cpu_seconds"` // utime+stime of the proxy's processes during the four bulk phases
	CPUPerGB       float64 `json:"cpu_seconds_per_gb"`

	// Full handshakes (no resumption) per second with HandshakeClients
	// clients, each connection carrying one byte there and back.
	Handshakes       float64 `json:"handshakes_per_second"`
	HandshakeClients int     `json:"handshake_clients"`
	HandshakeErrors  int64   `json:"handshake_errors"`

	// Round trips of a small message (LatencyBytes) on an established
	// connection, through the proxy and straight to the backend, taken in
	// turns; microseconds.
	LatencyBytes   int     `json:"latency_bytes"`
	LatencySamples int     `json:"latency_samples"`
	ProxyP50       float64 `json:"proxy_p50_us"`
	ProxyP99       float64 `json:"proxy_p99_us"`
	DirectP50      float64 `json:"direct_p50_us"`
	DirectP99      float64 `json:"direct_p99_us"`
	AddedP50       float64 `json:"added_p50_us"` // ProxyP50 - DirectP50
	AddedP99       float64 `json:"added_p99_us"`

	// Idle connections (TLS up, one echo done, the backend leg open) and
	// the resident memory of the proxy's processes before and after.
	IdleWanted      int     `json:"idle_wanted"`
	IdleOpened      int     `json:"idle_opened"`
	IdleAlive       int     `json:"idle_alive"`   // of the sampled ones, still echoing after the RSS sample
	IdleSampled     int     `json:"idle_sampled"` // how many were sampled
	RSSBefore       int64   `json:"rss_before"`
	RSSAfter        int64   `json:"rss_after"`
	IdleBytesPerCon float64 `json:"idle_bytes_per_conn"`
	Procs           int     `json:"procs"`

	Notes  []string `json:"notes,omitempty"`
	Rounds int      `json:"rounds,omitempty"` // set by table when it merges rounds
}

type benchConfig struct {
	name, version, addr, backend, serverName string
	leaf                                     []byte // DER of the proxy's certificate
	roots                                    *x509.CertPool
	pid                                      int
	phase                                    time.Duration
	bulkConns                                int
	bulkCap                                  int64
	hsClients                                int
	idle                                     int
	latencyN                                 int
	latencyBytes                             int
	proc                                     procfs
	log                                      io.Writer
}

func benchCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c benchConfig
	fs.StringVar(&c.name, "name", "", "the proxy's name in the table (required)")
	fs.StringVar(&c.version, "version", "", "the proxy's version, for the table's notes")
	fs.StringVar(&c.addr, "addr", "", "the proxy's TLS listener, host:port (required)")
	fs.StringVar(&c.backend, "backend", "", "the sink the proxy forwards to, host:port (required; the direct baseline)")
	fs.StringVar(&c.serverName, "server-name", "127.0.0.1", "the name the certificate is verified for")
	certFile := fs.String("cert", "", "the proxy's certificate, PEM (required: it is pinned)")
	caFile := fs.String("ca", "", "CA certificate, PEM: the pinned certificate is verified against it once")
	fs.IntVar(&c.pid, "pid", 0, "the proxy's pid: CPU and memory of it and its descendants (0: not measured)")
	fs.DurationVar(&c.phase, "phase", 5*time.Second, "time bound of each timed phase")
	fs.IntVar(&c.bulkConns, "bulk-conns", 64, "connections of the parallel bulk phases")
	bulkMB := fs.Int64("bulk-cap-mb", 16000, "count bound of each bulk phase, MB (split over its connections)")
	fs.IntVar(&c.hsClients, "handshake-clients", 16, "concurrent clients of the handshake phase")
	fs.IntVar(&c.idle, "idle", 5000, "idle connections held for the memory measurement (0: skip)")
	fs.IntVar(&c.latencyN, "latency-samples", 20000, "count bound of the latency phase (round trips)")
	fs.IntVar(&c.latencyBytes, "latency-bytes", 64, "size of the latency phase's message")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.name == "" || c.addr == "" || c.backend == "" || *certFile == "" {
		return errors.New("--name, --addr, --backend and --cert are required")
	}
	if c.phase <= 0 || c.phase > 10*time.Minute || c.bulkConns < 1 || c.bulkConns > 4096 || *bulkMB < 1 ||
		c.hsClients < 1 || c.hsClients > 4096 || c.idle < 0 || c.idle > 100000 || c.latencyN < 1 ||
		c.latencyBytes < 1 || c.latencyBytes > 1<<20 {
		return errors.New("a bound is out of range (see -h)")
	}
	c.bulkCap = *bulkMB * 1e6
	leaf, err := readLeaf(*certFile)
	if err != nil {
		return err
	}
	c.leaf = leaf
	if *caFile != "" {
		b, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		c.roots = x509.NewCertPool()
		if !c.roots.AppendCertsFromPEM(b) {
			return fmt.Errorf("no certificate in %s", *caFile)
		}
	}
	c.proc = procfs{"/proc"}
	c.log = stderr
	res, err := bench(context.Background(), &c)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// readLeaf returns the DER of the first certificate in a PEM file.
func readLeaf(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("no certificate in %s", file)
		}
		if blk.Type == "CERTIFICATE" {
			return blk.Bytes, nil
		}
	}
}

func (c *benchConfig) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "proxyload [%s] "+format+"\n", append([]any{c.name}, args...)...)
}

// tlsConfig is the client configuration of every measured connection: TLS
// 1.3 and X25519 only (the Debian OpenSSL behind stunnel and HAProxy has no
// hybrid post-quantum group; Go's default would give the Go proxy a costlier
// key exchange than the others), no session cache (every handshake is
// full), and the proxy's leaf pinned.
func (c *benchConfig) tlsConfig() *tls.Config {
	leaf := c.leaf
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		MaxVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519},
		ServerName:       c.serverName,
		// The chain and name were verified once (verifyOnce); here the leaf
		// is compared byte for byte, which is as strict and keeps the load
		// generator's CPU on the handshake itself. The server's signature
		// over the handshake is still checked by crypto/tls.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.Version != tls.VersionTLS13 {
				return fmt.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(cs.Version))
			}
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, leaf) {
				return errors.New("the proxy presented another certificate than the pinned one")
			}
			return nil
		},
	}
}

const (
	dialTimeout = 10 * time.Second
	ioTimeout   = 15 * time.Second
)

// dialTLS connects and completes the handshake within dialTimeout.
func dialTLS(ctx context.Context, addr string, cfg *tls.Config) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

// echo sends msg and reads it back, within ioTimeout.
func echo(c net.Conn, msg, buf []byte) error {
	if err := c.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
		return err
	}
	if !bytes.Equal(buf[:len(msg)], msg) {
		return errors.New("echo: the bytes that came back differ from those sent")
	}
	return nil
}

// openEcho opens a TLS connection in echo mode and does one round trip of
// one byte: the proxy has then connected to the backend too.
func (c *benchConfig) openEcho(ctx context.Context, cfg *tls.Config) (*tls.Conn, error) {
	tc, err := dialTLS(ctx, c.addr, cfg)
	if err != nil {
		return nil, err
	}
	var buf [1]byte
	if err := writeAll(tc, []byte{opEcho}); err != nil {
		tc.Close()
		return nil, err
	}
	if err := echo(tc, []byte{'x'}, buf[:]); err != nil {
		tc.Close()
		return nil, err
	}
	return tc, nil
}

func writeAll(c net.Conn, b []byte) error {
	if err := c.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	_, err := c.Write(b)
	return err
}

// bench runs the phases in order: the fresh proxy's idle memory first (so
// the baseline is not the high-water mark of the bulk phases), then
// latency, handshakes and bulk.
func bench(ctx context.Context, c *benchConfig) (*Result, error) {
	r := &Result{Name: c.name, Version: c.version}
	if err := c.verifyOnce(ctx, r); err != nil {
		return nil, fmt.Errorf("first connection through %s: %w", c.addr, err)
	}
	c.logf("verified: %s", r.TLS)
	if c.idle > 0 {
		if err := c.idlePhase(ctx, r); err != nil {
			return nil, fmt.Errorf("idle: %w", err)
		}
	}
	if err := c.latencyPhase(ctx, r); err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}
	if err := c.handshakePhase(ctx, r); err != nil {
		return nil, fmt.Errorf("handshakes: %w", err)
	}
	if err := c.bulkPhases(ctx, r); err != nil {
		return nil, fmt.Errorf("bulk: %w", err)
	}
	return r, nil
}

// verifyOnce makes one connection with full verification (chain to the CA,
// name), checks the pinned leaf and what was negotiated, and relays 256 KiB
// of random bytes through the echo: the proxy works before it is measured.
func (c *benchConfig) verifyOnce(ctx context.Context, r *Result) error {
	cfg := c.tlsConfig()
	if c.roots != nil {
		pinned := cfg.VerifyConnection
		cfg.InsecureSkipVerify = false
		cfg.RootCAs = c.roots
		cfg.VerifyConnection = pinned
	} else {
		r.Notes = append(r.Notes, "no --ca: the certificate was pinned but its chain not verified")
	}
	tc, err := dialTLS(ctx, c.addr, cfg)
	if err != nil {
		return err
	}
	defer tc.Close()
	cs := tc.ConnectionState()
	r.TLS = fmt.Sprintf("%s %s %s, %s certificate", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite),
		cs.CurveID, certKeyName(cs.PeerCertificates[0]))
	if err := writeAll(tc, []byte{opEcho}); err != nil {
		return err
	}
	msg := make([]byte, 256<<10)
	if _, err := rand.Read(msg); err != nil {
		return err
	}
	// Written from a goroutine: the echo comes back while we write, and
	// buffers between us and the sink are finite.
	werr := make(chan error, 1)
	go func() { werr <- writeAll(tc, msg) }()
	got := make([]byte, len(msg))
	if err := tc.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	if _, err := io.ReadFull(tc, got); err != nil {
		return fmt.Errorf("echo of 256 KiB: %w", err)
	}
	if err := <-werr; err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo of 256 KiB: bytes changed on the way")
	}
	return nil
}

// certKeyName names a certificate's key: "ECDSA P-256", "RSA 2048".
func certKeyName(cert *x509.Certificate) string {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	return cert.PublicKeyAlgorithm.String()
}

// idlePhase opens c.idle connections and holds them, sampling the proxy's
// memory before and after. Before the baseline, a few connections warm the
// proxy up (buffers, goroutines, worker threads) and are closed again.
func (c *benchConfig) idlePhase(ctx context.Context, r *Result) error {
	cfg := c.tlsConfig()
	r.IdleWanted = c.idle
	for range 20 {
		tc, err := c.openEcho(ctx, cfg)
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		tc.Close()
	}
	time.Sleep(time.Second)
	var before snapshot
	if c.pid > 0 {
		var err error
		if before, err = c.proc.usage(c.pid); err != nil {
			return err
		}
	}
	conns := make([]*tls.Conn, c.idle)
	defer func() {
		for _, tc := range conns {
			if tc != nil {
				tc.Close()
			}
		}
		// Let the proxy tear 5,000 connections down before the latency
		// phase measures it.
		time.Sleep(2 * time.Second)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	var next, opened, failed atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for failed.Load() < 100 && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(len(conns)) {
					return
				}
				tc, err := c.openEcho(ctx, cfg)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				conns[i] = tc
				opened.Add(1)
			}
		})
	}
	wg.Wait()
	r.IdleOpened = int(opened.Load())
	c.logf("idle: %d of %d connections open (%d failed)", r.IdleOpened, c.idle, failed.Load())
	if r.IdleOpened < c.idle {
		r.Notes = append(r.Notes, fmt.Sprintf("idle: only %d of %d connections opened (first error: %v)", r.IdleOpened, c.idle, firstErr))
	}
	if r.IdleOpened == 0 {
		return fmt.Errorf("no idle connection opened: %v", firstErr)
	}
	time.Sleep(2 * time.Second) // let the proxy settle (lazy allocation, its GC)
	if c.pid > 0 {
		after, err := c.proc.usage(c.pid)
		if err != nil {
			return err
		}
		r.RSSBefore, r.RSSAfter, r.Procs = before.RSS, after.RSS, after.Procs
		r.IdleBytesPerCon = float64(after.RSS-before.RSS) / float64(r.IdleOpened)
	}
	// The connections were really open: every 50th still echoes.
	var buf [1]byte
	for i := 0; i < len(conns); i += 50 {
		if conns[i] == nil {
			continue
		}
		r.IdleSampled++
		if echo(conns[i], []byte{'y'}, buf[:]) == nil {
			r.IdleAlive++
		}
	}
	if r.IdleAlive < r.IdleSampled {
		r.Notes = append(r.Notes, fmt.Sprintf("idle: %d of %d sampled connections no longer echoed", r.IdleSampled-r.IdleAlive, r.IdleSampled))
	}
	return nil
}

// latencyPhase measures round trips of c.latencyBytes through the proxy and
// straight to the backend, one after the other on two established
// connections, so that both see the same machine load.
func (c *benchConfig) latencyPhase(ctx context.Context, r *Result) error {
	tc, err := c.openEcho(ctx, c.tlsConfig())
	if err != nil {
		return err
	}
	defer tc.Close()
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	direct, err := d.DialContext(dctx, "tcp", c.backend)
	cancel()
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	defer direct.Close()
	if err := writeAll(direct, []byte{opEcho}); err != nil {
		return err
	}
	msg := bytes.Repeat([]byte{'l'}, c.latencyBytes)
	buf := make([]byte, c.latencyBytes)
	const warm = 200
	var viaProxy, viaDirect []time.Duration
	deadline := time.Now().Add(c.phase)
	for i := 0; i < c.latencyN+warm && time.Now().Before(deadline); i++ {
		t0 := time.Now()
		if err := echo(tc, msg, buf); err != nil {
			return err
		}
		t1 := time.Now()
		if err := echo(direct, msg, buf); err != nil {
			return err
		}
		t2 := time.Now()
		if i >= warm {
			viaProxy = append(viaProxy, t1.Sub(t0))
			viaDirect = append(viaDirect, t2.Sub(t1))
		}
	}
	if len(viaProxy) < 50 {
		return fmt.Errorf("only %d round trips in %v", len(viaProxy), c.phase)
	}
	r.LatencyBytes, r.LatencySamples = c.latencyBytes, len(viaProxy)
	r.ProxyP50, r.ProxyP99 = percentile(viaProxy, 50), percentile(viaProxy, 99)
	r.DirectP50, r.DirectP99 = percentile(viaDirect, 50), percentile(viaDirect, 99)
	r.AddedP50, r.AddedP99 = r.ProxyP50-r.DirectP50, r.ProxyP99-r.DirectP99
	c.logf("latency: %d samples, proxy p50 %.0fµs p99 %.0fµs, direct p50 %.0fµs p99 %.0fµs",
		r.LatencySamples, r.ProxyP50, r.ProxyP99, r.DirectP50, r.DirectP99)
	return nil
}

// percentile returns the p-th percentile (nearest rank) in microseconds;
// it sorts d.
func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d))*p/100+0.5) - 1
	i = min(max(i, 0), len(d)-1)
	return float64(d[i]) / float64(time.Microsecond)
}

// handshakePhase: c.hsClients clients each make new connections in a loop
// (full handshake, one byte there and back, close) for c.phase.
func (c *benchConfig) handshakePhase(ctx context.Context, r *Result) error {
	cfg := c.tlsConfig()
	const maxCount, maxErrors = 1_000_000, 1000
	var ok, failed atomic.Int64
	var firstErr error
	var mu sync.Mutex
	start := time.Now()
	deadline := start.Add(c.phase)
	var wg sync.WaitGroup
	for range c.hsClients {
		wg.Go(func() {
			for time.Now().Before(deadline) && ok.Load() < maxCount && failed.Load() < maxErrors {
				tc, err := c.openEcho(ctx, cfg)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				tc.Close()
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r.HandshakeClients = c.hsClients
	r.HandshakeErrors = failed.Load()
	r.Handshakes = float64(ok.Load()) / elapsed.Seconds()
	c.logf("handshakes: %d in %.1fs with %d clients (%.0f/s), %d failed", ok.Load(), elapsed.Seconds(), c.hsClients, r.Handshakes, r.HandshakeErrors)
	if r.HandshakeErrors > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("handshakes: %d failed (first: %v)", r.HandshakeErrors, firstErr))
	}
	if ok.Load() == 0 {
		return fmt.Errorf("no handshake succeeded: %v", firstErr)
	}
	return nil
}

// bulkPhases runs the four bulk phases and the proxy's CPU time over them.
func (c *benchConfig) bulkPhases(ctx context.Context, r *Result) error {
	var u0 snapshot
	if c.pid > 0 {
		var err error
		if u0, err = c.proc.usage(c.pid); err != nil {
			return err
		}
	}
	r.BulkConns = c.bulkConns
	var total int64
	for _, p := range []struct {
		op    byte
		conns int
		out   *float64
		label string
	}{
		{opDownload, 1, &r.Down1, "backend→client, 1 connection"},
		{opUpload, 1, &r.Up1, "client→backend, 1 connection"},
		{opDownload, c.bulkConns, &r.DownN, fmt.Sprintf("backend→client, %d connections", c.bulkConns)},
		{opUpload, c.bulkConns, &r.UpN, fmt.Sprintf("client→backend, %d connections", c.bulkConns)},
	} {
		n, elapsed, err := c.bulk(ctx, p.op, p.conns)
		if err != nil {
			return fmt.Errorf("%s: %w", p.label, err)
		}
		total += n
		*p.out = float64(n) / 1e6 / elapsed.Seconds()
		c.logf("bulk %s: %.0f MB in %.2fs = %.1f MB/s", p.label, float64(n)/1e6, elapsed.Seconds(), *p.out)
	}
	r.BulkBytes = total
	if c.pid > 0 {
		u1, err := c.proc.usage(c.pid)
		if err != nil {
			return err
		}
		r.BulkCPUSeconds = float64(u1.CPUTicks-u0.CPUTicks) / clockTicks()
		r.CPUPerGB = r.BulkCPUSeconds / (float64(total) / 1e9)
		c.logf("bulk: %.2f CPU seconds for %.2f GB = %.2f s/GB", r.BulkCPUSeconds, float64(total)/1e9, r.CPUPerGB)
	}
	return nil
}

// bulk moves data through conns connections at once: each is opened and
// its handshake done first, then all start together; each stops when its
// share of c.bulkCap has moved or c.phase has passed. It returns the bytes
// moved and the time from the start until the last connection stopped.
func (c *benchConfig) bulk(ctx context.Context, op byte, conns int) (int64, time.Duration, error) {
	cfg := c.tlsConfig()
	share := c.bulkCap / int64(conns)
	tcs := make([]*tls.Conn, conns)
	defer func() {
		for _, tc := range tcs {
			if tc != nil {
				tc.Close()
			}
		}
	}()
	for i := range tcs {
		tc, err := dialTLS(ctx, c.addr, cfg)
		if err != nil {
			return 0, 0, err
		}
		tcs[i] = tc
	}
	var moved atomic.Int64
	errs := make([]error, conns)
	start := time.Now()
	deadline := start.Add(c.phase)
	var wg sync.WaitGroup
	for i, tc := range tcs {
		wg.Go(func() {
			errs[i] = bulkOne(tc, op, share, deadline, &moved)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	return moved.Load(), elapsed, nil
}

// bulkOne is one connection of a bulk phase. Running into the deadline is
// the normal end of a phase, not an error.
func bulkOne(tc *tls.Conn, op byte, n int64, deadline time.Time, moved *atomic.Int64) error {
	hdr := make([]byte, 9)
	hdr[0] = op
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	if err := tc.SetDeadline(deadline.Add(ioTimeout)); err != nil {
		return err
	}
	if _, err := tc.Write(hdr); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	if err := tc.SetDeadline(deadline); err != nil {
		return err
	}
	var done int64
	for done < n {
		var k int
		var err error
		if op == opDownload {
			k, err = tc.Read(buf[:min(int64(len(buf)), n-done)])
		} else {
			k, err = tc.Write(buf[:min(int64(len(buf)), n-done)])
		}
		done += int64(k)
		moved.Add(int64(k))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return err
		}
	}
	if op == opUpload {
		// All of it sent before the deadline: the sink's count confirms
		// that it arrived.
		if err := tc.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
			return err
		}
		got, err := readCount(tc)
		if err != nil {
			return fmt.Errorf("upload acknowledgement: %w", err)
		}
		if got != n {
			return fmt.Errorf("the sink counted %d bytes, %d were sent", got, n)
		}
	}
	return nil
}
