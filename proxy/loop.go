package proxy

import (
	"errors"
	"fmt"

	"github.com/starttls/starttls/internal/serve"
)

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// serveErr turns an error of the accept loop (internal/serve) into the
// proxy's.
func serveErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, serve.ErrServerClosed):
		return ErrServerClosed
	}
	return fmt.Errorf("proxy: %w", err)
}
