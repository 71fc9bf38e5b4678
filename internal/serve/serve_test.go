package serve

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
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
