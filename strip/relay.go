package strip

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/dial"
)

// relayMode says what the relay watches.
type relayMode struct {
	// watch holds the first answer to the client back for the wait and
	// counts the command lines the client sends meanwhile (its writes for
	// a protocol that is not line-based).
	watch  bool
	writes bool
	// probe (command-injection) probes the upstream for CVE-2011-0411 on
	// a connection of its own.
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
}

// relayUpstream connects to the upstream over TLS (implicitly, or through
// the protocol's client dialog taken over where TLS starts) and relays
// client to it. Without an upstream it only watches the client.
func (c *session) relayUpstream(ctx context.Context, client *tls.Conn, mode relayMode) *relayStats {
	st := &relayStats{}
	defer client.Close()
	wait := c.s.cfg.Wait
	upCfg := starttls.ClientTLSConfig(c.s.cfg.UpstreamTLS, c.s.name)
	if c.s.scheme.Implicit {
		d := tls.Dialer{Config: upCfg}
		up, err := d.DialContext(ctx, "tcp", c.s.cfg.Upstream)
		if err != nil {
			st.upstreamErr = err
			c.rec.note("upstream unavailable: %v", err)
			watchAlone(ctx, client, wait, mode.writes, st)
			return st
		}
		c.rec.note("relaying to %s inside TLS", c.s.cfg.Upstream)
		relay(ctx, client, up, mode, wait, st)
		return st
	}
	up, err := dial.Upgrader(c.s.scheme.Protocol)
	if err != nil {
		st.upstreamErr = err
		watchAlone(ctx, client, wait, mode.writes, st)
		return st
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", c.s.cfg.Upstream)
	if err != nil {
		st.upstreamErr = err
		c.rec.note("upstream unavailable: %v", err)
		watchAlone(ctx, client, wait, mode.writes, st)
		return st
	}
	tr := &starttls.Transcript{}
	relayed := false
	opts := &starttls.ClientOptions{
		Mode:       starttls.ModeRequired,
		ServerName: c.s.name,
		TLSConfig:  c.s.cfg.UpstreamTLS,
		Transcript: tr,
		Intercept: func(ictx context.Context, conn net.Conn) error {
			tc := tls.Client(conn, upCfg)
			if err := tc.HandshakeContext(ictx); err != nil {
				return err
			}
			relayed = true
			c.rec.note("relaying to %s inside TLS", c.s.cfg.Upstream)
			relay(ictx, client, tc, mode, wait, st)
			return nil
		},
	}
	_, _, err = up(ctx, raw, opts)
	for _, ev := range tr.Events() {
		c.upstream = append(c.upstream, "upstream "+ev.Format(tr.Start))
	}
	if !relayed {
		st.upstreamErr = err
		c.rec.note("upstream dialog failed: %v", err)
		if st.clientBytes == 0 {
			watchAlone(ctx, client, wait, mode.writes, st)
		}
	}
	return st
}

// watchAlone reads what the client sends inside TLS for the wait, with
// no upstream to answer: application data and command lines.
func watchAlone(ctx context.Context, client net.Conn, wait time.Duration, writes bool, st *relayStats) {
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	client.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	for {
		n, err := client.Read(buf)
		st.mu.Lock()
		st.clientBytes += int64(n)
		st.early += commands(buf[:n], writes)
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
					st.early += commands(buf[:n], mode.writes)
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

// commands counts the commands in one read from the client: its lines, or
// one for the whole read (a TLS record) when writes is set.
func commands(b []byte, writes bool) int {
	if writes {
		if len(b) > 0 {
			return 1
		}
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}
