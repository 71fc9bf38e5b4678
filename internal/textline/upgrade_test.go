package textline

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/certs"
)

// notes returns the transcript's notes joined by "\n".
func notes(tr *starttls.Transcript) string {
	var b strings.Builder
	for _, ev := range tr.Events() {
		if ev.Dir == starttls.Note {
			b.WriteString(ev.Text + "\n")
		}
	}
	return b.String()
}

func TestStartTLS(t *testing.T) {
	srvCfg, cliCfg, err := certs.TestPair()
	if err != nil {
		t.Fatal(err)
	}
	// Server behaviours once the go-ahead and the extra bytes are sent.
	handshake := func(peer net.Conn) { tls.Server(peer, srvCfg).Handshake() }
	// readHello reads the whole ClientHello record, so that closing the
	// connection then is a FIN, not a reset.
	readHello := func(peer net.Conn) {
		h := make([]byte, 5)
		if _, err := io.ReadFull(peer, h); err == nil {
			io.ReadFull(peer, make([]byte, int(h[3])<<8|int(h[4])))
		}
	}
	closeAfterHello := func(peer net.Conn) { readHello(peer); peer.Close() }
	plaintextAnswer := func(peer net.Conn) {
		readHello(peer)
		peer.Write([]byte("500 OOPS: wrong version number\r\n"))
	}
	const extra = "250 injected\r\n"
	tests := []struct {
		name       string
		extra      string // sent right after the go-ahead
		probe      bool
		server     func(peer net.Conn)
		fail       bool  // StartTLS fails
		err        error // it wraps err (errors.Is)
		handshake  bool  // it wraps a *starttls.HandshakeError
		plaintext  string
		reply      string
		closed     bool
		probeErr   bool
		noteSubstr string
	}{
		{name: "success", server: handshake},
		{name: "success with probe", probe: true, server: handshake},
		{name: "buffered plaintext", extra: extra, server: handshake,
			fail: true, err: starttls.ErrPlaintextAfterUpgrade, plaintext: extra,
			noteSubstr: "14 bytes of plaintext after the upgrade"},
		{name: "buffered plaintext with probe: discarded", extra: extra, probe: true, server: handshake,
			reply:      "(in plaintext, before TLS; discarded) " + starttls.Escape(extra),
			noteSubstr: "14 bytes in plaintext after the go-ahead (answer to the probe?), discarded"},
		{name: "server closes", server: closeAfterHello, fail: true, err: io.EOF, handshake: true},
		{name: "server closes with probe", probe: true, server: closeAfterHello,
			fail: true, err: io.EOF, handshake: true, closed: true},
		{name: "plaintext handshake answer", server: plaintextAnswer, fail: true, handshake: true},
		{name: "plaintext handshake answer with probe", probe: true, server: plaintextAnswer,
			fail: true, handshake: true, probeErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &starttls.Transcript{}
			c, peer := pair(t, Options{Proto: "test", Local: starttls.FromClient, Transcript: tr})
			go func() {
				peer.Write([]byte("220 go ahead\r\n" + tt.extra))
				tt.server(peer)
			}()
			if line, err := c.ReadLine(); err != nil || line != "220 go ahead" {
				t.Fatalf("ReadLine = %q, %v", line, err)
			}
			if tt.extra != "" {
				// The extra bytes may arrive in a later segment.
				deadline := time.Now().Add(2 * time.Second)
				for c.Buffered() < len(tt.extra) && time.Now().Before(deadline) {
					c.r.Peek(len(tt.extra))
				}
			}
			res := &starttls.Result{}
			var probe *starttls.InjectionProbe
			if tt.probe {
				probe = &starttls.InjectionProbe{Sent: "NOOP"}
			}
			opts := &starttls.ClientOptions{TLSConfig: cliCfg}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tc, err := c.StartTLS(ctx, c.Raw(), opts, res, probe, "STARTTLS", "the go-ahead")

			if !tt.fail {
				if err != nil || tc == nil {
					t.Fatalf("StartTLS = %v, %v; want a TLS connection", tc, err)
				}
				if res.TLS == nil || !res.Upgraded || !c.TLS() || c.Raw() != net.Conn(tc) {
					t.Errorf("after success: Result.TLS %v, Upgraded %v, Conn.TLS %v", res.TLS, res.Upgraded, c.TLS())
				}
				if !strings.Contains(notes(tr), "TLS handshake done") {
					t.Errorf("transcript notes %q lack the handshake", notes(tr))
				}
			} else {
				if tc != nil || err == nil || tt.err != nil && !errors.Is(err, tt.err) {
					t.Fatalf("StartTLS = %v, %v; want an error wrapping %v", tc, err, tt.err)
				}
				var he *starttls.HandshakeError
				if errors.As(err, &he) != tt.handshake {
					t.Errorf("StartTLS error %q: wraps a HandshakeError %v, want %v", err, !tt.handshake, tt.handshake)
				}
				if res.TLS != nil || res.Upgraded {
					t.Errorf("after failure: Result.TLS %v, Upgraded %v", res.TLS, res.Upgraded)
				}
				if tt.handshake && !strings.HasPrefix(err.Error(), "test: STARTTLS: ") {
					t.Errorf("handshake error %q lacks the command's wording", err)
				}
			}
			if got := string(res.PlaintextAfterUpgrade); got != tt.plaintext {
				t.Errorf("PlaintextAfterUpgrade = %q, want %q", got, tt.plaintext)
			}
			if probe != nil {
				if probe.Reply != tt.reply || probe.Closed != tt.closed || (probe.Err != "") != tt.probeErr || probe.Vulnerable {
					t.Errorf("probe = %+v; want Reply %q, Closed %v, Err set %v", *probe, tt.reply, tt.closed, tt.probeErr)
				}
			}
			if tt.noteSubstr != "" && !strings.Contains(notes(tr), tt.noteSubstr) {
				t.Errorf("transcript notes %q lack %q", notes(tr), tt.noteSubstr)
			}
		})
	}
}

