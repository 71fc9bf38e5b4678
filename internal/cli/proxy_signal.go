//go:build !js && !plan9

package cli

import (
	"os"
	"syscall"
)

// reloadSignal makes `starttls proxy` reload its certificates.
var reloadSignal os.Signal = syscall.SIGHUP
