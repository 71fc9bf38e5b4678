package irc

import (
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/starttls/starttls/internal/linetest"
)

// TestConcurrentRegisterAndJoin runs two sessions that register, change
// nick, join and message each other at once; run with -race.
func TestConcurrentRegisterAndJoin(t *testing.T) {
	addr := startServer(t, newServer(t))
	var wg sync.WaitGroup
	for i := range 2 {
		c := linetest.Dial(t, addr)
		wg.Add(2)
		go func() {
			defer wg.Done()
			io.Copy(io.Discard, c.Reader())
		}()
		go func() {
			defer wg.Done()
			me, other := fmt.Sprintf("n%d", i), fmt.Sprintf("n%d", 1-i)
			conn := c.Conn()
			fmt.Fprintf(conn, "NICK %s\r\n", me)
			for k := range 30 {
				fmt.Fprintf(conn, "PRIVMSG %s :hi\r\nPRIVMSG %s_%d :hi\r\n", other, other, k)
				if k == 0 {
					fmt.Fprintf(conn, "USER %s 0 * :%s\r\n", me, me)
				}
				fmt.Fprintf(conn, "JOIN #r\r\nNICK %s_%d\r\nPRIVMSG #r :hi\r\nPART #r\r\n", me, k)
			}
			fmt.Fprintf(conn, "QUIT\r\n")
		}()
	}
	wg.Wait()
}
