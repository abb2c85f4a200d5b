//go:build !unix

package benchmarks

import "time"

// cpuTime cannot be read here: the benchmarks report wall time only.
func cpuTime() time.Duration { return -1 }
