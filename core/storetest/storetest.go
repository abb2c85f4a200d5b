// Package storetest is the conformance suite every core.Store must pass.
//
// Run drives a clock and asserts exact decisions (allowed, remaining,
// retry-after, delay) for every algorithm, multi-limit rules, costs, bursts,
// idle expiry, many keys and concurrent callers. Because the expectations are
// exact, two stores that pass it decide the same: this is how the Redis store
// proves it agrees with the memory store.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, clock core.Clock) core.Store {
//			return mystore.New(mystore.WithClock(clock))
//		})
//	}
package storetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

// Factory returns a new, empty store that reads its time from clock. Stores
// that share a backend (one Redis database) may be returned for every call:
// the suite gives every test its own keys.
type Factory func(t *testing.T, clock core.Clock) core.Store

// Epoch is where the suite's clock starts: a whole number of days since the
// Unix epoch, so every window of a second, minute, hour or day starts there.
var Epoch = time.Unix(19676*86400, 0)

// Clock is a clock the suite drives by hand. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at Epoch.
func NewClock() *Clock { return &Clock{now: Epoch} }

// Now reads the clock; pass it as a core.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to Epoch plus d.
func (c *Clock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = Epoch.Add(d)
}

// Run runs the whole suite against the stores newStore makes.
func Run(t *testing.T, newStore Factory) {
	t.Run("Scenarios", func(t *testing.T) { runScenarios(t, newStore) })
	t.Run("RetryAfterIsTheEarliestAdmission", func(t *testing.T) { runRetryProbes(t, newStore) })
	t.Run("IdleKeysStartFresh", func(t *testing.T) { runIdle(t, newStore) })
	t.Run("ManyKeysAreIndependent", func(t *testing.T) { runManyKeys(t, newStore) })
	t.Run("ResetForgetsTheKey", func(t *testing.T) { runReset(t, newStore) })
	t.Run("ConcurrentCallersNeverOverAdmit", func(t *testing.T) { runConcurrent(t, newStore) })
	t.Run("InvalidInputIsAnError", func(t *testing.T) { runInvalid(t, newStore) })
	t.Run("ARuleChangeReadsTheOldStateAsItsOwn", func(t *testing.T) { runRuleChange(t, newStore) })
	t.Run("HugeCostsAreNeverAdmitted", func(t *testing.T) { runHugeCost(t, newStore) })
	t.Run("CostZeroOnlyLooks", func(t *testing.T) { runCostZero(t, newStore) })
}

// step is one request of a scenario and the decision it must get.
type step struct {
	at        time.Duration // since Epoch
	cost      int64         // zero means 1
	allowed   bool
	remaining int64
	retry     time.Duration // RetryAfter
	delay     time.Duration // Delay (leaky bucket)
	reset     time.Duration // ResetAfter; checked when non-zero
	never     bool
	limit     string // the deciding limit; checked when non-empty
}

type scenario struct {
	name  string
	rule  core.Rule
	steps []step
}

func rule(expr string, alg core.Algorithm, burst int64) core.Rule {
	r := core.MustRule(expr, alg)
	r.Burst = burst
	return r
}

const (
	ms = time.Millisecond
	s  = time.Second
)

