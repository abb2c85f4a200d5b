package core_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
)

func TestMemoryStore_conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock core.Clock) core.Store {
		return core.NewMemoryStore(core.MemoryClock(clock))
	})
}

func TestMemoryStore_sweepDropsIdleKeys(t *testing.T) {
	clock := storetest.NewClock()
	s := core.NewMemoryStore(core.MemoryClock(clock.Now))
	defer s.Close()
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowLog, core.SlidingWindowCounter, core.TokenBucket, core.LeakyBucket} {
		r := core.MustRule("5/minute;20/hour", alg)
		for i := range 10 {
			if _, err := s.Take(context.Background(), alg.String()+strconv.Itoa(i), r, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	clock.Set(30 * time.Minute)
	s.Sweep()
	// The buckets refilled their one token within 3 minutes and are gone;
	// the windows of the hourly limits still count.
	if n := s.Len(); n != 30 {
		t.Fatalf("after 30 minutes: %d keys, want the 30 windowed ones", n)
	}
	clock.Set(3 * time.Hour)
	s.Sweep()
	if n := s.Len(); n != 0 {
		t.Fatalf("after the windows passed: %d keys, want 0", n)
	}
}

// A flood of distinct keys cannot grow the store past its bound, and the
// keys that are spending their budgets keep them.
func TestMemoryStore_floodOfKeysStaysBounded(t *testing.T) {
	clock := storetest.NewClock()
	const bound = 4096
	s := core.NewMemoryStore(core.MemoryClock(clock.Now), core.MemoryMaxKeys(bound))
	defer s.Close()
	ctx := context.Background()
	busy := core.MustRule("3/hour", core.TokenBucket)
	flood := core.MustRule("3/second", core.TokenBucket)
	for range 3 {
		if _, err := s.Take(ctx, "busy", busy, 1); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100_000 {
		if _, err := s.Take(ctx, "flood"+strconv.Itoa(i), flood, 1); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 && s.Len() > bound {
			t.Fatalf("after %d keys the store holds %d, over its bound %d", i, s.Len(), bound)
		}
	}
	if n := s.Len(); n > bound {
		t.Fatalf("store holds %d keys, over its bound %d", n, bound)
	}
	d, err := s.Take(ctx, "busy", busy, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed {
		t.Fatalf("the busy key's exhausted budget was evicted by the flood: %+v", d)
	}
}

func TestMemoryStore_closeStopsTheSweeper(t *testing.T) {
	stores := make([]*core.MemoryStore, 20)
	for i := range stores {
		stores[i] = core.NewMemoryStore(core.MemorySweepInterval(time.Millisecond))
	}
	// A new goroutine may not have run yet; wait, boundedly, until the
	// sweepers show, so that the check after Close is not vacuous.
	deadline := time.Now().Add(5 * time.Second)
	for sweepers() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no sweeper running 5s after opening %d stores", len(stores))
		}
		runtime.Gosched()
	}
	for _, s := range stores {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s.Close() // twice is fine
	}
	// Close waits until the sweeper is done; its goroutine may still be on
	// its way out for a moment after that, so give it a bounded while.
	deadline = time.Now().Add(5 * time.Second)
	for sweepers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sweepers still running 5s after Close", sweepers())
		}
		runtime.Gosched()
	}
}

// sweepers counts the goroutines running a memory store's sweeper.
func sweepers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "core.(*MemoryStore).sweeper(")
}

// The hot path allocates nothing on an existing key.
func TestMemoryStore_existingKeyAllocatesNothing(t *testing.T) {
	s := core.NewMemoryStore()
	defer s.Close()
	ctx := context.Background()
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowCounter, core.TokenBucket, core.LeakyBucket} {
		r := core.MustRule("1000000/hour;9000000/day", alg)
		s.Take(ctx, "k", r, 1)
		if n := testing.AllocsPerRun(1000, func() { s.Take(ctx, "k", r, 1) }); n != 0 {
			t.Errorf("%v: %v allocations per decision, want 0", alg, n)
		}
	}
}
