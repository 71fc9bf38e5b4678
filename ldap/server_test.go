package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestServerDialog walks a raw session through the server's refusals and
// answers, before and after TLS.
func TestServerDialog(t *testing.T) {
	srv := newServer(t)
	srv.MaxErrors = 100
	addr := startServer(t, srv)
	c := dialRaw(t, addr)

	// Root DSE before TLS: StartTLS listed, no SASL mechanism.
	c.write(searchMsg(1, "", ScopeBase))
	m := c.read()
	dse, err := parseEntry(&m.op)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dse.Values("supportedExtension"), StartTLSOID) || dse.has("supportedSASLMechanisms") {
		t.Fatalf("root DSE before TLS = %+v", dse)
	}
	if r := c.result(opSearchResultDone); r.code != ResultSuccess {
		t.Fatal(r.summary())
	}
	// Anonymous search sees the base entry only.
	c.write(searchMsg(2, testBase, ScopeSub))
	if m := c.read(); m.op.tag != opSearchResultEntry {
		t.Fatalf("got %s", summarize(m))
	}
	if r := c.result(opSearchResultDone); r.code != ResultSuccess {
		t.Fatal(r.summary())
	}
	steps := []struct {
		name string
		req  []byte
		tag  byte
		want ResultCode
	}{
		{"bind-before-tls", bindMsg(3, aliceDN, alicePW), opBindResponse, ResultConfidentialityRequired},
		{"anonymous-bind", bindMsg(4, "", ""), opBindResponse, ResultSuccess},
		{"unauthenticated-bind", bindMsg(5, aliceDN, ""), opBindResponse, ResultUnwillingToPerform},
		{"unknown-extended", encodeMessage(6, tlv(opExtendedRequest, berString(ctxPrimitive0, "1.2.3.4"))), opExtendedResponse, ResultProtocolError},
		{"modify", encodeMessage(7, tlv(opModifyRequest, berString(tagOctetString, aliceDN), tlv(tagSequence))), opModifyResponse, ResultUnwillingToPerform},
		{"delete", encodeMessage(8, berString(opDelRequest, aliceDN)), opDelResponse, ResultUnwillingToPerform},
		{"no-such-object", searchMsg(9, "ou=nowhere,"+testBase, ScopeBase), opSearchResultDone, ResultNoSuchObject},
		{"ldapv2-bind", encodeMessage(10, tlv(opBindRequest, berInt(tagInteger, 2), berString(tagOctetString, ""), berString(ctxPrimitive0, ""))), opBindResponse, ResultProtocolError},
		{"critical-control", append(encodeMessage(11, encodeSearch("", ScopeBase, nil))[:0:0], tlv(tagSequence, berInt(tagInteger, 11), encodeSearch("", ScopeBase, nil),
			tlv(ctxConstructed0, tlv(tagSequence, berString(tagOctetString, "1.2.3"), berBool(true))))...), opSearchResultDone, ResultUnavailableCriticalExt},
	}
	for _, s := range steps {
		c.write(s.req)
		if r := c.result(s.tag); r.code != s.want {
			t.Fatalf("%s: %s, want %v", s.name, r.summary(), s.want)
		}
	}
	c.startTLS(20)
	// Root DSE over TLS: no StartTLS, PLAIN offered.
	c.write(searchMsg(21, "", ScopeBase, "supportedExtension", "supportedSASLMechanisms"))
	m = c.read()
	dse, _ = parseEntry(&m.op)
	if slices.Contains(dse.Values("supportedExtension"), StartTLSOID) || !slices.Equal(dse.Values("supportedSASLMechanisms"), []string{"PLAIN"}) {
		t.Fatalf("root DSE over TLS = %+v", dse)
	}
	c.result(opSearchResultDone)
	for _, s := range []struct {
		name string
		req  []byte
		tag  byte
		want ResultCode
	}{
		{"second-starttls", encodeMessage(22, encodeExtended(StartTLSOID)), opExtendedResponse, ResultOperationsError},
		{"wrong-password", bindMsg(23, aliceDN, "nope"), opBindResponse, ResultInvalidCredentials},
		{"other-base", bindMsg(24, "uid=alice,dc=other", alicePW), opBindResponse, ResultInvalidCredentials},
		{"bind", bindMsg(25, "UID=alice, DC=lab,dc=starttls,dc=test", alicePW), opBindResponse, ResultSuccess},
	} {
		c.write(s.req)
		if r := c.result(s.tag); r.code != s.want {
			t.Fatalf("%s: %s, want %v", s.name, r.summary(), s.want)
		}
	}
	// The bound user sees the own entry; the filter selects it.
	eq := tlv(classContext|constructed|3, berString(tagOctetString, "uid"), berString(tagOctetString, "ALICE"))
	c.write(encodeMessage(26, tlv(opSearchRequest, berString(tagOctetString, testBase), berInt(tagEnumerated, 2), berInt(tagEnumerated, 0),
		berInt(tagInteger, 0), berInt(tagInteger, 0), berBool(false), eq, tlv(tagSequence, berString(tagOctetString, "mail")))))
	m = c.read()
	en, err := parseEntry(&m.op)
	if err != nil || en.DN != aliceDN || len(en.Attributes) != 1 || en.Values("mail")[0] != "alice@ldap.test" {
		t.Fatalf("search = %+v, %v", en, err)
	}
	c.result(opSearchResultDone)
	c.write(encodeMessage(27, encodeExtended(WhoAmIOID)))
	m = c.read()
	if r, _ := parseResult(&m.op); string(r.value) != "dn:"+aliceDN {
		t.Fatalf("WhoAmI = %s", summarize(m))
	}
	c.write(encodeMessage(28, tlv(opUnbindRequest)))
	c.expectClosed()
}

