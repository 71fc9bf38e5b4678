package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestServeDetached: the handler returns at once and hands the connection
// to another goroutine; Shutdown waits for that goroutine's done, not for
// the handler, and a second done is harmless.
func TestServeDetached(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var lp Loop
	returned := make(chan struct{})
	release := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		served <- lp.ServeDetached(l, func(c net.Conn, done func()) {
			go func() {
				<-release
				c.Write([]byte("bye\n"))
				done()
				done()
			}()
			close(returned)
		})
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-returned
	shut := make(chan error, 1)
	go func() { shut <- lp.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before done", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown still waiting after done")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if string(b) != "bye\n" || err != nil {
		t.Fatalf("read %q, %v: want the detached goroutine's write, then EOF", b, err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ServeDetached = %v, want ErrServerClosed", err)
	}
}

// TestServeDetachedPanic: a panic in the handler is reported and the
// connection closed even though the handler never called done.
func TestServeDetachedPanic(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recovered := make(chan any, 1)
	lp := Loop{OnPanic: func(_ net.Conn, v any, _ []byte) { recovered <- v }}
	go lp.ServeDetached(l, func(net.Conn, func()) { panic("boom") })
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
		t.Fatal("no panic reported")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after panic: %v, want EOF (connection closed)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v: the panicked connection was not released", err)
	}
}
