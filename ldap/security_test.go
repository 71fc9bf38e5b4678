package ldap

import (
	"bytes"
	"context"
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

// TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411: a request sent in
// the same packet as StartTLS (SV-06, RFC 4513 §3.1.1) is never answered,
// neither in plaintext nor inside TLS: the server answers operationsError
// and closes the connection.
func TestServerDiscardsPipelinedAfterUpgrade_CVE_2011_0411(t *testing.T) {
	for _, tt := range []struct {
		name      string
		pipelined []byte
	}{
		{"bind", bindMsg(2, aliceDN, alicePW)},
		{"search", searchMsg(2, "", ScopeBase)},
		{"partial-message", []byte{0x30, 0x05, 0x02}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := startServer(t, newServer(t))
			c := dialRaw(t, addr)
			c.write(encodeMessage(1, encodeExtended(StartTLSOID)), tt.pipelined)
			r := c.result(opExtendedResponse)
			if r.code != ResultOperationsError {
				t.Fatalf("StartTLS with a pipelined request = %s, want operationsError", r.summary())
			}
			c.expectClosed()
		})
	}
	t.Run("handshake-only", func(t *testing.T) {
		srv := newServer(t)
		srv.InsecureKeepPipelined = true // Handshake never keeps them
		cc, sc := loopbackPair(t)
		go cc.Write(append(encodeMessage(1, encodeExtended(StartTLSOID)), searchMsg(2, "", ScopeBase)...))
		if tc, err := srv.Handshake(linetest.Ctx(t), sc); err == nil || tc != nil {
			t.Fatalf("Handshake = %v, %v; want an error", tc, err)
		}
	})
}

