package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// The sink's operations: the first byte a client sends.
const (
	opEcho     = 'E' // echo every byte back, until EOF
	opDownload = 'D' // then 8 bytes n (big endian): the sink sends n bytes, then waits for EOF
	opUpload   = 'U' // then 8 bytes n: the sink reads n bytes, then answers with n (8 bytes)
)

// Limits of the sink. A connection that is silent for sinkIdle is closed:
// the idle-memory phase holds its connections for seconds, not minutes.
const (
	sinkIdle     = 3 * time.Minute
	sinkMaxBytes = 1 << 40 // one transfer, 1 TiB: far above any bounded phase
	sinkBufSize  = 64 << 10
)

// sinkCmd runs the backend until SIGTERM or SIGINT.
func sinkCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening %s\n", l.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; l.Close() }()
	err = serveSink(l)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// serveSink accepts until l is closed. A temporary accept error (out of
// file descriptors while 5,000 idle connections are held) is retried after
// a pause rather than ending the backend in the middle of a measurement.
func serveSink(l net.Listener) error {
	var pause time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) ||
				errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		go func() {
			defer c.Close()
			_ = sinkConn(c)
		}()
	}
}

// deadlineReader sets a fresh read deadline before every read.
type deadlineReader struct {
	c    net.Conn
	idle time.Duration
}

func (r deadlineReader) Read(p []byte) (int, error) {
	if err := r.c.SetReadDeadline(time.Now().Add(r.idle)); err != nil {
		return 0, err
	}
	return r.c.Read(p)
}

// sinkConn serves one connection: one operation, then EOF.
func sinkConn(c net.Conn) error {
	r := deadlineReader{c, sinkIdle}
	var op [1]byte
	if _, err := io.ReadFull(r, op[:]); err != nil {
		return err
	}
	switch op[0] {
	case opEcho:
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if err := c.SetWriteDeadline(time.Now().Add(sinkIdle)); err != nil {
					return err
				}
				if _, werr := c.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err != nil {
				return err
			}
		}
	case opDownload, opUpload:
		n, err := readCount(r)
		if err != nil {
			return err
		}
		if op[0] == opDownload {
			if err := sendN(c, n); err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, r) // until the client closes
			return err
		}
		got, err := io.CopyBuffer(io.Discard, io.LimitReader(r, n), make([]byte, sinkBufSize))
		if err != nil {
			return err
		}
		if got != n {
			return io.ErrUnexpectedEOF
		}
		return writeCount(c, n)
	default:
		return fmt.Errorf("unknown operation %q", op[0])
	}
}

// readCount reads the 8-byte length of a transfer and checks its bound.
func readCount(r io.Reader) (int64, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return parseCount(b[:])
}

// parseCount decodes a transfer length: big endian, at most sinkMaxBytes.
func parseCount(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("count: %d bytes, want 8", len(b))
	}
	n := binary.BigEndian.Uint64(b)
	if n > sinkMaxBytes {
		return 0, fmt.Errorf("count %d above the limit %d", n, int64(sinkMaxBytes))
	}
	return int64(n), nil
}

func writeCount(w net.Conn, n int64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	if err := w.SetWriteDeadline(time.Now().Add(sinkIdle)); err != nil {
		return err
	}
	_, err := w.Write(b[:])
	return err
}

// sendN writes n bytes of a fixed pattern; each write has a deadline.
func sendN(c net.Conn, n int64) error {
	buf := make([]byte, sinkBufSize)
	for i := range buf {
		buf[i] = byte(i)
	}
	for n > 0 {
		chunk := buf[:min(int64(len(buf)), n)]
		if err := c.SetWriteDeadline(time.Now().Add(sinkIdle)); err != nil {
			return err
		}
		w, err := c.Write(chunk)
		n -= int64(w)
		if err != nil {
			return err
		}
	}
	return nil
}

// freeportCmd prints a port that was free on 127.0.0.1 a moment ago (the
// script starts a proxy on it at once; a collision makes that start fail
// loudly, never a wrong measurement).
func freeportCmd(stdout io.Writer) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, port)
	return err
}
