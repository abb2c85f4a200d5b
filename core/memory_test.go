package core_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
)

func TestMemoryStore_conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock core.Clock) core.Store {
		return core.MemoryInspector{MemoryStore: core.NewMemoryStore(core.MemoryClock(clock))}
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

// The bound is exact, whatever it is, including bounds below the number of
// shards and ones that do not divide among them evenly: it is never
// exceeded, and it is reached. Each shard holds its share of the bound, so
// to reach it every shard must have been sent its share: 40 keys per key of
// the bound leave a shard short with a chance below 1e-12 (with 4 per key,
// a shard of 257's share 2 went short once in about 300 runs). Nothing
// here removes keys but eviction, so a bound exceeded stays exceeded, and
// Len is read every 64 keys.
func TestMemoryStore_boundIsExact(t *testing.T) {
	ctx := context.Background()
	r := core.MustRule("5/minute", core.TokenBucket)
	for _, bound := range []int{1, 3, 255, 257, 1000, 4097} {
		// No sweep: on a slow machine it could drop keys while others fill.
		s := core.NewMemoryStore(core.MemoryMaxKeys(bound), core.MemorySweepInterval(time.Hour))
		most := 0
		for i := range 40*bound + 1000 {
			if _, err := s.Take(ctx, "k"+strconv.Itoa(i), r, 1); err != nil {
				t.Fatal(err)
			}
			if i%64 == 0 {
				most = max(most, s.Len())
			}
		}
		most = max(most, s.Len())
		s.Close()
		if most != bound {
			t.Errorf("bound %d: the store held up to %d keys, want exactly the bound at most and reached", bound, most)
		}
	}
}

func TestMemoryStore_badBoundPanicsNamingIt(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "MemoryMaxKeys(0)") {
			t.Fatalf("recovered %v, want a panic naming MemoryMaxKeys(0)", p)
		}
	}()
	core.NewMemoryStore(core.MemoryMaxKeys(0))
}

// A flood of fresh keys at one instant, each charged once, must not free the
// exhausted clients: eviction takes the keys whose loss gives back the least
// budget. Before eviction weighed budgets, 199 of 200 were admitted again.
func TestMemoryStore_floodDoesNotFreeExhaustedClients(t *testing.T) {
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowLog, core.SlidingWindowCounter, core.TokenBucket, core.LeakyBucket} {
		t.Run(alg.String(), func(t *testing.T) {
			clock := storetest.NewClock()
			clock.Set(30 * time.Second) // mid-window, where windows and flood keys expire alike
			s := core.NewMemoryStore(core.MemoryClock(clock.Now), core.MemoryMaxKeys(20_000))
			defer s.Close()
			ctx := context.Background()
			r := core.MustRule("100/minute", alg)
			for c := range 200 {
				for range 100 {
					s.Take(ctx, "client"+strconv.Itoa(c), r, 1)
				}
			}
			for i := range 100_000 {
				s.Take(ctx, "flood"+strconv.Itoa(i), r, 1)
			}
			freed := 0
			for c := range 200 {
				if d, _ := s.Take(ctx, "client"+strconv.Itoa(c), r, 1); d.Allowed {
					freed++
				}
			}
			if freed > 0 {
				t.Fatalf("%d of 200 exhausted clients admitted again after a flood of 100k keys", freed)
			}
		})
	}
}

// Buckets keep time in whole microseconds: a rate whose interval rounds to
// a different rate by a whole request per window is refused, and the rates
// accepted never sustain more than stated.
func TestBuckets_enforceTheStatedRate(t *testing.T) {
	for _, expr := range []string{"700000/second", "30000/second", "2000/millisecond"} {
		for _, alg := range []core.Algorithm{core.TokenBucket, core.LeakyBucket} {
			if _, err := core.NewRule(expr, alg); err == nil || !strings.Contains(err.Error(), expr) {
				t.Errorf("NewRule(%q, %v): %v, want an error quoting it", expr, alg, err)
			}
		}
	}
	for _, expr := range []string{"7/minute", "3/second", "1000/second", "20000/second"} {
		r := core.MustRule(expr, core.TokenBucket)
		r.Burst = 1
		l := r.Limits[0]
		clock := storetest.NewClock()
		s := core.NewMemoryStore(core.MemoryClock(clock.Now))
		// Ask four times per token over some windows: at most the windows'
		// counts and the burst may pass.
		windows := max(2, 100_000/(4*l.Count))
		step := max(l.Period/time.Duration(4*l.Count), time.Microsecond)
		admitted := int64(0)
		for at := time.Duration(0); at < time.Duration(windows)*l.Period; at += step {
			clock.Set(at)
			if d, _ := s.Take(context.Background(), "k", r, 1); d.Allowed {
				admitted++
			}
		}
		s.Close()
		if most := windows*l.Count + 1; admitted > most || admitted < most-windows {
			t.Errorf("%s: admitted %d over %d windows, want at most %d and no less than %d", expr, admitted, windows, most, most-windows)
		}
	}
}

