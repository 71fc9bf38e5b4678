package ftp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestServerCommands walks the command table's replies over TLS.
func TestServerCommands(t *testing.T) {
	srv := newServer(t)
	srv.MaxErrors = 100
	c := dialRaw(t, startServer(t, srv))
	feat := strings.Join(func() []string { c.Write("FEAT\r\n"); return reply(c) }(), "\n")
	if !strings.Contains(feat, " AUTH TLS") || !strings.Contains(feat, " PBSZ") {
		t.Errorf("FEAT before TLS = %q", feat)
	}
	for _, step := range []struct{ cmd, want string }{
		{"SYST", "215"}, {"NOOP", "200"}, {"PWD", "530"}, {"LIST", "530"}, {"HELP", "214"},
		{"AUTH KERBEROS_V4", "504"}, {"X", "500"}, {"FOOBAR", "500"}, {"SMNT x", "502"},
		{"CCC", "534"}, {"AUTH TLS", "234"},
	} {
		if got := cmd(c, step.cmd); !strings.HasPrefix(got, step.want) {
			t.Fatalf("%s = %q, want %s", step.cmd, got, step.want)
		}
	}
	c.StartTLS()
	c.Write("FEAT\r\n")
	if feat := strings.Join(reply(c), "\n"); strings.Contains(feat, "AUTH") {
		t.Errorf("FEAT inside TLS lists AUTH: %q", feat)
	}
	for _, step := range []struct{ cmd, want string }{
		{"PASS x", "503"}, {"USER alice", "331"}, {"PASS nope", "530"},
		{"USER alice", "331"}, {"PASS secret pw", "230"},
		{"PWD", `257 "/"`}, {"CWD pub", `250`}, {"PWD", `257 "/pub"`},
		{`CWD we"ird dir`, `250 Directory changed to "/pub/we""ird dir"`}, {"CDUP", "250"}, {"CDUP", "250"},
		{"CWD ../../..", "250"}, {"PWD", `257 "/"`}, {"CWD nope", "550"}, {"CWD hello.txt", "550"},
		{"TYPE I", "200"}, {"TYPE A", "200"}, {"TYPE E", "504"}, {"MODE S", "200"}, {"MODE B", "504"},
		{"STRU F", "200"}, {"SIZE hello.txt", "213 50"}, {"SIZE pub", "550"}, {"MDTM hello.txt", "213 20260102030405"},
		{"MLST hello.txt", "250-"}, {"STOR x", "550"}, {"DELE hello.txt", "550"},
		{"PORT 127,0,0,1,4,1", "502"}, {"EPRT |1|127.0.0.1|1025|", "502"}, {"REST 10", "502"},
		{"PBSZ x", "501"}, {"PBSZ 0", "200"}, {"PROT X", "504"}, {"PROT S", "536"}, {"PROT P", "200"},
		{"RETR hello.txt", "425"}, {"EPSV 2", "522"}, {"EPSV x", "501"}, {"OPTS UTF8 ON", "200"},
		{"STAT", "211"}, {"PASV", "227 Entering Passive Mode (127,0,0,1,"}, {"EPSV 1", "229"}, {"EPSV ALL", "200"},
		{"PASV", "503"}, {"QUIT", "221"},
	} {
		if got := cmd(c, step.cmd); !strings.HasPrefix(got, step.want) {
			t.Fatalf("%s = %q, want %s", step.cmd, got, step.want)
		}
	}
}

// TestServerErrorLimit: MaxErrors protocol errors close with 421.
func TestServerErrorLimit(t *testing.T) {
	c := dialRaw(t, startServer(t, newServer(t)))
	cmd(c, "BOGUS")
	cmd(c, "BOGUS")
	c.Write("BOGUS\r\n")
	if got := c.Line(); !strings.HasPrefix(got, "500") {
		t.Fatal(got)
	}
	if got := c.Line(); !strings.HasPrefix(got, "421 ") {
		t.Errorf("after the limit: %q", got)
	}
	c.ExpectEOF()
}

// TestServerRefuseUpgrade: the lab knob answers 431, a temporary refusal.
func TestServerRefuseUpgrade(t *testing.T) {
	srv := newServer(t)
	srv.RefuseUpgrade = true
	c := dialRaw(t, startServer(t, srv))
	if got := cmd(c, "AUTH TLS"); !strings.HasPrefix(got, "431 ") {
		t.Errorf("AUTH TLS = %q, want 431", got)
	}
}

// TestServerHandshake: Handshake hands over the *tls.Conn right after the
// handshake; the FTP dialog over TLS is left to the caller.
func TestServerHandshake(t *testing.T) {
	srv := newServer(t)
	l := listen(t)
	done := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		tc, err := srv.Handshake(context.Background(), conn)
		if err == nil {
			tc.Write([]byte("220 relayed\r\n"))
			tc.Close()
		}
		done <- err
	}()
	c := dialRaw(t, l.Addr().String())
	if got := cmd(c, "AUTH TLS"); !strings.HasPrefix(got, "234") {
		t.Fatal(got)
	}
	c.StartTLS()
	if got := c.Line(); got != "220 relayed" {
		t.Errorf("after Handshake: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestServerShutdown: Shutdown waits, then ends sessions; Close ends the
// passive listeners too.
func TestServerShutdown(t *testing.T) {
	srv := newServer(t)
	addr := startServer(t, srv)
	ctx := linetest.Ctx(t)
	c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModeRequired))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	srv.Shutdown(sctx)
	if time.Since(start) > 5*time.Second {
		t.Error("Shutdown took too long")
	}
}
