package dial

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/starttls/starttls"
)

// TestGatewayForEveryProtocol: a protocol added to the scheme table must
// say here what the gateway can do with it.
func TestGatewayForEveryProtocol(t *testing.T) {
	for _, s := range starttls.Schemes() {
		g, err := Gateways(s.Protocol)
		if err != nil {
			t.Errorf("scheme %s: %v", s.Name, err)
			continue
		}
		if g.Protocol != s.Protocol {
			t.Errorf("Gateways(%q).Protocol = %q", s.Protocol, g.Protocol)
		}
		if (g.NewServer == nil) == (g.ServerUnsupported == "") {
			t.Errorf("%s: NewServer and ServerUnsupported must be exactly one", s.Protocol)
		}
		if (g.ClientGreeting == nil) == (g.ClientUnsupported == "") {
			t.Errorf("%s: ClientGreeting and ClientUnsupported must be exactly one", s.Protocol)
		}
		if g.ClientGreeting != nil {
			if _, err := Upgrader(s.Protocol); err != nil {
				t.Errorf("%s: a client-side gateway without a client: %v", s.Protocol, err)
			}
		}
	}
	if _, err := Gateways("gopher"); err == nil {
		t.Error("Gateways(gopher) = nil error")
	}
}

// TestUnavailableIsOneLine: the closing reply quotes error text; a line
// break in it must not start a second reply.
func TestUnavailableIsOneLine(t *testing.T) {
	for _, s := range starttls.Schemes() {
		g, _ := Gateways(s.Protocol)
		if g == nil || g.Unavailable == nil {
			continue
		}
		b := g.Unavailable("backend down\r\n250 OK injected")
		if s.Protocol == "http" {
			if !bytes.HasPrefix(b, []byte("HTTP/1.1 503 ")) || bytes.Count(b, []byte("\r\n\r\n")) != 1 {
				t.Errorf("http: %q", b)
			}
			continue
		}
		if bytes.Count(b, []byte("\n")) != 1 || !bytes.HasSuffix(b, []byte("\r\n")) {
			t.Errorf("%s: Unavailable = %q, want one CRLF line", s.Protocol, b)
		}
	}
}

func TestSkipGreeting(t *testing.T) {
	cases := []struct {
		proto, backend string
		ok             bool
		rest           string
	}{
		{"smtp", "220-mx.example\r\n220 ready\r\n", true, ""},
		{"smtp", "554 go away\r\n", false, ""},
		{"imap", "* OK [CAPABILITY IMAP4rev1] hi\r\n", true, ""},
		{"imap", "* PREAUTH logged in\r\n", false, ""},
		{"imap", "* BYE busy\r\n", false, ""},
		{"pop3", "+OK hi\r\nextra", true, "extra"},
		{"pop3", "-ERR no\r\n", false, ""},
		{"nntp", "201 no posting\r\n", true, ""},
		{"nntp", "502 no\r\n", false, ""},
	}
	for _, c := range cases {
		g, _ := Gateways(c.proto)
		a, b := net.Pipe()
		go func() { b.Write([]byte(c.backend)); b.Close() }()
		rest, err := g.SkipGreeting(a, 0)
		a.Close()
		if (err == nil) != c.ok || (c.ok && string(rest) != c.rest) {
			t.Errorf("%s SkipGreeting(%q) = %q, %v; want ok=%v rest %q", c.proto, c.backend, rest, err, c.ok, c.rest)
		}
	}
}

func TestClientGreeting(t *testing.T) {
	cases := []struct{ proto, greeting, want string }{
		{"smtp", "220-mx.example.org ESMTP\n220 ready", "220-mx.example.org ESMTP\r\n220 ready\r\n"},
		{"imap", "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot ready.", "* OK Dovecot ready.\r\n"},
		{"pop3", "+OK <1.2@x> ready", "+OK <1.2@x> ready\r\n"},
		{"nntp", "200 news ready", "200 news ready\r\n"},
	}
	for _, c := range cases {
		g, _ := Gateways(c.proto)
		if got := string(g.ClientGreeting(&starttls.Result{Greeting: c.greeting})); got != c.want {
			t.Errorf("%s: %q, want %q", c.proto, got, c.want)
		}
	}
	g, _ := Gateways("ldap")
	if g.ClientGreeting(&starttls.Result{}) != nil {
		t.Error("ldap: a greeting for a protocol where the client speaks first")
	}
	if s := string(mustGW(t, "smtp").ClientGreeting(&starttls.Result{})); !strings.HasPrefix(s, "220 ") {
		t.Errorf("smtp without a recorded greeting: %q", s)
	}
}

func mustGW(t *testing.T, p string) *Gateway {
	g, err := Gateways(p)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
