package strip

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
)

// relayMode says what the relay watches.
type relayMode struct {
	// watch holds the first answer to the client back for the wait and
	// counts the command lines the client sends meanwhile.
	watch bool
	// probe pipelines a command after the upgrade command toward the
	// upstream (the library client's injection probe) and waits for an
	// unsolicited answer inside TLS.
	probe bool
}

// relayStats is what the relay saw.
type relayStats struct {
	mu          sync.Mutex
	clientBytes int64 // application data from the client
	serverBytes int64
	early       int // client lines before the first answer reached it
	released    bool

	upstreamErr error
	serverActed bool   // command-injection: the upstream answered inside TLS unprompted
	probeSent   string // the pipelined command
	probeReply  string
	probeNote   string
}

// relayUpstream connects to the upstream over TLS (implicitly, or through
// the protocol's client dialog taken over where TLS starts) and relays
// client to it. Without an upstream it only watches the client.
func (c *session) relayUpstream(ctx context.Context, client *tls.Conn, mode relayMode) *relayStats {
	st := &relayStats{}
	wait := c.s.cfg.Wait
	upCfg := starttls.ClientTLSConfig(c.s.cfg.UpstreamTLS, c.s.name)
	if c.s.scheme.Implicit {
		d := tls.Dialer{Config: upCfg}
		up, err := d.DialContext(ctx, "tcp", c.s.cfg.Upstream)
		if err != nil {
			st.upstreamErr = err
			c.rec.note("upstream unavailable: %v", err)
			watchAlone(ctx, client, wait, st)
			return st
		}
		c.rec.note("relaying to %s inside TLS", c.s.cfg.Upstream)
		relay(ctx, client, up, mode, wait, st)
		return st
	}
	up, err := dial.Upgrader(c.s.scheme.Protocol)
	if err != nil {
		st.upstreamErr = err
		watchAlone(ctx, client, wait, st)
		return st
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", c.s.cfg.Upstream)
	if err != nil {
		st.upstreamErr = err
		c.rec.note("upstream unavailable: %v", err)
		watchAlone(ctx, client, wait, st)
		return st
	}
	tr := &starttls.Transcript{}
	relayed := false
	opts := &starttls.ClientOptions{
		Mode:           starttls.ModeRequired,
		ServerName:     c.s.name,
		TLSConfig:      c.s.cfg.UpstreamTLS,
		Transcript:     tr,
		ProbeInjection: mode.probe,
		InjectionWait:  wait,
		Intercept: func(ictx context.Context, conn net.Conn) error {
			tc := tls.Client(conn, upCfg)
			if err := tc.HandshakeContext(ictx); err != nil {
				if mode.probe {
					st.probeNote = "the server did not complete TLS after the pipelined command (" + short(err) + "): it did not run it inside TLS"
				}
				return err
			}
			if mode.probe {
				probeUpstream(tc, wait, st)
				if st.serverActed {
					// Its answer would reach the client as garbage; the
					// session is spoilt.
					return nil
				}
			}
			relayed = true
			c.rec.note("relaying to %s inside TLS", c.s.cfg.Upstream)
			relay(ictx, client, tc, mode, wait, st)
			return nil
		},
	}
	_, res, err := up(ctx, raw, opts)
	if mode.probe && res != nil && res.Injection != nil {
		st.probeSent = res.Injection.Sent
	}
	for _, ev := range tr.Events() {
		c.upstream = append(c.upstream, "upstream "+ev.Format(tr.Start))
	}
	if !relayed && err != nil && !st.serverActed {
		st.upstreamErr = err
		c.rec.note("upstream dialog failed: %v", err)
	}
	if !relayed && st.clientBytes == 0 {
		watchAlone(ctx, client, wait, st)
	}
	client.Close()
	return st
}

// probeUpstream waits for the upstream to speak first inside TLS: any
// answer is to the command pipelined with the upgrade command in
// plaintext.
func probeUpstream(tc *tls.Conn, wait time.Duration, st *relayStats) {
	tc.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 512)
	n, err := tc.Read(buf)
	tc.SetReadDeadline(time.Time{})
	switch {
	case n > 0:
		st.serverActed = true
		line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
		st.probeReply = fmt.Sprintf("%q", starttls.Escape(string(bytes.TrimRight(line, "\r"))))
	case isTimeout(err):
		st.probeNote = fmt.Sprintf("the server said nothing unprompted inside TLS for %s: it did not run the pipelined command there", wait)
	case err != nil:
		st.probeNote = "the server closed the TLS session (" + short(err) + "): it did not run the pipelined command there"
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// watchAlone reads what the client sends inside TLS for the wait, with
// no upstream to answer: application data and command lines.
func watchAlone(ctx context.Context, client net.Conn, wait time.Duration, st *relayStats) {
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	client.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	for {
		n, err := client.Read(buf)
		st.mu.Lock()
		st.clientBytes += int64(n)
		st.early += bytes.Count(buf[:n], []byte("\n"))
		st.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// relay copies both ways until either side ends or ctx does. With
// mode.watch the first bytes toward the client are held back for wait
// and the client's lines meanwhile are counted.
func relay(ctx context.Context, client, up net.Conn, mode relayMode, wait time.Duration, st *relayStats) {
	stop := context.AfterFunc(ctx, func() { client.Close(); up.Close() })
	defer stop()
	st.mu.Lock()
	st.released = !mode.watch
	st.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				st.mu.Lock()
				st.clientBytes += int64(n)
				if !st.released {
					st.early += bytes.Count(buf[:n], []byte("\n"))
				}
				st.mu.Unlock()
				if _, werr := up.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		first := true
		for {
			n, err := up.Read(buf)
			if n > 0 {
				if first && mode.watch {
					t := time.NewTimer(wait)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return
					}
					st.mu.Lock()
					st.released = true
					st.mu.Unlock()
				}
				first = false
				st.mu.Lock()
				st.serverBytes += int64(n)
				st.mu.Unlock()
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	<-done
	client.Close()
	up.Close()
	<-done
}
