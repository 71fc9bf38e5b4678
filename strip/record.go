package strip

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/starttls/starttls"
)

// maxLine bounds a recorded line; a longer one is recorded by its length.
const maxLine = 4096

// maxEvents bounds the evidence of one connection.
const maxEvents = 400

// event is one recorded line or note. Client lines keep their text only
// in memory, to be shown masked once the connection is over.
type event struct {
	at     time.Time
	dir    starttls.Direction
	tls    bool
	text   string
	client bool // a client line before TLS: shown through show()
}

// recorder wraps the client's connection and records the plaintext dialog
// line by line in both directions. When the client starts a TLS handshake
// (a record header 0x16 0x03 where a line would begin) it stops splitting
// lines and counts bytes.
type recorder struct {
	net.Conn
	command func(string) (string, bool) // nil: binary protocol

	mu       sync.Mutex
	events   []event
	dropped  int
	cbuf     []byte // partial client line
	sbuf     []byte // partial server line
	tlsSeen  bool   // the client sent a ClientHello
	tlsBytes [2]int // client, server bytes once TLS began
	lines    []string
	binBytes int // client bytes of a binary protocol before TLS
}

func newRecorder(conn net.Conn, command func(string) (string, bool)) *recorder {
	return &recorder{Conn: conn, command: command}
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if n > 0 {
		r.client(p[:n])
	}
	return n, err
}

func (r *recorder) Write(p []byte) (int, error) {
	r.server(p)
	return r.Conn.Write(p)
}

func (r *recorder) add(e event) {
	if len(r.events) >= maxEvents {
		r.dropped++
		return
	}
	e.at = time.Now()
	r.events = append(r.events, e)
}

// note records a remark of the simulator.
func (r *recorder) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(event{dir: starttls.Note, text: fmt.Sprintf(format, args...)})
}

func (r *recorder) client(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.tlsSeen && len(r.cbuf) == 0 && len(p) >= 2 && p[0] == 0x16 && p[1] == 0x03 {
		r.tlsSeen = true
		r.add(event{dir: starttls.Note, text: "the client starts a TLS handshake"})
	}
	if r.tlsSeen {
		r.tlsBytes[0] += len(p)
		return
	}
	if r.command == nil {
		r.binBytes += len(p)
		r.add(event{dir: starttls.FromClient, text: fmt.Sprintf("(%d bytes)", len(p))})
		return
	}
	r.cbuf = splitLines(r.cbuf, p, func(line string) {
		r.lines = append(r.lines, line)
		r.add(event{dir: starttls.FromClient, text: line, client: true})
	})
}

func (r *recorder) server(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tlsSeen {
		r.tlsBytes[1] += len(p)
		return
	}
	if r.command == nil {
		r.add(event{dir: starttls.FromServer, text: fmt.Sprintf("(%d bytes)", len(p))})
		return
	}
	r.sbuf = splitLines(r.sbuf, p, func(line string) {
		r.add(event{dir: starttls.FromServer, text: line})
	})
}

// splitLines appends p to buf and calls emit for every complete line
// (without its line ending); it returns what is left. A line longer than
// maxLine is emitted as its length.
func splitLines(buf, p []byte, emit func(string)) []byte {
	buf = append(buf, p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		emit(string(bytes.TrimSuffix(buf[:i], []byte("\r"))))
		buf = buf[i+1:]
	}
	if len(buf) > maxLine {
		emit(fmt.Sprintf("(a line of more than %d bytes)", maxLine))
		buf = buf[:0]
	}
	return append([]byte(nil), buf...)
}

// clientLines returns the complete plaintext lines the client sent.
func (r *recorder) clientLines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// plainBinary returns the plaintext bytes a binary-protocol client sent.
func (r *recorder) plainBinary() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.binBytes
}

// startedTLS reports whether the client sent a ClientHello.
func (r *recorder) startedTLS() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tlsSeen
}

// evidence renders the record. Client lines that only discover, upgrade
// or leave are shown whole; any other client line shows its command name
// and its length only, so that no secret reaches a report.
func (r *recorder) evidence(secrets []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return nil
	}
	start := r.events[0].at
	out := make([]string, 0, len(r.events)+2)
	for _, e := range r.events {
		if e.client {
			e.text = r.show(e.text, secrets)
		}
		out = append(out, starttls.Event{Time: e.at, Dir: e.dir, TLS: e.tls, Text: e.text}.Format(start))
	}
	if r.tlsSeen {
		out = append(out, fmt.Sprintf("(TLS: %d bytes from the client, %d to it, not recorded)", r.tlsBytes[0], r.tlsBytes[1]))
	}
	if r.dropped > 0 {
		out = append(out, fmt.Sprintf("(%d more events not recorded)", r.dropped))
	}
	return out
}

// show returns what a report may show of a client line: the whole of an
// idle command, the name of any other.
func (r *recorder) show(line string, secrets []string) string {
	verb, idle := r.command(line)
	if idle && verb != "" && !containsSecret(line, secrets) {
		return line
	}
	if verb == "" {
		return fmt.Sprintf("(%d bytes withheld)", len(line))
	}
	return fmt.Sprintf("%s … (%d bytes withheld)", verb, len(line))
}

// containsSecret reports whether line holds one of secrets, as sent or in
// base64.
func containsSecret(line string, secrets []string) bool {
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(line, s) {
			return true
		}
		for _, f := range strings.Fields(line) {
			if b, err := base64.StdEncoding.DecodeString(f); err == nil && bytes.Contains(b, []byte(s)) {
				return true
			}
		}
	}
	return false
}
