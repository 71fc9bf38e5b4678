package ldap

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// bigEntry is a SearchResultEntry with n attributes, built as a decoded
// element (more elements than parseMessage accepts).
func bigEntry(n int) *message {
	attrs := make([]element, n)
	for i := range attrs {
		attrs[i] = element{tag: tagSequence, kids: []element{
			{tag: tagOctetString, data: fmt.Appendf(nil, "attribute%d", i)},
			{tag: tagSet, kids: []element{{tag: tagOctetString, data: []byte("value")}}},
		}}
	}
	return &message{id: 2, op: element{tag: opSearchResultEntry, kids: []element{
		{tag: tagOctetString, data: []byte("cn=big")},
		{tag: tagSequence, kids: attrs},
	}}}
}

// bigSearch is a SearchRequest whose filter is an OR of n present filters
// and that asks for n attributes.
func bigSearch(n int) *message {
	var or, attrs []element
	for i := range n {
		name := fmt.Appendf(nil, "attribute%d", i)
		or = append(or, element{tag: classContext | 7, data: name})
		attrs = append(attrs, element{tag: tagOctetString, data: name})
	}
	return &message{id: 3, op: element{tag: opSearchRequest, kids: []element{
		{tag: tagOctetString}, {tag: 0x0a, data: []byte{0}}, {tag: 0x0a, data: []byte{0}},
		{tag: tagInteger, data: []byte{0}}, {tag: tagInteger, data: []byte{0}}, {tag: 0x01, data: []byte{0}},
		{tag: classContext | constructed | 1, kids: or},
		{tag: tagSequence, kids: attrs},
	}}}
}

// TestSummarizeLarge: a message with 50,000 attributes is summarized
// without building more than the 400-byte clip (it used to build the whole
// line by repeated concatenation: quadratic, seconds of CPU per message).
func TestSummarizeLarge(t *testing.T) {
	for name, m := range map[string]*message{"entry": bigEntry(50000), "search": bigSearch(50000)} {
		t.Run(name, func(t *testing.T) {
			var s string
			n := allocated(func() { s = summarize(m) })
			if len(s) > maxSummary+len("…") || !strings.HasSuffix(s, "…") {
				t.Errorf("summary of %d bytes: %q", len(s), s)
			}
			// parseEntry copies the attributes (a few MB); the
			// quadratic summary allocated gigabytes.
			if n > 64<<20 {
				t.Errorf("summarize allocated %d MB", n>>20)
			}
		})
	}
}

// TestSummarizeBudget: stopping at the budget does not change the
// summary, also when the clip falls inside a multi-byte character or an
// escape.
func TestSummarizeBudget(t *testing.T) {
	msgs := []*message{bigEntry(3), bigEntry(40), bigSearch(2), bigSearch(60)}
	for _, v := range []string{"é", "\x01", "日本語", "\xff", strings.Repeat("ü", 300)} {
		for pad := range 8 {
			e := &Entry{DN: "cn=x", Attributes: []Attribute{{Type: strings.Repeat("a", 370+pad), Values: []string{v, v + v}}}}
			m, err := parseMessage(encodeMessage(1, encodeEntry(e)))
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, m)
		}
	}
	for i, m := range msgs {
		if got, want := summarize(m), summarizeBudget(m, 1<<30); got != want {
			t.Errorf("message %d: summary\n%q\nwant\n%q", i, got, want)
		}
	}
}
