package limittest

import (
	"testing"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
)

// Clock is a clock a test moves by hand (Advance, Set): a limiter on it
// sees time pass only when the test says so, and a test never sleeps for a
// window to pass. It is safe for concurrent use. Its Now is a core.Clock,
// for core.WithClock and core.MemoryClock.
type Clock struct {
	*storetest.ManualClock
}

// NewClock returns a clock standing at storetest.Epoch, the start of a day
// (so of a minute and an hour too): windows start there.
func NewClock() *Clock { return &Clock{storetest.NewClock()} }

// NewLimiter returns a limiter of the test's own, on a memory store driven
// by a new Clock, with opts after it (core.WithStore replaces the memory
// store). It is closed when the test ends. Give it to the middlewares with
// core.WithLimiter: unlike Isolate, that suits parallel tests, each with
// its own router.
func NewLimiter(t testing.TB, opts ...core.Option) (*core.Limiter, *Clock) {
	t.Helper()
	clock := NewClock()
	lim := core.New(append([]core.Option{core.WithClock(clock.Now)}, opts...)...)
	t.Cleanup(func() { lim.Close() })
	return lim, clock
}
