package postgres

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestSCRAMRFC7677 checks the SCRAM arithmetic against the example of
// RFC 7677 §3 (user "user", password "pencil").
func TestSCRAMRFC7677(t *testing.T) {
	c := &scramClient{password: "pencil", nonce: "rOprNGfwEbeRWgbNEkqO", clientFirstBare: "n=user,r=rOprNGfwEbeRWgbNEkqO"}
	serverFirst := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	final, err := c.final(serverFirst)
	if err != nil {
		t.Fatal(err)
	}
	const want = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	if final != want {
		t.Fatalf("client-final = %q, want %q", final, want)
	}
	if err := c.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="); err != nil {
		t.Fatal(err)
	}
	if err := c.verify("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="); err == nil {
		t.Fatal("a wrong server signature verified")
	}
	// The server side with the same secret gives the same signature.
	sec, err := NewSCRAMSecret("pencil", []byte("[m\x99h\x9dX\x8d\x88\xbb\xac\x4bp\xf2\x8c\x03\xe9"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseSCRAMSecret(sec.String())
	if err != nil || parsed.String() != sec.String() {
		t.Fatalf("ParseSCRAMSecret(%q) = %v, %v", sec, parsed, err)
	}
	for _, bad := range []string{"", "SCRAM-SHA-256$4096:c2FsdA==$", "SCRAM-SHA-256$0:c2FsdA==$AA==:AA==", "md5abc"} {
		if _, err := ParseSCRAMSecret(bad); err == nil {
			t.Errorf("ParseSCRAMSecret(%q) accepted", bad)
		}
	}
	// Hostile server-first messages.
	for _, sf := range []string{
		"r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		"r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096",
		"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=2147483647",
		"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
		"m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",
		"garbage",
	} {
		c := &scramClient{password: "pencil", nonce: "rOprNGfwEbeRWgbNEkqO", clientFirstBare: "n=,r=rOprNGfwEbeRWgbNEkqO"}
		if _, err := c.final(sf); err == nil {
			t.Errorf("server-first %q accepted", sf)
		}
	}
}

// TestClientTranscript: the client's bytes, exactly, against a scripted
// server: SSLRequest, TLS, StartupMessage, MD5 and cleartext passwords, a
// query and Terminate; and the transcript masks the password.
func TestClientTranscript(t *testing.T) {
	st, _ := linetest.TLSPair(t)
	for _, method := range []string{"CLEARTEXT", "MD5"} {
		t.Run(method, func(t *testing.T) {
			var got bytes.Buffer
			addr, done := fakeServer(t, func(c net.Conn) {
				if !readSSLRequest(t, c) {
					return
				}
				c.Write([]byte("S"))
				tc := tls.Server(c, st)
				if err := tc.Handshake(); err != nil {
					t.Errorf("server handshake: %v", err)
					return
				}
				read := func(n int) {
					buf := make([]byte, n)
					io.ReadFull(tc, buf)
					got.Write(buf)
				}
				start := startupMessage([][2]string{{"user", testUser}, {"database", "db1"}, {"application_name", "starttls"}})
				read(len(start))
				if method == "MD5" {
					tc.Write(newMessage('R').int32(5).bytes([]byte{1, 2, 3, 4}).done())
					read(1 + 4 + 36)
				} else {
					tc.Write(newMessage('R').int32(3).done())
					read(1 + 4 + len(testPass) + 1)
				}
				tc.Write(slices.Concat(
					newMessage('R').int32(0).done(),
					newMessage('N').byte1('S').cstring("NOTICE").byte1('M').cstring("hello").byte1(0).done(),
					newMessage('S').cstring("server_version").cstring("15.99").done(),
					newMessage('K').int32(1).int32(2).done(),
					newMessage('Z').byte1('I').done()))
				q := newMessage('Q').cstring("SELECT 1").done()
				read(len(q))
				tc.Write(slices.Concat(
					newMessage('T').int16(1).cstring("a").int32(0).int16(0).int32(23).int16(4).int32(-1).int16(0).done(),
					newMessage('D').int16(2).int32(1).bytes([]byte("1")).int32(-1).done(),
					newMessage('C').cstring("SELECT 1").done(),
					newMessage('Z').byte1('I').done()))
				read(5)
				tc.Close()
			})
			opts := clientOpts(t, starttls.ModeRequired)
			c, res, err := Dial(linetest.Ctx(t), addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			c.Database = "db1"
			if err := c.Login(linetest.Ctx(t), testUser, testPass); err != nil {
				t.Fatalf("Login: %v\n%s", err, dump(opts.Transcript))
			}
			if !slices.Equal(res.AuthAfter, []string{method}) || c.Parameter("server_version") != "15.99" {
				t.Errorf("AuthAfter %v, server_version %q", res.AuthAfter, c.Parameter("server_version"))
			}
			rows, err := c.SimpleQuery(linetest.Ctx(t), "SELECT 1")
			if err != nil || !slices.Equal(rows[0], []string{"1", ""}) {
				t.Fatalf("rows %q, %v", rows, err)
			}
			c.Close()
			<-done
			pass := slices.Concat(newMessage('p').cstring(testPass).done())
			if method == "MD5" {
				pass = newMessage('p').cstring(md5Password(testUser, testPass, []byte{1, 2, 3, 4})).done()
			}
			want := slices.Concat(
				startupMessage([][2]string{{"user", testUser}, {"database", "db1"}, {"application_name", "starttls"}}),
				pass,
				newMessage('Q').cstring("SELECT 1").done(),
				newMessage('X').done())
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("client sent\n%q\nwant\n%q", got.Bytes(), want)
			}
			tr := dump(opts.Transcript)
			if strings.Contains(tr, testPass) || strings.Contains(tr, md5Password(testUser, testPass, []byte{1, 2, 3, 4})) {
				t.Errorf("transcript shows the password:\n%s", tr)
			}
			for _, w := range []string{"C  SSLRequest", "S  S", "TLS handshake done", "C~ StartupMessage 3.0 user=alice database=db1", "C~ PasswordMessage", "S~ ReadyForQuery I", "C~ Terminate"} {
				if !strings.Contains(tr, w) {
					t.Errorf("transcript lacks %q:\n%s", w, tr)
				}
			}
		})
	}
}

// TestClientLoginErrors: hostile or broken login dialogs end in clear
// errors.
func TestClientLoginErrors(t *testing.T) {
	tests := []struct {
		name   string
		answer []byte
		want   string
	}{
		{"fatal", errorMessage("FATAL", "3D000", `database "alice" does not exist`), "3D000"},
		{"ready before auth", newMessage('Z').byte1('I').done(), "before AuthenticationOk"},
		{"gss", newMessage('R').int32(7).done(), "unsupported authentication method GSS"},
		{"sasl without scram", newMessage('R').int32(10).cstring("SCRAM-SHA-256-PLUS").byte1(0).done(), "no supported SASL mechanism"},
		{"scram final before continue", newMessage('R').int32(12).bytes([]byte("v=AAAA")).done(), "unexpected AuthenticationSASLFinal"},
		{"ok after sasl without final", slices.Concat(newMessage('R').int32(10).cstring("SCRAM-SHA-256").byte1(0).done(), newMessage('R').int32(0).done()), "before the SCRAM exchange completed"},
		{"unknown message", newMessage('?').done(), "unexpected message"},
		{"truncated md5", newMessage('R').int32(5).bytes([]byte{1}).done(), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := fakeServer(t, func(c net.Conn) {
				io.ReadFull(c, make([]byte, len(startup(testUser))+len("application_name\x00starttls\x00")))
				c.Write(tt.answer)
				io.Copy(io.Discard, c)
			})
			c, _, err := Dial(linetest.Ctx(t), addr, &starttls.ClientOptions{Mode: starttls.ModePlain})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Login(linetest.Ctx(t), testUser, testPass)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Login = %v, want an error with %q", err, tt.want)
			}
			if tt.name == "fatal" {
				var pe *Error
				if !errors.As(err, &pe) || pe.Severity != "FATAL" {
					t.Errorf("not an *Error: %v", err)
				}
			}
		})
	}
}

