package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
)

// sinkBackend reads and drops everything.
func sinkBackend(b testing.TB) string {
	l := listen(b)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 64<<10)
				for {
					if _, err := c.Read(buf); err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// BenchmarkUpload is bulk throughput, client to backend, through one
// connection.
func BenchmarkUpload(b *testing.B) {
	addr, _ := startProxy(b, tcpTLS(sinkBackend(b)), nil)
	c, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDownload is bulk throughput, backend to client.
func BenchmarkDownload(b *testing.B) {
	l := listen(b)
	chunk := make([]byte, 256<<10)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		for {
			if _, err := c.Write(chunk); err != nil {
				c.Close()
				return
			}
		}
	}()
	addr, _ := startProxy(b, tcpTLS(l.Addr().String()), nil)
	c, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := io.ReadFull(c, chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshake is full TLS handshakes (no resumption) per second.
func BenchmarkHandshake(b *testing.B) {
	addr, _ := startProxy(b, tcpTLS(sinkBackend(b)), nil)
	b.ResetTimer()
	for range b.N {
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c := tls.Client(raw, &tls.Config{RootCAs: clientTLS.RootCAs, ServerName: "localhost"})
		if err := c.Handshake(); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
