package mysql

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// rawSSL dials srv, reads the greeting and returns the conn and the
// greeting; the caller speaks next.
func rawDial(t *testing.T, addr string) (net.Conn, *Greeting) {
	t.Helper()
	c := linetest.Dial(t, addr).Conn()
	_, p, err := readPkt(c)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseGreeting(p)
	if err != nil {
		t.Fatal(err)
	}
	return c, g
}

func sslRequestPacket() []byte {
	h := &handshakeResponse{Capabilities: clientCaps | ClientSSL, MaxPacket: MaxResultPacket, Charset: charsetUTF8MB4}
	return pkt(1, h.header())
}

// loginPacket is a HandshakeResponse41 for alice with sequence id seq.
func loginPacket(g *Greeting, seq byte, ssl bool) []byte {
	caps := clientCaps
	if ssl {
		caps |= ClientSSL
	}
	h := &handshakeResponse{Capabilities: caps, MaxPacket: MaxResultPacket, Charset: charsetUTF8MB4,
		User: testUser, AuthResponse: nativePassword(g.Scramble, testPassword), AuthPlugin: PluginNativePassword}
	return pkt(seq, h.marshal())
}

// pipelineAfterSSLRequest sends an SSLRequest and a plaintext login in one
// write (SECURITY SV-25), then shakes hands and reads what comes inside TLS.
func pipelineAfterSSLRequest(t *testing.T, addr string) (reply []byte, hsErr error) {
	c, g := rawDial(t, addr)
	c.Write(append(sslRequestPacket(), loginPacket(g, 2, true)...))
	_, ct := linetest.TLSPair(t)
	cfg := ct.Clone()
	cfg.ServerName = "127.0.0.1"
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	tc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	var buf [256]byte
	n, _ := tc.Read(buf[:])
	return buf[:n], nil
}

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411: a plaintext
// HandshakeResponse pipelined after the SSLRequest is never processed
// inside TLS: the server closes the connection.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	addr := startServer(t, newServer(t))
	reply, err := pipelineAfterSSLRequest(t, addr)
	if err == nil && len(reply) > 0 {
		t.Fatalf("server answered the pipelined login inside TLS: %x", reply)
	}
	// Handshake() hands the TLS connection over; pipelined bytes close it.
	srv := newServer(t)
	a, b := loopbackPair(t)
	go func() {
		_, p, _ := readPkt(b)
		g, _ := ParseGreeting(p)
		b.Write(append(sslRequestPacket(), loginPacket(g, 2, true)...))
	}()
	if tc, err := srv.Handshake(linetest.Ctx(t), a); err == nil || !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) {
		t.Fatalf("Handshake = %v, %v; want ErrPlaintextAfterUpgrade", tc, err)
	}
}

