package tlsscan

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

var (
	certOnce          sync.Once
	rsaCert, ecdsaCrt tls.Certificate
)

func selfSigned(key crypto.Signer) tls.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "scan.test"},
		DNSNames:     []string{"scan.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// testCerts returns an RSA and an ECDSA certificate, made once.
func testCerts() (tls.Certificate, tls.Certificate) {
	certOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		rsaCert, ecdsaCrt = selfSigned(rk), selfSigned(ek)
	})
	return rsaCert, ecdsaCrt
}

// serve runs handle for every connection accepted on a loopback listener
// until the test ends.
func serve(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(c)
			})
		}
	})
	return l.Addr().String()
}

// serveTLS runs a crypto/tls server with cfg on loopback.
func serveTLS(tb testing.TB, cfg *tls.Config) string {
	return serve(tb, func(c net.Conn) {
		tls.Server(c, cfg).Handshake()
	})
}

// dialer dials addr over TCP: implicit TLS, the simplest protocol.
func dialer(addr string) Dialer {
	return func(ctx context.Context, probe func(context.Context, net.Conn) error) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		return probe(ctx, c)
	}
}
