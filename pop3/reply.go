package pop3

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/starttls/starttls"
)

// Response codes (RFC 2449 §8, RFC 3206) that this package uses or
// recognises.
const (
	CodeSysTemp    = "SYS/TEMP"    // temporary system problem (RFC 3206 §4)
	CodeSysPerm    = "SYS/PERM"    // permanent system problem (RFC 3206 §4)
	CodeAuth       = "AUTH"        // authentication failure (RFC 3206 §5)
	CodeInUse      = "IN-USE"      // maildrop locked (RFC 2449 §8.1.1)
	CodeLoginDelay = "LOGIN-DELAY" // logged in too recently (RFC 2449 §8.1.2)
)

// maxCodeLen bounds a response code; RFC 2449 codes are short words.
const maxCodeLen = 64

// Error is a negative POP3 response ("-ERR [CODE] text"). Code is the
// RFC 2449 §8 response code without brackets ("SYS/TEMP", "AUTH", "IN-USE"),
// empty when the server sent none.
type Error struct {
	Code string
	Text string
}

// Error renders the response as "pop3: -ERR [CODE] text".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pop3: -ERR")
	if e.Code != "" {
		b.WriteString(" [")
		b.WriteString(starttls.Escape(e.Code))
		b.WriteString("]")
	}
	if e.Text != "" {
		b.WriteString(" ")
		b.WriteString(starttls.Escape(e.Text))
	}
	return b.String()
}

// Temporary reports whether the response code says the failure is
// temporary: SYS/TEMP (RFC 3206 §4), IN-USE and LOGIN-DELAY (RFC 2449
// §8.1). Codes are hierarchical, so "SYS/TEMP/X" counts too.
func (e *Error) Temporary() bool {
	for _, c := range []string{CodeSysTemp, CodeInUse, CodeLoginDelay} {
		if e.Code == c || strings.HasPrefix(e.Code, c+"/") {
			return true
		}
	}
	return false
}

// status is one parsed status line.
type status struct {
	OK   bool
	Code string // response code, upper case, without brackets
	Text string
}

// err returns the *Error for a negative status, nil for +OK.
func (s status) err() error {
	if s.OK {
		return nil
	}
	return &Error{Code: s.Code, Text: s.Text}
}

// parseStatus parses "+OK text" or "-ERR [CODE] text" (RFC 1939 §3,
// RFC 2449 §8). The keywords are case-insensitive; anything else is a
// protocol error.
func parseStatus(line string) (status, error) {
	var st status
	var rest string
	switch {
	case hasPrefixFold(line, "+OK"):
		st.OK, rest = true, line[3:]
	case hasPrefixFold(line, "-ERR"):
		rest = line[4:]
	default:
		return st, starttls.ProtocolError("pop3", "status line %q is neither +OK nor -ERR", starttls.Escape(clip(line, 80)))
	}
	if rest != "" && rest[0] != ' ' {
		return st, starttls.ProtocolError("pop3", "malformed status line %q", starttls.Escape(clip(line, 80)))
	}
	rest = strings.TrimPrefix(rest, " ")
	// RFC 2449 §8: the code follows the status indicator in brackets.
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end > 0 && end <= maxCodeLen+1 && validCode(rest[1:end]) {
			st.Code = strings.ToUpper(rest[1:end])
			rest = strings.TrimPrefix(rest[end+1:], " ")
		}
	}
	st.Text = rest
	return st, nil
}

// validCode reports whether s is a resp-code per RFC 2449 §9:
// resp-level *("/" resp-level), resp-level = 1*rchar, rchar = ALPHA / "-".
// We accept digits as well, as real servers use them.
func validCode(s string) bool {
	if s == "" {
		return false
	}
	for _, level := range strings.Split(s, "/") {
		if level == "" {
			return false
		}
		for i := 0; i < len(level); i++ {
			c := level[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// lineReader is what the multi-line reader needs: *textline.Conn, or a
// slice in tests and fuzzing.
type lineReader interface {
	ReadLine() (string, error)
}

// readMulti reads the body of a multi-line response up to the terminating
// "." line (RFC 1939 §3), removing the byte-stuffed leading dot, and calls
// fn for each line. maxLines bounds the number of lines (0: no count
// bound), maxBytes the total size including line endings (0: no bound).
func readMulti(r lineReader, maxLines int, maxBytes int64, fn func(line string)) error {
	var n int
	var size int64
	for {
		line, err := r.ReadLine()
		if err != nil {
			return err
		}
		if line == "." {
			return nil
		}
		line = strings.TrimPrefix(line, ".")
		n++
		size += int64(len(line)) + 2
		if maxLines > 0 && n > maxLines {
			return starttls.ProtocolError("pop3", "multi-line response longer than %d lines", maxLines)
		}
		if maxBytes > 0 && size > maxBytes {
			return starttls.ProtocolError("pop3", "multi-line response larger than %d bytes", maxBytes)
		}
		fn(line)
	}
}

// parseStat parses the text of a STAT answer, "nn mm" (RFC 1939 §5).
func parseStat(text string) (count int, size int64, err error) {
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, 0, starttls.ProtocolError("pop3", "malformed STAT answer %q", starttls.Escape(clip(text, 80)))
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || count < 0 || size < 0 {
		return 0, 0, starttls.ProtocolError("pop3", "malformed STAT answer %q", starttls.Escape(clip(text, 80)))
	}
	return count, size, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// errorf builds a pop3-prefixed error.
func errorf(format string, args ...any) error {
	return fmt.Errorf("pop3: "+format, args...)
}