// TestServerInsecureKeepPipelined: the lab knob reproduces the bug: the
// pipelined plaintext login succeeds inside TLS. The client has no probe
// for it (nothing can follow its SSLRequest but the ClientHello), so
// Result.Injection stays nil.
func TestServerInsecureKeepPipelined(t *testing.T) {
	srv := newServer(t)
	srv.InsecureKeepPipelined = true
	addr := startServer(t, srv)
	reply, err := pipelineAfterSSLRequest(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reply, pkt(3, marshalOK(statusAutocommit))) {
		t.Fatalf("reply inside TLS = %x, want the OK of the pipelined login", reply)
	}
	opts := clientOpts(t, starttls.ModeRequired)
	opts.ProbeInjection = true
	c, res, err := Dial(linetest.Ctx(t), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if res.Injection != nil {
		t.Errorf("Injection = %+v, want nil (no probe for MySQL)", res.Injection)
	}
}

// TestClientRejectsResponseInjection: bytes that arrived with the greeting
// (a whole OK packet, or a partial one) fail the upgrade before the
// handshake, and are recorded.
func TestClientRejectsResponseInjection(t *testing.T) {
	for name, extra := range map[string][]byte{
		"OK packet":      pkt(2, marshalOK(2)),
		"partial packet": {0x07, 0x00},
	} {
		t.Run(name, func(t *testing.T) {
			addr, done := fakeServer(t, func(c net.Conn) error {
				c.Write(append(greetingBytes(serverCaps|ClientSSL), extra...))
				seq, p, err := readPkt(c)
				if err != nil || seq != 1 || len(p) != sslRequestLen {
					return errors.New("no SSLRequest")
				}
				rest, _ := io.ReadAll(c)
				if len(rest) > 0 {
					return errors.New("client went on after the injection")
				}
				return nil
			})
			_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) {
				t.Fatalf("err = %v, want ErrPlaintextAfterUpgrade", err)
			}
			if !bytes.Equal(res.PlaintextAfterUpgrade, extra) || res.Upgraded {
				t.Errorf("PlaintextAfterUpgrade = %x, Upgraded %v", res.PlaintextAfterUpgrade, res.Upgraded)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRequiredNeverFallsBack: no CLIENT_SSL (BACKRONYM, CVE-2015-3152), an
// ERR after the SSLRequest, a failed handshake, a silent server: errors,
// and the client sends nothing after (nothing at all without CLIENT_SSL).
func TestRequiredNeverFallsBack(t *testing.T) {
	tests := []struct {
		name   string
		script func(c net.Conn) []byte // returns what the client sent after the SSLRequest
		want   error
	}{
		{"not offered", func(c net.Conn) []byte {
			c.Write(greetingBytes(serverCaps))
			b, _ := io.ReadAll(c)
			return b
		}, starttls.ErrUpgradeNotOffered},
		{"refused", func(c net.Conn) []byte {
			c.Write(greetingBytes(serverCaps | ClientSSL))
			readPkt(c)
			c.Write(pkt(2, marshalErr(1040, "08004", "Too many connections")))
			b, _ := io.ReadAll(c)
			return cutClientHello(b)
		}, starttls.ErrUpgradeRefused},
		{"handshake failure", func(c net.Conn) []byte {
			c.Write(greetingBytes(serverCaps | ClientSSL))
			readPkt(c)
			c.Write([]byte("garbage, not TLS\r\n"))
			b, _ := io.ReadAll(c)
			return cutClientHello(b)
		}, nil},
		{"silence", func(c net.Conn) []byte {
			c.Write(greetingBytes(serverCaps | ClientSSL))
			readPkt(c)
			b, _ := io.ReadAll(c)
			return cutClientHello(b)
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan []byte, 1)
			addr, done := fakeServer(t, func(c net.Conn) error { got <- tt.script(c); return nil })
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			var he *starttls.HandshakeError
			if tt.name == "handshake failure" && !errors.As(err, &he) {
				t.Errorf("err = %v, want a HandshakeError", err)
			}
			if tt.name == "refused" && (res.UpgradeReply == "" || !starttls.IsTemporary(err)) {
				t.Errorf("refusal: reply %q, temporary %v", res.UpgradeReply, starttls.IsTemporary(err))
			}
			if res.Upgraded {
				t.Error("Upgraded")
			}
			<-done
			if b := <-got; len(b) > 0 {
				t.Errorf("client sent %d more bytes: %x", len(b), b)
			}
		})
	}
}

// cutClientHello drops the SSLRequest's companion, the TLS ClientHello
// (records of type 0x16, and the alert a failing handshake may send),
// leaving what else the client sent.
func cutClientHello(b []byte) []byte {
	for len(b) >= 5 && (b[0] == 0x16 || b[0] == 0x15) && b[1] == 0x03 {
		n := 5 + int(b[3])<<8 + int(b[4])
		if n > len(b) {
			return nil
		}
		b = b[n:]
	}
	return b
}

// TestNoCredentialsBeforeTLS: Login refuses without TLS unless ModePlain;
// the server refuses a plaintext login with ERR 3159 unless
// AllowPlaintextLogin.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	srv := &Server{Backend: &memBackend{}} // no TLS
	addr := startServer(t, srv)
	c, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(linetest.Ctx(t), testUser, testPassword); !errors.Is(err, starttls.ErrFallbackForbidden) {
		t.Fatalf("Login = %v, want ErrFallbackForbidden", err)
	}
	c.Close()
	c, _, err = Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	var me *Error
	if err := c.Login(linetest.Ctx(t), testUser, testPassword); !errors.As(err, &me) || me.Code != ErSecureTransportRequired {
		t.Fatalf("plaintext Login = %v, want ERR 3159", err)
	}
	c.Close()
	// The probe sees it.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := ProbePlaintextLogin(linetest.Ctx(t), conn, nil); err != nil || m == nil || len(m) != 0 {
		t.Errorf("ProbePlaintextLogin = %v, %v; want [] (TLS required)", m, err)
	}
	conn.Close()

	srv2 := &Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: true}, Backend: &memBackend{}}
	addr2 := startServer(t, srv2)
	c, _, err = Dial(linetest.Ctx(t), addr2, clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(linetest.Ctx(t), testUser, testPassword); err != nil {
		t.Fatalf("Login with AllowPlaintextLogin: %v", err)
	}
	c.Close()
}

// TestLineTooLong: packets beyond the limits fail on both sides.
func TestLineTooLong(t *testing.T) {
	addr := startServer(t, newServer(t))
	c, _ := rawDial(t, addr)
	c.Write([]byte{0xff, 0xff, 0xff, 1})
	_, p, err := readPkt(c)
	if err != nil || len(p) < 3 || parseErr(p).Code != ErNetPacketTooLarge {
		t.Fatalf("answer to an oversized packet = %q, %v; want ERR 1153", p, err)
	}
	if _, _, err := readPkt(c); err == nil {
		t.Fatal("connection still open")
	}
	// Client side: a result packet over MaxResultPacket.
	w := newWire(&fakeConn{r: bytes.NewReader(pkt(1, make([]byte, MaxResultPacket+1)))}, nil, starttls.FromClient)
	w.seq = 1
	if _, err := w.readResult(10); !errors.Is(err, starttls.ErrLineTooLong) {
		t.Fatalf("readResult = %v, want ErrLineTooLong", err)
	}
}

// TestResultColumnDefinitionsBounded: column definitions count against
// MaxResultBytes as they arrive, like the rows: a result set announcing
// MaxColumns columns of 800 KB each (each under MaxResultPacket, 3.2 GB in
// all) is refused once 16 MB are read, not after all of them.
func TestResultColumnDefinitionsBounded(t *testing.T) {
	var in []byte
	seq := byte(1)
	in = append(in, pkt(seq, appendLenenc(nil, MaxColumns))...)
	def := marshalColumn(strings.Repeat("c", 400<<10)) // name and org_name
	// Only the first 25 definitions are sent: reading further ends in EOF.
	for range 25 {
		seq++
		in = append(in, pkt(seq, def)...)
	}
	w := newWire(&fakeConn{r: bytes.NewReader(in)}, nil, starttls.FromClient)
	w.seq = 1
	if _, err := w.readResult(10); !errors.Is(err, starttls.ErrLineTooLong) {
		t.Fatalf("readResult = %v, want ErrLineTooLong", err)
	}
}

// TestTLSClientHelloOnPlaintextPort: a client that starts with TLS gets a
// closed connection, and the server says why.
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	srv := newServer(t)
	a, b := loopbackPair(t)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeConn(context.Background(), a) }()
	go func() {
		// Swallow the greeting, then speak TLS.
		readPkt(b)
		_, ct := linetest.TLSPair(t)
		cfg := ct.Clone()
		cfg.ServerName = "localhost"
		tls.Client(b, cfg).Handshake()
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, starttls.ErrTLSOnPlaintextPort) {
			t.Fatalf("ServeConn = %v, want ErrTLSOnPlaintextPort", err)
		}
	case <-time.After(linetest.Timeout):
		t.Fatal("server still waiting")
	}
}

