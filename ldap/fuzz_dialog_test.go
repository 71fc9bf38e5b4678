package ldap

import (
	"bytes"
	"context"
	"github.com/starttls/starttls/internal/linetest"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
)

// FuzzServerSession feeds hostile client bytes to a whole server session:
// it never panics, always ends (deadlines) and never accepts a plaintext
// bind.
func FuzzServerSession(f *testing.F) {
	f.Add(append(searchMsg(1, "", ScopeBase), bindMsg(2, aliceDN, alicePW)...))
	f.Add(append(encodeMessage(1, encodeExtended(StartTLSOID)), bindMsg(2, aliceDN, alicePW)...))
	f.Add(append(bindMsg(1, "", ""), searchMsg(2, testBase, ScopeSub, "*")...))
	f.Add(encodeMessage(1, encodeExtended(WhoAmIOID)))
	for _, s := range hostileBER {
		f.Add(s)
	}
	srv := newServer(f)
	srv.ReadTimeout = 50 * time.Millisecond
	srv.MaxErrors = 50
	var log linetest.PanicLog
	srv.Logger = slog.New(&log)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		cc, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(context.Background(), sc) }()
		cc.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			cc.Write(in)
			cc.(*net.TCPConn).CloseWrite()
		}()
		var out bytes.Buffer
		io.Copy(&out, cc)
		cc.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("session did not end")
		}
		log.Check(t)
		// A successful BindResponse can only follow a password bind over
		// TLS, which this plaintext stream never reaches.
		r := out.Bytes()
		for len(r) > 0 {
			m, rest, err := splitMessage(r)
			if err != nil {
				break
			}
			r = rest
			if m.op.tag == opBindResponse {
				if res, err := parseResult(&m.op); err == nil && res.code == ResultSuccess && !anonymousBindIn(in, m.id) {
					t.Fatalf("bind #%d succeeded in plaintext", m.id)
				}
			}
		}
	})
}

// splitMessage decodes the first message of b.
func splitMessage(b []byte) (*message, []byte, error) {
	var d decoder
	_, rest, err := d.parseOne(b, 0)
	if err != nil {
		return nil, nil, err
	}
	m, err := parseMessage(b[:len(b)-len(rest)])
	return m, rest, err
}

// anonymousBindIn reports whether the request with id in the client bytes
// is an anonymous bind (empty name and password), which succeeds anywhere.
func anonymousBindIn(in []byte, id int64) bool {
	for len(in) > 0 {
		m, rest, err := splitMessage(in)
		if err != nil {
			return false
		}
		in = rest
		if m.id == id && m.op.tag == opBindRequest && len(m.op.kids) == 3 && len(m.op.kids[1].data) == 0 && len(m.op.kids[2].data) == 0 {
			return true
		}
	}
	return false
}

// FuzzClientDialog feeds hostile server bytes to the client dialog in every
// mode that starts in plaintext: it never panics, never upgrades without a
// handshake, and never sends a password.
func FuzzClientDialog(f *testing.F) {
	dse := append(dseEntry(1, StartTLSOID), doneMsg(1, ResultSuccess)...)
	f.Add(append(dse, startTLSResp(2, ResultSuccess)...))
	f.Add(append(dse, startTLSResp(2, ResultUnavailable)...))
	f.Add(doneMsg(1, ResultInsufficientAccessRights))
	f.Add(append(dse, append(startTLSResp(2, ResultSuccess), 0x30)...))
	for _, s := range hostileBER {
		f.Add(s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, mode := range []starttls.Mode{starttls.ModeRequired, starttls.ModeOpportunistic, starttls.ModePlain} {
			cc, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			sc, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			sent := make(chan []byte, 1)
			go func() {
				sc.SetDeadline(time.Now().Add(2 * time.Second))
				go func() {
					sc.Write(in)
					sc.(*net.TCPConn).CloseWrite()
				}()
				got, _ := io.ReadAll(sc)
				sc.Close()
				sent <- got
			}()
			tr := &starttls.Transcript{}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			c, res, err := Upgrade(ctx, cc, &starttls.ClientOptions{Mode: mode, Transcript: tr})
			if err == nil {
				if res.Upgraded {
					t.Fatalf("%v: upgraded without a handshake", mode)
				}
				c.Login(ctx, aliceDN, alicePW)
				c.Close()
			}
			cancel()
			cc.Close()
			out := <-sent
			if bytes.Contains(out, []byte(alicePW)) && mode != starttls.ModePlain {
				t.Fatalf("%v: the password was sent in plaintext", mode)
			}
			for _, e := range tr.Events() {
				if strings.Contains(e.Text, alicePW) {
					t.Fatalf("%v: transcript shows the password: %s", mode, e.Text)
				}
			}
		}
	})
}
