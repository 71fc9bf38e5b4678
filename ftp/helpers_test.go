package ftp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

var (
	errBadLogin = errors.New("bad login")
	testFile    = "hello over a protected data channel\r\nsecond line\r\n"
)

// memBackend has one user "alice", password "secret pw".
type memBackend struct{ failFS bool }

func (b *memBackend) Login(ctx context.Context, user, pass string) error {
	if user == "alice" && pass == "secret pw" {
		return nil
	}
	return errBadLogin
}

func (b *memBackend) FS(ctx context.Context, user string) (fs.FS, error) {
	if b.failFS {
		return nil, errors.New("disk on fire")
	}
	return testFS(), nil
}

func testFS() fstest.MapFS {
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return fstest.MapFS{
		"hello.txt":        {Data: []byte(testFile), ModTime: mt},
		"pub/readme.md":    {Data: []byte("# readme\n"), ModTime: mt},
		"pub/big.bin":      {Data: bytes.Repeat([]byte{0xAB}, 300000), ModTime: mt},
		`pub/we"ird dir/x`: {Data: []byte("x"), ModTime: mt},
	}
}

func newServer(t testing.TB) *Server {
	st, _ := linetest.TLSPair(t)
	return &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Hostname: "ftp.test"}, Backend: &memBackend{}}
}

func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	return linetest.Serve(t, srv.Serve, srv.Close)
}

func clientOpts(t testing.TB, mode starttls.Mode) *starttls.ClientOptions {
	_, ct := linetest.TLSPair(t)
	return &starttls.ClientOptions{Mode: mode, TLSConfig: ct, Transcript: &starttls.Transcript{}}
}

// dialRaw connects to a server and checks its 220 greeting.
func dialRaw(t testing.TB, addr string) *linetest.Raw {
	t.Helper()
	c := linetest.Dial(t, addr)
	if g := c.Line(); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("greeting = %q, want 220", g)
	}
	return c
}

// reply reads a whole reply and returns its lines.
func reply(c *linetest.Raw) []string {
	first := c.Line()
	out := []string{first}
	if len(first) >= 4 && first[3] == '-' {
		for {
			l := c.Line()
			out = append(out, l)
			if strings.HasPrefix(l, first[:3]+" ") {
				break
			}
		}
	}
	return out
}

// cmd sends one command and returns the first line of the reply.
func cmd(c *linetest.Raw, s string) string {
	c.Write(s + "\r\n")
	return reply(c)[0]
}

const (
	featPre  = "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n EPSV\r\n211 End\r\n"
	featPost = "211-Features:\r\n PBSZ\r\n PROT\r\n EPSV\r\n MLST type*;size*;\r\n211 End\r\n"
)

// upgradeScript is a fake server's correct pre-TLS and TLS dialog up to
// PROT P.
func upgradeScript(t testing.TB, pre, post string) func(f *linetest.Fake) {
	return func(f *linetest.Fake) {
		st, _ := linetest.TLSPair(t)
		f.Send("220 fake FTP\r\n")
		if !f.Expect("FEAT") {
			return
		}
		f.Send(pre)
		if !f.Expect("AUTH TLS") {
			return
		}
		f.Send("234 go ahead\r\n")
		if !f.StartTLS(st) {
			return
		}
		if !f.Expect("FEAT") {
			return
		}
		f.Send(post)
		if !f.Expect("PBSZ 0") {
			return
		}
		f.Send("200 PBSZ=0\r\n")
		if !f.Expect("PROT P") {
			return
		}
		f.Send("200 ok\r\n")
	}
}

// dump renders a transcript for messages and searches.
func dump(tr *starttls.Transcript) string {
	if tr == nil {
		return ""
	}
	var b strings.Builder
	for _, e := range tr.Events() {
		b.WriteString(e.Format(time.Time{}))
		b.WriteString("\n")
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// readAllInto reads until EOF or buf is full.
func readAllInto(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// hasFeat reports whether the feature kw is listed.
func hasFeat(feats []string, kw string) bool {
	_, ok := featArgs(feats, kw)
	return ok
}
