package textline

import (
	"fmt"
	"strings"

	"github.com/starttls/starttls"
)

// Reply is a numeric reply: SMTP, LMTP, FTP, NNTP.
type Reply struct {
	Code  int
	Lines []string // text of each line, code and separator removed
}

// Text joins the lines with "\n".
func (r Reply) Text() string { return strings.Join(r.Lines, "\n") }

// String renders the reply as a single line for messages.
func (r Reply) String() string { return fmt.Sprintf("%d %s", r.Code, strings.Join(r.Lines, " / ")) }

// ReadReply reads a reply of one or more lines "CCC-text" ending with
// "CCC text" (RFC 5321 §4.2.1). Every line must carry the same code; the
// number of lines is bounded by maxLines (0: starttls.DefaultMaxLines).
func ReadReply(c *Conn, maxLines int) (Reply, error) {
	if maxLines <= 0 {
		maxLines = starttls.DefaultMaxLines
	}
	var r Reply
	for i := 0; ; i++ {
		if i >= maxLines {
			return r, starttls.ProtocolError(c.opts.Proto, "reply longer than %d lines", maxLines)
		}
		line, err := c.ReadLine()
		if err != nil {
			return r, err
		}
		code, more, text, err := ParseReplyLine(line)
		if err != nil {
			return r, starttls.ProtocolError(c.opts.Proto, "%v", err)
		}
		if i > 0 && code != r.Code {
			return r, starttls.ProtocolError(c.opts.Proto, "reply code changed from %d to %d within one reply", r.Code, code)
		}
		r.Code = code
		r.Lines = append(r.Lines, text)
		if !more {
			return r, nil
		}
	}
}

// ParseReplyLine parses "250-text", "250 text" or "250".
func ParseReplyLine(line string) (code int, more bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("malformed reply %q", starttls.Escape(line))
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", fmt.Errorf("malformed reply %q", starttls.Escape(line))
		}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if code < 100 || code > 599 {
		return 0, false, "", fmt.Errorf("reply code %d out of range in %q", code, starttls.Escape(line))
	}
	if len(line) == 3 {
		return code, false, "", nil
	}
	switch line[3] {
	case ' ':
		return code, false, line[4:], nil
	case '-':
		return code, true, line[4:], nil
	}
	return 0, false, "", fmt.Errorf("malformed reply %q", starttls.Escape(line))
}
