package tlsscan_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/starttls/starttls/tlsscan"
)

// ExampleScan scans a loopback crypto/tls server limited to TLS 1.2 and
// one suite. The Dialer here dials implicit TLS; for STARTTLS protocols it
// runs the protocol client with ClientOptions.Intercept set to probe.
func ExampleScan() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); tls.Server(c, cfg).Handshake() }()
		}
	}()

	dial := func(ctx context.Context, probe func(context.Context, net.Conn) error) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer conn.Close()
		return probe(ctx, conn)
	}
	res, err := tlsscan.Scan(context.Background(), dial, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range tlsscan.Versions {
		fmt.Println(v, *res.Versions[v])
	}
	for _, c := range res.Ciphers {
		fmt.Println(c.Version, c.Name, "forward secrecy:", c.ForwardSecrecy, "obsolete:", c.Obsolete)
	}
	fmt.Println("groups:", res.Groups)
	// Output:
	// SSLv2 false
	// SSLv3 false
	// TLS1.0 false
	// TLS1.1 false
	// TLS1.2 true
	// TLS1.3 false
	// TLS1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 forward secrecy: true obsolete: false
	// groups: [X25519 P-256 P-384 P-521]
}
