package postgres

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411 is CVE-2021-23214
// for PostgreSQL: a StartupMessage pipelined after the SSLRequest is never
// answered inside TLS; the server reports FATAL 08P01 over TLS and closes.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	for _, handshakeOnly := range []bool{false, true} {
		srv := newServer(t)
		addr := ""
		if handshakeOnly {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			errc := make(chan error, 1)
			go func() {
				conn, err := l.Accept()
				if err != nil {
					errc <- err
					return
				}
				_, err = srv.Handshake(context.Background(), conn)
				errc <- err
			}()
			defer func() {
				if err := <-errc; !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) {
					t.Errorf("Handshake with pipelined data: %v, want ErrPlaintextAfterUpgrade", err)
				}
			}()
			addr = l.Addr().String()
		} else {
			addr = startServer(t, srv)
		}
		c := dialRaw(t, addr)
		c.write(sslRequest(), startup(testUser))
		if b := c.byte1(); b != 'S' {
			t.Fatalf("answer %q, want 'S'", b)
		}
		c.StartTLS()
		e := c.expectError(CodeProtocolViolation)
		if !strings.Contains(e.Message, "unencrypted data after SSL request") {
			t.Errorf("error %v", e)
		}
		c.expectEOF()
	}
}

// TestServerInsecureKeepPipelined: the lab knob reproduces CVE-2021-23214
// (the pipelined StartupMessage is answered inside TLS), and the client's
// probe tells the vulnerable server from the safe one.
func TestServerInsecureKeepPipelined(t *testing.T) {
	vuln := newServer(t)
	vuln.InsecureKeepPipelined = true
	vaddr := startServer(t, vuln)
	c := dialRaw(t, vaddr)
	c.write(sslRequest(), startup(testUser))
	if b := c.byte1(); b != 'S' {
		t.Fatalf("answer %q", b)
	}
	c.StartTLS()
	if typ, body := c.msg(); typ != 'R' || !bytes.Contains(body, []byte(SCRAMSHA256)) {
		t.Fatalf("got %q %q, want AuthenticationSASL inside TLS", typ, body)
	}

	safe := startServer(t, newServer(t))
	for _, tt := range []struct {
		addr       string
		vulnerable bool
	}{{vaddr, true}, {safe, false}} {
		opts := clientOpts(t, starttls.ModeRequired)
		opts.ProbeInjection = true
		opts.InjectionWait = 2 * time.Second
		cl, res, err := Dial(linetest.Ctx(t), tt.addr, opts)
		p := res.Injection
		if p == nil || p.Vulnerable != tt.vulnerable || p.Sent == "" {
			t.Fatalf("probe %+v (err %v), want vulnerable=%v", p, err, tt.vulnerable)
		}
		if tt.vulnerable {
			if err != nil || !strings.Contains(p.Reply, "AuthenticationSASL") {
				t.Errorf("vulnerable: err %v, reply %q", err, p.Reply)
			}
			if err := cl.Login(linetest.Ctx(t), testUser, testPass); err == nil {
				t.Error("Login after a vulnerable probe worked on a spent session")
			}
			cl.Close()
		} else if err == nil || !p.Closed || !strings.Contains(p.Reply, "08P01") {
			t.Errorf("safe: err %v, probe %+v; want closed with 08P01", err, p)
		}
	}
}

// fakeServer runs script on the server end of one loopback connection;
// done is closed when the script returned.
func fakeServer(t *testing.T, script func(c net.Conn)) (addr string, done <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{})
	addr, _ = linetest.FakeServer(t, func(f *linetest.Fake) {
		defer close(ch)
		script(f.Conn())
	})
	t.Cleanup(func() { <-ch })
	return addr, ch
}

// readSSLRequest reads and checks the 8 bytes of an SSLRequest.
func readSSLRequest(t *testing.T, c net.Conn) bool {
	buf := make([]byte, 8)
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, sslRequest()) {
		t.Errorf("SSLRequest = %x, %v; want %x", buf, err, sslRequest())
		return false
	}
	return true
}

