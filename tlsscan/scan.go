package tlsscan

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Dialer opens a new connection to the target, runs the protocol dialog up to the point where TLS
// starts and calls probe with the raw connection; it returns probe's error (or its own, e.g. the
// upgrade was refused). The connection is closed after probe returns.
type Dialer func(ctx context.Context, probe func(ctx context.Context, conn net.Conn) error) error

// Options configures Scan. A nil *Options and the zero value mean the
// defaults below.
type Options struct {
	ServerName string        // SNI; empty (or an IP literal) sends no server_name extension
	MaxConns   int           // probes in flight at once; 0 = DefaultMaxConns (4)
	Timeout    time.Duration // per probe, the Dialer's protocol dialog included; 0 = 10 s
}

// Version names, the keys of Result.Versions.
const (
	SSLv2 = "SSLv2"
	SSLv3 = "SSLv3"
	TLS10 = "TLS1.0"
	TLS11 = "TLS1.1"
	TLS12 = "TLS1.2"
	TLS13 = "TLS1.3"
)

// Versions lists the protocol versions Scan probes, oldest first.
var Versions = []string{SSLv2, SSLv3, TLS10, TLS11, TLS12, TLS13}

// Result is what Scan learnt about the server. A nil *bool means not
// tested or undetermined.
type Result struct {
	Versions            map[string]*bool `json:"versions"`             // every key of Versions; nil = not tested / undetermined
	Ciphers             []Cipher         `json:"ciphers"`              // accepted suites, per version, in the server's preference order when it has one
	ServerCipherOrder   *bool            `json:"server_cipher_order"`  // the server chooses by its own order (for the highest TLS ≤1.2 version, or 1.3 if only 1.3)
	Groups              []string         `json:"groups"`               // accepted key-exchange groups: "X25519", "P-256", "P-384", "P-521", "X448", "ffdhe2048"…, "X25519MLKEM768" (IANA names)
	DHBits              int              `json:"dh_bits,omitempty"`    // smallest finite-field DH prime seen with DHE suites (from ServerKeyExchange)
	FallbackSCSV        *bool            `json:"fallback_scsv"`        // true: the server answers inappropriate_fallback to a lower-version hello with TLS_FALLBACK_SCSV; nil when only one version is accepted
	SecureRenegotiation *bool            `json:"secure_renegotiation"` // RFC 5746 renegotiation_info in the ServerHello (TLS ≤1.2)
	Compression         *bool            `json:"compression"`          // the server accepted DEFLATE (CRIME)
	SessionIDs          *bool            `json:"session_ids"`          // non-empty session id in a TLS ≤1.2 ServerHello
	SessionTickets      *bool            `json:"session_tickets"`      // session_ticket extension echoed (TLS ≤1.2)
	Connections         int              `json:"connections"`          // probes opened
	Errors              []string         `json:"errors,omitempty"`     // probes that failed for another reason than a refusal (timeouts, resets)
}

// DefaultMaxConns is the number of probes in flight when
// Options.MaxConns is 0.
const DefaultMaxConns = 4

// defaultTimeout bounds one probe when Options.Timeout is 0.
const defaultTimeout = 10 * time.Second

// chunkSize is the most suites one ClientHello offers: many servers
// refuse longer lists (testssl.sh uses the same bound).
const chunkSize = 128

// ErrUnreachable is returned (wrapped, with the first cause) when no probe
// reached the point where TLS starts.
var ErrUnreachable = errors.New("tlsscan: no probe reached the server")

// outcome classifies a probe.
type outcome int

const (
	outAccepted outcome = iota // ServerHello or HelloRetryRequest (or SSLv2 SERVER-HELLO)
	outRefused                 // alert, close or reset right after the hello, timeout
	outError                   // undetermined: dial failure, garbage, protocol violation
)

type answer struct {
	out   outcome
	f     *flight
	v2    *sslv2Hello
	alert int // alert description, -1 if none
	err   error
}

type scanner struct {
	dial Dialer
	o    Options
	sem  chan struct{}
	key  []byte // X25519 public key for TLS 1.3 key_share

	mu      sync.Mutex
	res     *Result
	reached bool
	dialErr error
}

