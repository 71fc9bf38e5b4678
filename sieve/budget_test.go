package sieve

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestAnswerSizeBudget: literals each under MaxScriptSize but together
// over the per-answer budget fail with ErrLineTooLong.
func TestAnswerSizeBudget(t *testing.T) {
	name := strings.Repeat("n", 700<<10)
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Send(greetingNoTL)
		if !f.Expect("LISTSCRIPTS") {
			return
		}
		// The client hangs up midway: write without failing the test.
		io.WriteString(f.Conn(), "{"+strconv.Itoa(len(name))+"}\r\n"+name+"\r\n"+
			"{"+strconv.Itoa(len(name))+"}\r\n"+name+" ACTIVE\r\nOK\r\n")
		f.Drain()
	})
	ctx := linetest.Ctx(t)
	c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListScripts(ctx)
	if !errors.Is(err, starttls.ErrLineTooLong) {
		t.Errorf("ListScripts() error = %v, want ErrLineTooLong", err)
	}
	c.conn.Close()
	wait()
}
