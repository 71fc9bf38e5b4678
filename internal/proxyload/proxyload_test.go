package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/certs"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{"plain", "4242 (haproxy) S 1 4242 4242 0 -1 4194560 1 0 0 0 17 23 0 0 20 0 3 0", procStat{PPID: 1, UTime: 17, STime: 23}, false},
		{"name with spaces and parens", "7 (a) b (c)) R 99 7 7 0 -1 0 0 0 0 0 5 6 0 0", procStat{PPID: 99, UTime: 5, STime: 6}, false},
		{"no name", "7 a R 1 2 3", procStat{}, true},
		{"too short", "7 (x) R 1 2 3", procStat{}, true},
		{"bad number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 five 6 0", procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStat(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseRSS(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"Name:\tx\nVmRSS:\t   1234 kB\nThreads: 2\n", 1234 << 10, false},
		{"Name:\tzombie\nState:\tZ\n", 0, false},
		{"VmRSS:\t12 MB\n", 0, true},
		{"VmRSS:\t-3 kB\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseRSS([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseRSS(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestAuxvClockTicks(t *testing.T) {
	var b []byte
	for _, kv := range [][2]uint64{{6, 4096}, {17, 250}, {0, 0}} {
		b = binary.LittleEndian.AppendUint64(b, kv[0])
		b = binary.LittleEndian.AppendUint64(b, kv[1])
	}
	if got := auxvClockTicks(b); got != 250 {
		t.Errorf("auxvClockTicks = %d, want 250", got)
	}
	if got := auxvClockTicks(b[16:16]); got != 0 {
		t.Errorf("auxvClockTicks(empty) = %d, want 0", got)
	}
	if hz := clockTicks(); hz <= 0 {
		t.Errorf("clockTicks() = %v", hz)
	}
}

// TestProcTree measures this test process and a child it starts.
func TestProcTree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	child := sleepChild(ctx, t)
	p := procfs{"/proc"}
	pids, err := p.tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if pids[0] != os.Getpid() || !containsInt(pids, child) {
		t.Errorf("tree(%d) = %v, want it first and child %d in it", os.Getpid(), pids, child)
	}
	u, err := p.usage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.Procs < 2 {
		t.Errorf("usage = %+v, want RSS > 0 over at least 2 processes", u)
	}
	if _, err := p.usage(1 << 30); err == nil {
		t.Error("usage of a pid that does not exist: no error")
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (haproxy) S 1 4242 4242 0 -1 4194560 1 0 0 0 17 23 0 0 20 0 3 0"))
	f.Add([]byte("1 ()) ) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err != nil && st != (procStat{}) {
			t.Errorf("parseStat returned %+v with error %v", st, err)
		}
	})
}

func FuzzParseRSS(f *testing.F) {
	f.Add([]byte("VmRSS:\t   1234 kB\n"))
	f.Add([]byte("VmRSS: 99999999999999999999 kB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseRSS(b)
		if n < 0 || err != nil && n != 0 {
			t.Errorf("parseRSS = %d, %v", n, err)
		}
	})
}

func FuzzAuxvClockTicks(f *testing.F) {
	f.Add(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 17), 100))
	f.Fuzz(func(t *testing.T, b []byte) { _ = auxvClockTicks(b) })
}

// startSink runs the backend on loopback for the test.
func startSink(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveSink(l) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("serveSink: %v", err)
		}
	})
	return l.Addr().String()
}

func TestSink(t *testing.T) {
	addr := startSink(t)
	dial := func(t *testing.T) net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	header := func(op byte, n uint64) []byte {
		return binary.BigEndian.AppendUint64([]byte{op}, n)
	}
	t.Run("echo", func(t *testing.T) {
		c := dial(t)
		msg := bytes.Repeat([]byte("0123456789"), 1000)
		if _, err := c.Write(append([]byte{opEcho}, msg...)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo: %v, equal %v", err, bytes.Equal(got, msg))
		}
	})
	t.Run("download", func(t *testing.T) {
		c := dial(t)
		const n = 300_001
		c.Write(header(opDownload, n))
		got, err := io.ReadAll(io.LimitReader(c, n+1))
		if err == nil && len(got) == n {
			t.Fatal("the sink kept the connection open after sending, and ReadAll returned")
		}
		// The sink waits for our EOF: read exactly n, then nothing more.
		if len(got) != n {
			t.Fatalf("download: %d bytes, want %d (err %v)", len(got), n, err)
		}
		if got[0] != 0 || got[255] != 255 || got[256] != 0 {
			t.Errorf("download: unexpected pattern")
		}
	})
	t.Run("upload", func(t *testing.T) {
		c := dial(t)
		const n = 200_000
		c.Write(header(opUpload, n))
		c.Write(make([]byte, n))
		got, err := readCount(c)
		if err != nil || got != n {
			t.Fatalf("upload acknowledgement = %d, %v; want %d", got, err, n)
		}
	})
	t.Run("count above the limit", func(t *testing.T) {
		c := dial(t)
		c.Write(header(opDownload, sinkMaxBytes+1))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("read %d bytes after a count above the limit; want the connection closed", n)
		}
	})
	t.Run("unknown operation", func(t *testing.T) {
		c := dial(t)
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("read %d bytes after an unknown operation; want the connection closed", n)
		}
	})
}

// miniProxy is a TLS terminator for the tests: it stands in for the proxies
// the script measures.
func miniProxy(t *testing.T, backend string, cert tls.Certificate) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, b)
			mu.Unlock()
			wg.Go(func() { io.Copy(b, c); b.(*net.TCPConn).CloseWrite() })
			wg.Go(func() { io.Copy(c, b); c.Close() })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