// loopbackPair returns two ends of a loopback TCP connection.
func loopbackPair(t testing.TB) (client, server net.Conn) {
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
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-ch
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestServerInsecureKeepPipelined: the lab knob really reproduces
// CVE-2011-0411: the request pipelined after StartTLS is answered inside
// TLS before the client sent anything there, and the client's probe says
// so.
func TestServerInsecureKeepPipelined(t *testing.T) {
	srv := newServer(t)
	srv.InsecureKeepPipelined = true
	addr := startServer(t, srv)
	c := dialRaw(t, addr)
	c.write(encodeMessage(1, encodeExtended(StartTLSOID)), searchMsg(2, "", ScopeBase, "supportedExtension"))
	if r := c.result(opExtendedResponse); r.code != ResultSuccess {
		t.Fatalf("StartTLS = %s", r.summary())
	}
	_, ct := linetest.TLSPair(t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn = tc
	c.r.Reset(tc)
	m := c.read()
	if m == nil || m.id != 2 || m.op.tag != opSearchResultEntry {
		t.Fatalf("inside TLS, unasked: %v, want the answer to the pipelined search", m)
	}
	t.Logf("answered inside TLS: %s", summarize(m))

	// The client's probe (ProbeInjection) reports it; the dialog goes on.
	opts := clientOpts(t, starttls.ModeRequired)
	opts.ProbeInjection = true
	opts.InjectionWait = 300 * time.Millisecond
	cl, res, err := Dial(linetest.Ctx(t), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Login(linetest.Ctx(t), aliceDN, alicePW); err != nil {
		t.Errorf("Login after the probe: %v", err)
	}
	cl.Close()
	if p := res.Injection; p == nil || !p.Vulnerable || !strings.Contains(p.Reply, "SearchResultEntry") {
		t.Errorf("Injection = %+v, want Vulnerable", p)
	}

	// Against the default server the probe reports not vulnerable: StartTLS
	// is refused with operationsError (RFC 4511 §4.14.1) and the
	// connection closed.
	addr = startServer(t, newServer(t))
	_, res, err = Dial(linetest.Ctx(t), addr, opts)
	if !errors.Is(err, starttls.ErrUpgradeRefused) {
		t.Errorf("Dial with the probe against the default server = %v", err)
	}
	if p := res.Injection; p == nil || p.Vulnerable || !strings.Contains(p.Reply, "operationsError") {
		t.Errorf("Injection = %+v, want not vulnerable", p)
	}
}

// TestProbeSafeServers: servers that answer the pipelined search in
// plaintext (before or after the StartTLS response), or close the
// connection, are not vulnerable; one that answers inside TLS is.
func TestProbeSafeServers(t *testing.T) {
	dseReq := searchMsg(1, "", ScopeBase, dseAttrs...)
	dse := append(dseEntry(1, StartTLSOID), doneMsg(1, ResultSuccess)...)
	pipelined := append(encodeMessage(2, encodeExtended(StartTLSOID)), searchMsg(3, "", ScopeBase, "supportedExtension")...)
	probeAnswer := append(dseEntry(3, StartTLSOID), doneMsg(3, ResultSuccess)...)
	dseAfter := append(dseEntry(4, WhoAmIOID), doneMsg(4, ResultSuccess)...)
	for _, tt := range []struct {
		name       string
		script     []step
		vulnerable bool
		closed     bool
	}{
		{"answer-before-response", []step{{want: dseReq, reply: dse}, {want: pipelined, reply: append(probeAnswer, startTLSResp(2, ResultSuccess)...), handshake: true},
			{want: searchMsg(4, "", ScopeBase, dseAttrs...), reply: dseAfter}}, false, false},
		{"answer-after-response", []step{{want: dseReq, reply: dse}, {want: pipelined, reply: append(startTLSResp(2, ResultSuccess), probeAnswer...), handshake: true},
			{want: searchMsg(4, "", ScopeBase, dseAttrs...), reply: dseAfter}}, false, false},
		{"closes", []step{{want: dseReq, reply: dse}, {want: pipelined, reply: startTLSResp(2, ResultSuccess), hangup: true}}, false, true},
		{"answers-inside-tls", []step{{want: dseReq, reply: dse}, {want: pipelined, reply: startTLSResp(2, ResultSuccess), handshake: true},
			{reply: probeAnswer}, {want: searchMsg(4, "", ScopeBase, dseAttrs...), reply: dseAfter}}, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, done := fakeServer(t, tt.script)
			opts := clientOpts(t, starttls.ModeRequired)
			opts.ProbeInjection = true
			opts.InjectionWait = 200 * time.Millisecond
			c, res, err := Dial(linetest.Ctx(t), addr, opts)
			if c != nil {
				c.Close()
			}
			if (err != nil) != tt.closed {
				t.Errorf("Dial error = %v", err)
			}
			<-done
			p := res.Injection
			if p == nil || p.Vulnerable != tt.vulnerable || p.Closed != tt.closed {
				t.Errorf("Injection = %+v, want vulnerable %v closed %v", p, tt.vulnerable, tt.closed)
			}
		})
	}
}

// TestClientRejectsResponseInjection: bytes after the StartTLS response
// (a whole forged message, or part of one) fail the upgrade with
// ErrPlaintextAfterUpgrade, are recorded, and nothing else is sent.
func TestClientRejectsResponseInjection(t *testing.T) {
	dseReq := searchMsg(1, "", ScopeBase, dseAttrs...)
	stReq := encodeMessage(2, encodeExtended(StartTLSOID))
	dse := append(dseEntry(1, StartTLSOID), doneMsg(1, ResultSuccess)...)
	forged := append(dseEntry(3, "1.2.3.4"), doneMsg(3, ResultSuccess)...)
	for _, tt := range []struct {
		name     string
		injected []byte
	}{
		{"whole-messages", forged},
		{"partial-message", []byte{0x30, 0x0c, 0x02}},
		{"one-byte", []byte{0x30}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, done := fakeServer(t, []step{{want: dseReq, reply: dse}, {want: stReq, reply: append(startTLSResp(2, ResultSuccess), tt.injected...)}})
			_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if !errors.Is(err, starttls.ErrPlaintextAfterUpgrade) {
				t.Fatalf("Dial error = %v, want ErrPlaintextAfterUpgrade", err)
			}
			if !bytes.Equal(res.PlaintextAfterUpgrade, tt.injected) || res.Upgraded {
				t.Errorf("PlaintextAfterUpgrade = % x, Upgraded %v", res.PlaintextAfterUpgrade, res.Upgraded)
			}
			if fr := <-done; fr.err != nil || len(fr.rest) > 0 {
				t.Errorf("server saw %v, then % x", fr.err, fr.rest)
			}
		})
	}
}

// TestRequiredNeverFallsBack: in ModeRequired a missing, refused or failed
// upgrade, or a silent server, is an error, and the client sends nothing
// afterwards (no bind, no password).
func TestRequiredNeverFallsBack(t *testing.T) {
	dseReq := searchMsg(1, "", ScopeBase, dseAttrs...)
	stReq := encodeMessage(2, encodeExtended(StartTLSOID))
	dse := append(dseEntry(1, StartTLSOID), doneMsg(1, ResultSuccess)...)
	for _, tt := range []struct {
		name    string
		script  []step
		wantErr func(error) bool
	}{
		{"not-offered", []step{{want: dseReq, reply: append(dseEntry(1, WhoAmIOID), doneMsg(1, ResultSuccess)...)}},
			func(err error) bool { return errors.Is(err, starttls.ErrUpgradeNotOffered) }},
		{"refused", []step{{want: dseReq, reply: dse}, {want: stReq, reply: startTLSResp(2, ResultUnavailable)}},
			func(err error) bool { return errors.Is(err, starttls.ErrUpgradeRefused) }},
		{"handshake-failure", []step{{want: dseReq, reply: dse}, {want: stReq, reply: startTLSResp(2, ResultSuccess)}, {want: []byte{0x16, 0x03}, reply: []byte("this is not TLS\r\n")}},
			func(err error) bool { return errors.As(err, new(*starttls.HandshakeError)) }},
		{"silent-before-dse", []step{{want: dseReq}},
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"silent-after-starttls", []step{{want: dseReq, reply: dse}, {want: stReq}},
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, done := fakeServer(t, tt.script)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			c, res, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
			if c != nil || !tt.wantErr(err) {
				t.Fatalf("Dial = %v, %v", c, err)
			}
			if res.Upgraded {
				t.Error("Upgraded after a failure")
			}
			fr := <-done
			rest := fr.rest
			if tt.name == "handshake-failure" {
				rest = nil // the rest of the ClientHello
			}
			if fr.err != nil || len(rest) > 0 {
				t.Errorf("server saw %v, then % x", fr.err, rest)
			}
		})
	}
}

