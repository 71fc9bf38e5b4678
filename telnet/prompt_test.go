package telnet

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/starttls/starttls"
)

// TestCollectStopSeesTail: the prompt checks run on every byte of text, so
// they see only its tail: linear, however long the banner.
func TestCollectStopSeesTail(t *testing.T) {
	data := strings.Repeat("banner text\r\n", 600) + "login:   "
	o := &starttls.ClientOptions{Transcript: &starttls.Transcript{}}
	c := &Client{opts: o, res: &starttls.Result{Protocol: "telnet", Transcript: o.Transcript}}
	c.setConn(&bytesConn{r: bytes.NewReader([]byte(data))})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	longest := 0
	g, err := c.collect(ctx, 0, 0, func(_ event, text string) bool {
		longest = max(longest, len(text))
		return isLoginPrompt(text)
	})
	if err != nil || !isLoginPrompt(g.text) {
		t.Fatalf("collect = %q, %v; want the login prompt", g.text, err)
	}
	if longest > promptTail {
		t.Errorf("stop saw %d bytes of text, want at most %d", longest, promptTail)
	}
}