// versionScan is the state of one version's enumeration.
type versionScan struct {
	name     string
	accepted *bool
	picks    []uint16 // accepted suites, in the server's (or our) order
	chunks   int      // chunks that contributed picks
	first    *serverHello
	order    *bool
	v2       []Cipher

	reordered []uint16 // picks in the server's order, set by order
}

// Scan probes the server reached through dial: versions, cipher suites
// per version and their order, groups, DH size, TLS_FALLBACK_SCSV, secure
// renegotiation, compression, session ids and tickets. Each probe is one
// connection from dial. The error is non-nil only when ctx ends (the
// Result then holds what was learnt) or when no probe reached the server
// (ErrUnreachable, wrapping the first dial error).
func Scan(ctx context.Context, dial Dialer, o *Options) (*Result, error) {
	s := &scanner{dial: dial, res: &Result{Versions: map[string]*bool{}}}
	if o != nil {
		s.o = *o
	}
	if s.o.MaxConns <= 0 {
		s.o.MaxConns = DefaultMaxConns
	}
	if s.o.Timeout <= 0 {
		s.o.Timeout = defaultTimeout
	}
	if _, err := netip.ParseAddr(s.o.ServerName); err == nil {
		s.o.ServerName = "" // RFC 6066 §3: no IP literals in server_name
	}
	s.o.ServerName = strings.TrimSuffix(s.o.ServerName, ".")
	s.sem = make(chan struct{}, s.o.MaxConns)
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	s.key = priv.PublicKey().Bytes()
	for _, v := range Versions {
		s.res.Versions[v] = nil
	}

	// Phase 1: every version, enumerating its suites as it goes.
	vs := make(map[string]*versionScan, len(Versions))
	var wg sync.WaitGroup
	for _, v := range Versions {
		x := &versionScan{name: v}
		vs[v] = x
		wg.Go(func() {
			if v == SSLv2 {
				s.scanSSLv2(ctx, x)
			} else {
				s.scanVersion(ctx, x)
			}
		})
	}
	wg.Wait()
	if err := ctxErr(ctx); err != nil {
		return s.finish(vs), err
	}
	if !s.reached {
		return s.finish(vs), fmt.Errorf("%w: %w", ErrUnreachable, s.dialErr)
	}

	// Phase 2: order, groups, fallback, compression, from what phase 1 found.
	var accepted []string
	for _, v := range Versions[1:] {
		if b := vs[v].accepted; b != nil && *b {
			accepted = append(accepted, v)
		}
	}
	for _, v := range accepted {
		x := vs[v]
		wg.Go(func() { s.order(ctx, x) })
	}
	var top12 string // highest accepted version ≤ TLS 1.2
	for _, v := range accepted {
		if v != TLS13 {
			top12 = v
		}
	}
	wg.Go(func() { s.scanGroups(ctx, vs, top12) })
	if len(accepted) >= 2 { // the version just below the highest one
		lower := vs[accepted[len(accepted)-2]]
		wg.Go(func() { s.scanFallback(ctx, lower) })
	}
	if top12 != "" {
		wg.Go(func() { s.scanCompression(ctx, vs[top12]) })
		if sh := vs[top12].first; sh != nil {
			s.res.SecureRenegotiation = ptr(sh.renegInfo)
			s.res.SessionIDs = ptr(len(sh.sessionID) > 0)
			if top12 != SSLv3 { // SSLv3 hellos carry no session_ticket extension
				s.res.SessionTickets = ptr(sh.ticket)
			}
		}
	}
	wg.Wait()
	for _, x := range vs {
		if x.reordered != nil {
			x.picks = x.reordered
		}
	}
	res := s.finish(vs)
	if top12 != "" {
		res.ServerCipherOrder = vs[top12].order
	} else if len(accepted) > 0 {
		res.ServerCipherOrder = vs[TLS13].order
	}
	return res, ctxErr(ctx)
}

