package linetest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
)

// PanicLog is a slog.Handler that keeps the Error records carrying a
// "panic" attribute. The servers recover a panic, log it so and return it
// as an ordinary error: the log is the server fuzz tests' signal. Give it to
// a server as slog.New(&log) and call Check after each input.
type PanicLog struct {
	mu     sync.Mutex
	panics []string
}

func (h *PanicLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *PanicLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *PanicLog) WithGroup(string) slog.Handler            { return h }

func (h *PanicLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return nil
	}
	var v, stack string
	found := false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "panic":
			found, v = true, a.Value.String()
		case "stack":
			stack = a.Value.String()
		}
		return true
	})
	if found {
		h.mu.Lock()
		h.panics = append(h.panics, fmt.Sprintf("%s: %s\n%s", r.Message, v, stack))
		h.mu.Unlock()
	}
	return nil
}

// Check fails t if a panic was logged since the last check.
func (h *PanicLog) Check(t testing.TB) {
	t.Helper()
	h.mu.Lock()
	p := h.panics
	h.panics = nil
	h.mu.Unlock()
	if len(p) > 0 {
		t.Fatalf("server panicked: %s", p[0])
	}
}