// TestProbeAnswerAfterN: with the injection probe, a server without TLS
// answers 'N' and then, in plaintext, the probe's StartupMessage. That
// answer is expected (recorded, discarded), not unsolicited data: the
// opportunistic Dial succeeds without TLS, whatever the timing.
func TestProbeAnswerAfterN(t *testing.T) {
	addr, _ := fakeServer(t, func(c net.Conn) {
		if !readSSLRequest(t, c) {
			return
		}
		if _, err := io.ReadFull(c, make([]byte, len(probeStartup()))); err != nil {
			t.Errorf("reading the probe's StartupMessage: %v", err)
			return
		}
		// 'N' and the answer to the StartupMessage in one segment.
		c.Write(slices.Concat([]byte("N"), newMessage('R').int32(10).cstring(SCRAMSHA256).byte1(0).done()))
		io.Copy(io.Discard, c)
	})
	opts := clientOpts(t, starttls.ModeOpportunistic)
	opts.ProbeInjection = true
	c, res, err := Dial(linetest.Ctx(t), addr, opts)
	if err != nil {
		t.Fatalf("Dial: %v\n%s", err, dump(opts.Transcript))
	}
	defer c.Close()
	p := res.Injection
	if res.Upgraded || res.Offered || p == nil || p.Vulnerable || !strings.Contains(p.Reply, "discarded") {
		t.Fatalf("Result %+v, probe %+v", res, p)
	}
}

// TestClientRejectsResponseInjection is CVE-2021-23222: bytes after 'S'
// and before the handshake fail the upgrade and are recorded, a whole
// message as well as a partial one.
func TestClientRejectsResponseInjection(t *testing.T) {
	for _, inj := range [][]byte{
		errorMessage("FATAL", "28000", "injected"),
		newMessage('R').int32(3).done(),
		{'R', 0, 0},
		{'x'},
	} {
		addr, _ := fakeServer(t, func(c net.Conn) {
			if readSSLRequest(t, c) {
				c.Write(append([]byte{'S'}, inj...))
				io.Copy(io.Discard, c)
			}
		})
		_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) {
			t.Fatalf("injected %q: %v, want ErrPlaintextAfterUpgrade", inj, err)
		}
		if !bytes.Equal(res.PlaintextAfterUpgrade, inj) || res.Upgraded {
			t.Errorf("PlaintextAfterUpgrade = %q, want %q", res.PlaintextAfterUpgrade, inj)
		}
	}
}

