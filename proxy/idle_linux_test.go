package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestIdleConnectionsNoLeak holds thousands of idle TLS connections
// through the proxy, measures what each costs, closes them and checks that
// no goroutine or file descriptor is left. The clients and the backend
// live in a child process (this test binary again) so that the proxy's
// own descriptors are all this process has (ulimit -n is 20000).
func TestIdleConnectionsNoLeak(t *testing.T) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("PROXY_IDLE_N")); err == nil {
		n = v
	}
	if raceEnabled || testing.Short() {
		n = 500 // the race detector allows 8128 goroutines, and is slow
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n+200) {
		n = int(lim.Cur) - 200
		t.Logf("ulimit -n %d: %d connections", lim.Cur, n)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperIdleClients$")
	cmd.Env = append(os.Environ(), "PROXY_IDLE_CHILD="+strconv.Itoa(n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := bufio.NewReader(stdout)
	m := NewMetrics()
	expect := func(prefix string) string {
		t.Helper()
		line, err := out.ReadString('\n')
		if !strings.HasPrefix(line, prefix) {
			var b strings.Builder
			m.WriteTo(&b)
			t.Fatalf("child said %q, %v; want %q\nmetrics:\n%s", line, err, prefix, b.String())
		}
		return strings.TrimSpace(strings.TrimPrefix(line, prefix))
	}
	backend := expect("backend ")

	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)
	cfg := tcpTLS(backend)
	cfg.HandshakeTimeout = time.Minute // a loaded machine
	addr, s := startProxy(t, cfg, m)
	fmt.Fprintf(stdin, "proxy %s\n", addr)
	expect("ready")
	open := `starttls_proxy_connections_open{` + s.labels + `}`
	waitFor(t, func() bool { return m.Get(open) == float64(n) })
	// A connection parks only once quiet for parkAfter: wait past that
	// (bounded), until the backend-to-client directions have parked.
	quietBy := time.Now().Add(parkAfter + 20*time.Second)
	for runtime.NumGoroutine()-baseG > n+n/100 && time.Now().Before(quietBy) {
		time.Sleep(100 * time.Millisecond)
	}
	var ms runtime.MemStats
	// A few collections, as a long-running proxy has: each one halves the
	// stacks that grew during the TLS handshake and are idle now.
	for range 4 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	if f := os.Getenv("PROXY_IDLE_HEAPPROFILE"); f != "" {
		if w, err := os.Create(f); err == nil {
			pprof.WriteHeapProfile(w)
			w.Close()
		}
	}
	busyG := runtime.NumGoroutine()
	heap, stack := float64(ms.HeapInuse-base.HeapInuse)/1024/float64(n), float64(ms.StackInuse-base.StackInuse)/1024/float64(n)
	t.Logf("%d idle TLS connections: %.1f goroutines, %.1f KiB heap + %.1f KiB stack = %.1f KiB per connection",
		n, float64(busyG-baseG)/float64(n), heap, stack, heap+stack)
	// One: the backend-to-client direction is parked in the epoll parker.
	if per := float64(busyG-baseG) / float64(n); per > 1.01 {
		t.Errorf("%.2f goroutines per idle connection, want 1", per)
	}

	stdin.Close() // the child closes every connection and exits
	expect("closed")
	waitFor(t, func() bool { return m.Get(open) == 0 })
	s.Close()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, fd := runtime.NumGoroutine(), openFDs(t)
		// The closed listener of startProxy and this test's own pipes
		// account for a few descriptors either way.
		if g <= baseG+2 && fd <= baseFD+2 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("leak: goroutines %d → %d, fds %d → %d\n%s", baseG, g, baseFD, fd, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestHelperIdleClients is the child of TestIdleConnectionsNoLeak.
func TestHelperIdleClients(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("PROXY_IDLE_CHILD"))
	if err != nil {
		t.Skip("helper process only")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { echo(c); c.Close() }()
		}
	}()
	fmt.Printf("backend %s\n", l.Addr())
	in := bufio.NewReader(os.Stdin)
	line, _ := in.ReadString('\n')
	addr := strings.TrimSpace(strings.TrimPrefix(line, "proxy "))
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	cfg := &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(64)}
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				fmt.Fprintln(os.Stderr, "child: dial:", err, time.Since(start))
				os.Exit(1)
			}
			c.Write([]byte("x"))
			b := make([]byte, 1)
			if _, err := io.ReadFull(c, b); err != nil {
				fmt.Fprintln(os.Stderr, "child: echo:", err, time.Since(start))
				os.Exit(1)
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	fmt.Println("ready")
	io.Copy(io.Discard, in)
	for _, c := range conns {
		c.Close()
	}
	fmt.Println("closed")
	os.Exit(0)
}
