package imap

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
	"github.com/starttls/starttls/internal/linetest"
)

// TestListSizeBudget: LIST responses each under the response limit but
// together over MaxListBytes fail with ErrLineTooLong.
func TestListSizeBudget(t *testing.T) {
	name := strings.Repeat("m", MaxLiteral-100)
	addr, wait := linetest.FakeServer(t, func(f *linetest.Fake) {
		f.Send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n")
		if !f.Expect(`a1 LIST "" "*"`) {
			return
		}
		// The client hangs up midway: write without failing the test.
		var b strings.Builder
		for range MaxListBytes/len(name) + 2 {
			b.WriteString(`* LIST () "/" {` + strconv.Itoa(len(name)) + "}\r\n" + name + "\r\n")
		}
		b.WriteString("a1 OK\r\n")
		io.WriteString(f.Conn(), b.String())
		f.Drain()
	})
	// 16 MiB through the race detector on a loaded machine takes longer
	// than linetest's usual bound: this bound only stops a hang.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := Dial(ctx, addr, clientOpts(t, starttls.ModePlain))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.List(ctx)
	if !errors.Is(err, starttls.ErrLineTooLong) {
		t.Errorf("List() error = %v, want ErrLineTooLong", err)
	}
	c.conn.Close()
	wait()
}
