package linetest

import (
	"log/slog"
	"strings"
	"testing"
)

func TestPanicLogKeepsOnlyPanics(t *testing.T) {
	var h PanicLog
	log := slog.New(&h)
	log.Error("peer closed", "err", "EOF")
	log.Warn("recovered", "panic", "not an error record")
	log.Error("recovered", "panic", "boom", "stack", "goroutine 1")
	if len(h.panics) != 1 || !strings.Contains(h.panics[0], "boom") || !strings.Contains(h.panics[0], "goroutine 1") {
		t.Fatalf("panics = %q, want the one Error record with a panic", h.panics)
	}
	h.panics = nil
	h.Check(t) // nothing logged since: must not fail
}
