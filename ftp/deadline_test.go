package ftp

import (
	"context"
	"crypto/tls"
	"io/fs"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/linetest"
)

// slowBackend serves testFS with reads that take longer than the
// server's command timeout.
type slowBackend struct {
	memBackend
	delay time.Duration
}

func (b *slowBackend) FS(ctx context.Context, user string) (fs.FS, error) {
	return slowFS{testFS(), b.delay}, nil
}

type slowFS struct {
	fs.FS
	delay time.Duration
}

func (f slowFS) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &slowFile{File: file, delay: f.delay}, nil
}

type slowFile struct {
	fs.File
	delay time.Duration
}

func (f *slowFile) Read(p []byte) (int, error) {
	time.Sleep(f.delay)
	return f.File.Read(p)
}

// TestTransferLongerThanCommandTimeout: the 226 after a transfer that
// outlasts the command timeout still reaches the client.
func TestTransferLongerThanCommandTimeout(t *testing.T) {
	srv := newServer(t)
	srv.ReadTimeout = 300 * time.Millisecond
	srv.Backend = &slowBackend{delay: 500 * time.Millisecond}
	c := dialRaw(t, startServer(t, srv))
	if got := cmd(c, "AUTH TLS"); !strings.HasPrefix(got, "234") {
		t.Fatal(got)
	}
	c.StartTLS()
	for _, line := range []string{"USER alice", "PASS secret pw", "PBSZ 0", "PROT P"} {
		if got := cmd(c, line); got[0] != '2' && got[0] != '3' {
			t.Fatalf("%s = %q", line, got)
		}
	}
	epsv := cmd(c, "EPSV")
	port, err := parseEPSV(epsv[4:])
	if err != nil {
		t.Fatal(err)
	}
	c.Write("RETR hello.txt\r\n")
	if got := c.Line(); !strings.HasPrefix(got, "150 ") {
		t.Fatalf("RETR = %q", got)
	}
	dc, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	_, ct := linetest.TLSPair(t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	tc := tls.Client(dc, cfg)
	tc.SetDeadline(time.Now().Add(linetest.Timeout))
	buf := make([]byte, 200)
	n, _ := readAllInto(tc, buf)
	if string(buf[:n]) != testFile {
		t.Errorf("data = %q", buf[:n])
	}
	if got := c.Line(); !strings.HasPrefix(got, "226 ") {
		t.Errorf("after transfer: %q", got)
	}
}
