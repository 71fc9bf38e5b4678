package xmpp

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls/internal/linetest"
)

const authOK = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldCBwdw==</auth>"

// tlsRaw completes STARTTLS on a raw client and opens the stream over TLS.
func tlsRaw(t *testing.T, c *rawClient) {
	t.Helper()
	upToStartTLS(c, "")
	c.StartTLS()
}

// TestServerSession walks a raw session through the server's states.
func TestServerSession(t *testing.T) {
	t.Run("second STARTTLS refused, no starttls over TLS", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		tlsRaw(t, c)
		c.Write(testHeader)
		feats := c.until("</stream:features>")
		if strings.Contains(feats, "starttls") || !strings.Contains(feats, "<mechanism>PLAIN</mechanism>") {
			t.Errorf("features over TLS %q", feats)
		}
		if !strings.Contains(feats, "id='") {
			t.Errorf("no stream id: %q", feats)
		}
		c.Write(wantStartTL)
		got, _ := c.readAll()
		if !strings.HasPrefix(got, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>") || !strings.HasSuffix(got, "</stream:stream>") {
			t.Errorf("second STARTTLS: %q", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		srv := newServer(t)
		srv.RefuseUpgrade = true
		c := dialRaw(t, startServer(t, srv))
		c.Write(testHeader)
		c.until("</stream:features>")
		c.Write(wantStartTL)
		if got, _ := c.readAll(); got != "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("login, bind, ping, close", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		tlsRaw(t, c)
		c.Write(testHeader)
		c.until("</stream:features>")
		c.Write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>")
		c.until("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
		c.Write("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AGFsaWNlAHNlY3JldCBwdw==</response>")
		c.until("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
		c.Write(testHeader)
		if f := c.until("</stream:features>"); !strings.Contains(f, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>") || strings.Contains(f, "mechanisms") {
			t.Errorf("features after SASL %q", f)
		}
		c.Write("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>a&lt;b</resource></bind></iq>")
		if got := c.until("</iq>"); !strings.Contains(got, "<jid>alice@xmpp.test/a&lt;b</jid>") {
			t.Errorf("bind: %q", got)
		}
		c.Write("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq><iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>")
		if got := c.until("</iq>"); !strings.Contains(got, "<iq type='result' id='p1'") || !strings.Contains(got, "<service-unavailable") {
			t.Errorf("ping/version: %q", got)
		}
		c.Write("</stream:stream>")
		if got, _ := c.readAll(); got != "</stream:stream>" {
			t.Errorf("close: %q", got)
		}
	})
	t.Run("too many errors", func(t *testing.T) {
		c := dialRaw(t, startServer(t, newServer(t)))
		tlsRaw(t, c)
		c.Write(testHeader)
		c.until("</stream:features>")
		bad := "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdyb25n</auth>"
		c.Write(bad + bad + bad)
		got, _ := c.readAll()
		if strings.Count(got, "<not-authorized/>") != 3 || !strings.Contains(got, "<policy-violation") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("panic in the backend", func(t *testing.T) {
		srv := newServer(t)
		srv.Backend = &memBackend{panicOnLogin: true}
		c := dialRaw(t, startServer(t, srv))
		tlsRaw(t, c)
		c.Write(testHeader)
		c.until("</stream:features>")
		c.Write(authOK)
		if got, _ := c.readAll(); !strings.Contains(got, "<internal-server-error") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("domains", func(t *testing.T) {
		srv := newServer(t)
		srv.Domains = []string{"LocalHost"}
		c := dialRaw(t, startServer(t, srv))
		c.Write(testHeader)
		if f := c.until("</stream:features>"); !strings.Contains(f, "starttls") {
			t.Errorf("%q", f)
		}
	})
}

// TestServerHandshake: Handshake serves the plaintext part and returns
// the TLS connection right after the handshake.
func TestServerHandshake(t *testing.T) {
	srv := newServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type out struct {
		tc  *tls.Conn
		err error
	}
	done := make(chan out, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- out{nil, err}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), linetest.Timeout)
		defer cancel()
		tc, err := srv.Handshake(ctx, c)
		done <- out{tc, err}
	}()
	c := dialRaw(t, l.Addr().String())
	tlsRaw(t, c)
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	defer o.tc.Close()
	c.Write(testHeader)
	buf := make([]byte, len(testHeader))
	o.tc.SetDeadline(time.Now().Add(linetest.Timeout))
	if _, err := io.ReadFull(o.tc, buf); err != nil || string(buf) != testHeader {
		t.Fatalf("over the handed-over conn: %q, %v", buf, err)
	}
}

// TestServerShutdown: Shutdown ends idle sessions with system-shutdown.
func TestServerShutdown(t *testing.T) {
	srv := newServer(t)
	addr := startServer(t, srv)
	c := dialRaw(t, addr)
	c.Write(testHeader)
	c.until("</stream:features>")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	srv.Shutdown(ctx)
	if got, err := c.readAll(); err != nil && !linetest.IsClosed(err) {
		t.Errorf("read after Shutdown: %q, %v", got, err)
	}
}
