package linetest

import (
	"bytes"
	"net"
	"sync"
)

// Recorder keeps every byte the server side reads on the connections of
// the listeners it wraps, so that a test can tell what a client sent (for
// instance, that no mail command reached a server before TLS). The zero
// value is ready to use.
type Recorder struct {
	mu  sync.Mutex
	got bytes.Buffer
}

// Listener wraps l: the connections it accepts record what is read from
// them.
func (r *Recorder) Listener(l net.Listener) net.Listener { return recListener{l, r} }

// String returns every byte read so far, from every connection.
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

type recListener struct {
	net.Listener
	r *Recorder
}

func (l recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return recConn{c, l.r}, nil
}

type recConn struct {
	net.Conn
	r *Recorder
}

func (c recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.got.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}
