package ftp

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/textline"
)

// Error is a negative FTP reply (RFC 959 §4.2: 4yz transient, 5yz
// permanent), or an unexpected positive one.
type Error struct {
	Code    int
	Message string // the text of the reply's lines, joined with "\n"
}

func (e *Error) Error() string { return fmt.Sprintf("ftp: %d %s", e.Code, e.Message) }

// Temporary reports whether the reply is a transient negative one (4yz):
// trying again later may work.
func (e *Error) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Reply is one FTP reply: its code and the text of each line.
type Reply = textline.Reply

func replyError(r Reply) *Error { return &Error{Code: r.Code, Message: r.Text()} }

// lineReader is the source of reply lines (a *textline.Conn).
type lineReader interface {
	ReadLine() (string, error)
}

// readReply reads one reply per RFC 959 §4.2: a single line "CCC text", or
// a first line "CCC-text", any lines of text, and a last line "CCC text"
// with the same code. Intermediate lines are kept as they are, except that
// a "CCC-" prefix with the reply's own code is removed (many servers prefix
// every line). At most maxLines lines are read.
func readReply(r lineReader, maxLines int) (Reply, error) {
	if maxLines <= 0 {
		maxLines = starttls.DefaultMaxLines
	}
	line, err := r.ReadLine()
	if err != nil {
		return Reply{}, err
	}
	code, more, text, err := textline.ParseReplyLine(line)
	if err != nil {
		return Reply{}, starttls.ProtocolError("ftp", "%v", err)
	}
	rep := Reply{Code: code, Lines: []string{text}}
	prefix := line[:3]
	for i := 1; more; i++ {
		if i >= maxLines {
			return rep, starttls.ProtocolError("ftp", "reply longer than %d lines", maxLines)
		}
		if line, err = r.ReadLine(); err != nil {
			return rep, err
		}
		switch {
		case line == prefix:
			rep.Lines = append(rep.Lines, "")
			more = false
		case strings.HasPrefix(line, prefix+" "):
			rep.Lines = append(rep.Lines, line[4:])
			more = false
		case strings.HasPrefix(line, prefix+"-"):
			rep.Lines = append(rep.Lines, line[4:])
		default:
			rep.Lines = append(rep.Lines, line)
		}
	}
	return rep, nil
}

// parsePASV parses the text of a 227 reply (RFC 959 §4.1.2): six decimal
// numbers h1,h2,h3,h4,p1,p2, with or without the parentheses. It returns
// the address the server named (which the client does not use) and the
// port.
func parsePASV(text string) (net.IP, int, error) {
	i := strings.IndexAny(text, "0123456789")
	if i < 0 {
		return nil, 0, fmt.Errorf("ftp: no address in PASV reply %q", starttls.Escape(clipStr(text, 80)))
	}
	s := text[i:]
	var n [6]int
	for k := range n {
		j := 0
		for j < len(s) && j < 4 && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == 0 || j > 3 {
			return nil, 0, fmt.Errorf("ftp: malformed PASV reply %q", starttls.Escape(clipStr(text, 80)))
		}
		v, _ := strconv.Atoi(s[:j])
		if v > 255 {
			return nil, 0, fmt.Errorf("ftp: number %d out of range in PASV reply", v)
		}
		n[k] = v
		s = s[j:]
		if k < 5 {
			if s == "" || s[0] != ',' {
				return nil, 0, fmt.Errorf("ftp: malformed PASV reply %q", starttls.Escape(clipStr(text, 80)))
			}
			s = s[1:]
		}
	}
	port := n[4]<<8 | n[5]
	if port == 0 {
		return nil, 0, fmt.Errorf("ftp: port 0 in PASV reply")
	}
	return net.IPv4(byte(n[0]), byte(n[1]), byte(n[2]), byte(n[3])), port, nil
}

// parseEPSV parses the text of a 229 reply (RFC 2428 §3):
// "(<d><d><d>port<d>)" where d is one printable ASCII character other than
// a digit, the same four times.
func parseEPSV(text string) (int, error) {
	bad := func() (int, error) {
		return 0, fmt.Errorf("ftp: malformed EPSV reply %q", starttls.Escape(clipStr(text, 80)))
	}
	i := strings.IndexByte(text, '(')
	if i < 0 {
		return bad()
	}
	s := text[i+1:]
	if len(s) < 6 {
		return bad()
	}
	d := s[0]
	if d < 33 || d > 126 || (d >= '0' && d <= '9') || s[1] != d || s[2] != d {
		return bad()
	}
	s = s[3:]
	j := strings.IndexByte(s, d)
	if j < 1 || j > 5 || j+1 >= len(s) || s[j+1] != ')' {
		return bad()
	}
	port := 0
	for _, c := range []byte(s[:j]) {
		if c < '0' || c > '9' {
			return bad()
		}
		port = port*10 + int(c-'0')
	}
	if port < 1 || port > 65535 {
		return 0, fmt.Errorf("ftp: port %d out of range in EPSV reply", port)
	}
	return port, nil
}

func clipStr(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("ftp: "+format, args...)
}