// ctxErr is ctx.Err(), also when ctx's deadline has passed but its timer
// has not fired yet: a probe's read deadline (the same instant) can end
// the scan first, and a scan cut short by the deadline must say so.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func (s *scanner) finish(vs map[string]*versionScan) *Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res
	r.Ciphers = nil
	for _, v := range Versions {
		x := vs[v]
		if x == nil {
			continue
		}
		r.Versions[v] = x.accepted
		r.Ciphers = append(r.Ciphers, x.v2...)
		for _, id := range x.picks {
			c, ok := byID[id]
			if !ok {
				c = Cipher{ID: id, Name: fmt.Sprintf("0x%04X", id)}
			}
			c.Version = v
			r.Ciphers = append(r.Ciphers, c)
		}
	}
	return r
}

func ptr(b bool) *bool { return &b }

func (s *scanner) errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.res.Errors) < 100 {
		s.res.Errors = append(s.res.Errors, fmt.Sprintf(format, args...))
	}
}

// helloFor builds the ClientHello of version v offering ids.
func (s *scanner) helloFor(v string, ids []uint16) *hello {
	h := &hello{version: v, suites: ids, serverName: s.o.ServerName}
	switch v {
	case TLS13:
		h.groups = groupIDs(true)
		h.keyShares = []keyShare{{29, s.key}}
	case SSLv3, SSLv2:
	default:
		h.groups = groupIDs(false)
	}
	return h
}

// probe opens one connection through the Dialer, sends h and reads the
// answer. label names the probe in Result.Errors.
func (s *scanner) probe(ctx context.Context, label string, h *hello) answer {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return answer{out: outError, alert: -1, err: ctx.Err()}
	}
	defer func() { <-s.sem }()
	s.mu.Lock()
	s.res.Connections++
	s.mu.Unlock()

	pctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	random := make([]byte, 32)
	rand.Read(random)
	msg := h.marshal(random)
	a := answer{alert: -1}
	called := false
	err := s.dial(pctx, func(pctx context.Context, conn net.Conn) error {
		called = true
		a = exchange(pctx, conn, msg, h.version == SSLv2)
		return nil
	})
	if !called {
		if err == nil {
			err = errors.New("tlsscan: the dialer did not call the probe")
		}
		a = answer{out: outError, alert: -1, err: err}
		s.mu.Lock()
		if s.dialErr == nil {
			s.dialErr = err
		}
		s.mu.Unlock()
	} else {
		s.mu.Lock()
		s.reached = true
		s.mu.Unlock()
	}
	if a.err != nil && ctx.Err() == nil {
		s.errorf("%s: %v", label, a.err)
	}
	return a
}

// exchange writes the hello and reads the first flight.
func exchange(ctx context.Context, conn net.Conn, msg []byte, sslv2 bool) answer {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(msg); err != nil {
		return failure(err)
	}
	r := bufio.NewReaderSize(conn, 8192)
	if sslv2 {
		v2, err := readSSLv2(r)
		if err != nil {
			return failure(err)
		}
		return answer{out: outAccepted, v2: v2, alert: -1}
	}
	f, err := readFlight(r, wantKX)
	if err != nil {
		return failure(err)
	}
	return answer{out: outAccepted, f: f, alert: -1}
}

// wantKX says whether the picked suite has a ServerKeyExchange worth
// reading: DHE (prime size) and ECDHE (named curve).
func wantKX(sh *serverHello) (want, ecdhe bool) {
	c, ok := byID[sh.suite]
	if !ok {
		return false, false
	}
	switch {
	case c.Kex == "DHE", c.Kex == "anon" && strings.Contains(c.Name, "_DH_anon"):
		return true, false
	case c.Kex == "ECDHE", c.Kex == "anon" && strings.Contains(c.Name, "_ECDH_anon"):
		return true, true
	}
	return false, false
}

// failure classifies a probe error: alerts, EOF and resets are refusals;
// a timeout is a refusal that is also reported; anything else is
// undetermined.
func failure(err error) answer {
	var ae *alertError
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		return answer{out: outRefused, alert: int(ae.desc)}
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return answer{out: outRefused, alert: -1, err: errors.New("timeout waiting for the server's hello")}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF):
		return answer{out: outRefused, alert: -1}
	}
	return answer{out: outError, alert: -1, err: err}
}

// accepted reports whether a is a ServerHello (or HRR) for version v.
func accepted(a answer, v string) bool {
	return a.out == outAccepted && a.f != nil && a.f.sh.version == wireVersion[v]
}

