package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
	"github.com/starttls/starttls/internal/dnstest"
	"github.com/starttls/starttls/smtp"
)

// TestProxyUpstreamDomain: `starttls proxy --upstream-domain D --mode dane`
// greets a legacy client with the DANE-authenticated MX host's greeting,
// and answers 421 for a domain whose MX host cannot be authenticated.
func TestProxyUpstreamDomain(t *testing.T) {
	ca, err := certs.NewCA("cli proxy domain CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(certs.Leaf{Names: []string{"mx.dane.test"}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &smtp.Server{ServerOptions: starttls.ServerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, Hostname: "mx.dane.test"}}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	spki := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	dns := dnstest.Start(t,
		"dane.test. 60 IN MX 10 mx.dane.test.", "mx.dane.test. 60 IN A 127.0.0.1",
		"_25._tcp.mx.dane.test. 60 IN TLSA 3 1 1 "+hex.EncodeToString(spki[:]),
		"nodane.test. 60 IN MX 10 mx.nodane.test.", "mx.nodane.test. 60 IN A 127.0.0.1",
	)
	dns.Secure("dane.test")
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct{ domain, want string }{
		{"dane.test", "220 mx.dane.test"},
		{"nodane.test", "421 4.3.0 no MX host of nodane.test"},
	} {
		listen := freeAddr(t)
		ctx, cancel := context.WithCancel(context.Background())
		var stderr syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- RunContext(ctx, []string{"proxy", "--listen", listen, "--protocol", "smtp", "--upstream-domain", tc.domain,
				"--mode", "dane", "--resolver", dns.Addr, "--smtp-port", port, "--log-level", "debug"}, strings.NewReader(""), io.Discard, &stderr)
		}()
		var c net.Conn
		for range 100 {
			if c, err = net.Dial("tcp", listen); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			cancel()
			t.Fatalf("proxy not up: %v\n%s", err, stderr.String())
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, tc.want) {
			t.Errorf("%s: greeting %q, %v; want %q\n%s", tc.domain, line, err, tc.want, stderr.String())
		}
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("%s: exit %d\n%s", tc.domain, code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no shutdown")
		}
	}
}
