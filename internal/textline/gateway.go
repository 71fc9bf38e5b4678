package textline

import (
	"net"
	"strings"

	"github.com/starttls/starttls"
)

// OneLine replaces line breaks in text so that it stays one protocol line:
// for the gateway's closing replies, whose text may quote an error.
func OneLine(text string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, text)
}

// SkipGreetingLine reads a one-line greeting from a plaintext backend
// (IMAP, POP3, NNTP) for a gateway whose client was greeted already,
// checks it with ok and returns any bytes that followed it. The caller
// sets the read deadline.
func SkipGreetingLine(conn net.Conn, proto string, maxLine int, ok func(line string) bool) ([]byte, error) {
	tc := New(conn, Options{Proto: proto, Local: starttls.FromClient, MaxLine: maxLine})
	line, err := tc.ReadLine()
	if err != nil {
		return nil, err
	}
	if !ok(line) {
		return nil, starttls.ProtocolError(proto, "backend greeting %q is not a positive greeting", starttls.Escape(line))
	}
	return tc.TakeBuffered(), nil
}

// Unbuffered returns the connection under c, a Conn.NetConn result, when
// nothing is buffered in front of it, else c itself: a relay can then
// wait on the socket instead of in a read on the buffer.
func Unbuffered(c net.Conn) net.Conn {
	if b, ok := c.(*bufferedConn); ok && b.r.Buffered() == 0 {
		return b.Conn
	}
	return c
}
