package proxy

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/imap"
	"github.com/starttls/starttls/pop3"
)

type pop3Box struct{ mailBox }

func (b *pop3Box) Messages(context.Context, string) ([][]byte, error) {
	return [][]byte{[]byte("Subject: hi\r\n\r\nhello\r\n")}, nil
}

func TestPOP3ThroughServerSide(t *testing.T) {
	l := listen(t)
	backend := &pop3.Server{ServerOptions: starttls.ServerOptions{AllowPlaintextLogin: true}, Backend: &pop3Box{}}
	go backend.Serve(l)
	t.Cleanup(func() { backend.Close() })
	addr, _ := startProxy(t, Listener{Protocol: "pop3", Backend: l.Addr().String(), TLS: serverTLS}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := pop3.Dial(ctx, addr, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: clientTLS, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(res.AuthBefore) != 0 {
		t.Errorf("login offered before TLS: %v", res.AuthBefore)
	}
	if err := c.Login(ctx, user, pass); err != nil {
		t.Fatalf("USER/PASS through the gateway: %v", err)
	}
}

// dialogue sends each command and returns the first line answered.
func dialogue(t *testing.T, addr string, lines ...string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var got []string
	read := func(tag string) {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				got = append(got, "error: "+err.Error())
				return
			}
			if tag == "" || strings.HasPrefix(l, tag) {
				got = append(got, strings.TrimRight(l, "\r\n"))
				return
			}
		}
	}
	read("") // greeting
	for _, l := range lines {
		c.Write([]byte(l + "\r\n"))
		read(strings.SplitN(l, " ", 2)[0] + " ")
	}
	return got
}

// TestIMAPClientSide: a legacy client logs in with plaintext LOGIN to the
// local listener; the upstream refuses LOGIN before TLS but gets it over
// TLS from the gateway.
func TestIMAPClientSide(t *testing.T) {
	l := listen(t)
	up := &imap.Server{ServerOptions: starttls.ServerOptions{TLSConfig: serverTLS}, Backend: &mailBox{}}
	go up.Serve(l)
	t.Cleanup(func() { up.Close() })
	addr, _ := startProxy(t, Listener{Protocol: "imap", Upstream: l.Addr().String(), ServerName: "localhost", ClientTLS: clientTLS}, nil)
	got := dialogue(t, addr, "a CAPABILITY", "b LOGIN alice secret", "c SELECT INBOX", "d LOGOUT")
	if strings.Contains(got[0], "CAPABILITY") || !strings.HasPrefix(got[0], "* OK") {
		t.Errorf("greeting %q: want the upstream's, without its pre-TLS capabilities", got[0])
	}
	for i, want := range []string{"a OK", "b OK", "c OK", "d OK"} {
		if !strings.HasPrefix(got[i+1], want) {
			t.Errorf("reply %d = %q, want %q…", i, got[i+1], want)
		}
	}
}

func TestIMAPServerSideBackendDown(t *testing.T) {
	dead := listen(t)
	addr := dead.Addr().String()
	dead.Close()
	p, _ := startProxy(t, Listener{Protocol: "imap", Backend: addr, TLS: serverTLS}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := imap.Dial(ctx, p, &starttls.ClientOptions{Mode: starttls.ModeRequired, TLSConfig: clientTLS, ServerName: "localhost"})
	if err == nil {
		err = c.Login(ctx, user, pass)
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "BYE") && !strings.Contains(strings.ToLower(err.Error()), "backend unavailable") {
		t.Fatalf("with the backend down: %v, want the BYE", err)
	}
}
