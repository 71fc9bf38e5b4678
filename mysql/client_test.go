package mysql

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// Independent vectors (Python hashlib) for scramble "abcdefghijklmnopqrst"
// and password "secret pw".
const (
	nativeVector = "4d66d2293cf871ae5c128c199f3925950c0f79b4"
	sha2Vector   = "c8983567bc790454e41d9dfa063fc1e90d22adfef199ae333819b423676ceb3a"
)

func TestAuthVectors(t *testing.T) {
	if got := hex.EncodeToString(nativePassword(testScramble, testPassword)); got != nativeVector {
		t.Errorf("nativePassword = %s, want %s", got, nativeVector)
	}
	if got := hex.EncodeToString(cachingSHA2Password(testScramble, testPassword)); got != sha2Vector {
		t.Errorf("cachingSHA2Password = %s, want %s", got, sha2Vector)
	}
	if nativePassword(testScramble, "") != nil {
		t.Error("empty password must give an empty response")
	}
}

// wantSSLRequest is the exact SSLRequest payload the client sends to a
// server announcing serverCaps|CLIENT_SSL: LONG_PASSWORD, LONG_FLAG,
// PROTOCOL_41, SSL, TRANSACTIONS, SECURE_CONNECTION, PLUGIN_AUTH; max
// packet 1 MiB; utf8mb4_general_ci; 23 zero bytes.
var wantSSLRequest = "05aa0800" + "00001000" + "2d" + strings.Repeat("00", 23)