func TestAwaitProbeAnswer(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		peer       func(peer net.Conn)
		closed     func(error) bool
		readErr    error // returned by read instead of the read's own error
		cancel     bool
		err        error
		errPrefix  string
		vulnerable bool
		isClosed   bool
		probeErr   string
	}{
		{name: "answer", peer: func(p net.Conn) { p.Write([]byte("211 hello\r\n")) }, vulnerable: true},
		{name: "silence", peer: func(net.Conn) {}},
		{name: "closed", peer: func(p net.Conn) { p.Close() }, err: io.EOF, isClosed: true,
			errPrefix: "test: server closed the connection after the TLS handshake (injection probe): "},
		{name: "closed, IsClosed", peer: func(p net.Conn) { p.Close() }, closed: IsClosed, err: io.EOF, isClosed: true},
		{name: "other error", peer: func(net.Conn) {}, readErr: boom, err: boom, probeErr: "boom"},
		{name: "context over", peer: func(p net.Conn) { p.Close() }, cancel: true, err: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := pair(t, Options{Proto: "test", Local: starttls.FromClient})
			tt.peer(peer)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if tt.cancel {
				cancel()
			}
			probe := &starttls.InjectionProbe{Sent: "NOOP"}
			start := time.Now()
			err := c.AwaitProbeAnswer(ctx, c.Raw(), 100*time.Millisecond, probe, tt.closed, func() error {
				line, err := c.ReadLine()
				if tt.readErr != nil {
					return tt.readErr
				}
				if err == nil {
					probe.Vulnerable, probe.Reply = true, line
				}
				return err
			})
			if time.Since(start) > 3*time.Second {
				t.Errorf("the wait took %v", time.Since(start))
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("AwaitProbeAnswer = %v, want %v", err, tt.err)
			}
			if tt.errPrefix != "" && !strings.HasPrefix(err.Error(), tt.errPrefix) {
				t.Errorf("error %q lacks the prefix %q", err, tt.errPrefix)
			}
			if probe.Vulnerable != tt.vulnerable || probe.Closed != tt.isClosed || probe.Err != tt.probeErr {
				t.Errorf("probe = %+v; want Vulnerable %v, Closed %v, Err %q", *probe, tt.vulnerable, tt.isClosed, tt.probeErr)
			}
			// The context's deadline is given back: no leftover short deadline.
			if !tt.cancel && tt.err == nil {
				time.Sleep(150 * time.Millisecond)
				go peer.Write([]byte("after\r\n"))
				if line, err := c.ReadLine(); err != nil || line != "after" {
					t.Errorf("ReadLine after the wait = %q, %v", line, err)
				}
			}
		})
	}
}
