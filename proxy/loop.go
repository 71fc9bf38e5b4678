package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// tracker is the accept loop and connection bookkeeping of a Server. It
// is internal/serve.Loop's, except that a connection's handler may end
// before the connection does (the relay runs on its own goroutines and
// calls done): the handshake goroutine's grown stack then goes at once.
type tracker struct {
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
	onPanic   func(conn net.Conn, v any, stack []byte)
}

// serve accepts on l and runs handle for each connection in a new
// goroutine; handle owns conn and must call done(conn) exactly once,
// now or later.
func (t *tracker) serve(l net.Listener, handle func(net.Conn)) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if t.listeners == nil {
		t.listeners = map[net.Listener]struct{}{}
		t.conns = map[net.Conn]struct{}{}
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			t.mu.Lock()
			closed := t.closed
			t.mu.Unlock()
			if !closed && temporary(err) {
				// Out of descriptors or buffers: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			t.mu.Lock()
			delete(t.listeners, l)
			t.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return fmt.Errorf("proxy: %w", err)
		}
		backoff = 0
		if !t.track(conn) {
			conn.Close()
			return ErrServerClosed
		}
		go func() {
			defer func() {
				if v := recover(); v != nil {
					if t.onPanic != nil {
						t.onPanic(conn, v, debug.Stack())
					}
					t.done(conn)
				}
			}()
			handle(conn)
		}()
	}
}

func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return acceptRetryable(err)
}

func (t *tracker) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	return true
}

// done closes c and forgets it; a second call does nothing.
func (t *tracker) done(c net.Conn) {
	c.Close()
	t.mu.Lock()
	_, ok := t.conns[c]
	delete(t.conns, c)
	t.mu.Unlock()
	if ok {
		t.wg.Done()
	}
}

// close closes the listeners and every connection at once.
func (t *tracker) close() error {
	t.mu.Lock()
	t.closed = true
	for l := range t.listeners {
		l.Close()
	}
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	return nil
}

// shutdown closes the listeners, then waits for the connections to end
// until ctx is done, when it closes them.
func (t *tracker) shutdown(ctx context.Context) error {
	t.mu.Lock()
	t.closed = true
	for l := range t.listeners {
		l.Close()
	}
	t.mu.Unlock()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.close()
		<-done
		return fmt.Errorf("proxy: shutdown: %w", ctx.Err())
	}
}
