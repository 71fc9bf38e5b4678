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
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{counters: map[string]float64{}, gauges: map[string]float64{}}
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
