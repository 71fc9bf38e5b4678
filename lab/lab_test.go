package lab

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/imap"
	"github.com/starttls/starttls/pop3"
	"github.com/starttls/starttls/smtp"
)

// TestMailRoundTrip: a message submitted over SMTP with STARTTLS and AUTH is
// read back over IMAP and POP3, each on its own correct endpoint.
func TestMailRoundTrip(t *testing.T) {
	l, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := &starttls.ClientOptions{TLSConfig: &tls.Config{RootCAs: l.CA.Pool()}}
	addr := func(name string) string {
		ep, ok := l.Endpoint(name)
		if !ok {
			t.Fatalf("no endpoint %s", name)
		}
		tg, err := starttls.ParseTarget(ep.URL)
		if err != nil {
			t.Fatal(err)
		}
		return tg.Addr()
	}

	sc, res, err := smtp.Dial(ctx, addr("submission"), opts)
	if err != nil {
		t.Fatalf("smtp.Dial: %v", err)
	}
	if !res.Upgraded || len(res.AuthBefore) != 0 {
		t.Fatalf("submission: upgraded %v, auth before TLS %v", res.Upgraded, res.AuthBefore)
	}
	if err := sc.SendMail(ctx, "bob@example.org", []string{"alice@starttls.test"}, []byte("Subject: unauthenticated\r\n\r\nno\r\n")); err == nil {
		t.Fatal("submission accepted mail before AUTH")
	}
	if err := sc.Login(ctx, l.User, l.Password); err != nil {
		t.Fatalf("Login: %v", err)
	}
	const subject = "Subject: round trip through the lab"
	if err := sc.SendMail(ctx, "bob@example.org", []string{"alice@starttls.test"}, []byte(subject+"\r\n\r\nhello\r\n.dot line\r\n")); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	sc.Close()

	// The port is not 993, so auto mode would expect STARTTLS.
	implicit := *opts
	implicit.Mode = starttls.ModeImplicit
	ic, _, err := imap.Dial(ctx, addr("imaps"), &implicit)
	if err != nil {
		t.Fatalf("imap.Dial: %v", err)
	}
	if err := ic.Login(ctx, l.User, "wrong"); err == nil {
		t.Fatal("IMAP accepted a wrong password")
	}
	if err := ic.Login(ctx, l.User, l.Password); err != nil {
		t.Fatalf("IMAP Login: %v", err)
	}
	boxes, err := ic.List(ctx)
	if err != nil || len(boxes) != 1 || boxes[0] != "INBOX" {
		t.Fatalf("List = %v, %v", boxes, err)
	}
	ic.Close()

	pc, _, err := pop3.Dial(ctx, addr("pop3"), opts)
	if err != nil {
		t.Fatalf("pop3.Dial: %v", err)
	}
	if err := pc.Login(ctx, l.User, l.Password); err != nil {
		t.Fatalf("POP3 Login: %v", err)
	}
	n, _, err := pc.Stat(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Stat = %d, %v; want the welcome message and ours", n, err)
	}
	msg, err := pc.Retr(ctx, 2)
	if err != nil || !strings.Contains(string(msg), subject) || !strings.Contains(string(msg), "\r\n.dot line\r\n") {
		t.Fatalf("Retr = %q, %v", msg, err)
	}
	pc.Close()
}

func TestListenMustBeLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0", "192.0.2.1", "example.org"} {
		if l, err := Start(&Options{Listen: addr}); err == nil {
			l.Close()
			t.Errorf("Start(%q) accepted a non-loopback address", addr)
		}
	}
}

// TestStartErrorsCleanUp: a failing start returns an error, never a panic,
// and a --dir that does not exist yet is created.
func TestStartErrorsCleanUp(t *testing.T) {
	dir := t.TempDir() + "/new/sub"
	l, err := Start(&Options{Dir: dir})
	if err != nil {
		t.Fatalf("Start with a new dir: %v", err)
	}
	defer l.Close()
	if _, err := os.Stat(l.CAFile); err != nil {
		t.Fatal(err)
	}
	// The first port of a fixed range is taken: Start fails cleanly.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	if l2, err := Start(&Options{PortBase: port}); err == nil {
		l2.Close()
		t.Fatal("Start on a busy port succeeded")
	}
}

func TestStoreBounded(t *testing.T) {
	st := newStore("u", "p")
	st.maxMessages, st.maxBytes = 3, 100
	for i := 0; i < 10; i++ {
		if err := st.deliver(make([]byte, 40)); err != nil {
			t.Fatal(err)
		}
	}
	if n, size := len(st.messages()), st.size; n > 3 || size > 100 {
		t.Fatalf("store holds %d messages, %d bytes; want at most 3 and 100", n, size)
	}
	before := len(st.messages())
	if err := st.deliver(make([]byte, 101)); err == nil {
		t.Fatal("a message larger than the store was accepted")
	}
	if n := len(st.messages()); n != before {
		t.Fatalf("a refused message dropped %d stored messages", before-n)
	}
}

// TestEverySchemeHasAnEndpoint: the lab serves every scheme of the protocol
// table under the scheme's own name, and the broken variants for the plain
// STARTTLS schemes.
func TestEverySchemeHasAnEndpoint(t *testing.T) {
	l, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, sc := range starttls.Schemes() {
		ep, ok := l.Endpoint(sc.Name)
		if !ok {
			t.Errorf("no lab endpoint for scheme %s", sc.Name)
			continue
		}
		if ep.Broken || ep.Protocol != sc.Protocol || !strings.HasPrefix(ep.URL, sc.Name+"://") {
			t.Errorf("endpoint %s = %+v", sc.Name, ep)
		}
		if _, broken := l.Endpoint(sc.Name + "-no-starttls"); !sc.Implicit && sc.Name != "submission" && sc.Name != "lmtp" && !broken {
			t.Errorf("STARTTLS scheme %s has no broken variants", sc.Name)
		}
	}
}
