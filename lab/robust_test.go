package lab

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/imap"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/internal/textline"
	"github.com/starttls/starttls/pop3"
	"github.com/starttls/starttls/smtp"
)

// TestStalledConnectionsAreClosed_SV28: connections that stall anywhere —
// before the first command, in the middle of a line, after the upgrade
// command, in the middle of the ClientHello — are all closed by the
// server's deadlines, and the goroutines go back to their baseline.
func TestStalledConnectionsAreClosed_SV28(t *testing.T) {
	ca, err := certs.NewCA("robustness CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(certs.Leaf{Names: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	opts := starttls.ServerOptions{
		TLSConfig:   &tls.Config{Certificates: []tls.Certificate{leaf}},
		ReadTimeout: 300 * time.Millisecond,
	}
	st := newStore("alice", "secret")
	servers := []struct {
		name    string
		upgrade []string // commands before stalling after the upgrade
		serve   func(l net.Listener) func() error
	}{
		{"smtp", []string{"EHLO stall.example", "STARTTLS"}, func(l net.Listener) func() error {
			s := &smtp.Server{ServerOptions: opts, Backend: smtpBackend{st}}
			go s.Serve(l)
			return s.Close
		}},
		{"imap", []string{"a1 STARTTLS"}, func(l net.Listener) func() error {
			s := &imap.Server{ServerOptions: opts, Backend: imapBackend{st}}
			go s.Serve(l)
			return s.Close
		}},
		{"pop3", []string{"STLS"}, func(l net.Listener) func() error {
			s := &pop3.Server{ServerOptions: opts, Backend: pop3Backend{st}}
			go s.Serve(l)
			return s.Close
		}},
	}
	// Half a ClientHello: a record header promising more than is sent.
	halfHello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	stalls := map[string]func(c net.Conn, upgrade []string){
		"silent":           func(net.Conn, []string) {},
		"half-line":        func(c net.Conn, _ []string) { c.Write([]byte("NOOP and no line end")) },
		"after-upgrade":    func(c net.Conn, up []string) { sendEach(c, up) },
		"half-clienthello": func(c net.Conn, up []string) { sendEach(c, up); c.Write(halfHello) },
		"hello-on-plain":   func(c net.Conn, _ []string) { c.Write(halfHello) },
		// Slow-loris: one byte every 100 ms never completes a command
		// within the 300 ms command deadline.
		"trickle": func(c net.Conn, _ []string) {
			for _, b := range []byte("NOOP with a long tail that never ends") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		},
	}
	const perCase = 20
	baseline := runtime.NumGoroutine()
	for _, srv := range servers {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		stop := srv.serve(l)
		var wg sync.WaitGroup
		for name, stall := range stalls {
			for i := 0; i < perCase; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := net.Dial("tcp", l.Addr().String())
					if err != nil {
						t.Errorf("%s/%s: %v", srv.name, name, err)
						return
					}
					defer c.Close()
					stall(c, srv.upgrade)
					// The server must close; 20 times its timeout is a
					// liveness bound, not a performance claim.
					c.SetReadDeadline(time.Now().Add(6 * time.Second))
					// A reset is a close too (the server may close with
					// our bytes unread).
					if _, err := io.Copy(io.Discard, c); err != nil && !textline.IsClosed(err) {
						t.Errorf("%s/%s: the server did not close the stalled connection: %v", srv.name, name, err)
					}
				}()
			}
		}
		wg.Wait()
		stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for runtime.NumGoroutine() > baseline+2 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left, baseline %d:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
}

// sendEach sends each command in its own write, after the server's answer
// to the previous one has had time to arrive, so that nothing is pipelined
// after the upgrade command.
func sendEach(c net.Conn, lines []string) {
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	c.Read(buf) // greeting
	for _, l := range lines {
		c.Write([]byte(l + "\r\n"))
		c.Read(buf)
	}
	c.SetReadDeadline(time.Time{})
}
