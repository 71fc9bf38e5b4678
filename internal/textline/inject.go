package textline

import "fmt"

// WriteLinesThen writes lines like WriteLines and then extra, raw, in the
// same flush (one TCP segment when small). Servers use it for the upgrade
// go-ahead so that the stripping simulator can append forged replies
// (ServerOptions.InjectAfterGoAhead); with an empty extra it is WriteLines.
func (c *Conn) WriteLinesThen(extra []byte, lines ...string) error {
	if len(extra) == 0 {
		return c.WriteLines(lines...)
	}
	for _, s := range lines {
		if containsNewline(s) {
			return fmt.Errorf("%s: refusing to send a line containing CR or LF", c.opts.Proto)
		}
	}
	for _, s := range lines {
		c.opts.Transcript.Add(c.opts.Local, c.tls, s)
		c.w.WriteString(s)
		c.w.WriteString("\r\n")
	}
	c.opts.Transcript.Add(c.opts.Local, c.tls, fmt.Sprintf("(%d bytes injected after the go-ahead)", len(extra)))
	c.w.Write(extra)
	return c.wrap(c.w.Flush())
}

func containsNewline(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			return true
		}
	}
	return false
}
