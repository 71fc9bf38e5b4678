package textline

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/starttls/starttls"
)

// StartTLS is a client's side of the upgrade once the server has given the
// go-ahead to the upgrade command: it enforces rule 1 of the upgrade
// (nothing may follow the go-ahead in plaintext), does the TLS handshake on
// raw, the plaintext connection under c, and switches c to TLS (rule 2).
//
// Without an injection probe, bytes buffered after the go-ahead fail the
// upgrade with an error wrapping starttls.ErrPlaintextAfterUpgrade, and are
// kept in res.PlaintextAfterUpgrade. With a probe (probe != nil), the
// command pipelined after the upgrade command may have been answered in
// plaintext before the handshake: that is not response injection, and not
// trusted either. The bytes are recorded in probe.Reply, marked as
// discarded, and the transcript notes them as coming after goAhead (the
// upgrade command or the server's go-ahead, "STARTTLS", "the 101").
//
// A failed handshake returns an error "<proto>: <command>: <handshake
// error>" (command as in "STARTTLS", "AUTH TLS", "upgrade"); with a probe it
// marks the probe Closed when the server closed the connection (it refused
// the pipelined plaintext: safe) and records any other failure in
// probe.Err. On success res.TLS and res.Upgraded are set, c reads and writes
// through the returned *tls.Conn, and the caller takes it as its connection.
func (c *Conn) StartTLS(ctx context.Context, raw net.Conn, opts *starttls.ClientOptions, res *starttls.Result, probe *starttls.InjectionProbe, command, goAhead string) (*tls.Conn, error) {
	if probe != nil {
		if b := c.TakeBuffered(); len(b) > 0 {
			probe.Reply = fmt.Sprintf("(in plaintext, before TLS; discarded) %s", starttls.Escape(string(b)))
			c.Note(fmt.Sprintf("%d bytes in plaintext after %s (answer to the probe?), discarded", len(b), goAhead))
		}
	} else if b, err := c.CheckNoBuffered(); err != nil {
		res.PlaintextAfterUpgrade = b
		return nil, err
	}

	tc, err := starttls.Handshake(ctx, raw, opts)
	if err != nil {
		if probe != nil {
			if IsClosed(err) {
				probe.Closed = true
			} else {
				probe.Err = err.Error()
			}
		}
		return nil, fmt.Errorf("%s: %s: %w", c.opts.Proto, command, err)
	}
	st := tc.ConnectionState()
	res.TLS = &st
	res.Upgraded = true
	c.Upgrade(tc)
	return tc, nil
}

// AwaitProbeAnswer is the second half of the injection probe (CVE-2011-0411):
// after the handshake the client waits up to wait (less if ctx ends sooner)
// for data it did not ask for, which a server that executed the command
// pipelined after the upgrade command inside TLS sends now.
//
// read runs with that read deadline on raw (the *tls.Conn under c): it reads
// and classifies what came, recording an answer in probe (Vulnerable,
// Reply), and returns the read error, if any. ctx's deadline is then given
// back to raw. Silence (a timeout) is not an error: not vulnerable. An error
// for which closed reports true (nil: io.EOF or io.ErrUnexpectedEOF) marks
// the probe Closed and returns "<proto>: server closed the connection after
// the TLS handshake (injection probe): …"; any other error is recorded in
// probe.Err and returned as it is. The end of ctx wins over both.
func (c *Conn) AwaitProbeAnswer(ctx context.Context, raw net.Conn, wait time.Duration, probe *starttls.InjectionProbe, closed func(error) bool, read func() error) error {
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	raw.SetReadDeadline(deadline)
	err := read()
	// Give the rest of the dialog the context's deadline back.
	if d, ok := ctx.Deadline(); ok {
		raw.SetReadDeadline(d)
	} else {
		raw.SetReadDeadline(time.Time{})
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if closed == nil {
		closed = isEOF
	}
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ne) && ne.Timeout():
		return nil // silence: not vulnerable
	case closed(err):
		probe.Closed = true
		return fmt.Errorf("%s: server closed the connection after the TLS handshake (injection probe): %w", c.opts.Proto, err)
	default:
		probe.Err = err.Error()
		return err
	}
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
