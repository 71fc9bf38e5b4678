//go:build !unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// newSock returns c: without the Unix read(2) and MSG_PEEK the relay reads
// with ordinary blocking reads (each direction holds its buffer while it
// waits) and sockOf finds no sock.
func newSock(c net.Conn) net.Conn { return c }

// waitReadable is never reached: no read here says errWouldBlock.
func waitReadable(syscall.RawConn) error { return errors.ErrUnsupported }
