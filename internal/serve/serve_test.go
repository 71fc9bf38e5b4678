package serve

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestShutdownWaitsThenCloses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var lp Loop
	started := make(chan struct{})
	var finished atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- lp.Serve(l, func(c net.Conn) {
			close(started)
			buf := make([]byte, 1)
			c.Read(buf) // blocks until the loop closes the conn
			finished.Store(true)
		})
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := lp.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if !finished.Load() {
		t.Fatal("handler still running after Shutdown returned")
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
}

func TestPanicIsContained(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recovered := make(chan any, 1)
	lp := Loop{OnPanic: func(_ net.Conn, v any, _ []byte) { recovered <- v }}
	go lp.Serve(l, func(net.Conn) { panic("boom") })
	defer lp.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case v := <-recovered:
		if v != "boom" {
			t.Fatalf("recovered %v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("panic not reported")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection left open after a panic")
	}
}

func TestServeAfterClose(t *testing.T) {
	var lp Loop
	lp.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.Serve(l, func(net.Conn) {}); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
}

// fakeListener returns the queued results of Accept in order, then blocks
// until closed.
type fakeListener struct {
	results chan acceptResult
	closed  chan struct{}
	once    sync.Once
}

type acceptResult struct {
	conn net.Conn
	err  error
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case r := <-l.results:
		return r.conn, r.err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *fakeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

func TestAcceptRetriesOnEMFILE(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c2.Close()
	l := &fakeListener{results: make(chan acceptResult, 2), closed: make(chan struct{})}
	l.results <- acceptResult{err: &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}}
	l.results <- acceptResult{conn: c1}
	var lp Loop
	handled := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- lp.Serve(l, func(net.Conn) { close(handled) }) }()
	select {
	case <-handled:
	case err := <-done:
		t.Fatalf("Serve stopped on EMFILE: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("connection after EMFILE not served")
	}
	lp.Close()
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
}
