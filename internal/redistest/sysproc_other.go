//go:build !linux

package redistest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: the cleanup of each
// test kills the server instead.
func sysProcAttr() *syscall.SysProcAttr { return nil }