// TestNoCredentialsBeforeTLS: the client refuses to bind without TLS
// unless in ModePlain; the server refuses a plaintext bind unless
// AllowPlaintextLogin; the plaintext-login probe tells the two apart.
func TestNoCredentialsBeforeTLS(t *testing.T) {
	ctx := linetest.Ctx(t)
	t.Run("client", func(t *testing.T) {
		srv := newServer(t)
		srv.TLSConfig = nil
		srv.AllowPlaintextLogin = true
		addr := startServer(t, srv)
		opts := clientOpts(t, starttls.ModeOpportunistic)
		c, res, err := Dial(ctx, addr, opts)
		if err != nil || res.Upgraded {
			t.Fatalf("Dial: %v, upgraded %v", err, res.Upgraded)
		}
		defer c.Close()
		if err := c.Login(ctx, aliceDN, alicePW); !errors.Is(err, starttls.ErrFallbackForbidden) {
			t.Fatalf("Login in plaintext = %v, want ErrFallbackForbidden", err)
		}
		for _, e := range opts.Transcript.Events() {
			if strings.Contains(e.Text, "BindRequest") {
				t.Fatalf("a bind was sent: %s", e.Text)
			}
		}
		// ModePlain may, and the transcript masks the password.
		popts := clientOpts(t, starttls.ModePlain)
		p, _, err := Dial(ctx, addr, popts)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.Login(ctx, aliceDN, alicePW); err != nil {
			t.Fatalf("Login in ModePlain with AllowPlaintextLogin: %v", err)
		}
		for _, e := range popts.Transcript.Events() {
			if strings.Contains(e.Text, alicePW) {
				t.Fatalf("transcript shows the password: %s", e.Text)
			}
		}
	})
	t.Run("server", func(t *testing.T) {
		addr := startServer(t, newServer(t))
		c := dialRaw(t, addr)
		c.write(bindMsg(1, aliceDN, alicePW))
		if r := c.result(opBindResponse); r.code != ResultConfidentialityRequired {
			t.Fatalf("plaintext bind = %s, want confidentialityRequired", r.summary())
		}
		sasl := tlv(opBindRequest, berInt(tagInteger, 3), berString(tagOctetString, ""),
			tlv(classContext|constructed|3, berString(tagOctetString, "PLAIN"), berString(tagOctetString, "\x00alice\x00"+alicePW)))
		c.write(encodeMessage(2, sasl))
		if r := c.result(opBindResponse); r.code != ResultConfidentialityRequired {
			t.Fatalf("plaintext SASL PLAIN bind = %s, want confidentialityRequired", r.summary())
		}
		c.startTLS(3)
		c.write(encodeMessage(4, sasl))
		if r := c.result(opBindResponse); r.code != ResultSuccess {
			t.Fatalf("SASL PLAIN bind over TLS = %s", r.summary())
		}
	})
	t.Run("probe", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			allow bool
			want  []string
		}{{"default", false, []string{}}, {"allow-plaintext-login", true, []string{"SIMPLE"}}} {
			srv := newServer(t)
			srv.AllowPlaintextLogin = tt.allow
			addr := startServer(t, srv)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ProbePlaintextLogin(ctx, conn, nil)
			conn.Close()
			if err != nil || !slices.Equal(got, tt.want) || got == nil {
				t.Errorf("%s: ProbePlaintextLogin = %q, %v, want %q", tt.name, got, err, tt.want)
			}
		}
		nc := append(encodeMessage(1, encodeEntry(&Entry{Attributes: []Attribute{{"namingContexts", []string{"dc=example,dc=org"}}}})), doneMsg(1, ResultSuccess)...)
		for _, tt := range []struct {
			name string
			dse  []byte
			dn   string
			code ResultCode
			want []string
		}{
			{"stronger-auth", nc, probeRDN + ",dc=example,dc=org", ResultStrongerAuthRequired, []string{}},
			{"invalid-credentials", nc, probeRDN + ",dc=example,dc=org", ResultInvalidCredentials, []string{"SIMPLE"}},
			{"unwilling", nc, probeRDN + ",dc=example,dc=org", ResultUnwillingToPerform, nil},
			// Without a naming context, invalidCredentials may only mean
			// "no such database" (OpenLDAP).
			{"no-naming-context", doneMsg(1, ResultInsufficientAccessRights), probeRDN, ResultInvalidCredentials, nil},
			{"no-naming-context-confidentiality", doneMsg(1, ResultSuccess), probeRDN, ResultConfidentialityRequired, []string{}},
		} {
			addr, done := fakeServer(t, []step{
				{want: searchMsg(1, "", ScopeBase, "namingContexts"), reply: tt.dse},
				{want: bindMsg(2, tt.dn, probePassword), reply: encodeMessage(2, encodeResult(opBindResponse, tt.code, "", ""))},
			})
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ProbePlaintextLogin(ctx, conn, nil)
			conn.Close()
			if !slices.Equal(got, tt.want) || (tt.want == nil) != (err != nil) {
				t.Errorf("%s: ProbePlaintextLogin = %q, %v, want %q", tt.name, got, err, tt.want)
			}
			if fr := <-done; fr.err != nil || !bytes.Equal(fr.rest, encodeMessage(3, tlv(opUnbindRequest))) {
				t.Errorf("%s: server saw %v, then % x", tt.name, fr.err, fr.rest)
			}
		}
	})
}