func (s *scanner) noteKX(f *flight) {
	if f == nil || f.kx == nil || f.kx.dhBits == 0 {
		return
	}
	s.mu.Lock()
	if s.res.DHBits == 0 || f.kx.dhBits < s.res.DHBits {
		s.res.DHBits = f.kx.dhBits
	}
	s.mu.Unlock()
}

// chunkResult is the enumeration of one chunk of suites.
type chunkResult struct {
	picks  []uint16
	first  *serverHello
	status outcome
}

// enumChunk finds the accepted suites among ids by repeated removal:
// offer all remaining, note the pick, remove it, until a refusal.
func (s *scanner) enumChunk(ctx context.Context, v string, ids []uint16) chunkResult {
	rem := slices.Clone(ids)
	r := chunkResult{status: outRefused}
	for len(rem) > 0 && ctx.Err() == nil {
		a := s.probe(ctx, v+" suites", s.helloFor(v, rem))
		if !accepted(a, v) {
			if len(r.picks) == 0 && a.out == outError {
				r.status = outError
			}
			break
		}
		sh := a.f.sh
		if !slices.Contains(rem, sh.suite) {
			s.errorf("%s suites: server picked 0x%04X, which was not offered", v, sh.suite)
			if len(r.picks) == 0 {
				r.status = outError
			}
			break
		}
		r.status = outAccepted
		r.picks = append(r.picks, sh.suite)
		if r.first == nil {
			r.first = sh
		}
		s.noteKX(a.f)
		rem = slices.DeleteFunc(rem, func(id uint16) bool { return id == sh.suite })
	}
	return r
}

// scanVersion probes version v with all its suites, in chunks, and
// enumerates the accepted ones.
func (s *scanner) scanVersion(ctx context.Context, x *versionScan) {
	ids := suitesFor(x.name)
	var chunks [][]uint16
	for c := range slices.Chunk(ids, chunkSize) {
		chunks = append(chunks, c)
	}
	results := make([]chunkResult, len(chunks))
	var wg sync.WaitGroup
	for i, c := range chunks {
		wg.Go(func() { results[i] = s.enumChunk(ctx, x.name, c) })
	}
	wg.Wait()
	undetermined := false
	for _, r := range results {
		if len(r.picks) > 0 {
			x.chunks++
			x.picks = append(x.picks, r.picks...)
			if x.first == nil {
				x.first = r.first
			}
		}
		if r.status == outError {
			undetermined = true
		}
	}
	switch {
	case len(x.picks) > 0:
		x.accepted = ptr(true)
	case !undetermined && ctx.Err() == nil:
		x.accepted = ptr(false)
	}
}

// order decides whether the server picks by its own preference (the pick
// does not follow the client's order when the accepted suites are offered
// forwards and reversed) and, if so and the suites came from several
// chunks, sorts them into the server's order by repeated removal.
func (s *scanner) order(ctx context.Context, x *versionScan) {
	if len(x.picks) < 2 {
		return
	}
	fwd := x.picks
	rev := slices.Clone(fwd)
	slices.Reverse(rev)
	var a1, a2 answer
	var wg sync.WaitGroup
	wg.Go(func() { a1 = s.probe(ctx, x.name+" order", s.helloFor(x.name, fwd)) })
	wg.Go(func() { a2 = s.probe(ctx, x.name+" order", s.helloFor(x.name, rev)) })
	wg.Wait()
	if !accepted(a1, x.name) || !accepted(a2, x.name) {
		if ctx.Err() == nil {
			s.errorf("%s order: the server refused suites it accepted before", x.name)
		}
		return
	}
	p1, p2 := a1.f.sh.suite, a2.f.sh.suite
	server := !(p1 == fwd[0] && p2 == rev[0])
	x.order = &server
	if !server || x.chunks < 2 {
		return // the removal already ran in the deciding party's order
	}
	ordered := []uint16{p1}
	rem := slices.DeleteFunc(slices.Clone(fwd), func(id uint16) bool { return id == p1 })
	for len(rem) > 1 {
		a := s.probe(ctx, x.name+" order", s.helloFor(x.name, rem))
		if !accepted(a, x.name) || !slices.Contains(rem, a.f.sh.suite) {
			return // keep the enumeration order
		}
		p := a.f.sh.suite
		ordered = append(ordered, p)
		rem = slices.DeleteFunc(rem, func(id uint16) bool { return id == p })
	}
	x.reordered = append(ordered, rem...) // applied after phase 2: other probes read picks
}

