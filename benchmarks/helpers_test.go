package benchmarks

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file holds what every benchmark of the module shares: the keys, the
// cells of the comparison and the loop that drives one library through one
// cell. The memory, HTTP and Redis benchmarks all name their results
//
//	Benchmark<Family>/keys=<n>/mode=<serial|parallel>/lib=<library>
//
// so that benchstat (see run.sh) can show each cell as one table with every
// library side by side.
//
// Besides ns/op (wall time) every cell reports cpu-ns/op: the CPU time the
// whole process spent per call, from getrusage. Wall time counts the moments
// the benchmark waited for a core that other work on the machine held; CPU
// time does not, so on a shared machine it is the steadier of the two. In
// the parallel cells it adds up every core's time, so it also counts what
// contention costs (spinning, cache-line traffic) but not time spent asleep
// on a lock.

// manyKeys is the size of the key space of the many-keys cells: enough that
// the keys do not fit in the CPU caches, so lookups pay for what a busy API
// with many clients pays for.
const manyKeys = 100_000

// keyCounts are the key spaces of the cells: one hot key, where every call
// contends for one piece of state, and manyKeys distinct keys.
var keyCounts = []int{1, manyKeys}

var (
	keysOnce sync.Once
	keyPool  []string
)

// benchKeys returns n distinct, pre-built key strings, so that building keys
// is never part of a measurement. Every caller gets a prefix of the same pool.
func benchKeys(n int) []string {
	keysOnce.Do(func() {
		keyPool = make([]string, manyKeys)
		for i := range keyPool {
			keyPool[i] = "client:" + strconv.Itoa(i)
		}
	})
	if n > len(keyPool) {
		panic("benchKeys: at most " + strconv.Itoa(len(keyPool)) + " keys")
	}
	return keyPool[:n:n]
}

// takeFunc makes one rate-limit decision for key and reports whether it was
// admitted. An error means the library failed, not that the call was denied.
type takeFunc func(key string) (bool, error)

// contender is one library (or one algorithm of limitkit) under test.
// setup builds a fresh limiter for a cell of nkeys keys and registers its
// clean-up with b.Cleanup.
type contender struct {
	name  string
	setup func(b *testing.B, nkeys int) takeFunc
}

// runCells runs every contender through every cell, as
// <family>/keys=<n>/mode=<mode>/lib=<name>.
func runCells(b *testing.B, contenders []contender) {
	for _, n := range keyCounts {
		b.Run("keys="+strconv.Itoa(n), func(b *testing.B) {
			for _, mode := range []string{"serial", "parallel"} {
				b.Run("mode="+mode, func(b *testing.B) {
					for _, c := range contenders {
						b.Run("lib="+c.name, func(b *testing.B) {
							take := c.setup(b, n)
							keys := benchKeys(n)
							warm(b, take, keys)
							if mode == "serial" {
								runSerial(b, take, keys)
							} else {
								runParallel(b, take, keys)
							}
						})
					}
				})
			}
		})
	}
}

// warm makes one admitted call on every key, so that the timed calls decide
// on keys the limiter already holds rather than measure their creation.
func warm(b *testing.B, take takeFunc, keys []string) {
	b.Helper()
	for _, k := range keys {
		mustAdmit(b, take, k)
	}
}

func mustAdmit(b *testing.B, take takeFunc, key string) {
	ok, err := take(key)
	if err != nil {
		b.Fatalf("take %q: %v", key, err)
	}
	if !ok {
		b.Fatalf("take %q: denied; every call of the benchmark must be admitted", key)
	}
}

// runSerial cycles through keys on one goroutine.
func runSerial(b *testing.B, take takeFunc, keys []string) {
	b.ReportAllocs()
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		ok, err := take(keys[i])
		if err != nil || !ok {
			b.Fatalf("take %q: admitted=%v err=%v; every call of the benchmark must be admitted", keys[i], ok, err)
		}
		if i++; i == len(keys) {
			i = 0
		}
	}
	reportCPU(b, cpu)
}

// runParallel cycles through keys on GOMAXPROCS goroutines, each starting at
// a different place so that, with many keys, they rarely meet on one.
func runParallel(b *testing.B, take takeFunc, keys []string) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	failed := runWorkers(b, func(n int, pb *testing.PB) string {
		i := n * 7919 % len(keys)
		for pb.Next() {
			ok, err := take(keys[i])
			if err != nil || !ok {
				msg := "take " + strconv.Quote(keys[i]) + ": admitted=" + strconv.FormatBool(ok)
				if err != nil {
					msg += " err=" + err.Error()
				}
				return msg
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
		return ""
	})
	reportCPU(b, cpu)
	if failed != "" {
		b.Fatalf("%s; every call of the benchmark must be admitted", failed)
	}
}

// runWorkers runs work on b.RunParallel's goroutines, numbered from 1, and
// returns the first failure any of them returned, "" if none did. FailNow
// may not be called from those goroutines, so a worker that fails returns
// what went wrong and the caller reports it after RunParallel returns.
func runWorkers(b *testing.B, work func(n int, pb *testing.PB) string) string {
	var (
		worker atomic.Int64
		failed atomic.Pointer[string]
	)
	b.RunParallel(func(pb *testing.PB) {
		if msg := work(int(worker.Add(1)), pb); msg != "" {
			first := msg // allocated only on failure
			failed.CompareAndSwap(nil, &first)
		}
	})
	if msg := failed.Load(); msg != nil {
		return *msg
	}
	return ""
}

// reportCPU reports the process's CPU time per call since start as
// cpu-ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	end := cpuTime()
	if start < 0 || end < 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
}