// TestLineTooLong: a message longer than the limit is refused from its
// header, before it is read: ErrLineTooLong on the client, a Notice of
// Disconnection and a close on the server.
func TestLineTooLong(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		huge := append([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}, make([]byte, 64)...)
		addr, done := fakeServer(t, []step{{want: searchMsg(1, "", ScopeBase, dseAttrs...), reply: huge}})
		_, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
		if !errors.Is(err, starttls.ErrLineTooLong) {
			t.Fatalf("Dial error = %v, want ErrLineTooLong", err)
		}
		<-done
	})
	t.Run("server", func(t *testing.T) {
		srv := newServer(t)
		srv.MaxRequestSize = 1024
		addr := startServer(t, srv)
		c := dialRaw(t, addr)
		c.write([]byte{0x30, 0x82, 0x04, 0x01}, make([]byte, 100)) // 1025 bytes promised
		m := c.read()
		if m == nil || m.id != 0 || m.op.tag != opExtendedResponse {
			t.Fatalf("got %v, want a Notice of Disconnection", m)
		}
		if r, _ := parseResult(&m.op); r.code != ResultProtocolError || r.name != noticeOfDisconnectionOID {
			t.Fatalf("notice = %s", r.summary())
		}
		c.expectClosed()
	})
}

// TestTLSClientHelloOnPlaintextPort: a client speaking TLS to the StartTLS
// port is disconnected at once with ErrTLSOnPlaintextPort.
func TestTLSClientHelloOnPlaintextPort(t *testing.T) {
	srv := newServer(t)
	cc, sc := loopbackPair(t)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeConn(context.Background(), sc) }()
	_, ct := linetest.TLSPair(t)
	cfg := ct.Clone()
	cfg.ServerName = "localhost"
	tc := tls.Client(cc, cfg)
	tc.SetDeadline(time.Now().Add(linetest.Timeout))
	start := time.Now()
	if err := tc.Handshake(); err == nil {
		t.Fatal("handshake succeeded on the plaintext port")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
	if err := <-errc; !errors.Is(err, starttls.ErrTLSOnPlaintextPort) {
		t.Errorf("ServeConn = %v, want ErrTLSOnPlaintextPort", err)
	}
}

