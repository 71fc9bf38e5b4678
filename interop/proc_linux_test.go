//go:build interop

package interop

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send SIGTERM to cmd when the test binary
// exits, so that no lab outlives an interrupted run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
