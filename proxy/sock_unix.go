//go:build unix

package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
)

// newSock wraps c when it is a TCP connection; otherwise it returns c, and
// the relay reads it with blocking reads.
func newSock(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &sock{TCPConn: tc, rc: rc}
}

// Read reads like net.TCPConn's, or without waiting once nonblock is set.
func (s *sock) Read(p []byte) (int, error) {
	if !s.nonblock.Load() {
		return s.TCPConn.Read(p)
	}
	var n int
	var errno error
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			n, errno = syscall.Read(int(fd), p)
			if errno != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case err != nil: // deadline, closed
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
	case errno == syscall.EAGAIN:
		return 0, errWouldBlock
	case errno != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// waitReadable blocks until rc has data (or EOF or an error) to read,
// honouring the read deadline, without consuming anything.
func waitReadable(rc syscall.RawConn) error {
	var b [1]byte
	err := rc.Read(func(fd uintptr) bool {
		// No MSG_DONTWAIT (AIX has none): Go's poller keeps every socket
		// in non-blocking mode, so the peek says EAGAIN when it is empty.
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return e != syscall.EAGAIN && e != syscall.EINTR
	})
	return err
}
