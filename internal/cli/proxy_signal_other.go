//go:build js || plan9

package cli

import "os"

// reloadSignal: there is no SIGHUP here; certificates are reloaded when
// their files change.
var reloadSignal os.Signal