// TestRequiredNeverFallsBack: 'N', 'E', a garbage answer, a failed
// handshake and a silent server are errors in ModeRequired, and nothing is
// sent after the SSLRequest but the ClientHello.
func TestRequiredNeverFallsBack(t *testing.T) {
	tests := []struct {
		name   string
		answer []byte
		want   error
		temp   bool
	}{
		{"not offered", []byte("N"), starttls.ErrUpgradeNotOffered, false},
		{"error answer", errorMessage("FATAL", "XX000", "could not fork"), nil, true},
		{"garbage", []byte("HTTP/1.1 400 Bad Request\r\n"), starttls.ErrProtocol, false},
		{"handshake failure", []byte("S"), nil, false},
		{"length 7fffffff", []byte("E\x7f\xff\xff\xff"), nil, true},
		{"silence", nil, context.DeadlineExceeded, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var after []byte
			addr, done := fakeServer(t, func(c net.Conn) {
				if !readSSLRequest(t, c) {
					return
				}
				if tt.answer != nil {
					c.Write(tt.answer)
				}
				if string(tt.answer) == "S" {
					hello := make([]byte, 5)
					io.ReadFull(c, hello)
					after = hello
					c.Write([]byte("not a ServerHello at all\r\n"))
					c.Close()
					return
				}
				after, _ = io.ReadAll(c)
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
			if starttls.IsTemporary(err) != tt.temp {
				t.Errorf("IsTemporary(%v) = %v", err, !tt.temp)
			}
			if tt.name == "handshake failure" {
				var he *starttls.HandshakeError
				var rh tls.RecordHeaderError
				if !errors.As(err, &he) || !errors.As(err, &rh) || !res.Offered {
					t.Errorf("err %v, want a HandshakeError with a RecordHeaderError", err)
				}
			}
			if res.Upgraded || res.AuthBefore != nil {
				t.Errorf("Result %+v", res)
			}
			<-done
			if len(after) > 0 && after[0] != 0x16 {
				t.Errorf("client sent %q after the SSLRequest", after)
			}
		})
	}
}

// TestNoCredentialsBeforeTLS: Login refuses without TLS except in
// ModePlain; the server refuses a plaintext StartupMessage with 28000
// unless AllowPlaintextLogin, and the plaintext probe reports both without
// ever sending a password.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	noTLS := newServer(t)
	noTLS.TLSConfig = nil
	addr := startServer(t, noTLS)
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeOpportunistic))
	if err != nil || res.Upgraded || res.Offered || res.UpgradeReply != "N" {
		t.Fatalf("opportunistic Dial: %v, %+v", err, res)
	}
	if err := c.Login(linetest.Ctx(t), testUser, testPass); !errors.Is(err, starttls.ErrFallbackForbidden) {
		t.Fatalf("Login without TLS: %v", err)
	}
	c.Close()

	for _, allow := range []bool{false, true} {
		srv := newServer(t)
		srv.AllowPlaintextLogin = allow
		addr := startServer(t, srv)
		// The server's answer to a plaintext StartupMessage.
		rc := dialRaw(t, addr)
		rc.write(startup(testUser))
		if !allow {
			e := rc.expectError(CodeInvalidAuthorization)
			if !strings.Contains(e.Message, "no encryption") {
				t.Errorf("refusal %v", e)
			}
			rc.expectEOF()
		} else if typ, _ := rc.msg(); typ != 'R' {
			t.Errorf("plaintext allowed: got %q, want an authentication request", typ)
		}
		// ModePlain logs in only when the server allows it.
		c, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModePlain))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Login(linetest.Ctx(t), testUser, testPass)
		if allow != (err == nil) {
			t.Errorf("allow=%v: ModePlain Login: %v", allow, err)
		}
		if allow && !slices.Equal(c.Result().AuthBefore, []string{SCRAMSHA256}) {
			t.Errorf("AuthBefore = %v", c.Result().AuthBefore)
		}
		c.Close()
		// The probe: a recording proxy shows that no password is sent.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recordConn{Conn: conn}
		ms, err := ProbePlaintextAuth(linetest.Ctx(t), rec, nil)
		conn.Close()
		want := []string{}
		if allow {
			want = []string{SCRAMSHA256}
		}
		if err != nil || !slices.Equal(ms, want) {
			t.Errorf("allow=%v: ProbePlaintextAuth = %v, %v; want %v", allow, ms, err, want)
		}
		if sent := rec.buf.Bytes(); bytes.Contains(sent, []byte{'p'}) && bytes.Contains(sent, []byte(testPass)) || bytes.IndexByte(sent, 'p') == 0 {
			t.Errorf("probe sent %q", sent)
		}
		wantSent := append(probeStartup(), newMessage('X').done()...)
		if allow && !bytes.Equal(rec.buf.Bytes(), wantSent) {
			t.Errorf("probe sent %q, want %q", rec.buf.Bytes(), wantSent)
		}
	}
}

type recordConn struct {
	net.Conn
	buf bytes.Buffer
}

func (r *recordConn) Write(p []byte) (int, error) { r.buf.Write(p); return r.Conn.Write(p) }

