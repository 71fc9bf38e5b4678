package textline

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// deadlineConn records SetDeadline calls; the first past deadline blocks
// until release is closed, to hold the cancellation mid-flight.
type deadlineConn struct {
	net.Conn
	entered  chan struct{}
	release  chan struct{}
	finished chan struct{}
	once     sync.Once
	mu       sync.Mutex
	last     time.Time
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	past := !t.IsZero() && t.Before(time.Now())
	if past {
		c.once.Do(func() { close(c.entered); <-c.release })
	}
	c.mu.Lock()
	c.last = t
	c.mu.Unlock()
	if past {
		close(c.finished)
	}
	return nil
}

func TestWatchCancelDuringStop(t *testing.T) {
	conn := &deadlineConn{entered: make(chan struct{}), release: make(chan struct{}), finished: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	stop := Watch(ctx, conn)
	cancel()
	<-conn.entered // the AfterFunc is setting the past deadline
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(100 * time.Millisecond):
	}
	close(conn.release)
	<-stopped
	<-conn.finished
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if !conn.last.IsZero() {
		t.Fatalf("deadline after stop = %v, want none", conn.last)
	}
}