// Checks of keys the store holds find them without the shard's lock while
// other keys are added (which rebuilds the shards' tables), reset and swept:
// a held key is never lost or doubled meanwhile, so its admissions are
// exactly its count.
func TestMemoryStore_exactWhileTheIndexChanges(t *testing.T) {
	clock := storetest.NewClock() // standing still: nothing expires
	s := core.NewMemoryStore(core.MemoryClock(clock.Now), core.MemorySweepInterval(time.Hour))
	defer s.Close()
	ctx := context.Background()
	const hotKeys, count, workers = 8, 300, 4
	hot := core.MustRule("300/hour", core.FixedWindow)
	other := core.MustRule("1/second", core.TokenBucket)
	var admitted [hotKeys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2 * count * hotKeys / workers {
				k := (i + w) % hotKeys
				if _, err := s.Peek(ctx, "hot"+strconv.Itoa(k), hot, 1); err != nil {
					t.Error(err)
					return
				}
				d, err := s.Take(ctx, "hot"+strconv.Itoa(k), hot, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted[k].Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20_000 {
			key := "other" + strconv.Itoa(i)
			if _, err := s.Take(ctx, key, other, 1); err != nil {
				t.Error(err)
				return
			}
			if i%3 == 0 {
				if err := s.Reset(ctx, key, other); err != nil {
					t.Error(err)
					return
				}
			}
			if i%5000 == 0 {
				s.Sweep()
			}
		}
	}()
	wg.Wait()
	for k := range admitted {
		if n := admitted[k].Load(); n != count {
			t.Errorf("hot%d: %d admitted, want exactly %d", k, n, count)
		}
	}
	if n, want := s.Len(), hotKeys+20_000-(20_000+2)/3; n != want {
		t.Errorf("Len %d, want %d", n, want)
	}
}

// Entries of one rule share what they are kept under; past the store's
// first 1024 one-limit rules a rule's entries have their own, and decide
// the same.
func TestMemoryStore_manyRulesKeepTheirOwnState(t *testing.T) {
	s := core.NewMemoryStore()
	defer s.Close()
	ctx := context.Background()
	const rules = 1500
	for round := range 2 {
		for i := range rules {
			r := core.Rule{Limits: []core.Limit{core.Per(int64(10+i), time.Hour)}, Algorithm: core.FixedWindow}
			for _, key := range []string{"a", "b"} {
				d, err := s.Take(ctx, key, r, 1)
				if err != nil {
					t.Fatal(err)
				}
				if want := int64(10+i) - int64(round) - 1; !d.Allowed || d.Remaining != want {
					t.Fatalf("round %d, rule %d, key %s: %+v, want admitted with %d left", round, i, key, d, want)
				}
			}
		}
	}
	if n := s.Len(); n != 2*rules {
		t.Fatalf("Len %d, want %d", n, 2*rules)
	}
}

// A peek is exactly the decision a take would get, on the memory store's
// fast paths as well as its slow ones: over random arrivals and costs, two
// keys kept in step, one peeked at and then charged, the other charged.
func TestMemoryStore_peekIsTakeWithoutTheCharge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowCounter, core.SlidingWindowLog, core.TokenBucket, core.LeakyBucket} {
		for _, r := range []core.Rule{
			core.MustRule("20/second", alg),
			{Limits: core.MustParseLimits("50/minute"), Algorithm: alg, Burst: 7},
		} {
			clock := storetest.NewClock()
			s := core.NewMemoryStore(core.MemoryClock(clock.Now))
			at := time.Duration(0)
			for i := range 3000 {
				at += time.Duration(rng.Int64N(int64(200 * time.Millisecond)))
				clock.Set(at)
				cost := rng.Int64N(4)
				peeked, err := s.Peek(ctx, "a", r, cost)
				if err != nil {
					t.Fatal(err)
				}
				took, _ := s.Take(ctx, "a", r, cost)
				other, _ := s.Take(ctx, "b", r, cost)
				if peeked != took || took != other {
					t.Fatalf("%v %v step %d at %v cost %d:\npeek %+v\ntake %+v\nother %+v", alg, r, i, at, cost, peeked, took, other)
				}
			}
			s.Close()
		}
	}
}