type testPKI struct {
	caFile, leafFile, otherFile string
	cert, other                 tls.Certificate
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	ca, err := certs.NewCA("proxyload test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(certs.Leaf{Names: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.Issue(certs.Leaf{Names: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := testPKI{
		caFile: filepath.Join(dir, "ca.pem"), leafFile: filepath.Join(dir, "leaf.pem"), otherFile: filepath.Join(dir, "other.pem"),
		cert: leaf, other: other,
	}
	for f, b := range map[string][]byte{p.caFile: ca.PEM(), p.leafFile: certPEM(leaf), p.otherFile: certPEM(other)} {
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestBench runs every phase, small, against the test terminator, and the
// table over two rounds of it.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback load, a few seconds")
	}
	pki := newPKI(t)
	backend := startSink(t)
	addr := miniProxy(t, backend, pki.cert)
	dir := t.TempDir()
	var files []string
	for _, round := range []string{"1"} {
		var out, errb bytes.Buffer
		code := run([]string{"bench", "--name", "mini", "--addr", addr, "--backend", backend,
			"--cert", pki.leafFile, "--ca", pki.caFile, "--pid", itoa(os.Getpid()),
			"--phase", "1s", "--idle", "40", "--bulk-conns", "3", "--bulk-cap-mb", "50",
			"--handshake-clients", "2", "--latency-samples", "300"}, &out, &errb)
		if code != 0 {
			t.Fatalf("bench exit %d: %s", code, errb.String())
		}
		var r Result
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("bench output: %v\n%s", err, out.String())
		}
		if r.Down1 <= 0 || r.UpN <= 0 || r.Handshakes <= 0 || r.LatencySamples < 50 || r.IdleOpened != 40 ||
			r.IdleAlive != r.IdleSampled || r.IdleSampled == 0 || r.RSSAfter <= 0 || r.BulkBytes <= 0 {
			t.Errorf("bench result incomplete: %+v", r)
		}
		if !strings.Contains(r.TLS, "TLS 1.3") || !strings.Contains(r.TLS, "X25519") || !strings.Contains(r.TLS, "ECDSA P-256") {
			t.Errorf("TLS = %q, want TLS 1.3, X25519, an ECDSA P-256 certificate", r.TLS)
		}
		f := filepath.Join(dir, "mini."+round+".json")
		os.WriteFile(f, out.Bytes(), 0o644)
		files = append(files, f, f) // two rounds, for the table's median
	}
	md := filepath.Join(dir, "table.md")
	var out, errb bytes.Buffer
	if code := run(append([]string{"table", "--out", md, "--note", "a note"}, files...), &out, &errb); code != 0 {
		t.Fatalf("table exit %d: %s", code, errb.String())
	}
	b, _ := os.ReadFile(md)
	if string(b) != out.String() || !strings.Contains(out.String(), "median of 2 rounds") || !strings.Contains(out.String(), "- a note") {
		t.Errorf("table:\n%s\nfile:\n%s", out.String(), b)
	}
}

// TestBenchRefusesAnotherCertificate: the pin holds after the first,
// verified connection.
func TestBenchRefusesAnotherCertificate(t *testing.T) {
	pki := newPKI(t)
	backend := startSink(t)
	addr := miniProxy(t, backend, pki.other)
	var out, errb bytes.Buffer
	code := run([]string{"bench", "--name", "mini", "--addr", addr, "--backend", backend,
		"--cert", pki.leafFile, "--ca", pki.caFile, "--idle", "0"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "pinned") {
		t.Errorf("bench against another certificate: exit %d, stderr %q; want a failure naming the pin", code, errb.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"nope"},
		{"bench"},
		{"bench", "--name", "x", "--addr", "a", "--backend", "b", "--cert", "c", "--phase", "-1s"},
		{"table"},
		{"table", "/nonexistent.json"},
		{"sink", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code == 0 {
			t.Errorf("run(%q) = 0, want an error", args)
		}
	}
}

func TestMergeRoundsAndRatio(t *testing.T) {
	rs := []*Result{
		{Name: "a", Down1: 10, IdleOpened: 5, Notes: []string{"x"}},
		{Name: "b", Down1: 100},
		{Name: "a", Down1: 30, IdleOpened: 7, Notes: []string{"x", "y"}},
		{Name: "a", Down1: 20, IdleOpened: 6},
	}
	m := mergeRounds(rs)
	if len(m) != 2 || m[0].Name != "a" || m[0].Down1 != 20 || m[0].IdleOpened != 6 || m[0].Rounds != 3 ||
		strings.Join(m[0].Notes, ",") != "x,y" || m[1].Down1 != 100 {
		t.Errorf("mergeRounds = %+v, %+v", *m[0], *m[1])
	}
	for _, tt := range []struct {
		a, b float64
		want string
	}{{2, 1, "2.00×"}, {1, 0, "n/a"}, {-1, 5, "n/a"}, {1, -5, "n/a"}} {
		if got := ratio(tt.a, true, tt.b, true); got != tt.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
	if got := ratio(1, false, 1, true); got != "n/a" {
		t.Errorf("ratio of a missing value = %q", got)
	}
}

func certPEM(c tls.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
}

func itoa(n int) string { return strconv.Itoa(n) }

// sleepChild starts a child process that lives until the test ends.
func sleepChild(ctx context.Context, t *testing.T) int {
	t.Helper()
	cmd := exec.CommandContext(ctx, "sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}
