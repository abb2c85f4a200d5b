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
	"errors"
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

// ManualClock is a clock the suite drives by hand (core.Clock is the
// function a store reads time from: pass its Now). It is safe for concurrent use.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at Epoch.
func NewClock() *ManualClock { return &ManualClock{now: Epoch} }

// Now reads the clock; pass it as a core.Clock.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to Epoch plus d.
func (c *ManualClock) Set(d time.Duration) {
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
	t.Run("RulesOnOneKeyKeepTheirOwnState", func(t *testing.T) { runRulesOnOneKey(t, newStore) })
	t.Run("HugeCostsAreNeverAdmitted", func(t *testing.T) { runHugeCost(t, newStore) })
	t.Run("HugeCostsLeaveStateIntact", func(t *testing.T) { runHugeCostOnState(t, newStore) })
	t.Run("CostZeroOnlyLooks", func(t *testing.T) { runCostZero(t, newStore) })
	t.Run("EverythingExpires", func(t *testing.T) { runEverythingExpires(t, newStore) })
	t.Run("CorruptStateIsThatKeysAlone", func(t *testing.T) { runCorrupt(t, newStore) })
	t.Run("ClosedStoreSaysSo", func(t *testing.T) { runClosed(t, newStore) })
	t.Run("Concurrency", func(t *testing.T) { runConcurrencyIfAble(t, newStore) }) // concurrency.go
	t.Run("Quota", func(t *testing.T) { runQuota(t, newStore) })
	t.Run("CalendarWindows", func(t *testing.T) { runCalendar(t, newStore) }) // calendar.go
}

// Expirer is implemented by a store, or a test's wrapper of one, that can
// list what it holds without an expiry. Run then checks, after work under
// every algorithm and path, that everything the store wrote expires.
type Expirer interface {
	core.Store
	// Unexpiring names what the store holds that would never expire.
	Unexpiring(ctx context.Context) ([]string, error)
}

// Corrupter is implemented by a store, or a test's wrapper of one, whose
// backend can hold data the store did not write. Run then checks that such
// data under one key fails that key's checks alone, with an error wrapping
// core.ErrCorruptState. A store that cannot hold foreign data, such as the
// memory store, need not implement it.
type Corrupter interface {
	core.Store
	// Corrupt puts foreign data where key's state under rule lives.
	Corrupt(ctx context.Context, key string, rule core.Rule) error
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

func newStore(t *testing.T, f Factory) (core.Store, *ManualClock) {
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
	if d.Index < 0 || d.Index >= len(sc.rule.Limits) || sc.rule.Limits[d.Index] != d.Limit {
		t.Errorf("%s: Index = %d does not point at the deciding limit %v in %v", where, d.Index, d.Limit, sc.rule)
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
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, clock *ManualClock, key string) {
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
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *ManualClock, _ string) {
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
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *ManualClock, key string) {
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
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *ManualClock, key string) {
		admitsExactly(t, st, key, rule("50/hour;300/day", alg, 0), 50)
	})
}

// admitsExactly has 100 goroutines take 10 requests each of rule on key at
// once, and checks that exactly want are admitted and no call fails.
func admitsExactly(t *testing.T, st core.Store, key string, r core.Rule, want int64) {
	t.Helper()
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
	if got := admitted.Load(); got != want {
		t.Fatalf("admitted %d of 1000 concurrent requests, want exactly %d", got, want)
	}
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

// runRulesOnOneKey checks the contract that a key's state belongs to one
// rule shape: rules checked on one key (two middlewares sharing a name, a
// rule and its plan, a rule that gained a limit) never reset, disable or
// misread each other, and Reset forgets one shape only.
func runRulesOnOneKey(t *testing.T, f Factory) {
	type pair struct {
		name string
		a, b core.Rule
	}
	var pairs []pair
	for _, alg := range algorithms {
		other := algorithms[(indexOf(alg)+1)%len(algorithms)]
		pairs = append(pairs,
			pair{alg.String() + "/" + other.String(), rule("10/minute", alg, 0), rule("10/minute", other, 0)},
			pair{alg.String() + "/aLimitMore", rule("10/minute", alg, 0), rule("10/minute;50/hour", alg, 0)},
			pair{alg.String() + "/anotherPeriod", rule("10/minute", alg, 0), rule("10/hour", alg, 0)},
		)
	}
	pairs = append(pairs, pair{"TokenBucket/anotherBurst", rule("10/minute", core.TokenBucket, 0), rule("10/minute", core.TokenBucket, 20)})
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			st, clock := newStore(t, f)
			key := keyFor(t, "k")
			budget := func(r core.Rule) int64 { return max(r.Burst, r.Limits[0].Count) }
			admitted := map[int]int64{}
			// Alternate the two rules, 1ms apart, for three times the
			// larger budget: each must admit exactly its own budget.
			n := 3 * int(max(budget(p.a), budget(p.b)))
			for i := range 2 * n {
				clock.Set(time.Duration(i) * ms)
				r := p.a
				if i%2 == 1 {
					r = p.b
				}
				if d := take(t, st, key, r, 1); d.Allowed {
					admitted[i%2]++
				}
			}
			for i, r := range []core.Rule{p.a, p.b} {
				if admitted[i] != budget(r) {
					t.Errorf("%v (%v) admitted %d of %d alternating requests, want its budget %d", r, r.Algorithm, admitted[i], n, budget(r))
				}
			}
			if err := st.Reset(context.Background(), key, p.a); err != nil {
				t.Fatal(err)
			}
			if d := take(t, st, key, p.a, 1); !d.Allowed {
				t.Errorf("after Reset under %v: %+v, want admitted", p.a, d)
			}
			if d := take(t, st, key, p.b, 1); d.Allowed {
				t.Errorf("Reset under %v freed %v: %+v", p.a, p.b, d)
			}
		})
	}
}

