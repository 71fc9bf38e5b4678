package proxy

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Metrics counts what every Server sharing it does and writes them in the
// Prometheus text exposition format (version 0.0.4), by hand: a handful
// of counters does not need the client library. A nil *Metrics counts
// nothing.
type Metrics struct {
	mu       sync.Mutex
	counters map[string]float64 // "name{labels}" → value
	gauges   map[string]float64
	hists    map[string]*histogram // "name{labels}"
}

// handshakeBuckets are the upper bounds, in seconds, of the handshake
// duration histogram: a loopback TLS handshake takes about a millisecond,
// a pre-TLS dialog with a person typing many seconds.
var handshakeBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	n      uint64
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{counters: map[string]float64{}, gauges: map[string]float64{}, hists: map[string]*histogram{}}
}

// observe adds one value to a histogram with handshakeBuckets.
func (m *Metrics) observe(name, labels string, v float64) {
	if m == nil {
		return
	}
	key := name + "{" + labels + "}"
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.hists[key]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(handshakeBuckets)+1)}
		m.hists[key] = h
	}
	i := 0
	for i < len(handshakeBuckets) && v > handshakeBuckets[i] {
		i++
	}
	h.counts[i]++
	h.sum += v
	h.n++
}

func (m *Metrics) handshook(l string, d time.Duration) {
	m.observe("starttls_proxy_handshake_duration_seconds", l, d.Seconds())
}

var metricHelp = map[string]string{
	"starttls_proxy_connections_total":           "counter Connections accepted.",
	"starttls_proxy_connections_open":            "gauge Connections open now.",
	"starttls_proxy_connections_refused_total":   "counter Connections refused by a limit, by reason.",
	"starttls_proxy_upgrades_total":              "counter Connections secured by TLS (server side: handshake done; client side: upstream upgraded).",
	"starttls_proxy_handshake_failures_total":    "counter Connections that failed before the relay, by reason.",
	"starttls_proxy_bytes_total":                 "counter Bytes relayed, by direction (up: client to backend).",
	"starttls_proxy_connection_duration_seconds": "counter Sum of the durations of closed connections.",
	"starttls_proxy_connections_closed_total":    "counter Connections closed.",
	"starttls_proxy_relay_duration_seconds":      "counter Sum of the durations of relays.",
	"starttls_proxy_handshake_duration_seconds":  "histogram Time from accept to the relay's start (pre-TLS dialog, TLS handshake, backend connection), successful connections only.",
}

func (m *Metrics) add(name, labels string, v float64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.counters[name+"{"+labels+"}"] += v
	m.mu.Unlock()
}

func (m *Metrics) gauge(name, labels string, v float64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.gauges[name+"{"+labels+"}"] += v
	m.mu.Unlock()
}

func (m *Metrics) connOpened(l string) {
	m.add("starttls_proxy_connections_total", l, 1)
	m.gauge("starttls_proxy_connections_open", l, 1)
}

func (m *Metrics) connClosed(l string, d time.Duration) {
	m.gauge("starttls_proxy_connections_open", l, -1)
	m.add("starttls_proxy_connections_closed_total", l, 1)
	m.add("starttls_proxy_connection_duration_seconds", l, d.Seconds())
}

func (m *Metrics) refused(l, reason string) {
	m.add("starttls_proxy_connections_refused_total", l+`,reason="`+reason+`"`, 1)
}

func (m *Metrics) failed(l, reason string) {
	m.add("starttls_proxy_handshake_failures_total", l+`,reason="`+reason+`"`, 1)
}

func (m *Metrics) upgraded(l string) { m.add("starttls_proxy_upgrades_total", l, 1) }

func (m *Metrics) relayed(l string, up, down int64, d time.Duration) {
	m.add("starttls_proxy_bytes_total", l+`,direction="up"`, float64(up))
	m.add("starttls_proxy_bytes_total", l+`,direction="down"`, float64(down))
	m.add("starttls_proxy_relay_duration_seconds", l, d.Seconds())
}

// Get returns the value of one series, name{labels} exactly as written.
func (m *Metrics) Get(series string) float64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.counters[series]; ok {
		return v
	}
	return m.gauges[series]
}

// WriteTo writes the exposition, families sorted by name.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	if m == nil {
		return 0, nil
	}
	m.mu.Lock()
	byName := map[string][]string{}
	vals := map[string]float64{}
	for _, src := range []map[string]float64{m.counters, m.gauges} {
		for k, v := range src {
			name := k[:indexByte(k, '{')]
			byName[name] = append(byName[name], k)
			vals[k] = v
		}
	}
	type histSnap struct {
		key string
		h   histogram
	}
	hists := map[string][]histSnap{}
	for k, h := range m.hists {
		name := k[:indexByte(k, '{')]
		hists[name] = append(hists[name], histSnap{k, histogram{counts: append([]uint64(nil), h.counts...), sum: h.sum, n: h.n}})
		if _, ok := byName[name]; !ok {
			byName[name] = nil
		}
	}
	m.mu.Unlock()
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var total int64
	for _, n := range names {
		help := metricHelp[n]
		typ, text := help, ""
		if i := indexByte(help, ' '); i >= 0 {
			typ, text = help[:i], help[i+1:]
		}
		k, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", n, text, n, typ)
		total += int64(k)
		if err != nil {
			return total, err
		}
		hs := hists[n]
		sort.Slice(hs, func(i, j int) bool { return hs[i].key < hs[j].key })
		for _, hsn := range hs {
			labels := hsn.key[len(n)+1 : len(hsn.key)-1]
			sep := ""
			if labels != "" {
				sep = ","
			}
			var cum uint64
			for i, c := range hsn.h.counts {
				cum += c
				le := "+Inf"
				if i < len(handshakeBuckets) {
					le = fmt.Sprintf("%g", handshakeBuckets[i])
				}
				k, err := fmt.Fprintf(w, "%s_bucket{%s%sle=%q} %d\n", n, labels, sep, le, cum)
				total += int64(k)
				if err != nil {
					return total, err
				}
			}
			k, err := fmt.Fprintf(w, "%s_sum{%s} %g\n%s_count{%s} %d\n", n, labels, hsn.h.sum, n, labels, hsn.h.n)
			total += int64(k)
			if err != nil {
				return total, err
			}
		}
		series := byName[n]
		sort.Strings(series)
		for _, s := range series {
			k, err := fmt.Fprintf(w, "%s %g\n", s, vals[s])
			total += int64(k)
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return len(s)
}

// ServeHTTP serves the exposition (for a /metrics endpoint).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.WriteTo(w)
}
