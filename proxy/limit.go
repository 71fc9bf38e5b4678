package proxy

import (
	"net"
	"sync"
	"time"
)

// limiter is a token bucket per client address, bounded in memory: when
// it tracks maxTracked addresses it forgets the full buckets (those
// equivalent to a fresh one) and, failing that, starts over.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	mu    sync.Mutex
	b     map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

const maxTracked = 100_000

func newLimiter(rate float64, burst int) *limiter {
	b := float64(burst)
	if b <= 0 {
		b = max(1, rate)
	}
	return &limiter{rate: rate, burst: b, b: map[string]*bucket{}}
}

// allow takes a token for key at now.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	bk := l.b[key]
	if bk == nil {
		if len(l.b) >= maxTracked {
			l.prune(now)
		}
		bk = &bucket{tokens: l.burst, at: now}
		l.b[key] = bk
	}
	bk.tokens = min(l.burst, bk.tokens+now.Sub(bk.at).Seconds()*l.rate)
	bk.at = now
	if bk.tokens < 1 {
		return false
	}
	bk.tokens--
	return true
}

func (l *limiter) prune(now time.Time) {
	for k, bk := range l.b {
		if bk.tokens+now.Sub(bk.at).Seconds()*l.rate >= l.burst {
			delete(l.b, k)
		}
	}
	if len(l.b) >= maxTracked {
		clear(l.b)
	}
}

// hostOf is the rate-limit key of an address: its IP.
func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}