// TestLoginMessageLimit: the login accepts exactly opts.LinesLimit()
// messages from the server, not one more.
func TestLoginMessageLimit(t *testing.T) {
	const params = 5 // AuthenticationOk, 5 ParameterStatus, ReadyForQuery
	for _, limit := range []int{params + 2, params + 1} {
		addr, _ := fakeServer(t, func(c net.Conn) {
			start := startupMessage([][2]string{{"user", testUser}, {"database", testUser}, {"application_name", "starttls"}})
			if _, err := io.ReadFull(c, make([]byte, len(start))); err != nil {
				return
			}
			msgs := [][]byte{newMessage('R').int32(0).done()}
			for i := range params {
				msgs = append(msgs, newMessage('S').cstring("p"+strconv.Itoa(i)).cstring("v").done())
			}
			msgs = append(msgs, newMessage('Z').byte1('I').done())
			c.Write(slices.Concat(msgs...))
			io.Copy(io.Discard, c)
		})
		opts := clientOpts(t, starttls.ModePlain)
		opts.MaxLines = limit
		c, _, err := Dial(linetest.Ctx(t), addr, opts)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Login(linetest.Ctx(t), testUser, testPass)
		c.Close()
		if ok := limit == params+2; (err == nil) != ok {
			t.Errorf("limit %d: Login = %v, want success %v", limit, err, ok)
		}
	}
}
