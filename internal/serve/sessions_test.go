package serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestSessionsPanicLoggedAndConnClosed(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	var ss Sessions
	var inits atomic.Int32
	for range 2 {
		ss.Setup("proto: panic serving connection", func() *slog.Logger { return logger }, func() { inits.Add(1) })
	}
	if n := inits.Load(); n != 1 {
		t.Fatalf("init ran %d times, want 1", n)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- ss.Serve(l, func(context.Context, net.Conn) error { panic("boom") })
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read after panic = %v, want EOF (conn closed)", err)
	}
	// The log is written before the conn is closed.
	out := buf.String()
	for _, want := range []string{"level=ERROR", `msg="proto: panic serving connection"`, "panic=boom", "remote=127.0.0.1:", "stack="} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	ss.Close()
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
}

func TestSessionsServeConnReturnsRunError(t *testing.T) {
	var ss Sessions
	ss.Setup("proto: panic serving connection", slog.Default, nil)
	want := errors.New("session failed")
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	a, b := net.Pipe()
	defer b.Close()
	err := ss.ServeConn(ctx, a, func(got context.Context, conn net.Conn) error {
		if got.Value(ctxKey{}) != "v" {
			t.Error("run did not get ServeConn's ctx")
		}
		if conn != a {
			t.Error("run did not get ServeConn's conn")
		}
		return want
	})
	if err != want {
		t.Fatalf("ServeConn = %v, want %v", err, want)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read after ServeConn = %v, want EOF (conn closed)", err)
	}

	// A panic is contained: logged, conn closed, nil returned.
	a2, b2 := net.Pipe()
	defer b2.Close()
	var ss2 Sessions
	ss2.Setup("proto: panic serving connection", func() *slog.Logger { return slog.New(slog.DiscardHandler) }, nil)
	if err := ss2.ServeConn(context.Background(), a2, func(context.Context, net.Conn) error { panic("boom") }); err != nil {
		t.Fatalf("ServeConn after panic = %v, want nil", err)
	}

	// After Close, ServeConn refuses without running the session.
	ss.Close()
	a3, b3 := net.Pipe()
	defer b3.Close()
	ran := false
	if err := ss.ServeConn(ctx, a3, func(context.Context, net.Conn) error { ran = true; return nil }); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ServeConn after Close = %v, want ErrServerClosed", err)
	}
	if ran {
		t.Fatal("session ran after Close")
	}
}

func TestSessionsShutdownWaits(t *testing.T) {
	var ss Sessions
	ss.Setup("proto: panic serving connection", slog.Default, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- ss.Serve(l, func(ctx context.Context, conn net.Conn) error {
			if ctx == nil {
				t.Error("nil ctx")
			}
			close(started)
			<-release
			finished.Store(true)
			return errors.New("dropped")
		})
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- ss.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a session was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
	close(release)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if !finished.Load() {
		t.Fatal("Shutdown returned before the session ended")
	}
}
