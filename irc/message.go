package irc

import (
	"fmt"
	"strings"

	"github.com/starttls/starttls"
)

// Limits of the message format.
const (
	// MaxMessageLength is the RFC 1459 §2.3 limit of a message without
	// tags, CRLF included.
	MaxMessageLength = 512
	// MaxTagsLength is the IRCv3 message-tags limit of the tag section sent
	// by a server, leading '@' and trailing space included.
	MaxTagsLength = 8191
	// MaxLineLength is the longest line the client accepts: tags and a
	// message.
	MaxLineLength = MaxTagsLength + MaxMessageLength
	// maxClientLine is the server's default limit: a client may send 4094
	// bytes of tags (IRCv3 message-tags) and a message.
	maxClientLine = 4096 + MaxMessageLength
	// MaxParams is the RFC 2812 §2.3.1 limit: 14 middle parameters and a
	// trailing one.
	MaxParams = 15
	// maxTags bounds the number of tags of one message.
	maxTags = 128
)

// Tag is one IRCv3 message tag. Value is unescaped; Vendor prefixes
// ("example.com/") and the client-only '+' stay in Key.
type Tag struct {
	Key, Value string
}

// Message is one IRC message (RFC 1459 §2.3.1, IRCv3 message-tags).
type Message struct {
	Tags    []Tag
	Prefix  string // without the ':'; "" when absent
	Command string // upper case, or a three-digit numeric
	Params  []string
}

// Param returns parameter i, or "" when there is none.
func (m *Message) Param(i int) string {
	if i < 0 || i >= len(m.Params) {
		return ""
	}
	return m.Params[i]
}

// Trailing returns the last parameter, or "".
func (m *Message) Trailing() string { return m.Param(len(m.Params) - 1) }

// Nick returns the nick of the prefix ("nick!user@host"), or the whole
// prefix when it is a server name.
func (m *Message) Nick() string {
	n, _, _ := strings.Cut(m.Prefix, "!")
	n, _, _ = strings.Cut(n, "@")
	return n
}

// IsNumeric reports whether the command is a three-digit reply.
func (m *Message) IsNumeric() bool { return isNumeric(m.Command) }

func isNumeric(s string) bool {
	return len(s) == 3 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}

// ParseMessage parses one line without its CRLF. It fails with an error
// wrapping starttls.ErrProtocol on an empty line, a missing or malformed
// command, more than MaxParams parameters, a tag section longer than
// MaxTagsLength, or a NUL, CR or LF byte.
func ParseMessage(line string) (*Message, error) {
	if strings.ContainsAny(line, "\x00\r\n") {
		return nil, protoErr("NUL, CR or LF inside the line %q", clip(line, 80))
	}
	m := &Message{}
	rest := line
	if strings.HasPrefix(rest, "@") {
		var tags string
		tags, rest, _ = strings.Cut(rest[1:], " ")
		if len(tags)+2 > MaxTagsLength {
			return nil, protoErr("tag section longer than %d bytes", MaxTagsLength)
		}
		var err error
		if m.Tags, err = parseTags(tags); err != nil {
			return nil, err
		}
		rest = strings.TrimLeft(rest, " ")
	}
	if strings.HasPrefix(rest, ":") {
		m.Prefix, rest, _ = strings.Cut(rest[1:], " ")
		if m.Prefix == "" {
			return nil, protoErr("empty prefix in %q", clip(line, 80))
		}
		rest = strings.TrimLeft(rest, " ")
	}
	var cmd string
	cmd, rest, _ = strings.Cut(rest, " ")
	if !validCommand(cmd) {
		return nil, protoErr("malformed command %q", clip(cmd, 40))
	}
	m.Command = strings.ToUpper(cmd)
	for {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			break
		}
		if len(m.Params) == MaxParams {
			return nil, protoErr("more than %d parameters", MaxParams)
		}
		if rest[0] == ':' {
			m.Params = append(m.Params, rest[1:])
			break
		}
		var p string
		p, rest, _ = strings.Cut(rest, " ")
		m.Params = append(m.Params, p)
	}
	return m, nil
}

// validCommand: 1*letter or 3digit (RFC 2812 §2.3.1).
func validCommand(s string) bool {
	if isNumeric(s) {
		return true
	}
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// parseTags parses "k=v;k2;…" with the IRCv3 value escapes.
func parseTags(s string) ([]Tag, error) {
	if s == "" {
		return nil, protoErr("empty tag section")
	}
	var tags []Tag
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		if len(tags) == maxTags {
			return nil, protoErr("more than %d tags", maxTags)
		}
		k, v, _ := strings.Cut(kv, "=")
		if k == "" || k == "+" {
			return nil, protoErr("empty tag key")
		}
		tags = append(tags, Tag{Key: k, Value: unescapeTag(v)})
	}
	return tags, nil
}

// unescapeTag undoes the message-tags escaping: \: ; \s space, \\ \,
// \r CR, \n LF; a backslash before another character is dropped, a
// trailing one too.
func unescapeTag(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(v) {
			break
		}
		switch v[i] {
		case ':':
			b.WriteByte(';')
		case 's':
			b.WriteByte(' ')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// escapeTag is the inverse of unescapeTag.
func escapeTag(v string) string {
	r := strings.NewReplacer(`\`, `\\`, ";", `\:`, " ", `\s`, "\r", `\r`, "\n", `\n`)
	return r.Replace(v)
}

// String renders the message as a line without CRLF. The last parameter
// is always sent as trailing, with a ':'.
func (m *Message) String() string {
	var b strings.Builder
	if len(m.Tags) > 0 {
		b.WriteByte('@')
		for i, t := range m.Tags {
			if i > 0 {
				b.WriteByte(';')
			}
			b.WriteString(t.Key)
			if t.Value != "" {
				b.WriteByte('=')
				b.WriteString(escapeTag(t.Value))
			}
		}
		b.WriteByte(' ')
	}
	if m.Prefix != "" {
		b.WriteByte(':')
		b.WriteString(m.Prefix)
		b.WriteByte(' ')
	}
	b.WriteString(m.Command)
	for i, p := range m.Params {
		b.WriteByte(' ')
		if i == len(m.Params)-1 {
			b.WriteByte(':')
		}
		b.WriteString(p)
	}
	return b.String()
}

// validate checks that the message can be sent as one line and parsed
// back to itself: no CR, LF or NUL, middle parameters without spaces and
// not starting with ':'.
func (m *Message) validate() error {
	if !validCommand(m.Command) {
		return fmt.Errorf("irc: invalid command %q", starttls.Escape(m.Command))
	}
	if len(m.Params) > MaxParams {
		return fmt.Errorf("irc: more than %d parameters", MaxParams)
	}
	for i, p := range m.Params {
		if strings.ContainsAny(p, "\x00\r\n") {
			return fmt.Errorf("irc: parameter %d contains CR, LF or NUL", i+1)
		}
		if i < len(m.Params)-1 && (p == "" || strings.Contains(p, " ") || p[0] == ':') {
			return fmt.Errorf("irc: middle parameter %d is empty, has a space or starts with ':'", i+1)
		}
	}
	return nil
}

func protoErr(format string, args ...any) error {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = starttls.Escape(s)
		}
	}
	return starttls.ProtocolError("irc", format, args...)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// errorf builds an irc-prefixed error.
func errorf(format string, args ...any) error {
	return fmt.Errorf("irc: "+format, args...)
}
