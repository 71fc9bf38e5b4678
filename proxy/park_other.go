//go:build !linux

package proxy

// Without epoll there is no parker: getParker returns nil and the relay
// keeps one goroutine per direction (an idle connection then costs two
// small goroutines instead of one). The methods exist only so that
// relay.go compiles everywhere; a nil parker is never asked.
type parker struct{}

func getParker() *parker { return nil }

func (*parker) park(int, func()) bool { return false }

func (*parker) kick(int) func() { return nil }

func (*parker) forget(int) {}
