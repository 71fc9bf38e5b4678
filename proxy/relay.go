package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
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

// past is a deadline that has expired: it wakes every blocked read.
var past = time.Unix(1, 0)

// parkAfter is how long a connection must have moved no byte either way
// before its backend-to-client direction parks. Parking saves a goroutine
// (memory) but every wake-up from the parker is a chain of goroutine
// hand-offs: on a busy connection (an echo loop, a dialog) that doubled the
// added latency. A connection quiet for a second is idle in practice (the
// memory that matters is that of thousands of idle ones); one busy for a
// second waits in Go's own poller, as it did before parking existed.
const parkAfter = time.Second

// relayStats receives the bytes moved in each direction.
type relayStats struct {
	up, down atomic.Int64 // client→backend, backend→client
}

// relay copies bytes both ways between client and backend, each direction
// in a new goroutine, and returns at once; when both directions have ended
// it calls done with the first error (nil when both sides closed cleanly).
// Half-closes propagate; a read error, or an idle period longer than idle
// (0: none) in both directions, aborts both. It closes neither connection.
//
// The caller's goroutine, whose stack grew during the TLS handshake, is
// free to end; an idle connection is one small goroutine (the other
// direction is parked, see parker).
//
// It returns the relay's state, which only tests look at.
func relay(client, backend net.Conn, idle time.Duration, st *relayStats, done func(error)) *relayState {
	r := &relayState{idle: idle, downFD: -1}
	r.touch()
	if sk := sockOf(backend); sk != nil {
		if r.pk = getParker(); r.pk != nil {
			sk.rc.Control(func(fd uintptr) { r.downFD = int(fd) })
		}
	}
	var left atomic.Int32
	left.Store(2)
	var mu sync.Mutex
	var first error
	finish := func(err error) {
		if err != nil {
			// Unblock the other direction at once.
			r.aborted.Store(true)
			client.SetDeadline(past)
			backend.SetDeadline(past)
			mu.Lock()
			if first == nil || errors.Is(first, errAborted) {
				first = err
			}
			mu.Unlock()
		}
		if left.Add(-1) == 0 {
			if r.pk != nil && r.downFD >= 0 {
				r.pk.forget(r.downFD)
			}
			done(first)
		}
	}
	var down func()
	down = func() {
		var err error
		parked := false
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("proxy: panic in the relay: %v\n%s", v, debug.Stack())
				parked = false
			}
			if !parked {
				finish(err)
			}
		}()
		parked, err = r.pipe(backend, client, &st.down, down)
	}
	up := func() {
		var err error
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("proxy: panic in the relay: %v\n%s", v, debug.Stack())
			}
			// The other direction may not park any more: this goroutine
			// no longer watches the connection. Take it back if parked.
			r.noPark.Store(true)
			finish(err)
			if r.pk != nil && r.downFD >= 0 {
				if resume := r.pk.kick(r.downFD); resume != nil {
					resume()
				}
			}
		}()
		_, err = r.pipe(client, backend, &st.up, nil)
	}
	go up()
	go down()
	return r
}

type relayState struct {
	pk      *parker     // nil: no parking
	downFD  int         // the backend's socket, parked by the down direction
	noPark  atomic.Bool // the up direction has ended: down waits in Go's poller
	idle    time.Duration
	last    atomic.Int64 // unix nanoseconds of the last byte moved either way
	aborted atomic.Bool  // one direction failed: the other stops too
	parks   atomic.Int64 // times the down direction parked (for tests)
}

func (r *relayState) touch() { r.last.Store(time.Now().UnixNano()) }

// idleFor reports whether nothing moved in either direction for r.idle.
func (r *relayState) idleFor(now time.Time) bool {
	return r.idle > 0 && now.UnixNano()-r.last.Load() >= int64(r.idle)
}

// canPark reports whether the down direction may park at all.
func (r *relayState) canPark() bool {
	return r.pk != nil && r.downFD >= 0 && !r.noPark.Load()
}

// park hands the down direction to the parker; false means wait here.
func (r *relayState) park(resume func()) bool {
	if !r.canPark() {
		return false
	}
	if !r.pk.park(r.downFD, resume) {
		return false
	}
	if r.noPark.Load() {
		// The up direction ended meanwhile and may have looked before we
		// parked: take ourselves back, unless someone else already did.
		if r.pk.kick(r.downFD) != nil {
			return false
		}
	}
	r.parks.Add(1)
	return true
}

