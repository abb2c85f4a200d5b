package limittest

import (
	"testing"

	"github.com/limitkit/limitkit/core"
)

// isolatedEnv is what Isolate sets with t.Setenv, which is how it refuses
// a parallel test, as the testing package does for the process's
// environment, the other state one per process.
const isolatedEnv = "LIMITKIT_LIMITTEST_ISOLATED"

// Isolate gives the test a fresh default limiter (core.SetDefault), so
// that every middleware built without core.WithLimiter starts with full
// budgets, on a memory store driven by the Clock it returns; opts follow
// (core.WithStore replaces the memory store). When the test ends the
// limiter is closed and the previous default is back.
//
// The default is one per process, so Isolate panics in a parallel test or
// one with a parallel ancestor, and t.Parallel panics after it, as with
// t.Setenv: a parallel test uses NewLimiter and core.WithLimiter instead.
// Subtests of an isolated test, parallel or not, share its limiter.
func Isolate(t testing.TB, opts ...core.Option) *Clock {
	t.Helper()
	t.Setenv(isolatedEnv, t.Name())
	lim, clock := NewLimiter(t, opts...)
	prev := core.Default()
	core.SetDefault(lim)
	// Registered after NewLimiter's Close, so run before it: the previous
	// default is back before this one closes.
	t.Cleanup(func() { core.SetDefault(prev) })
	return clock
}

// Disable turns limiting off for the test: Isolate with Unlimited's store,
// so that every middleware using the default limiter admits every request,
// and still sends its headers. A middleware given its own limiter with
// core.WithLimiter is not affected: build that limiter with
// core.WithStore(limittest.Unlimited()) in the test.
func Disable(t testing.TB) {
	t.Helper()
	Isolate(t, core.WithStore(Unlimited()))
}
