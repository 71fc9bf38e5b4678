package smtp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// Hostile server answers from SECURITY.md (PR-03, PR-04, PR-06, PR-08,
// CL-08…CL-12, CL-26, STRIPTLS vectors).
var serverSeeds = []string{
	greeting + ehloPlain + goAhead,
	greeting + "250-STARTTLS\r\n250 SIZE 100\r\n",
	greeting + ehloPlain + "220 2.0.0 Ready\r\n250-x\r\n250 AUTH LOGIN\r\n",
	greeting + ehloPlain + "220 ok\r\n250-AUTH XOAUTH2",
	greeting + "502 Error: command \"EHLO\" not implemented\r\n250 mx\r\n",
	greeting + ehloPlain + "200 STRIPTLS\r\n",
	greeting + ehloPlain + "454 TLS not available due to temporary reason\r\n250 ok\r\n",
	greeting + ehloPlain + "501 Syntax error\r\n",
	greeting + "250-a\r\n251 b\r\n",
	greeting + "250-mx\r\n250-",
	"220 a\x00b\r\n",
	"421 4.7.0 too many connections\r\n",
	"220-a\r\n220 b\r\n250-mx\r\n250-AUTH=LOGIN PLAIN\r\n250-auth cram-md5 plain\r\n250-SIZE -1\r\n250-\x1b[31m\r\n250 STARTTLS\r\n" + goAhead + "\xb9\xb3\xb9\xb2\xb3",
	greeting + "250-mx\r\n" + strings.Repeat("250-X\r\n", 10000) + "250 Y\r\n",
	"\x16\x03\x01\x00\x05hello",
}

func FuzzParseEHLO(f *testing.F) {
	for _, s := range []string{"mx", "STARTTLS\nSIZE 100", "mx\nAUTH=LOGIN PLAIN\nAUTH plain login xoauth2", "mx\n\x00\n-\nX-\nA B  C", "mx\nAUTH " + strings.Repeat("A", 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x := parseEHLO(strings.Split(s, "\n"))
		for _, l := range x.list {
			kw, _, _ := strings.Cut(l, " ")
			if kw != strings.ToUpper(kw) || hasControl(l) {
				t.Errorf("bad capability %q", l)
			}
		}
		for _, m := range x.auth {
			if !isMechanism(m) {
				t.Errorf("bad mechanism %q", m)
			}
		}
		if len(x.auth) != len(slices.Compact(slices.Clone(x.auth))) {
			t.Errorf("duplicate mechanisms %q", x.auth)
		}
	})
}

func FuzzParseEnhanced(f *testing.F) {
	for _, s := range []string{"4.7.0 TLS not available", "5.7.8 x", "2.0.0", "4.7 x", "9.9.9 x", "4.7.0000 x", "4..0 x", "5.1.1x", ""} {
		f.Add(s, 454)
	}
	f.Fuzz(func(t *testing.T, s string, code int) {
		enh, rest, ok := parseEnhanced(s, code)
		if !ok {
			if rest != s || enh != [3]int{} {
				t.Errorf("parseEnhanced(%q) failed but returned %v, %q", s, enh, rest)
			}
			return
		}
		if enh[0] != 2 && enh[0] != 4 && enh[0] != 5 || enh[1] > 999 || enh[2] > 999 || !strings.HasSuffix(s, rest) {
			t.Errorf("parseEnhanced(%q) = %v, %q", s, enh, rest)
		}
		e := &ReplyError{Code: code, Enhanced: enh, Message: rest}
		_ = e.Error()
		_ = e.lines()
	})
}

// scriptConn is a net.Conn that reads a fixed input and discards writes.
type scriptConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *scriptConn) Close() error                { return nil }
func (c *scriptConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *scriptConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzClient feeds hostile server bytes to the client dialog, greeting and
// EHLO parsing included: it must end with a result, never panic or hang.
func FuzzClient(f *testing.F) {
	for _, s := range serverSeeds {
		f.Add([]byte(s), uint8(starttls.ModeRequired))
	}
	f.Fuzz(func(t *testing.T, in []byte, mode uint8) {
		opts := clientOpts(t, starttls.Mode(mode%5))
		opts.MaxLines = 64
		opts.InjectionWait = time.Millisecond
		opts.ProbeInjection = mode&0x80 != 0
		c, res, err := Upgrade(context.Background(), &scriptConn{r: bytes.NewReader(in)}, opts)
		if res == nil {
			t.Fatal("nil Result")
		}
		if err == nil {
			c.SendMail(context.Background(), "a@b", []string{"c@d"}, []byte("x"))
			c.Login(context.Background(), "u", "p")
			c.Close()
		} else if c != nil {
			t.Fatal("non-nil Client with an error")
		}
		if len(res.CapsBefore) > 64 || len(res.CapsAfter) > 64 {
			t.Errorf("capabilities not bounded: %d, %d", len(res.CapsBefore), len(res.CapsAfter))
		}
	})
}

// FuzzServer feeds hostile client bytes to a server session: no panic (a
// recovered panic is logged at error level and fails the test).
func FuzzServer(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n..y\r\n.\r\nQUIT\r\n",
		"EHLO x\nSTARTTLS\n",
		"EHLO a\x00b\r\n",
		"STARTTLS\r\nNOOP\r\n",
		"EHLO x\r\nAUTH PLAIN\r\n=\r\nAUTH LOGIN dXNlcg==\r\n*\r\n",
		"EHLO x\r\nMAIL FROM:<@a,@b:c@d> BODY=8BITMIME AUTH=<>\r\nRCPT TO:<x>\r\nDATA\r\na\n.\nb\r\n.\r\n",
		"LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<a>\r\nDATA\r\n.\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"HELO x\r\nMAIL FROM:<a\r\n" + strings.Repeat("A", 3000) + "\r\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, flags uint8) {
		s := &Server{Backend: &memBackend{}, LMTP: flags&1 != 0, RequireAuth: flags&2 != 0, MaxMessageBytes: 64, MaxRecipients: 3}
		s.TLSConfig, _ = linetest.TLSPair(t)
		s.AllowPlaintextLogin = flags&4 != 0
		s.InsecureKeepPipelined = flags&8 != 0
		s.MaxErrors = 1000
		s.Logger = slog.New(failOnError{t})
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.serve(context.Background(), &scriptConn{r: bytes.NewReader(in)})
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("session did not end on %q:\n%s", in, buf[:runtime.Stack(buf, true)])
		}
	})
}
