// Package serve is the accept loop shared by every protocol server: it
// tracks listeners and connections so that Close and Shutdown behave like
// net/http's, and recovers from a panic in one connection without taking the
// process down.
package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("server closed")

// Loop is the connection bookkeeping of one server. The zero value is
// ready to use.
type Loop struct {
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
	// OnPanic is called with the recovered value and stack when a handler
	// panics; the connection is closed afterwards. nil ignores it.
	OnPanic func(conn net.Conn, v any, stack []byte)
}

// Serve accepts connections on l and runs handle for each in its own
// goroutine until l fails or the loop is closed. handle must not close
// conn; the loop does when handle returns.
func (lp *Loop) Serve(l net.Listener, handle func(net.Conn)) error {
	// done is not deferred: after a panic, OnPanic sees the connection
	// before it is closed.
	return lp.ServeDetached(l, func(conn net.Conn, done func()) {
		handle(conn)
		done()
	})
}

// ServeDetached is Serve for a handler that may return before its
// connection ends, for instance after handing it to goroutines of its
// own: handle must call done (which closes conn) once the connection is
// over, on any goroutine, now or later; further calls do nothing. Close
// closes the connection and Shutdown waits for done. After a panic in
// handle the loop calls done.
func (lp *Loop) ServeDetached(l net.Listener, handle func(conn net.Conn, done func())) error {
	lp.mu.Lock()
	if lp.closed {
		lp.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if lp.listeners == nil {
		lp.listeners = map[net.Listener]struct{}{}
		lp.conns = map[net.Conn]struct{}{}
	}
	lp.listeners[l] = struct{}{}
	lp.mu.Unlock()

	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			lp.mu.Lock()
			closed := lp.closed
			lp.mu.Unlock()
			if !closed && temporary(err) {
				// Temporary resource shortage (EMFILE): wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			lp.mu.Lock()
			delete(lp.listeners, l)
			lp.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return err
		}
		backoff = 0
		if !lp.track(conn) {
			conn.Close()
			return ErrServerClosed
		}
		go func() {
			done := func() { lp.untrack(conn) }
			defer func() {
				if v := recover(); v != nil {
					if lp.OnPanic != nil {
						lp.OnPanic(conn, v, debug.Stack())
					}
					done()
				}
			}()
			handle(conn, done)
		}()
	}
}

// temporary reports whether an Accept error is worth retrying after a
// pause: a timeout, running out of file descriptors or buffers, or a
// connection aborted before it was accepted.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ECONNABORTED)
}

// ServeConn runs handle on one connection with the same bookkeeping.
func (lp *Loop) ServeConn(conn net.Conn, handle func(net.Conn)) error {
	if !lp.track(conn) {
		conn.Close()
		return ErrServerClosed
	}
	defer lp.untrack(conn)
	defer func() {
		if v := recover(); v != nil && lp.OnPanic != nil {
			lp.OnPanic(conn, v, debug.Stack())
		}
	}()
	handle(conn)
	return nil
}

func (lp *Loop) track(c net.Conn) bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.closed {
		return false
	}
	if lp.conns == nil {
		lp.listeners = map[net.Listener]struct{}{}
		lp.conns = map[net.Conn]struct{}{}
	}
	lp.conns[c] = struct{}{}
	lp.wg.Add(1)
	return true
}

// untrack closes c and forgets it; a second call does nothing, so that
// ServeDetached's done may be called again.
func (lp *Loop) untrack(c net.Conn) {
	c.Close()
	lp.mu.Lock()
	_, ok := lp.conns[c]
	delete(lp.conns, c)
	lp.mu.Unlock()
	if ok {
		lp.wg.Done()
	}
}

// Close closes the listeners and every connection at once.
func (lp *Loop) Close() error {
	lp.mu.Lock()
	lp.closed = true
	for l := range lp.listeners {
		l.Close()
	}
	for c := range lp.conns {
		c.Close()
	}
	lp.mu.Unlock()
	return nil
}

// Shutdown closes the listeners, then waits for the connections to end
// until ctx is done, when it closes them.
func (lp *Loop) Shutdown(ctx context.Context) error {
	lp.mu.Lock()
	lp.closed = true
	for l := range lp.listeners {
		l.Close()
	}
	lp.mu.Unlock()
	done := make(chan struct{})
	go func() { lp.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		lp.Close()
		<-done
		return fmt.Errorf("shutdown: %w", ctx.Err())
	}
}