// scenarios are worked by hand from the semantics in core.Algorithm; the
// comments show the arithmetic.
var scenarios = []scenario{
	{
		name: "FixedWindow/countsUpToTheLimitThenWaitsForTheNextWindow",
		rule: rule("3/second", core.FixedWindow, 0),
		steps: []step{
			{at: 0, allowed: true, remaining: 2, reset: s},
			{at: 0, allowed: true, remaining: 1},
			{at: 100 * ms, allowed: true, remaining: 0, reset: 900 * ms},
			{at: 100 * ms, remaining: 0, retry: 900 * ms},
			{at: 999 * ms, remaining: 0, retry: ms},
			{at: s, allowed: true, remaining: 2},
		},
	},
	{
		name: "FixedWindow/costsAreChargedWhole",
		rule: rule("5/second", core.FixedWindow, 0),
		steps: []step{
			{at: 0, cost: 3, allowed: true, remaining: 2},
			{at: 0, cost: 3, remaining: 2, retry: s},
			{at: 0, cost: 2, allowed: true, remaining: 0},
			{at: 0, cost: 6, remaining: 0, never: true},
			{at: s, cost: 6, remaining: 5, never: true},
			{at: s, cost: 5, allowed: true, remaining: 0},
		},
	},
	{
		name: "SlidingWindowLog/admitsWhatLeftTheLastPeriod",
		rule: rule("3/second", core.SlidingWindowLog, 0),
		steps: []step{
			{at: 0, allowed: true, remaining: 2, reset: s},
			{at: 200 * ms, allowed: true, remaining: 1},
			{at: 400 * ms, allowed: true, remaining: 0},
			// the request at 0 leaves the window (now−1s, now] at 1s
			{at: 600 * ms, remaining: 0, retry: 400 * ms, reset: 800 * ms},
			{at: s, allowed: true, remaining: 0},
			// next out is the one at 200ms, at 1.2s
			{at: 1100 * ms, remaining: 0, retry: 100 * ms},
			{at: 1200 * ms, allowed: true, remaining: 0},
		},
	},
	{
		name: "SlidingWindowLog/aCostWaitsForEnoughToLeave",
		rule: rule("4/second", core.SlidingWindowLog, 0),
		steps: []step{
			{at: 0, allowed: true, remaining: 3},
			{at: 100 * ms, allowed: true, remaining: 2},
			{at: 200 * ms, cost: 2, allowed: true, remaining: 0},
			// cost 3 needs 3 units free: those of 0, 100ms and 200ms (cost 2) must go
			{at: 300 * ms, cost: 3, remaining: 0, retry: 1200*ms - 300*ms},
			{at: 300 * ms, cost: 5, remaining: 0, never: true},
		},
	},
	{
		name: "SlidingWindowCounter/weighsThePreviousWindow",
		rule: rule("4/second", core.SlidingWindowCounter, 0),
		steps: []step{
			{at: 0, allowed: true, remaining: 3, reset: 2 * s},
			{at: 0, allowed: true, remaining: 2},
			{at: 0, allowed: true, remaining: 1},
			{at: 0, allowed: true, remaining: 0},
			// next window: 4·(1−e)+1 ≤ 4 once e ≥ 250ms
			{at: 0, remaining: 0, retry: 1250 * ms},
			{at: 1250 * ms, allowed: true, remaining: 0, reset: 1750 * ms},
			// 4·(1−e)+1+1 ≤ 4 once e ≥ 500ms
			{at: 1250 * ms, remaining: 0, retry: 250 * ms},
			// at 1.75s the estimate is 4·0.25+1 = 2
			{at: 1750 * ms, allowed: true, remaining: 1},
			// two windows later nothing remains of either
			{at: 3 * s, allowed: true, remaining: 3},
		},
	},
	{
		name: "SlidingWindowCounter/costsAndNever",
		rule: rule("10/minute", core.SlidingWindowCounter, 0),
		steps: []step{
			{at: 0, cost: 10, allowed: true, remaining: 0},
			{at: 30 * s, cost: 11, remaining: 0, never: true},
			// next window: 10·(60−e)/60 + 5 ≤ 10 once e ≥ 30s
			{at: 30 * s, cost: 5, remaining: 0, retry: 60 * s},
			{at: 90 * s, cost: 5, allowed: true, remaining: 0},
		},
	},
	{
		name: "TokenBucket/refillsContinuously",
		rule: rule("2/second", core.TokenBucket, 0),
		steps: []step{
			{at: 0, allowed: true, remaining: 1, reset: 500 * ms},
			{at: 0, allowed: true, remaining: 0, reset: s},
			{at: 0, remaining: 0, retry: 500 * ms, reset: s},
			{at: 250 * ms, remaining: 0, retry: 250 * ms},
			{at: 500 * ms, allowed: true, remaining: 0},
			{at: 5 * s, allowed: true, remaining: 1},
		},
	},
	{
		name: "TokenBucket/burstAboveTheRate",
		rule: rule("1/second", core.TokenBucket, 3),
		steps: []step{
			{at: 0, allowed: true, remaining: 2},
			{at: 0, allowed: true, remaining: 1},
			{at: 0, allowed: true, remaining: 0},
			{at: 0, remaining: 0, retry: s},
			{at: 0, cost: 4, remaining: 0, never: true},
			{at: 10 * s, cost: 3, allowed: true, remaining: 0},
			{at: 10 * s, cost: 2, remaining: 0, retry: 2 * s},
		},
	},
	{
		name: "LeakyBucket/queuesAtTheRate",
		rule: rule("2/second", core.LeakyBucket, 3),
		steps: []step{
			{at: 0, allowed: true, remaining: 2, delay: 0},
			{at: 0, allowed: true, remaining: 1, delay: 500 * ms},
			{at: 0, allowed: true, remaining: 0, delay: s},
			// the queue is full until the first slot drains at 500ms
			{at: 0, remaining: 0, retry: 500 * ms},
			{at: 600 * ms, allowed: true, remaining: 0, delay: 900 * ms},
			{at: 10 * s, allowed: true, remaining: 2, delay: 0},
		},
	},
	{
		name: "MultiLimit/everyLimitMustAdmitAndADenialChargesNone",
		rule: rule("2/second;3/minute", core.FixedWindow, 0),
		steps: []step{
			{at: 0, allowed: true, remaining: 1, limit: "2/second"},
			{at: 0, allowed: true, remaining: 0, limit: "2/second"},
			{at: 0, remaining: 0, retry: s, limit: "2/second"},
			// the denial above charged nothing, so one remains per minute
			{at: s, allowed: true, remaining: 0, limit: "3/minute"},
			{at: 2 * s, remaining: 0, retry: 58 * s, limit: "3/minute"},
			{at: 60 * s, allowed: true, remaining: 1, limit: "2/second"},
		},
	},
	{
		name: "MultiLimit/tokenBucketsChargedTogether",
		rule: rule("1/second;2/minute", core.TokenBucket, 0),
		steps: []step{
			{at: 0, allowed: true, remaining: 0, limit: "1/second"},
			{at: s, allowed: true, remaining: 0},
			// 1/second has a token; 2/minute refills one per 30s, from 0
			{at: 2 * s, remaining: 0, retry: 28 * s, limit: "2/minute"},
			{at: 30 * s, allowed: true, remaining: 0},
		},
	},
}