// TestCapabilitiesRereadAfterTLS: MySQL has no capability re-read. The
// client repeats the greeting's capabilities in CapsAfter with CapsReread
// false, never lets them choose plaintext once TLS is up, and AuthAfter
// reports the plugin that really logged in over TLS, not the greeting's.
// With implicit TLS the greeting itself came over TLS: CapsReread true.
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	st, _ := linetest.TLSPair(t)
	addr, done := fakeServer(t, func(c net.Conn) error {
		c.Write(greetingBytes(serverCaps | ClientSSL | ClientLocalFiles))
		readPkt(c)
		tc := tls.Server(c, st)
		if err := tc.Handshake(); err != nil {
			return err
		}
		readPkt(tc)
		sw := append([]byte("\xfecaching_sha2_password\x00"), testScramble...)
		tc.Write(pkt(3, sw))
		readPkt(tc)
		tc.Write(pkt(5, []byte{1, 3}))
		tc.Write(pkt(6, marshalOK(2)))
		return nil
	})
	ctx := linetest.Ctx(t)
	c, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if res.CapsReread || len(res.CapsAfter) != len(res.CapsBefore) {
		t.Errorf("CapsReread %v, CapsAfter %v", res.CapsReread, res.CapsAfter)
	}
	if err := c.Login(ctx, testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	if res.AuthAfter[0] != PluginCachingSHA2 {
		t.Errorf("AuthAfter = %v, want the plugin used over TLS", res.AuthAfter)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The client never asks for LOCAL INFILE, whatever the greeting says.
	h := &handshakeResponse{Capabilities: (clientCaps & (serverCaps | ClientLocalFiles)) | ClientProtocol41}
	if h.Capabilities&ClientLocalFiles != 0 {
		t.Error("client would ask for CLIENT_LOCAL_FILES")
	}
}

// loopbackPair returns two ends of a loopback TCP connection.
func loopbackPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	b, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	a.SetDeadline(time.Now().Add(linetest.Timeout))
	b.SetDeadline(time.Now().Add(linetest.Timeout))
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// fakeConn is a net.Conn reading from r, for parser tests.
type fakeConn struct {
	net.Conn
	r io.Reader
}

func (f *fakeConn) Read(p []byte) (int, error)  { return f.r.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error) { return len(p), nil }

// sslRequestLen is the length of an SSLRequest payload.
const sslRequestLen = 32
