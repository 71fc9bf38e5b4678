//go:build !plan9

package proxy

import (
	"errors"
	"syscall"
)

// acceptRetryable reports an accept error after which the loop should
// wait and go on: out of descriptors or buffers, or a connection that
// was reset before it was accepted.
func acceptRetryable(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ECONNABORTED)
}