// keyFor gives every test its own keys, so stores may share a backend.
func keyFor(t *testing.T, suffix string) string {
	return "storetest:" + t.Name() + ":" + suffix + ":" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

func newStore(t *testing.T, f Factory) (core.Store, *Clock) {
	t.Helper()
	c := NewClock()
	st := f(t, c.Now)
	t.Cleanup(func() { st.Close() })
	return st, c
}

func take(t *testing.T, st core.Store, key string, r core.Rule, cost int64) core.Decision {
	t.Helper()
	d, err := st.Take(context.Background(), key, r, cost)
	if err != nil {
		t.Fatalf("Take(%q, %v, %d): %v", key, r, cost, err)
	}
	return d
}

func (sc scenario) check(t *testing.T, i int, d core.Decision) {
	t.Helper()
	want := sc.steps[i]
	where := fmt.Sprintf("step %d (at %v, cost %d)", i, want.at, max(want.cost, 1))
	if d.Allowed != want.allowed {
		t.Fatalf("%s: Allowed = %v, want %v (%+v)", where, d.Allowed, want.allowed, d)
	}
	if d.Remaining != want.remaining {
		t.Errorf("%s: Remaining = %d, want %d", where, d.Remaining, want.remaining)
	}
	if d.RetryAfter != want.retry {
		t.Errorf("%s: RetryAfter = %v, want %v", where, d.RetryAfter, want.retry)
	}
	if d.Delay != want.delay {
		t.Errorf("%s: Delay = %v, want %v", where, d.Delay, want.delay)
	}
	if d.Never != want.never {
		t.Errorf("%s: Never = %v, want %v", where, d.Never, want.never)
	}
	if want.reset != 0 && d.ResetAfter != want.reset {
		t.Errorf("%s: ResetAfter = %v, want %v", where, d.ResetAfter, want.reset)
	}
	if want.limit != "" && d.Limit.String() != want.limit {
		t.Errorf("%s: Limit = %v, want %s", where, d.Limit, want.limit)
	}
}

func runScenarios(t *testing.T, f Factory) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			st, clock := newStore(t, f)
			key := keyFor(t, "k")
			for i, s := range sc.steps {
				clock.Set(s.at)
				sc.check(t, i, take(t, st, key, sc.rule, max(s.cost, 1)))
			}
		})
	}
}

