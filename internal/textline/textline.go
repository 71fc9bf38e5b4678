// Package textline is the line plumbing shared by the text protocols: a
// bounded line reader with deadlines, a transcript tee, the detection of
// plaintext buffered across a TLS upgrade, and the parser for the numeric
// replies of SMTP, LMTP, FTP and NNTP (RFC 5321 §4.2).
//
// It is internal: the public API of each protocol package stays free of it.
package textline

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/starttls/starttls"
)

// Options configures a Conn.
type Options struct {
	// Proto prefixes errors ("smtp").
	Proto string
	// Local is the direction of the bytes this side writes: FromClient for a
	// client, FromServer for a server. Lines read are recorded with the other
	// direction.
	Local starttls.Direction
	// MaxLine bounds a line, line ending included; 0 means
	// starttls.DefaultMaxLineLength.
	MaxLine int
	// StrictCRLF rejects lines that end in a bare LF. Servers set it so that
	// LF-versus-CRLF can never change command boundaries (SMTP smuggling).
	StrictCRLF bool
	// Transcript, if set, records every line read and written.
	Transcript *starttls.Transcript
}

// Conn is a line-oriented connection with a bounded read buffer.
type Conn struct {
	raw  net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	opts Options
	tls  bool
}

// New wraps conn. If conn is a *tls.Conn the transcript marks lines as
// carried inside TLS.
func New(conn net.Conn, opts Options) *Conn {
	if opts.MaxLine <= 0 {
		opts.MaxLine = starttls.DefaultMaxLineLength
	}
	if opts.Proto == "" {
		opts.Proto = "textline"
	}
	c := &Conn{opts: opts}
	c.reset(conn)
	return c
}

func (c *Conn) reset(conn net.Conn) {
	c.raw = conn
	_, c.tls = conn.(*tls.Conn)
	// The buffer is the line limit: ReadSlice fails with ErrBufferFull on a
	// longer line, so memory per connection is bounded.
	c.r = bufio.NewReaderSize(conn, c.opts.MaxLine)
	c.w = bufio.NewWriter(conn)
}

// Raw returns the underlying connection (a *tls.Conn after Upgrade).
func (c *Conn) Raw() net.Conn { return c.raw }

// TLS reports whether the connection is inside TLS.
func (c *Conn) TLS() bool { return c.tls }

// Transcript returns the transcript in use, possibly nil.
func (c *Conn) Transcript() *starttls.Transcript { return c.opts.Transcript }

func (c *Conn) remote() starttls.Direction {
	if c.opts.Local == starttls.FromClient {
		return starttls.FromServer
	}
	return starttls.FromClient
}

// ReadLine reads one line and returns it without its line ending. It fails
// with starttls.ErrLineTooLong past the limit, and with starttls.ErrProtocol
// on a NUL byte or, with StrictCRLF, a bare LF.
func (c *Conn) ReadLine() (string, error) {
	b, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			c.note(fmt.Sprintf("line longer than %d bytes: %q…", c.opts.MaxLine, clip(b, 40)))
			return "", fmt.Errorf("%s: line longer than %d bytes: %w", c.opts.Proto, c.opts.MaxLine, starttls.ErrLineTooLong)
		}
		if len(b) > 0 {
			c.opts.Transcript.Add(c.remote(), c.tls, string(b)+" (incomplete line)")
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
		}
		return "", c.wrap(err)
	}
	line := string(b[:len(b)-1])
	if strings.HasSuffix(line, "\r") {
		line = line[:len(line)-1]
	} else if c.opts.StrictCRLF {
		c.opts.Transcript.Add(c.remote(), c.tls, line+"\n")
		return "", starttls.ProtocolError(c.opts.Proto, "line ends in a bare LF")
	}
	c.opts.Transcript.Add(c.remote(), c.tls, line)
	if strings.IndexByte(line, 0) >= 0 {
		return "", starttls.ProtocolError(c.opts.Proto, "NUL byte in line %q", starttls.Escape(line))
	}
	if strings.IndexByte(line, '\r') >= 0 && c.opts.StrictCRLF {
		return "", starttls.ProtocolError(c.opts.Proto, "bare CR in line %q", starttls.Escape(line))
	}
	return line, nil
}

// ReadFull reads exactly n bytes (an IMAP literal, a message body). The
// caller bounds n.
func (c *Conn) ReadFull(n int) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return nil, c.wrap(err)
	}
	c.opts.Transcript.Add(c.remote(), c.tls, fmt.Sprintf("(%d bytes)", n))
	return buf, nil
}

// WriteLine writes s followed by CRLF and flushes. It refuses CR or LF
// inside s, which would let a caller's argument smuggle a second command.
func (c *Conn) WriteLine(s string) error {
	return c.WriteLineMasked(s, s)
}

// WriteLineMasked writes s like WriteLine but records shown in the
// transcript: use it for lines that carry credentials.
func (c *Conn) WriteLineMasked(s, shown string) error {
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("%s: refusing to send a line containing CR or LF: %q", c.opts.Proto, starttls.Escape(shown))
	}
	c.opts.Transcript.Add(c.opts.Local, c.tls, shown)
	c.w.WriteString(s)
	c.w.WriteString("\r\n")
	return c.wrap(c.w.Flush())
}

