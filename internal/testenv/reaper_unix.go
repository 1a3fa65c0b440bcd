//go:build unix

package testenv

import "syscall"

// detached puts the reaper in a session of its own, so that signals sent to
// the test run's process group (Ctrl-C, a CI job's kill) do not reach it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
