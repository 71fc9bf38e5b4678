package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/starttls/starttls/internal/textline"
)

// bufSize holds one full TLS record of plaintext (RFC 8446 §5.1: 2^14).
const bufSize = 16 << 10

// bufPool lends relay buffers only while data is moving: an idle
// connection holds none (the relay waits for readability first).
var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// past is a deadline that has expired: a read with it returns what a
// tls.Conn has already decrypted or buffered, without touching the socket.
var past = time.Unix(1, 0)

// relayStats receives the bytes moved in each direction.
type relayStats struct {
	up, down atomic.Int64 // client→backend, backend→client
}

// relay copies bytes both ways between client and backend until both
// directions have ended, propagating half-closes; a read error or an idle
// period longer than idle (0: none) in both directions aborts both.
// It closes neither connection.
func relay(client, backend net.Conn, idle time.Duration, st *relayStats) error {
	r := &relayState{idle: idle}
	r.touch()
	abort := func() {
		// Unblock the other direction at once.
		r.aborted.Store(true)
		client.SetDeadline(past)
		backend.SetDeadline(past)
	}
	errc := make(chan error, 1)
	go func() {
		err := r.pipe(backend, client, &st.down)
		if err != nil {
			abort()
		}
		errc <- err
	}()
	err1 := r.pipe(client, backend, &st.up)
	if err1 != nil {
		abort()
	}
	err2 := <-errc
	if err1 == nil || errors.Is(err1, errAborted) {
		err1 = err2
	}
	return err1
}

type relayState struct {
	idle    time.Duration
	last    atomic.Int64 // unix nanoseconds of the last byte moved either way
	aborted atomic.Bool  // one direction failed: the other stops too
}

func (r *relayState) touch() { r.last.Store(time.Now().UnixNano()) }

// idleFor reports whether nothing moved in either direction for r.idle.
func (r *relayState) idleFor(now time.Time) bool {
	return r.idle > 0 && now.UnixNano()-r.last.Load() >= int64(r.idle)
}

// errIdle ends a connection idle in both directions.
var errIdle = errors.New("proxy: idle timeout")

// errAborted ends a direction because the other one failed.
var errAborted = errors.New("proxy: relay aborted")

// pipe copies src to dst until src ends (then it half-closes dst) or fails.
func (r *relayState) pipe(src, dst net.Conn, count *atomic.Int64) error {
	tc, isTLS := src.(*tls.Conn)
	rc := rawConn(src)
	// A tls.Conn may hold whole records read along with the last one (or
	// with the handshake): the socket would not wake us for them.
	pending := isTLS
	var deadline time.Time
	for {
		now := time.Now()
		if r.idle > 0 && deadline.Sub(now) < r.idle*3/4 {
			deadline = now.Add(r.idle)
			src.SetReadDeadline(deadline)
		}
		// After (re)arming: abort sets the flag before its past deadline.
		if r.aborted.Load() {
			return errAborted
		}
		if rc != nil && !pending {
			// Park without a buffer until the socket is readable.
			if err := waitReadable(rc); err != nil && isTimeout(err) {
				if r.aborted.Load() || r.idleFor(time.Now()) {
					return errIdle
				}
				deadline = time.Time{}
				continue
			}
		}
		bp := bufPool.Get().(*[]byte)
		var n int
		var err error
		if pending {
			tc.SetReadDeadline(past)
			n, err = tc.Read(*bp)
			tc.SetReadDeadline(deadline)
			if r.aborted.Load() {
				bufPool.Put(bp)
				return errAborted
			}
			if err != nil && isTimeout(err) {
				err = nil
				if n == 0 {
					bufPool.Put(bp)
					pending = false
					continue
				}
			}
		} else {
			n, err = src.Read(*bp)
		}
		if n > 0 {
			r.touch()
			count.Add(int64(n))
			if r.idle > 0 {
				dst.SetWriteDeadline(time.Now().Add(r.idle))
			}
			if _, werr := dst.Write((*bp)[:n]); werr != nil {
				bufPool.Put(bp)
				return werr
			}
		}
		bufPool.Put(bp)
		pending = isTLS && rc != nil
		if err == nil {
			continue
		}
		if isTimeout(err) {
			if r.aborted.Load() || r.idleFor(time.Now()) {
				return errIdle
			}
			deadline = time.Time{}
			continue
		}
		if errors.Is(err, io.EOF) {
			closeWrite(dst)
			return nil
		}
		return err
	}
}

// closeWrite half-closes c: close_notify for TLS, then FIN.
func closeWrite(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		tc.SetWriteDeadline(time.Now().Add(time.Second))
		tc.CloseWrite()
		c = tc.NetConn()
	}
	for {
		switch x := c.(type) {
		case interface{ CloseWrite() error }:
			x.CloseWrite()
			return
		case *textline.Sniffer:
			c = x.Conn
		default:
			return
		}
	}
}

// rawConn finds the socket under c (through TLS and the protocol
// servers' sniffer), or nil when there is none to poll.
func rawConn(c net.Conn) syscall.RawConn {
	for {
		switch x := c.(type) {
		case *tls.Conn:
			c = x.NetConn()
		case *textline.Sniffer:
			c = x.Conn
		case syscall.Conn:
			rc, err := x.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		default:
			return nil
		}
	}
}

// waitReadable blocks until rc has data (or EOF or an error) to read,
// honouring the read deadline, without consuming anything.
func waitReadable(rc syscall.RawConn) error {
	var b [1]byte
	err := rc.Read(func(fd uintptr) bool {
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return e != syscall.EAGAIN && e != syscall.EINTR
	})
	return err
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
