package serve

import (
	"context"
	"log/slog"
	"net"
	"sync"
)

// Sessions is the lifecycle every protocol server shares: a Loop that runs
// one session per connection and logs a panic that escapes a session. The
// zero value is ready to use; a Sessions must not be copied after first use.
type Sessions struct {
	once sync.Once
	loop Loop
}

// Setup returns ss. Its first call only arranges that a panic escaping a
// session is logged by log() at Error level as msg (for instance
// "pop3: panic serving connection"), with the remote address, the panic
// value and the stack, and then runs init unless it is nil; later calls do
// nothing else. Call it before Serve and ServeConn.
func (ss *Sessions) Setup(msg string, log func() *slog.Logger, init func()) *Sessions {
	ss.once.Do(func() {
		ss.loop.OnPanic = func(conn net.Conn, v any, stack []byte) {
			log().Error(msg, "remote", conn.RemoteAddr().String(), "panic", v, "stack", string(stack))
		}
		if init != nil {
			init()
		}
	})
	return ss
}

// Serve accepts connections on l and runs a session on each in its own
// goroutine, with context.Background(), until l fails or Close or Shutdown
// is called; it then returns a non-nil error. The sessions' errors are
// dropped. run must not close conn; Serve does.
func (ss *Sessions) Serve(l net.Listener, run func(ctx context.Context, conn net.Conn) error) error {
	return ss.loop.Serve(l, func(conn net.Conn) {
		run(context.Background(), conn)
	})
}

// ServeConn runs one session on conn, closes conn and returns the session's
// error, or ErrServerClosed (conn closed, run not called) after Close or
// Shutdown. A panic in run is logged and ServeConn returns nil.
func (ss *Sessions) ServeConn(ctx context.Context, conn net.Conn, run func(ctx context.Context, conn net.Conn) error) error {
	var err error
	if lerr := ss.loop.ServeConn(conn, func(conn net.Conn) {
		err = run(ctx, conn)
	}); lerr != nil {
		return lerr
	}
	return err
}

// Close closes the listeners and every connection at once.
func (ss *Sessions) Close() error { return ss.loop.Close() }

// Shutdown closes the listeners, then waits for the sessions to end until
// ctx is done, when it closes their connections.
func (ss *Sessions) Shutdown(ctx context.Context) error { return ss.loop.Shutdown(ctx) }
