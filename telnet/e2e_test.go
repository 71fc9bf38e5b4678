package telnet

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

func TestEndToEndModes(t *testing.T) {
	t.Parallel()
	addr := startServer(t, newServer(t))
	st, _ := linetest.TLSPair(t)
	implAddr := startServer(t, &Server{ServerOptions: starttls.ServerOptions{TLSConfig: st, Implicit: true}, Backend: memBackend{}})
	for _, tt := range []struct {
		name string
		addr string
		mode starttls.Mode
	}{
		{"required", addr, starttls.ModeRequired},
		{"opportunistic", addr, starttls.ModeOpportunistic},
		{"implicit", implAddr, starttls.ModeImplicit},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := linetest.Ctx(t)
			c, res, err := Dial(ctx, tt.addr, clientOpts(t, tt.mode))
			if err != nil {
				t.Fatalf("Dial: %v\n%s", err, transcript(res.Transcript))
			}
			defer c.Close()
			if !res.Upgraded || res.TLS == nil || !res.CapsReread || res.OfferedAfterTLS || !slices.Equal(res.AuthAfter, []string{"LOGIN"}) || len(res.AuthBefore) != 0 {
				t.Fatalf("result %+v", res)
			}
			if tt.mode != starttls.ModeImplicit {
				if !res.Offered || res.Greeting != "IAC DO START_TLS" || !slices.Equal(res.CapsBefore, []string{"DO START_TLS"}) || res.UpgradeReply != "IAC SB START_TLS FOLLOWS IAC SE" {
					t.Errorf("Offered %v Greeting %q CapsBefore %v UpgradeReply %q", res.Offered, res.Greeting, res.CapsBefore, res.UpgradeReply)
				}
			}
			if err := c.Login(ctx, "alice", "wrong"); !errors.Is(err, ErrLoginRefused) {
				t.Fatalf("Login with a wrong password: %v", err)
			}
			if err := c.Login(ctx, "alice", "secret pw"); err != nil {
				t.Fatalf("Login: %v\n%s", err, transcript(res.Transcript))
			}
			if !strings.Contains(c.Text(), "Welcome alice") {
				t.Errorf("after login: %q", c.Text())
			}
			if out, err := c.Command(ctx, "whoami"); err != nil || out != "alice\r\n$ " {
				t.Errorf("whoami = %q, %v", out, err)
			}
			if s := transcript(res.Transcript); strings.Contains(s, "secret pw") || !strings.Contains(s, "****") {
				t.Errorf("password not masked:\n%s", s)
			}
		})
	}
}

// TestPlainMode: ModePlain refuses START_TLS with WONT; the correct server
// then says it requires TLS.
func TestPlainMode(t *testing.T) {
	t.Parallel()
	addr := startServer(t, newServer(t))
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if res.Upgraded || !res.Offered {
		t.Fatalf("Upgraded %v Offered %v", res.Upgraded, res.Offered)
	}
	if err := c.Login(linetest.Ctx(t), "alice", "secret pw"); err == nil {
		t.Fatal("Login succeeded without TLS against a server that requires it")
	}
}

// TestClientBytes checks the client's bytes exactly: WILL START_TLS after
// DO, FOLLOWS after FOLLOWS, then a TLS record; other options refused.
func TestClientBytes(t *testing.T) {
	t.Parallel()
	addr, got := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		c.Write([]byte(doStartTLS + "\xff\xfb\x01\xff\xfd\x18")) // DO START_TLS, WILL ECHO, DO TERMINAL-TYPE
		time.Sleep(50 * time.Millisecond)
		readUntil(r, willStartTLS)
		c.Write([]byte(followsMsg))
		readN(r, 8)
	})
	o := clientOpts(t, starttls.ModeRequired)
	ctx := linetest.Ctx(t)
	Dial(ctx, addr, o)
	b := <-got
	want := "\xff\xfe\x01\xff\xfc\x18" + willStartTLS + followsMsg + "\x16\x03"
	if !bytes.HasPrefix(b, []byte(want)) {
		t.Fatalf("client sent %q, want prefix %q", b, want)
	}
}

// TestSilentServerClientAsks: a server that waits for the client gets WILL
// START_TLS after opts.Wait().
func TestSilentServerClientAsks(t *testing.T) {
	t.Parallel()
	st, _ := linetest.TLSPair(t)
	addr, _ := fakeServer(t, func(c net.Conn, r *bufio.Reader) {
		if string(readN(r, 3)) != willStartTLS {
			return
		}
		c.Write([]byte(doStartTLS + followsMsg))
		if string(readN(r, 6)) != followsMsg {
			return
		}
		tc := tls.Server(&prefixConn{Conn: c, r: r}, st)
		if tc.Handshake() == nil {
			tc.Write([]byte("hello over TLS\r\nlogin: "))
			time.Sleep(time.Second)
		}
	})
	_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil || !res.Upgraded || !res.Offered || !res.CapsReread {
		t.Fatalf("err %v result %+v\n%s", err, res, transcript(res.Transcript))
	}
}

// TestServerHandshake: Handshake serves the negotiation and hands over the
// TLS connection, with the Telnet session still to come.
func TestServerHandshake(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		tc, err := srv.Handshake(linetest.Ctx(t), conn)
		if err != nil {
			t.Errorf("Handshake: %v", err)
			return
		}
		defer tc.Close()
		tc.Write([]byte("relayed banner\r\nlogin: "))
		time.Sleep(time.Second)
	}()
	c, res, err := Dial(linetest.Ctx(t), l.Addr().String(), clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !res.Upgraded || !strings.Contains(c.Text(), "relayed banner") {
		t.Fatalf("Upgraded %v text %q", res.Upgraded, c.Text())
	}
}
