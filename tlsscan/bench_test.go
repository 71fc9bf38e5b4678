package tlsscan

import (
	"context"
	"crypto/tls"
	"testing"
)

// BenchmarkScan scans a loopback Go server (TLS 1.0–1.3, RSA) and reports
// the connections per scan.
func BenchmarkScan(b *testing.B) {
	rsaCert, _ := testCerts()
	addr := serveTLS(b, &tls.Config{Certificates: []tls.Certificate{rsaCert}, MinVersion: tls.VersionTLS10})
	dial := dialer(addr)
	conns := 0
	for b.Loop() {
		res, err := Scan(context.Background(), dial, &Options{ServerName: "scan.test"})
		if err != nil {
			b.Fatal(err)
		}
		conns = res.Connections
	}
	b.ReportMetric(float64(conns), "conns/scan")
}