// TestClientTranscript: a scripted server; the client's bytes are checked
// exactly, from the SSLRequest to COM_QUIT.
func TestClientTranscript(t *testing.T) {
	st, _ := linetest.TLSPair(t)
	addr, done := fakeServer(t, func(c net.Conn) error {
		c.Write(greetingBytes(serverCaps | ClientSSL))
		seq, p, err := readPkt(c)
		if err != nil || seq != 1 || hex.EncodeToString(p) != wantSSLRequest {
			return fmt.Errorf("SSLRequest: seq %d %x %v, want seq 1 %s", seq, p, err, wantSSLRequest)
		}
		tc := tls.Server(c, st)
		if err := tc.Handshake(); err != nil {
			return err
		}
		seq, p, err = readPkt(tc)
		want := wantSSLRequest + hex.EncodeToString([]byte("alice\x00")) + "14" + nativeVector +
			hex.EncodeToString([]byte("mysql_native_password\x00"))
		if err != nil || seq != 2 || hex.EncodeToString(p) != want {
			return fmt.Errorf("HandshakeResponse: seq %d %x %v, want seq 2 %s", seq, p, err, want)
		}
		tc.Write(pkt(3, marshalOK(2)))
		seq, p, err = readPkt(tc)
		if err != nil || seq != 0 || string(p) != "\x03SELECT 1" {
			return fmt.Errorf("COM_QUERY: seq %d %q %v", seq, p, err)
		}
		var b []byte
		b = append(b, pkt(1, []byte{1})...)
		b = append(b, pkt(2, marshalColumn("1"))...)
		b = append(b, pkt(3, marshalEOF(2))...)
		b = append(b, pkt(4, []byte{1, '1'})...)
		b = append(b, pkt(5, []byte{0xfb})...)
		b = append(b, pkt(6, marshalEOF(2))...)
		tc.Write(b)
		seq, p, err = readPkt(tc)
		if err != nil || seq != 0 || string(p) != "\x01" {
			return fmt.Errorf("COM_QUIT: seq %d %q %v", seq, p, err)
		}
		return nil
	})
	ctx := linetest.Ctx(t)
	opts := clientOpts(t, starttls.ModeRequired)
	c, res, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Offered || !res.Upgraded || res.CapsReread || res.OfferedAfterTLS || res.Greeting != "8.0.36-fake (connection id 42)" {
		t.Errorf("result %+v", res)
	}
	if err := c.Login(ctx, testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	rs, err := c.Query(ctx, "SELECT 1")
	if err != nil || len(rs.Rows) != 2 || rs.Rows[0][0] != "1" || !rs.Null[1][0] || rs.Columns[0].Name != "1" {
		t.Fatalf("Query = %+v, %v", rs, err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, ev := range opts.Transcript.Events() {
		if strings.Contains(ev.Text, testPassword) || strings.Contains(ev.Text, nativeVector) {
			t.Errorf("transcript leaks the credential: %q", ev.Text)
		}
	}
}

// TestClientAuthSwitch: caching_sha2_password full authentication over TLS
// sends the password in clear, inside TLS only.
func TestClientAuthSwitch(t *testing.T) {
	st, _ := linetest.TLSPair(t)
	for _, tlsOn := range []bool{true, false} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			addr, done := fakeServer(t, func(c net.Conn) error {
				caps := serverCaps
				if tlsOn {
					caps |= ClientSSL
				}
				c.Write(greetingBytes(caps))
				var conn net.Conn = c
				seq := byte(1)
				if tlsOn {
					if _, _, err := readPkt(c); err != nil {
						return err
					}
					tc := tls.Server(c, st)
					if err := tc.Handshake(); err != nil {
						return err
					}
					conn, seq = tc, 2
				}
				if _, _, err := readPkt(conn); err != nil {
					return err
				}
				sw := append([]byte("\xfecaching_sha2_password\x00"), testScramble...)
				conn.Write(pkt(seq+1, append(sw, 0)))
				s, p, err := readPkt(conn)
				if err != nil || s != seq+2 || hex.EncodeToString(p) != sha2Vector {
					return fmt.Errorf("switch response seq %d %x %v", s, p, err)
				}
				conn.Write(pkt(seq+3, []byte{1, 4}))
				s, p, err = readPkt(conn)
				if !tlsOn {
					if err == nil {
						return fmt.Errorf("client sent %q without TLS", p)
					}
					return nil
				}
				if err != nil || s != seq+4 || string(p) != testPassword+"\x00" {
					return fmt.Errorf("full auth seq %d %q %v", s, p, err)
				}
				conn.Write(pkt(seq+5, marshalOK(2)))
				return nil
			})
			mode := starttls.ModePlain
			if tlsOn {
				mode = starttls.ModeRequired
			}
			opts := clientOpts(t, mode)
			c, _, err := Dial(linetest.Ctx(t), addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Login(linetest.Ctx(t), testUser, testPassword)
			if tlsOn && err != nil {
				t.Fatalf("Login: %v", err)
			}
			if !tlsOn && !errors.Is(err, starttls.ErrFallbackForbidden) {
				t.Fatalf("Login without TLS = %v, want ErrFallbackForbidden", err)
			}
			if tlsOn && c.Result().AuthAfter[0] != PluginCachingSHA2 {
				t.Errorf("AuthAfter = %v", c.Result().AuthAfter)
			}
			c.conn.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestClientGreetingErrors: an ERR greeting, a wrong protocol version, a
// greeting whose length is ff ff ff, a truncated one, a wrong sequence id
// (SECURITY PR-20): errors, never a panic; "too many connections" is
// temporary.
func TestClientGreetingErrors(t *testing.T) {
	good := greetingBytes(serverCaps | ClientSSL)
	tests := []struct {
		name string
		send []byte
		want error
		temp bool
	}{
		{"too many connections", pkt(0, marshalErr(1040, "08004", "Too many connections")), nil, true},
		{"host blocked", pkt(0, append([]byte{0xff, 0x69, 0x04}, "Host '1.2.3.4' is blocked"...)), nil, true},
		{"protocol 9", pkt(0, append([]byte{9}, "3.23\x00"...)), starttls.ErrProtocol, false},
		{"length ff ff ff", []byte{0xff, 0xff, 0xff, 0}, starttls.ErrLineTooLong, false},
		{"too long", pkt(0, make([]byte, MaxHandshakePacket+1)), starttls.ErrLineTooLong, false},
		{"truncated packet", good[:20], nil, false},
		{"truncated greeting", pkt(0, []byte{10, 'v', 0, 1, 2}), starttls.ErrProtocol, false},
		{"wrong sequence id", append([]byte{good[0], good[1], good[2], 1}, good[4:]...), starttls.ErrProtocol, false},
		{"TLS record", []byte{0x16, 0x03, 0x01, 0x00, 0x10}, starttls.ErrLineTooLong, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, done := fakeServer(t, func(c net.Conn) error {
				c.Write(tt.send)
				c.(*net.TCPConn).CloseWrite()
				var buf [64]byte
				n, _ := c.Read(buf[:])
				if n > 0 {
					return fmt.Errorf("client sent %q after a bad greeting", buf[:n])
				}
				return nil
			})
			_, res, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModeRequired))
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if starttls.IsTemporary(err) != tt.temp {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, !tt.temp, tt.temp)
			}
			if res == nil || res.Upgraded {
				t.Errorf("result %+v", res)
			}
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
}

// TestClientRefusesLocalInfile: a LOCAL INFILE request is never honoured.
func TestClientRefusesLocalInfile(t *testing.T) {
	addr, done := fakeServer(t, func(c net.Conn) error {
		c.Write(greetingBytes(serverCaps))
		readPkt(c)
		c.Write(pkt(2, marshalOK(2)))
		readPkt(c)
		c.Write(pkt(1, []byte("\xfb/etc/passwd")))
		var buf [64]byte
		n, _ := c.Read(buf[:])
		if n > 0 && !bytes.Equal(buf[:n], pkt(0, []byte{1})) {
			return fmt.Errorf("client answered the LOCAL INFILE request with %q", buf[:n])
		}
		return nil
	})
	c, _, err := Dial(linetest.Ctx(t), addr, clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(linetest.Ctx(t), testUser, testPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(linetest.Ctx(t), "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t"); err == nil {
		t.Fatal("LOCAL INFILE accepted")
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestProbePlaintextLogin: what each answer to the probe login means, and
// that the probe never sends a password.
func TestProbePlaintextLogin(t *testing.T) {
	tests := []struct {
		name   string
		answer []byte
		want   []string
		err    bool
	}{
		{"OK without password", marshalOK(2), []string{PluginNativePassword}, false},
		{"3159 insecure transport", marshalErr(3159, "HY000", errInsecureTransportMessage), []string{}, false},
		{"1045 cannot tell", marshalErr(1045, "28000", "Access denied for user 'starttls-probe'@'127.0.0.1' (using password: NO)"), nil, true},
		{"switch to clear password", []byte("\xfemysql_clear_password\x00"), []string{PluginClearPassword}, false},
		{"switch to sha2", []byte("\xfecaching_sha2_password\x00abcdefghijklmnopqrst\x00"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, done := fakeServer(t, func(c net.Conn) error {
				c.Write(greetingBytes(serverCaps | ClientSSL))
				seq, p, err := readPkt(c)
				if err != nil || seq != 1 {
					return fmt.Errorf("probe packet seq %d %v", seq, err)
				}
				h, ssl, err := parseHandshakeResponse(p)
				if err != nil || ssl || h.User != ProbeUser || len(h.AuthResponse) != 0 || h.Capabilities&ClientSSL != 0 {
					return fmt.Errorf("probe login %+v ssl %v err %v", h, ssl, err)
				}
				c.Write(pkt(2, tt.answer))
				return nil
			})
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			got, err := ProbePlaintextLogin(linetest.Ctx(t), conn, nil)
			if (err != nil) != tt.err || fmt.Sprint(got) != fmt.Sprint(tt.want) || (tt.want != nil && got == nil) {
				t.Errorf("ProbePlaintextLogin = %v, %v; want %v (error %v)", got, err, tt.want, tt.err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCapNames(t *testing.T) {
	got := CapNames(ClientSSL | ClientProtocol41 | ClientRememberOptions)
	if strings.Join(got, " ") != "CLIENT_PROTOCOL_41 CLIENT_SSL CLIENT_REMEMBER_OPTIONS" {
		t.Errorf("CapNames = %v", got)
	}
}