// runRetryProbes checks every retryable denial of every scenario: replayed on
// a fresh key, the same request is still denied a microsecond before
// RetryAfter and admitted at it.
func runRetryProbes(t *testing.T, f Factory) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			st, clock := newStore(t, f)
			for i, s := range sc.steps {
				if s.allowed || s.never {
					continue
				}
				key := keyFor(t, strconv.Itoa(i))
				for _, p := range sc.steps[:i] {
					clock.Set(p.at)
					take(t, st, key, sc.rule, max(p.cost, 1))
				}
				cost := max(s.cost, 1)
				clock.Set(s.at + s.retry - time.Microsecond)
				if d := take(t, st, key, sc.rule, cost); d.Allowed {
					t.Errorf("step %d: admitted 1µs before its RetryAfter %v", i, s.retry)
				}
				clock.Set(s.at + s.retry)
				if d := take(t, st, key, sc.rule, cost); !d.Allowed {
					t.Errorf("step %d: denied at its RetryAfter %v: %+v", i, s.retry, d)
				}
			}
		})
	}
}

var algorithms = []core.Algorithm{core.FixedWindow, core.SlidingWindowLog, core.SlidingWindowCounter, core.TokenBucket, core.LeakyBucket}

func runIdle(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, clock *Clock, key string) {
		r := rule("5/minute", alg, 0)
		for range 5 {
			take(t, st, key, r, 1)
		}
		if d := take(t, st, key, r, 1); d.Allowed {
			t.Fatalf("sixth request admitted: %+v", d)
		}
		clock.Set(10 * time.Minute)
		d := take(t, st, key, r, 1)
		if !d.Allowed || d.Remaining != 4 || d.Delay != 0 {
			t.Fatalf("after 10 idle minutes: %+v, want allowed with 4 remaining and no delay", d)
		}
	})
}

func runManyKeys(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *Clock, _ string) {
		r := rule("2/hour", alg, 0)
		base := keyFor(t, "")
		for i := range 200 {
			key := base + strconv.Itoa(i)
			for j := range 3 {
				d := take(t, st, key, r, 1)
				if d.Allowed != (j < 2) {
					t.Fatalf("key %d request %d: Allowed = %v", i, j, d.Allowed)
				}
			}
		}
	})
}

func runReset(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *Clock, key string) {
		r := rule("1/hour;2/day", alg, 0)
		take(t, st, key, r, 1)
		if d := take(t, st, key, r, 1); d.Allowed {
			t.Fatalf("second request admitted: %+v", d)
		}
		if err := st.Reset(context.Background(), key, r); err != nil {
			t.Fatal(err)
		}
		if d := take(t, st, key, r, 1); !d.Allowed {
			t.Fatalf("after Reset: %+v, want allowed", d)
		}
	})
}

// runConcurrent sends 100 goroutines of 10 requests each at one key: exactly
// the limit is admitted, never more.
func runConcurrent(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *Clock, key string) {
		r := rule("50/hour;300/day", alg, 0)
		var admitted, failed atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range 10 {
					d, err := st.Take(context.Background(), key, r, 1)
					if err != nil {
						failed.Add(1)
					} else if d.Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("%d calls failed", failed.Load())
		}
		if got := admitted.Load(); got != 50 {
			t.Fatalf("admitted %d of 1000 concurrent requests, want exactly 50", got)
		}
	})
}

func runInvalid(t *testing.T, f Factory) {
	st, _ := newStore(t, f)
	key := keyFor(t, "k")
	bad := []struct {
		name string
		rule core.Rule
		cost int64
	}{
		{"noLimits", core.Rule{}, 1},
		{"zeroCount", core.Rule{Limits: []core.Limit{{Count: 0, Period: time.Second}}}, 1},
		{"zeroPeriod", core.Rule{Limits: []core.Limit{{Count: 1}}}, 1},
		{"negativeCost", rule("1/second", core.FixedWindow, 0), -1},
		{"logTooLong", core.Rule{Limits: []core.Limit{{Count: core.MaxLogCount + 1, Period: time.Hour}}, Algorithm: core.SlidingWindowLog}, 1},
		{"bucketFasterThanAMicrosecond", core.Rule{Limits: []core.Limit{{Count: 2000, Period: time.Millisecond}}, Algorithm: core.TokenBucket}, 1},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			if d, err := st.Take(context.Background(), key, b.rule, b.cost); err == nil {
				t.Fatalf("Take accepted an invalid request: %+v", d)
			}
		})
	}
}

