package redistest

import "syscall"

// sysProcAttr kills the server when the test binary dies, even by SIGKILL,
// so that no redis-server outlives a crashed or timed-out test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
