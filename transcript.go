package starttls

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Direction says who sent a transcript line.
type Direction int

const (
	// FromServer marks bytes the server sent (S: in transcripts).
	FromServer Direction = iota
	// FromClient marks bytes the client sent (C: in transcripts).
	FromClient
	// Note marks a remark of the library ("TLS handshake done"), not bytes on
	// the wire.
	Note
)

func (d Direction) String() string {
	switch d {
	case FromServer:
		return "S"
	case FromClient:
		return "C"
	default:
		return "*"
	}
}

// Event is one line of a transcript.
type Event struct {
	Time time.Time
	Dir  Direction
	// TLS is true for bytes carried inside TLS.
	TLS bool
	// Text is the line without its line ending. Credentials sent by the
	// library are replaced by a mask before they reach the transcript.
	Text string
}

// Transcript records a dialog, line by line. It is safe for concurrent use.
// The zero value is ready to use.
type Transcript struct {
	mu     sync.Mutex
	events []Event
	// Live, if set, receives every event as it is recorded, formatted as by
	// Event.Format. Set it before the transcript is used.
	Live io.Writer
	// Start is the time shown as +0.000s in formatted events; the first
	// recorded event's time if zero.
	Start time.Time
}

// Add records one line. A nil *Transcript ignores it.
func (t *Transcript) Add(dir Direction, tlsOn bool, text string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ev := Event{Time: time.Now(), Dir: dir, TLS: tlsOn, Text: text}
	if t.Start.IsZero() {
		t.Start = ev.Time
	}
	t.events = append(t.events, ev)
	if t.Live != nil {
		fmt.Fprintln(t.Live, ev.Format(t.Start))
	}
}

// Events returns a copy of the recorded events.
func (t *Transcript) Events() []Event {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Event(nil), t.events...)
}

// Format renders the event for people: time offset, direction, TLS marker and
// the text with control bytes escaped, so that a hostile peer cannot write
// terminal escapes into a log.
func (e Event) Format(start time.Time) string {
	lock := " "
	if e.TLS {
		lock = "~"
	}
	return fmt.Sprintf("%+8.3fs %s%s %s", e.Time.Sub(start).Seconds(), e.Dir, lock, Escape(e.Text))
}

// Escape quotes control bytes and invalid UTF-8 in s as Go escapes, leaving
// printable text as it is.
func Escape(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
		s = s[size:]
	}
	return b.String()
}
