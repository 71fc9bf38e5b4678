package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/smtp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/imap"
	stsmtp "github.com/starttls/starttls/smtp"
)

const user, pass = "alice", "secret"

type mailBox struct {
	mu   sync.Mutex
	msgs []string
}

func (b *mailBox) Login(_ context.Context, u, p string) error {
	if u != user || p != pass {
		return errors.New("bad login")
	}
	return nil
}

func (b *mailBox) Deliver(_ context.Context, from string, to []string, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, from+"|"+strings.Join(to, ",")+"|"+string(data))
	return nil
}

func (b *mailBox) Mailboxes(context.Context, string) ([]string, error) { return []string{"INBOX"}, nil }
func (b *mailBox) Messages(context.Context, string, string) ([][]byte, error) {
	return [][]byte{[]byte("Subject: hi\r\n\r\nhello\r\n")}, nil
}

// plainSMTP starts a plaintext-only SMTP backend (no STARTTLS) that
// accepts AUTH in plaintext, as a legacy server behind the gateway does.
func plainSMTP(t *testing.T, box *mailBox, tlsCfg *tls.Config) string {
	l := listen(t)
	s := &stsmtp.Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: tlsCfg == nil, TLSConfig: tlsCfg, Hostname: "backend.test"}, Backend: box}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

func TestSMTPThroughServerSide(t *testing.T) {
	box := &mailBox{}
	addr, _ := startProxy(t, Listener{Protocol: "smtp", Backend: plainSMTP(t, box, nil), TLS: serverTLS, Hostname: "gateway.test"}, nil)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not advertised before TLS")
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Fatal("AUTH advertised before TLS")
	}
	if err := c.Mail("a@example.org"); err == nil || !strings.Contains(err.Error(), "530") {
		t.Fatalf("MAIL before TLS = %v, want 530", err)
	}
	cfg := clientTLS.Clone()
	cfg.ServerName = "localhost"
	if err := c.StartTLS(cfg); err != nil {
		t.Fatal(err)
	}
	// Over TLS: the backend's own EHLO answer, AUTH included.
	if ok, _ := c.Extension("AUTH"); !ok {
		t.Fatal("AUTH not advertised over TLS")
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Fatal("STARTTLS advertised again over TLS")
	}
	if err := c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: test\r\n\r\nbody line\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	if len(box.msgs) != 1 || box.msgs[0] != "a@example.org|b@example.org|Subject: test\r\n\r\nbody line\r\n" {
		t.Fatalf("backend got %q", box.msgs)
	}
}

func TestSMTPImplicitListener(t *testing.T) {
	box := &mailBox{}
	addr, _ := startProxy(t, Listener{Protocol: "smtp", Implicit: true, Backend: plainSMTP(t, box, nil), TLS: serverTLS}, nil)
	conn, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(smtp.PlainAuth("", user, pass, "localhost")); err != nil {
		t.Fatal(err)
	}
	c.Quit()
}

func TestIMAPThroughServerSide(t *testing.T) {
	l := listen(t)
	backend := &imap.Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: true}, Backend: &mailBox{}}
	go backend.Serve(l)
	t.Cleanup(func() { backend.Close() })
	addr, _ := startProxy(t, Listener{Protocol: "imap", Backend: l.Addr().String(), TLS: serverTLS}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := imap.Dial(ctx, addr, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: clientTLS, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !res.Upgraded || len(res.AuthBefore) != 0 || !slicesContains(res.CapsBefore, "LOGINDISABLED") {
		t.Errorf("pre-TLS: upgraded %v, auth before %v, caps %v", res.Upgraded, res.AuthBefore, res.CapsBefore)
	}
	if err := c.Login(ctx, user, pass); err != nil {
		t.Fatalf("LOGIN through the gateway: %v", err)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestSMTPServerSideBackendDown(t *testing.T) {
	dead := listen(t)
	addr := dead.Addr().String()
	dead.Close()
	p, _ := startProxy(t, Listener{Protocol: "smtp", Backend: addr, TLS: serverTLS}, nil)
	c, err := smtp.Dial(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := clientTLS.Clone()
	cfg.ServerName = "localhost"
	err = c.StartTLS(cfg)
	if err == nil {
		err = c.Hello("x")
	}
	if err == nil {
		err = c.Noop()
	}
	if err == nil || !strings.Contains(err.Error(), "421") {
		t.Fatalf("with the backend down the client got %v, want 421", err)
	}
}

// legacySMTP speaks plaintext SMTP to the client-side listener and
// returns the greeting.
func TestSMTPClientSide(t *testing.T) {
	box := &mailBox{}
	up := plainSMTP(t, box, serverTLS) // offers STARTTLS
	addr, _ := startProxy(t, Listener{Protocol: "smtp", Upstream: up, ServerName: "localhost", ClientTLS: clientTLS}, nil)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("legacy.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("the legacy client sees STARTTLS: its session is already TLS upstream")
	}
	if err := c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH through the gateway: %v", err)
	}
	if err := c.Mail("a@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org"); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	w.Write([]byte("x\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	box.mu.Lock()
	defer box.mu.Unlock()
	if len(box.msgs) != 1 {
		t.Fatalf("upstream got %d messages", len(box.msgs))
	}
}

func TestSMTPClientSideNeverFallsBack(t *testing.T) {
	cases := map[string]func(t *testing.T) (string, *tls.Config){
		"no STARTTLS": func(t *testing.T) (string, *tls.Config) { return plainSMTP(t, &mailBox{}, nil), clientTLS },
		"untrusted certificate": func(t *testing.T) (string, *tls.Config) {
			_, other := mustPair()
			return plainSMTP(t, &mailBox{}, serverTLS), other
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			up, roots := setup(t)
			addr, _ := startProxy(t, Listener{Protocol: "smtp", Upstream: up, ServerName: "localhost", ClientTLS: roots}, nil)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if !strings.HasPrefix(line, "421 ") {
				t.Fatalf("legacy client got %q, %v; want a 421", line, err)
			}
		})
	}
}

func TestUnsupportedFailsAtStart(t *testing.T) {
	cases := []Listener{
		{Listen: "127.0.0.1:0", Protocol: "mysql", Backend: "127.0.0.1:3306", TLS: serverTLS},
		{Listen: "127.0.0.1:0", Protocol: "ftp", Upstream: "127.0.0.1:21"},
		{Listen: "127.0.0.1:0", Protocol: "http", Backend: "127.0.0.1:80", TLS: serverTLS},
	}
	for _, c := range cases {
		if _, err := New(c, nil, nil); !errors.Is(err, ErrUnsupported) {
			t.Errorf("New(%s, backend %q upstream %q) = %v, want ErrUnsupported", c.Protocol, c.Backend, c.Upstream, err)
		}
	}
	// An implicit-TLS listener relays any protocol.
	ok := Listener{Listen: "127.0.0.1:0", Protocol: "mysql", Implicit: true, Backend: "127.0.0.1:3306", TLS: serverTLS}
	if _, err := New(ok, nil, nil); err != nil {
		t.Errorf("implicit mysql: %v", err)
	}
}
