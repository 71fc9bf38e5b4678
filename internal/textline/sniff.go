package textline

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"

	"github.com/starttls/starttls"
)

// ErrClientHello is the error a server's reader returns when a client sends
// a TLS ClientHello where a plaintext command was expected.
var ErrClientHello = fmt.Errorf("client sent a TLS ClientHello where a command was expected: %w", starttls.ErrTLSOnPlaintextPort)

// Sniffer watches the plaintext phase of a server connection for a TLS
// ClientHello at the start of a line, so that a client configured for
// implicit TLS gets a clear error at once instead of a read timeout: a
// ClientHello has no line ending for the line reader to stop at. Stop it
// before the server's own TLS handshake on the same connection.
type Sniffer struct {
	net.Conn
	off      bool
	midLine  bool // the last byte delivered was not '\n'
	sawHello bool
}

// Read delivers the bytes up to a ClientHello, then ErrClientHello.
func (c *Sniffer) Read(p []byte) (int, error) {
	if c.sawHello {
		return 0, ErrClientHello
	}
	n, err := c.Conn.Read(p)
	if c.off {
		return n, err
	}
	for i := 0; i < n; i++ {
		if !c.midLine && p[i] == 0x16 && (i+1 == n || p[i+1] == 0x03) {
			c.sawHello = true
			if i == 0 {
				return 0, ErrClientHello
			}
			return i, nil
		}
		c.midLine = p[i] != '\n'
	}
	return n, err
}

// Stop turns the sniffing off, before a TLS handshake on the connection.
func (c *Sniffer) Stop() { c.off = true }

// SawClientHello reports whether a ClientHello was seen.
func (c *Sniffer) SawClientHello() bool { return c.sawHello }

// KeepPlaintext returns tc with kept, plaintext received before the
// handshake, delivered first as if it had come over TLS. This is the
// CVE-2011-0411 bug; servers use it only for InsecureKeepPipelined, to
// reproduce the bug in the lab.
func KeepPlaintext(tc *tls.Conn, kept []byte) net.Conn {
	return &keptConn{Conn: tc, r: io.MultiReader(bytes.NewReader(kept), tc)}
}

type keptConn struct {
	*tls.Conn
	r io.Reader
}

func (c *keptConn) Read(p []byte) (int, error) { return c.r.Read(p) }