// WriteLines writes several lines in one flush (one TCP segment when small),
// as a pipelining client or a multi-line reply does.
func (c *Conn) WriteLines(lines ...string) error {
	for _, s := range lines {
		if strings.ContainsAny(s, "\r\n") {
			return fmt.Errorf("%s: refusing to send a line containing CR or LF: %q", c.opts.Proto, starttls.Escape(s))
		}
	}
	for _, s := range lines {
		c.opts.Transcript.Add(c.opts.Local, c.tls, s)
		c.w.WriteString(s)
		c.w.WriteString("\r\n")
	}
	return c.wrap(c.w.Flush())
}

// WriteRaw writes bytes as they are (a message body), recording a summary.
func (c *Conn) WriteRaw(p []byte) error {
	c.opts.Transcript.Add(c.opts.Local, c.tls, fmt.Sprintf("(%d bytes)", len(p)))
	c.w.Write(p)
	return c.wrap(c.w.Flush())
}

// Note records a remark in the transcript.
func (c *Conn) Note(text string) { c.note(text) }

func (c *Conn) note(text string) {
	c.opts.Transcript.Add(starttls.Note, c.tls, text)
}

// Buffered returns the number of bytes read from the peer but not consumed.
func (c *Conn) Buffered() int { return c.r.Buffered() }

// TakeBuffered returns and consumes the buffered bytes.
func (c *Conn) TakeBuffered() []byte {
	n := c.r.Buffered()
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	io.ReadFull(c.r, b)
	return b
}

// CheckNoBuffered enforces rule 1 of the upgrade: nothing may be buffered
// when the TLS handshake is about to start. It returns the bytes found and
// an error wrapping starttls.ErrPlaintextAfterUpgrade, or nil, nil.
func (c *Conn) CheckNoBuffered() ([]byte, error) {
	b := c.TakeBuffered()
	if len(b) == 0 {
		return nil, nil
	}
	c.note(fmt.Sprintf("%d bytes of plaintext after the upgrade: %q", len(b), clip(b, 80)))
	return b, fmt.Errorf("%s: %d bytes received after the upgrade, before TLS: %w", c.opts.Proto, len(b), starttls.ErrPlaintextAfterUpgrade)
}

// Upgrade switches the Conn to tc: new reader and writer, so nothing read
// before can leak into the TLS session (rule 2). Call CheckNoBuffered first.
func (c *Conn) Upgrade(tc *tls.Conn) {
	c.reset(tc)
	st := tc.ConnectionState()
	c.note(fmt.Sprintf("TLS handshake done: %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)))
}

// NetConn returns a net.Conn whose reads drain what is buffered first, for
// handing the connection to a caller after the dialog.
func (c *Conn) NetConn() net.Conn { return &bufferedConn{Conn: c.raw, r: c.r} }

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// wrap turns a timeout into a clear error.
func (c *Conn) wrap(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: timed out waiting for the peer: %w", c.opts.Proto, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: connection closed by the peer: %w", c.opts.Proto, err)
	}
	return fmt.Errorf("%s: %w", c.opts.Proto, err)
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n])
	}
	return string(b)
}

// aLongTimeAgo is a deadline in the past that makes blocked I/O return.
var aLongTimeAgo = time.Unix(1, 0)

// Watch applies ctx to conn: its deadline becomes the connection's, and its
// cancellation interrupts blocked reads and writes. Call the returned
// function when the dialog step is over.
func Watch(ctx context.Context, conn net.Conn) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	// The mutex orders the AfterFunc against stop: once stop has cleared
	// the deadline, a cancellation running late must not set it again.
	var (
		mu      sync.Mutex
		stopped bool
	)
	cancel := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			conn.SetDeadline(aLongTimeAgo)
		}
	})
	return func() {
		cancel()
		mu.Lock()
		stopped = true
		conn.SetDeadline(time.Time{})
		mu.Unlock()
	}
}

// WithDefaultTimeout returns ctx with starttls.DefaultTimeout applied when it
// has no deadline, so that no dialog can block forever.
func WithDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, starttls.DefaultTimeout)
}

// CtxErr prefers the context's error when ctx ended, so callers see
// "context deadline exceeded" rather than an I/O timeout on a past deadline.
func CtxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	// The connection deadline taken from ctx can fire a moment before
	// ctx itself reports it.
	var ne net.Error
	if d, ok := ctx.Deadline(); ok && ctx.Err() == nil && !time.Now().Before(d) &&
		errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// LooksLikeTLS reports whether line starts like a TLS handshake record
// (0x16 0x03), which a client sends when it expects implicit TLS.
func LooksLikeTLS(b string) bool {
	return len(b) >= 2 && b[0] == 0x16 && b[1] == 0x03
}

// IsClosed reports whether err means the peer closed or reset the
// connection, which is how a server reacts when it refuses plaintext
// pipelined after an upgrade command.
func IsClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}
