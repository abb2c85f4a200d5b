//go:build !linux

package benchmarks

import (
	"syscall"
	"time"
)

func redisSysProcAttr() *syscall.SysProcAttr { return nil }

// processCPU is not measured outside Linux.
func processCPU(int) time.Duration { return -1 }
