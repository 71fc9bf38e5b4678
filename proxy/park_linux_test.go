package proxy

import (
	"io"
	"net"
	"testing"
	"time"
)

// relayPair starts a relay between a loopback client connection and an
// echo backend, as the proxy does after the handshake (plaintext here: the
// parking concerns the sockets), and returns the client's end and the
// relay's state. The relay ends with the test.
func relayPair(t *testing.T, idle time.Duration) (net.Conn, *relayState, chan error) {
	t.Helper()
	l := listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	user, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { user.Close() })
	client, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	backend, err := net.Dial("tcp", echoBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	client, backend = newSock(client), newSock(backend)
	done := make(chan error, 1)
	var st relayStats
	r := relay(client, backend, idle, &st, func(err error) {
		client.Close()
		backend.Close()
		done <- err
	})
	if r.pk == nil {
		t.Skip("no epoll parker")
	}
	return user, r, done
}

func roundTrip(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(msg) {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

// TestBusyEchoNeverParks: a connection that keeps moving bytes waits in
// Go's poller, never in the parker (whose wake-ups doubled the latency of
// a small echo).
func TestBusyEchoNeverParks(t *testing.T) {
	c, r, done := relayPair(t, time.Minute)
	msg := make([]byte, 64)
	// Longer than parkAfter in all, with gaps far shorter than it.
	start := time.Now()
	for i := 0; time.Since(start) < parkAfter+parkAfter/2 || i < 2000; i++ {
		msg[0] = byte(i)
		roundTrip(t, c, msg)
		if i%100 == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if n := r.parks.Load(); n != 0 {
		t.Errorf("a busy echo loop parked %d times, want 0", n)
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("relay: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not end after the client closed")
	}
}

// TestQuietConnectionParks: once nothing moved for parkAfter the down
// direction parks; data from the backend resumes it, and the relay still
// works, parks again when quiet, and ends when the client goes away.
func TestQuietConnectionParks(t *testing.T) {
	c, r, done := relayPair(t, time.Minute)
	roundTrip(t, c, []byte("hello"))
	if n := r.parks.Load(); n != 0 {
		t.Fatalf("parked %d times right after traffic, want 0", n)
	}
	waitParks := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(parkAfter + 5*time.Second)
		for r.parks.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("parks %d, want %d after %v quiet", r.parks.Load(), want, parkAfter)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitParks(1)
	roundTrip(t, c, []byte("again")) // the echo comes back through the parker
	waitParks(2)
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("relay: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a parked relay did not end after the client closed")
	}
}

// TestParkedIdleTimeout: a parked connection still ends on the idle
// timeout (the up direction watches it).
func TestParkedIdleTimeout(t *testing.T) {
	_, r, done := relayPair(t, parkAfter+time.Second)
	select {
	case err := <-done:
		if err != errIdle {
			t.Errorf("relay ended with %v, want the idle timeout", err)
		}
	case <-time.After(parkAfter + 10*time.Second):
		t.Fatal("no idle timeout")
	}
	if r.parks.Load() == 0 {
		t.Error("the connection never parked before its idle timeout")
	}
}