// errIdle ends a connection idle in both directions.
var errIdle = errors.New("proxy: idle timeout")

// errAborted ends a direction because the other one failed.
var errAborted = errors.New("proxy: relay aborted")

// pipe copies src to dst until src ends (then it half-closes dst) or fails.
// With resume set it may park instead of waiting for src, once nothing has
// moved either way for parkAfter: it then returns parked, and resume runs
// on a new goroutine when src is readable (or when the other direction
// takes it back). Until then it waits in Go's poller, with a read deadline
// at the moment the connection becomes idle enough to park.
func (r *relayState) pipe(src, dst net.Conn, count *atomic.Int64, resume func()) (parked bool, err error) {
	sk := sockOf(src)
	if sk != nil {
		// From now on a read finds data or says errWouldBlock: the wait
		// for more happens below, without a buffer.
		sk.nonblock.Store(true)
	}
	// The read deadline set on src is the earlier of idleAt (the idle
	// timeout, pushed forward every quarter of it) and parkAt (when to
	// look again whether to park; zero: no such wake-up pending).
	var idleAt, parkAt, set time.Time
	for {
		now := time.Now()
		if r.idle > 0 && idleAt.Sub(now) < r.idle*3/4 {
			idleAt = now.Add(r.idle)
		}
		want := idleAt
		if !parkAt.IsZero() && (want.IsZero() || parkAt.Before(want)) {
			want = parkAt
		}
		if !want.Equal(set) {
			src.SetReadDeadline(want)
			set = want
		}
		// After (re)arming: abort sets the flag before its past deadline.
		if r.aborted.Load() {
			return false, errAborted
		}
		bp := bufPool.Get().(*[]byte)
		n, err := src.Read(*bp)
		if n > 0 {
			r.touch()
			count.Add(int64(n))
			if r.idle > 0 {
				dst.SetWriteDeadline(time.Now().Add(r.idle))
			}
			if _, werr := dst.Write((*bp)[:n]); werr != nil {
				bufPool.Put(bp)
				return false, werr
			}
		}
		bufPool.Put(bp)
		if errors.Is(err, errWouldBlock) {
			if resume != nil && r.canPark() {
				quietSince := time.Unix(0, r.last.Load())
				if time.Since(quietSince) >= parkAfter {
					if r.park(resume) {
						return true, nil
					}
				} else if parkAt.IsZero() {
					// Busy: wait here, and look again when it may
					// have become idle. At most one deadline change
					// per parkAfter on a busy connection.
					parkAt = quietSince.Add(parkAfter)
					src.SetReadDeadline(parkAt)
					set = parkAt
					if r.aborted.Load() {
						return false, errAborted
					}
				}
			}
			// Wait without a buffer until the socket is readable.
			err = waitReadable(sk.rc)
		}
		switch {
		case err == nil:
		case isTimeout(err):
			if r.aborted.Load() || r.idleFor(time.Now()) {
				return false, errIdle
			}
			if !parkAt.IsZero() && !time.Now().Before(parkAt) {
				// The wake-up to look at parking: the loop sets the
				// idle deadline again (or none) and reads once more.
				parkAt = time.Time{}
			} else {
				idleAt = time.Time{}
			}
		case errors.Is(err, io.EOF):
			closeWrite(dst)
			return false, nil
		default:
			return false, err
		}
	}
}

// sock is a TCP connection whose reads can be made non-blocking: then Read
// returns what the kernel has or errWouldBlock, never waits. The relay
// uses it to hold a buffer only while data is there; a tls.Conn on top
// passes errWouldBlock through (it is a temporary net.Error, which does not
// break the TLS session) and keeps any partial record for the next Read.
type sock struct {
	*net.TCPConn
	rc       syscall.RawConn
	nonblock atomic.Bool
}

// errWouldBlock is a non-blocking read that found nothing.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "proxy: read would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// sockOf finds the sock under c (through TLS and the protocol servers'
// sniffer), or nil.
func sockOf(c net.Conn) *sock {
	for {
		switch x := c.(type) {
		case *sock:
			return x
		case *tls.Conn:
			c = x.NetConn()
		case *textline.Sniffer:
			c = x.Conn
		default:
			return nil
		}
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

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
