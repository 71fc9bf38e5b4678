package ldap

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// hostileBER are seeds for the BER decoder (SECURITY.md CL-29, PR-18): huge
// lengths, deep nesting, the indefinite form, truncations.
var hostileBER = [][]byte{
	{0x30, 0x84, 0xff, 0xff, 0xff, 0xff},             // 4 GiB promised
	{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01}, // 2 GiB promised
	{0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00},       // 5-octet length
	{0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00},       // indefinite length
	{0x30, 0x03, 0x02, 0x01},                         // truncated
	{0x30},
	{0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00}, // StartTLS success
	append([]byte{0x30, 0x84, 0x00, 0x00, 0x00, 0x28, 0x02, 0x01, 0x01, 0x78, 0x84, 0x00, 0x00, 0x00, 0x1f, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00, 0x8a, 0x16}, StartTLSOID...),
	{0x30, 0x06, 0x02, 0x09, 0x01, 0x01, 0x01, 0x01}, // INTEGER too long
	{0x30, 0x05, 0x02, 0x01, 0x01, 0x5f, 0x00},       // high tag number
	{0x16, 0x03, 0x01, 0x00, 0x05},                   // a ClientHello
	{0x30, 0x07, 0x02, 0x01, 0xff, 0x42, 0x00},       // negative message ID
	deepNesting(200),
}

func deepNesting(n int) []byte {
	b := []byte{0x04, 0x00}
	for i := 0; i < n && len(b) < 120; i++ {
		b = append([]byte{0x30, byte(len(b))}, b...)
	}
	for i := 0; i < n; i++ {
		b = tlv(0xa0, b)
	}
	return encodeMessage(1, tlv(opSearchRequest, b))
}

// FuzzParseElement: the BER decoder never panics and stays within its
// limits.
func FuzzParseElement(f *testing.F) {
	for _, s := range hostileBER {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseElement(b)
		if err == nil && len(e.data) > len(b) {
			t.Fatalf("contents longer than the input")
		}
		if err != nil && !errors.Is(err, errBER) {
			t.Fatalf("error %v does not wrap errBER", err)
		}
	})
}

// FuzzReadMessage: framing, LDAPMessage parsing, every response parser and
// the transcript summary never panic on hostile bytes, and the framing
// never reads past the first message.
func FuzzReadMessage(f *testing.F) {
	for _, s := range hostileBER {
		f.Add(s)
	}
	f.Add(append(dseEntry(1, StartTLSOID), doneMsg(1, ResultSuccess)...))
	f.Add(bindMsg(3, aliceDN, alicePW))
	f.Add(searchMsg(2, testBase, ScopeSub, "cn", "mail"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		frame, err := readFrame(r, 4096, "fuzz")
		if err != nil {
			return
		}
		if len(frame) > 4096 || !bytes.Equal(frame, b[:len(frame)]) || r.Buffered() != len(b)-len(frame) {
			t.Fatalf("frame of %d bytes from %d, %d buffered", len(frame), len(b), r.Buffered())
		}
		m, err := parseMessage(frame)
		if err != nil {
			return
		}
		s := summarize(m)
		if bytes.Contains([]byte(s), []byte(alicePW)) {
			t.Fatalf("summary shows the password: %s", s)
		}
		parseResult(&m.op)
		parseEntry(&m.op)
		matchFilter(&m.op, &Entry{DN: "x", Attributes: []Attribute{{"cn", []string{"a"}}}}, 0)
	})
}