// TestServerRefusals: StartTLS refused per the options.
func TestServerRefusals(t *testing.T) {
	for _, tt := range []struct {
		name  string
		apply func(*Server)
		want  ResultCode
	}{
		{"refuse-upgrade", func(s *Server) { s.RefuseUpgrade = true }, ResultUnavailable},
		{"no-tls-config", func(s *Server) { s.TLSConfig = nil }, ResultProtocolError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			tt.apply(srv)
			c := dialRaw(t, startServer(t, srv))
			c.write(encodeMessage(1, encodeExtended(StartTLSOID)))
			if r := c.result(opExtendedResponse); r.code != tt.want {
				t.Fatalf("StartTLS = %s, want %v", r.summary(), tt.want)
			}
		})
	}
}

// TestServerClosesOnBadInput: malformed BER, a response sent as a request
// and too many errors end the session with a Notice of Disconnection.
func TestServerClosesOnBadInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		req  [][]byte
		n    int // responses before the notice
	}{
		{"indefinite-length", [][]byte{{0x30, 0x80, 0x02, 0x01, 0x01, 0x42, 0x00, 0x00, 0x00}}, 0},
		{"five-octet-length", [][]byte{{0x30, 0x85, 0, 0, 0, 0, 5}}, 0},
		{"length-beyond-contents", [][]byte{{0x30, 0x05, 0x02, 0x09, 0x01, 0x42, 0x00}}, 0},
		{"not-a-sequence", [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n")}, 0},
		{"response-as-request", [][]byte{doneMsg(1, ResultSuccess)}, 0},
		{"message-id-zero", [][]byte{searchMsg(0, "", ScopeBase)}, 0},
		{"too-many-errors", [][]byte{bindMsg(1, aliceDN, "x"), bindMsg(2, aliceDN, "x"), bindMsg(3, aliceDN, "x")}, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, startServer(t, newServer(t)))
			c.write(tt.req...)
			for i := 0; i < tt.n; i++ {
				if m := c.read(); m == nil || m.id == 0 {
					t.Fatalf("response %d: %v", i, m)
				}
			}
			m := c.read()
			if m == nil || m.id != 0 {
				t.Fatalf("got %v, want a Notice of Disconnection", m)
			}
			c.expectClosed()
		})
	}
}

func TestServerIdleTimeout(t *testing.T) {
	srv := newServer(t)
	srv.ReadTimeout = 200 * time.Millisecond
	c := dialRaw(t, startServer(t, srv))
	m := c.read()
	if m == nil || m.id != 0 {
		t.Fatalf("got %v, want a Notice of Disconnection", m)
	}
	if r, _ := parseResult(&m.op); r.code != ResultUnavailable {
		t.Errorf("notice = %s", r.summary())
	}
	c.expectClosed()
}