// TestCapabilitiesRereadAfterTLS: the client keeps only the root DSE read
// over TLS; what the server (or a man in the middle) said before does not
// survive.
func TestCapabilitiesRereadAfterTLS(t *testing.T) {
	dseReq := searchMsg(1, "", ScopeBase, dseAttrs...)
	before := encodeMessage(1, encodeEntry(&Entry{Attributes: []Attribute{
		{"supportedExtension", []string{StartTLSOID, "1.2.3.4.injected"}},
		{"supportedSASLMechanisms", []string{"PLAIN", "CRAM-MD5"}},
	}}))
	after := encodeMessage(3, encodeEntry(&Entry{Attributes: []Attribute{
		{"supportedExtension", []string{WhoAmIOID}},
		{"supportedSASLMechanisms", []string{"external"}},
	}}))
	addr, done := fakeServer(t, []step{
		{want: dseReq, reply: append(before, doneMsg(1, ResultSuccess)...)},
		{want: encodeMessage(2, encodeExtended(StartTLSOID)), reply: startTLSResp(2, ResultSuccess), handshake: true},
		{want: searchMsg(3, "", ScopeBase, dseAttrs...), reply: append(after, doneMsg(3, ResultSuccess)...)},
	})
	c, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-done
	if !slices.Equal(res.AuthBefore, []string{"PLAIN", "CRAM-MD5"}) || !slices.Equal(res.AuthAfter, []string{"EXTERNAL"}) {
		t.Errorf("AuthBefore %q, AuthAfter %q", res.AuthBefore, res.AuthAfter)
	}
	want := []string{"supportedExtension=" + WhoAmIOID, "supportedSASLMechanisms=EXTERNAL"}
	if !slices.Equal(res.CapsAfter, want) || !res.CapsReread || res.OfferedAfterTLS {
		t.Errorf("CapsAfter %q (want %q), CapsReread %v, OfferedAfterTLS %v", res.CapsAfter, want, res.CapsReread, res.OfferedAfterTLS)
	}

	// Our server lists StartTLS and no login before TLS, PLAIN after.
	addr = startServer(t, newServer(t))
	c, res, err = Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if len(res.AuthBefore) != 0 || !slices.Equal(res.AuthAfter, []string{"PLAIN"}) ||
		!slices.Contains(res.CapsBefore, "supportedExtension="+StartTLSOID) || slices.Contains(res.CapsAfter, "supportedExtension="+StartTLSOID) {
		t.Errorf("own server: AuthBefore %q, AuthAfter %q, CapsBefore %q, CapsAfter %q", res.AuthBefore, res.AuthAfter, res.CapsBefore, res.CapsAfter)
	}
}