// scanGroups enumerates the key-exchange groups by repeated removal:
// TLS 1.3 with supported_groups = the remaining groups and an empty
// key_share, so that the server names its choice in a HelloRetryRequest
// (RFC 8446 §4.1.4); otherwise TLS ≤1.2 with the accepted ECDHE suites,
// the curve read from the ServerKeyExchange (RFC 8422 §5.4).
func (s *scanner) scanGroups(ctx context.Context, vs map[string]*versionScan, top12 string) {
	var v string
	var suites []uint16
	if b := vs[TLS13].accepted; b != nil && *b {
		v, suites = TLS13, vs[TLS13].picks
	} else if top12 != "" && top12 != SSLv3 {
		v = top12
		for _, id := range vs[top12].picks {
			if byID[id].Kex == "ECDHE" {
				suites = append(suites, id)
			}
		}
	}
	if len(suites) == 0 {
		return
	}
	rem := groupIDs(v == TLS13)
	var found []string
	for len(rem) > 0 && ctx.Err() == nil {
		h := s.helloFor(v, suites)
		h.groups = rem
		h.keyShares = nil
		a := s.probe(ctx, v+" groups", h)
		if !accepted(a, v) {
			break
		}
		g := a.f.sh.group
		if v != TLS13 {
			if a.f.kx == nil {
				s.errorf("%s groups: no ServerKeyExchange curve for suite 0x%04X", v, a.f.sh.suite)
				break
			}
			g = a.f.kx.group
		}
		if !slices.Contains(rem, g) {
			s.errorf("%s groups: server chose group %d, which was not offered", v, g)
			break
		}
		found = append(found, groupName(g))
		rem = slices.DeleteFunc(rem, func(id uint16) bool { return id == g })
	}
	s.mu.Lock()
	s.res.Groups = found
	s.mu.Unlock()
}

// scanFallback offers version x (below the highest accepted one) with
// TLS_FALLBACK_SCSV (RFC 7507 §3): inappropriate_fallback means the server
// protects against downgrades.
func (s *scanner) scanFallback(ctx context.Context, x *versionScan) {
	h := s.helloFor(x.name, x.picks)
	h.fallback = true
	a := s.probe(ctx, x.name+" fallback", h)
	var v *bool
	switch {
	case a.alert == alertInappropriateFallback:
		v = ptr(true)
	case accepted(a, x.name):
		v = ptr(false)
	case ctx.Err() == nil:
		s.errorf("%s fallback: undetermined (alert %d)", x.name, a.alert)
	}
	s.mu.Lock()
	s.res.FallbackSCSV = v
	s.mu.Unlock()
}

// scanCompression offers DEFLATE (RFC 3749) before null.
func (s *scanner) scanCompression(ctx context.Context, x *versionScan) {
	h := s.helloFor(x.name, x.picks)
	h.deflate = true
	a := s.probe(ctx, x.name+" compression", h)
	var v *bool
	switch {
	case accepted(a, x.name):
		v = ptr(a.f.sh.compression == 1)
	case a.out == outRefused:
		v = ptr(false)
	}
	s.mu.Lock()
	s.res.Compression = v
	s.mu.Unlock()
}

// scanSSLv2 sends an SSLv2 CLIENT-HELLO; a SERVER-HELLO means SSLv2.
func (s *scanner) scanSSLv2(ctx context.Context, x *versionScan) {
	a := s.probe(ctx, SSLv2, s.helloFor(SSLv2, nil))
	switch {
	case a.out == outAccepted && a.v2 != nil && a.v2.version == vSSL2:
		x.accepted = ptr(true)
		for _, sp := range sslv2Specs {
			if slices.Contains(a.v2.specs, sp.id) {
				x.v2 = append(x.v2, sslv2Cipher(sp))
			}
		}
	case a.out == outRefused:
		x.accepted = ptr(false)
	case a.out == outAccepted:
		x.accepted = ptr(false)
	}
}
