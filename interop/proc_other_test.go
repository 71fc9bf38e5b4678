//go:build interop && !linux

package interop

import "os/exec"

// dieWithParent is a no-op where the kernel has no parent-death signal;
// TestMain still stops the lab by pid.
func dieWithParent(*exec.Cmd) {}