func TestServerPanicRecovers(t *testing.T) {
	srv := newServer(t)
	srv.Backend = &memBackend{panicOnLogin: true}
	c := dialRaw(t, startServer(t, srv))
	c.startTLS(1)
	c.write(bindMsg(2, aliceDN, alicePW))
	if m := c.read(); m == nil || m.id != 0 {
		t.Fatalf("got %v, want a Notice of Disconnection", m)
	}
}

func TestServerImplicit(t *testing.T) {
	srv := newServer(t)
	srv.Implicit = true
	addr := startServer(t, srv)
	_, ct := linetest.TLSPair(t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: conn}
	c.r = newWire(conn, MaxMessageSize, starttls.FromClient, nil).r
	c.write(encodeMessage(1, encodeExtended(StartTLSOID)))
	if r := c.result(opExtendedResponse); r.code != ResultOperationsError {
		t.Fatalf("StartTLS over implicit TLS = %s", r.summary())
	}
	conn.Close()
}

// TestServerHandshake: Handshake returns the TLS connection right after the
// StartTLS handshake, with the LDAP dialog over TLS still to come.
func TestServerHandshake(t *testing.T) {
	srv := newServer(t)
	cc, sc := loopbackPair(t)
	type res struct {
		tc  *tls.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		tc, err := srv.Handshake(context.Background(), sc)
		ch <- res{tc, err}
	}()
	c := &rawClient{t: t, conn: cc}
	c.r = newWire(cc, MaxMessageSize, starttls.FromClient, nil).r
	cc.SetDeadline(time.Now().Add(linetest.Timeout))
	c.startTLS(1)
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.tc.Close()
	go c.write(searchMsg(2, "", ScopeBase))
	w := newWire(r.tc, DefaultMaxRequestSize, starttls.FromServer, nil)
	m, err := w.read()
	if err != nil || m.op.tag != opSearchRequest {
		t.Fatalf("read over TLS = %v, %v", m, err)
	}
}

func TestServerShutdown(t *testing.T) {
	srv := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	c := dialRaw(t, l.Addr().String())
	c.write(searchMsg(1, "", ScopeBase))
	c.read()
	c.result(opSearchResultDone)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err == nil {
		t.Error("Shutdown with a live session returned nil, want a deadline error")
	}
	if err := <-served; err == nil {
		t.Error("Serve returned nil")
	}
	c.expectClosed()
}

// TestStalledConnectionsAreClosed_SV28: connections that stall anywhere —
// before the first message, in the middle of one, after StartTLS, in the
// middle of the ClientHello, or trickling one byte at a time — are closed
// by the per-message deadline.
func TestStalledConnectionsAreClosed_SV28(t *testing.T) {
	srv := newServer(t)
	srv.ReadTimeout = 200 * time.Millisecond
	addr := startServer(t, srv)
	halfHello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	startTLS := encodeMessage(1, encodeExtended(StartTLSOID))
	for _, tt := range []struct {
		name  string
		stall func(c net.Conn)
	}{
		{"silent", func(net.Conn) {}},
		{"half-message", func(c net.Conn) { c.Write(searchMsg(1, "", ScopeBase)[:10]) }},
		{"huge-length-promised", func(c net.Conn) { c.Write([]byte{0x30, 0x82, 0x10, 0x00, 0x02}) }},
		{"after-starttls", func(c net.Conn) { c.Write(startTLS) }},
		{"half-clienthello", func(c net.Conn) { c.Write(startTLS); time.Sleep(50 * time.Millisecond); c.Write(halfHello) }},
		{"hello-on-plain", func(c net.Conn) { c.Write(halfHello) }},
		{"trickle", func(c net.Conn) {
			for _, b := range searchMsg(1, "", ScopeBase, "supportedExtension") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go tt.stall(conn)
			start := time.Now()
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, conn); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the server kept the stalled connection open")
				}
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("closed after %v", d)
			}
		})
	}
}