// runRuleChange checks a key whose rule changes, as when a client changes
// plan: state kept under one period is read under the next as the
// algorithm's semantics say, not as if the windows still lined up.
func runRuleChange(t *testing.T, f Factory) {
	type call struct {
		at        time.Duration
		rule      core.Rule
		allowed   bool
		remaining int64
		reset     time.Duration
	}
	fast, slow := rule("5/second", core.FixedWindow, 0), rule("3/2 seconds", core.FixedWindow, 0)
	cfast, cslow := rule("5/second", core.SlidingWindowCounter, 0), rule("6/2 seconds", core.SlidingWindowCounter, 0)
	tests := []struct {
		name  string
		calls []call
	}{
		{"FixedWindow", []call{
			{at: 11500 * ms, rule: fast, allowed: true, remaining: 4, reset: 500 * ms},
			// the 2s window containing 12.05s starts at 12s, after the stored 11s
			{at: 12050 * ms, rule: slow, allowed: true, remaining: 2, reset: 1950 * ms},
			{at: 12100 * ms, rule: slow, allowed: true, remaining: 1, reset: 1900 * ms},
		}},
		{"SlidingWindowCounter", []call{
			{at: 11500 * ms, rule: cfast, allowed: true, remaining: 4},
			// the stored window starts at 11s, neither the 2s window of 12.5s
			// (12s) nor the one before it (10s): nothing of it counts
			{at: 12500 * ms, rule: cslow, allowed: true, remaining: 5, reset: 3500 * ms},
			{at: 12500 * ms, rule: cslow, allowed: true, remaining: 4},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, clock := newStore(t, f)
			key := keyFor(t, "k")
			for i, c := range tt.calls {
				clock.Set(c.at)
				d := take(t, st, key, c.rule, 1)
				if d.Allowed != c.allowed || d.Remaining != c.remaining || (c.reset != 0 && d.ResetAfter != c.reset) {
					t.Errorf("call %d (%v at %v): %+v, want allowed %v, remaining %d, reset %v", i, c.rule, c.at, d, c.allowed, c.remaining, c.reset)
				}
			}
		})
	}
}

// runHugeCost checks costs far beyond any limit, where careless arithmetic
// overflows into an admission.
func runHugeCost(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *Clock, key string) {
		for _, cost := range []int64{1 << 40, 1<<62 + 1<<61, 1<<63 - 1} {
			d, err := st.Take(context.Background(), key, rule("5/second", alg, 0), cost)
			if err == nil && d.Allowed {
				t.Fatalf("cost %d admitted: %+v", cost, d)
			}
			if err == nil && !d.Never {
				t.Errorf("cost %d: Never = false, want true", cost)
			}
		}
	})
}

// runCostZero checks that a request of cost 0 reports the state and charges
// nothing, even when it is repeated.
func runCostZero(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, clock *Clock, key string) {
		r := rule("2/minute", alg, 0)
		take(t, st, key, r, 1)
		for i := range 5 {
			clock.Set(time.Duration(i) * ms)
			if d := take(t, st, key, r, 0); !d.Allowed || d.Remaining != 1 {
				t.Fatalf("look %d: %+v, want allowed with 1 remaining", i, d)
			}
		}
		if d := take(t, st, key, r, 1); !d.Allowed {
			t.Fatalf("after looking: %+v, want the second request admitted", d)
		}
		if d := take(t, st, key, r, 1); d.Allowed {
			t.Fatalf("third request admitted: %+v", d)
		}
	})
}

// Advance moves the clock by d, which may be negative.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// forEachAlgorithm runs check as a subtest for every algorithm, with a new
// store, its clock, and a key of the subtest's own.
func forEachAlgorithm(t *testing.T, f Factory, check func(t *testing.T, alg core.Algorithm, st core.Store, clock *Clock, key string)) {
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			st, clock := newStore(t, f)
			check(t, alg, st, clock, keyFor(t, "k"))
		})
	}
}