// TestLineTooLong: oversized or undersized lengths are refused on both
// sides without allocating them (PR-19: length 7fffffff).
func TestLineTooLong(t *testing.T) {
	srv := startServer(t, newServer(t))
	for _, pkt := range [][]byte{u32(maxStartupSize + 1), u32(0x7fffffff), u32(3), u32(0xffffffff)} {
		c := dialRaw(t, srv)
		c.write(pkt)
		c.expectError(CodeProtocolViolation)
		c.expectEOF()
	}
	// After the login, a message over the server's limit.
	c, _, err := Dial(linetest.Ctx(t), srv, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(linetest.Ctx(t), testUser, testPass); err != nil {
		t.Fatal(err)
	}
	_, err = c.SimpleQuery(linetest.Ctx(t), "SELECT '"+strings.Repeat("x", maxServerMessage)+"'")
	// FATAL 08P01, or a broken pipe when the server's close overtakes the
	// rest of the query.
	var pe *Error
	if err == nil || errors.As(err, &pe) && (pe.Code != CodeProtocolViolation || pe.Severity != "FATAL") {
		t.Errorf("oversized query: %v", err)
	}
	if _, err := c.SimpleQuery(linetest.Ctx(t), "SELECT 1"); err == nil {
		t.Error("the session survived an oversized message")
	}
	c.Close()
	// The client side.
	for _, tt := range []struct {
		answer []byte
		want   error
	}{
		{[]byte("R\x7f\xff\xff\xff"), starttls.ErrLineTooLong},
		{[]byte("R\x00\x00\x00\x03"), starttls.ErrProtocol},
		{[]byte("R\xff\xff\xff\xff"), starttls.ErrProtocol},
	} {
		addr, _ := fakeServer(t, func(c net.Conn) {
			io.ReadFull(c, make([]byte, len(probeStartup())))
			c.Write(tt.answer)
		})
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ProbePlaintextAuth(linetest.Ctx(t), conn, nil)
		conn.Close()
		if !errors.Is(err, tt.want) {
			t.Errorf("answer %q: %v, want %v", tt.answer, err, tt.want)
		}
	}
}

// TestTLSClientHelloOnPlaintextPort: a ClientHello where a start-up packet
// is expected is refused by a server without TLS and after 'N'; a server
// with TLS takes it as PG 17 direct TLS, which needs ALPN "postgresql".
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	_, ct := linetest.TLSPair(t)
	hello := func(addr string, alpn []string, sslFirst bool) error {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(linetest.Timeout))
		if sslFirst {
			conn.Write(append(sslRequest(), newMessage(0).int32(GSSENCRequestCode).done()...))
			buf := make([]byte, 2)
			if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "NN" {
				t.Fatalf("answers %q, %v", buf, err)
			}
		}
		cfg := ct.Clone()
		cfg.ServerName = "localhost"
		cfg.NextProtos = alpn
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		r := newWire(tc, starttls.FromClient, nil, MaxMessageSize)
		typ, body, err := r.read()
		if err != nil {
			return err
		}
		if typ == 'E' {
			e, _ := parseError(body)
			return e
		}
		return nil
	}
	noTLS := newServer(t)
	noTLS.TLSConfig = nil
	if err := hello(startServer(t, noTLS), []string{ALPN}, false); err == nil {
		t.Error("a server without TLS accepted a ClientHello")
	}
	refusing := newServer(t)
	refusing.RefuseUpgrade = true
	if err := hello(startServer(t, refusing), []string{ALPN}, true); err == nil {
		t.Error("a ClientHello after 'N' was accepted")
	}
	withTLS := startServer(t, newServer(t))
	err := hello(withTLS, nil, false)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeProtocolViolation || !strings.Contains(pe.Message, "ALPN") {
		t.Errorf("direct TLS without ALPN: %v, want FATAL 08P01 about ALPN", err)
	}
	if err := hello(withTLS, []string{"http/1.1"}, false); err == nil {
		t.Error("direct TLS with a foreign ALPN protocol accepted")
	}
	// With ALPN the server waits for the StartupMessage: the read times out.
	conn, _ := net.Dial("tcp", withTLS)
	defer conn.Close()
	cfg := ct.Clone()
	cfg.ServerName, cfg.NextProtos = "localhost", []string{ALPN}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil || tc.ConnectionState().NegotiatedProtocol != ALPN {
		t.Fatalf("direct TLS with ALPN: %v", err)
	}
}

// TestServerSecondNegotiation is SV-24: no second SSLRequest, no
// GSSENCRequest inside TLS.
func TestServerSecondNegotiation(t *testing.T) {
	addr := startServer(t, newServer(t))
	for _, code := range []int32{SSLRequestCode, GSSENCRequestCode} {
		c := dialRaw(t, addr)
		c.write(sslRequest())
		if b := c.byte1(); b != 'S' {
			t.Fatalf("answer %q", b)
		}
		c.StartTLS()
		c.write(newMessage(0).int32(code).done())
		c.expectError(CodeProtocolViolation)
		c.expectEOF()
	}
	// A GSSENCRequest, then an SSLRequest: 'N', then 'S' (libpq's order).
	c := dialRaw(t, addr)
	c.write(newMessage(0).int32(GSSENCRequestCode).done())
	if b := c.byte1(); b != 'N' {
		t.Fatalf("GSSENCRequest answer %q", b)
	}
	c.write(sslRequest())
	if b := c.byte1(); b != 'S' {
		t.Fatalf("SSLRequest answer %q", b)
	}
}