func indexOf(alg core.Algorithm) int {
	for i, a := range algorithms {
		if a == alg {
			return i
		}
	}
	return -1
}

// runHugeCostOnState sends costs far beyond any limit to keys that already
// hold state, under one and several limits: each is refused as Never, and
// the key's budget is exactly what it was.
func runHugeCostOnState(t *testing.T, f Factory) {
	for _, expr := range []string{"5/minute", "5/minute;8/hour"} {
		forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, clock *ManualClock, key string) {
			r := rule(expr, alg, 0)
			take(t, st, key, r, 1)
			for _, cost := range []int64{6, 1 << 40, 1<<53 + 1, 1<<62 + 1<<61, 1<<63 - 1} {
				d := take(t, st, key, r, cost)
				if d.Allowed || !d.Never {
					t.Fatalf("%s: cost %d on a key with state: %+v, want refused as Never", expr, cost, d)
				}
			}
			for i := range 4 {
				if d := take(t, st, key, r, 1); !d.Allowed || d.Remaining != int64(3-i) {
					t.Fatalf("%s: request %d after the huge costs: %+v, want admitted with %d remaining", expr, i+2, d, 3-i)
				}
			}
			if d := take(t, st, key, r, 1); d.Allowed {
				t.Fatalf("%s: sixth request admitted after the huge costs: %+v", expr, d)
			}
		})
	}
}

// runEverythingExpires works every algorithm through its paths (admitted,
// refused, costs, cost 0, the log's expiry) and then asks the store, if it
// can tell, for anything it holds without an expiry.
func runEverythingExpires(t *testing.T, f Factory) {
	st, clock := newStore(t, f)
	x, ok := st.(Expirer)
	if !ok {
		t.Skipf("%T cannot list what it holds without an expiry", st)
	}
	base := keyFor(t, "")
	for _, alg := range algorithms {
		for _, expr := range []string{"3/second", "3/second;5/minute"} {
			key := base + alg.String() + expr
			r := rule(expr, alg, 0)
			clock.Set(0)
			for range 5 {
				take(t, st, key, r, 1)
			}
			take(t, st, key, r, 0)
			take(t, st, key, r, 100)
			// Past the second's window the log trims what left it without
			// charging anything (cost 0), then charges again.
			clock.Set(1500 * ms)
			take(t, st, key, r, 0)
			clock.Set(1600 * ms)
			take(t, st, key, r, 1)
		}
	}
	names, err := x.Unexpiring(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > 0 {
		t.Fatalf("the store holds %d names that never expire, such as %q", len(names), names[0])
	}
}

// runCorrupt puts foreign data under one key and checks that only that key
// fails, with an error wrapping core.ErrCorruptState, while the next key is
// decided as usual.
func runCorrupt(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *ManualClock, key string) {
		c, ok := st.(Corrupter)
		if !ok {
			t.Skipf("%T cannot hold data it did not write", st)
		}
		for _, expr := range []string{"5/minute", "5/minute;8/hour"} {
			r := rule(expr, alg, 0)
			bad, good := key+expr+":bad", key+expr+":good"
			take(t, st, bad, r, 1)
			if err := c.Corrupt(context.Background(), bad, r); err != nil {
				t.Fatal(err)
			}
			if d, err := st.Take(context.Background(), bad, r, 1); !errors.Is(err, core.ErrCorruptState) {
				t.Fatalf("%s: Take on corrupt state: %+v, %v; want an error wrapping core.ErrCorruptState", expr, d, err)
			}
			if d := take(t, st, good, r, 1); !d.Allowed || d.Remaining != 4 {
				t.Fatalf("%s: another key after the corrupt one: %+v, want admitted with 4 remaining", expr, d)
			}
			// Reset clears the foreign data: the key works again.
			if err := st.Reset(context.Background(), bad, r); err != nil {
				t.Fatal(err)
			}
			if d := take(t, st, bad, r, 1); !d.Allowed {
				t.Fatalf("%s: after Reset of the corrupt key: %+v, want admitted", expr, d)
			}
		}
	})
}

// runClosed checks the closed contract: after Close, Take and Reset return
// errors wrapping core.ErrClosed, and closing twice is harmless.
func runClosed(t *testing.T, f Factory) {
	st, _ := newStore(t, f)
	key := keyFor(t, "k")
	r := rule("5/minute", core.SlidingWindowCounter, 0)
	take(t, st, key, r, 1)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if d, err := st.Take(context.Background(), key, r, 1); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Take after Close: %+v, %v; want an error wrapping core.ErrClosed", d, err)
	}
	if err := st.Reset(context.Background(), key, r); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Reset after Close: %v; want an error wrapping core.ErrClosed", err)
	}
}

// runHugeCost checks costs far beyond any limit, where careless arithmetic
// overflows into an admission.
func runHugeCost(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *ManualClock, key string) {
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
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, clock *ManualClock, key string) {
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
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// forEachAlgorithm runs check as a subtest for every algorithm, with a new
// store, its clock, and a key of the subtest's own.
func forEachAlgorithm(t *testing.T, f Factory, check func(t *testing.T, alg core.Algorithm, st core.Store, clock *ManualClock, key string)) {
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			st, clock := newStore(t, f)
			check(t, alg, st, clock, keyFor(t, "k"))
		})
	}
}
