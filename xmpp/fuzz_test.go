package xmpp

import (
	"bufio"
	"bytes"
	"context"
	"github.com/starttls/starttls/internal/linetest"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
)

// hostile are the seeds of SECURITY.md for XMPP (PR-13, PR-14, restricted
// XML, injection) and some well-formed streams.
var hostile = []string{
	srvHeader + featTLS,
	srvHeader + featSASL,
	"<?xml version='1.0'?>" + srvHeader + featTLS + proceed + "<stream:features/>",
	srvHeader + strings.Repeat("<a>", 1000),
	srvHeader + "<stream:features>" + strings.Repeat("<x/>", 100) + "</stream:features>",
	"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]><lolz>&lol2;</lolz>",
	srvHeader + "<stream:features>&lol;</stream:features>",
	srvHeader + "<!-- c -->",
	srvHeader + "<?pi x?>",
	srvHeader + "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
	srvHeader + "</stream:stream>",
	srvHeader + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features><failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
	srvHeader + "<stream:features xmlns:x='urn:x'><x:mechanisms><x:mechanism>PLAIN</x:mechanism></x:mechanisms></stream:features>",
	"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
	"<?xml version='1.0' encoding='UTF-16'?>" + srvHeader,
	"\x16\x03\x01\x00\x05hello",
	srvHeader + "<a b='\x00'/>",
	srvHeader + "<a>\xff\xfe</a>",
	srvHeader + "text",
}

// FuzzStream: the stream parser never panics, reads no more than one
// element's budget, and never returns an element deeper than MaxDepth.
func FuzzStream(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		br := bufio.NewReader(strings.NewReader(data))
		st := newStream(br, 4096, nil, starttls.FromServer, false)
		if _, err := st.header(); err != nil {
			return
		}
		for range 20 {
			el, err := st.next()
			if err != nil {
				return
			}
			if depth(el) > MaxDepth {
				t.Fatalf("element %d deep", depth(el))
			}
			if st.budget.n > 4096 {
				t.Fatalf("read %d bytes for one element", st.budget.n)
			}
			parseFeatures(el)
			streamError(el)
			saslError(el)
		}
	})
}

func depth(e *element) int {
	d := 0
	for _, c := range e.Children {
		d = max(d, depth(c))
	}
	return d + 1
}

// scriptConn is a net.Conn that reads a fixed script and swallows writes.
type scriptConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *scriptConn) Close() error                { return nil }
func (c *scriptConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5222}
}
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzClientDialog runs the whole client dialog (and Login in plain mode)
// against arbitrary server bytes: no panic, no credentials without TLS
// unless ModePlain, a Result always.
func FuzzClientDialog(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	f.Add(srvHeader+"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features><success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"+srvHeader+"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features><iq type='result' id='bind_1'/>", uint8(2))
	f.Fuzz(func(t *testing.T, data string, m uint8) {
		mode := []starttls.Mode{starttls.ModeRequired, starttls.ModeOpportunistic, starttls.ModePlain}[int(m)%3]
		conn := &scriptConn{r: strings.NewReader(data)}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, res, err := Upgrade(ctx, conn, &starttls.ClientOptions{Mode: mode, ServerName: "localhost", ProbeInjection: m&4 != 0})
		if res == nil {
			t.Fatal("nil Result")
		}
		if err != nil {
			return
		}
		c.Login(ctx, "alice", "pw")
		if mode != starttls.ModePlain && bytes.Contains(conn.out.Bytes(), []byte("<auth")) {
			t.Fatalf("credentials sent without TLS in mode %v", mode)
		}
		c.Close()
	})
}

// FuzzServer feeds arbitrary client bytes to a server session.
func FuzzServer(f *testing.F) {
	f.Add(testHeader + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	f.Add(testHeader + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldCBwdw==</auth>" + testHeader + "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>")
	f.Add(testHeader + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/><response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>")
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var log linetest.PanicLog
		srv := &Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: true, ReadTimeout: time.Second, Logger: slog.New(&log)}, Backend: &memBackend{}}
		conn := &scriptConn{r: strings.NewReader(data)}
		srv.ServeConn(context.Background(), conn)
		log.Check(t)
	})
}

// FuzzDecodePlain: the SASL PLAIN decoder never panics.
func FuzzDecodePlain(f *testing.F) {
	for _, s := range []string{"AGFsaWNlAHNlY3JldCBwdw==", "", "=", "AAAA", "!!!", "YWxpY2UAYWxpY2UAcHc="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		decodePlain(s)
	})
}
