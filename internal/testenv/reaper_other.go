//go:build !unix

package testenv

import "syscall"

// detached starts the reaper with default attributes where sessions do not exist.
func detached() *syscall.SysProcAttr { return nil }
