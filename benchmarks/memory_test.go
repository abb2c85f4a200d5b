package benchmarks

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4/middleware"
	"github.com/limitkit/limitkit/core"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
	ulule "github.com/ulule/limiter/v3"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"
)

// BenchmarkMemory compares in-process stores: limitkit's MemoryStore, one row
// per algorithm, against the memory stores of its peers. Every library is set
// up at its documented fastest usage with a limit so high that no call of a
// run is ever denied (the loop checks), so each row measures the cost of an
// admitting decision on a key the store already holds.
func BenchmarkMemory(b *testing.B) {
	var contenders []contender
	for _, alg := range []core.Algorithm{
		core.TokenBucket, core.FixedWindow, core.SlidingWindowCounter,
		core.SlidingWindowLog, core.LeakyBucket,
	} {
		contenders = append(contenders, contender{"limitkit-" + alg.String(), limitkitMemory(alg)})
	}
	contenders = append(contenders,
		contender{"go-limiter", goLimiterMemory},
		contender{"ulule", ululeMemory},
		contender{"throttled", throttledMemory},
		contender{"echo", echoMemory},
		contender{"x-time-rate", xTimeRate},
	)
	runCells(b, contenders)
}

// Generous limits: a run makes at most a few tens of millions of calls, far
// below a billion a year.
const (
	bigCount   = 1_000_000_000
	longPeriod = 365 * 24 * time.Hour
)

// limitkitRule is the rule limitkit's rows enforce. Every algorithm gets
// bigCount per longPeriod except the sliding window log, whose count is
// capped at core.MaxLogCount: with one hot key a run makes millions of calls
// on that key, more than any log admits in a long period, so the hot-key
// cells give it a one-millisecond window, in which it admits a call every
// 10ns on average, faster than any call completes. It then holds up to
// a thousand timestamps (one per microsecond) and drops one about every
// microsecond. With many keys each key sees only a few hundred calls per
// run, so the log keeps the long period and grows, as it would for real
// clients.
func limitkitRule(alg core.Algorithm, nkeys int) core.Rule {
	l := core.Limit{Count: bigCount, Period: longPeriod}
	if alg == core.SlidingWindowLog {
		l.Count = core.MaxLogCount
		if nkeys == 1 {
			l.Period = time.Millisecond
		}
	}
	return core.Rule{Limits: []core.Limit{l}, Algorithm: alg}
}

func limitkitMemory(alg core.Algorithm) func(*testing.B, int) takeFunc {
	return func(b *testing.B, nkeys int) takeFunc {
		rule := limitkitRule(alg, nkeys)
		if err := rule.Validate(); err != nil {
			b.Fatal(err)
		}
		s := core.NewMemoryStore()
		b.Cleanup(func() { s.Close() })
		ctx := context.Background()
		return func(key string) (bool, error) {
			d, err := s.Take(ctx, key, rule, 1)
			return d.Allowed, err
		}
	}
}

// goLimiterMemory is sethvargo/go-limiter's memorystore: a token bucket per
// key behind one read-write-locked map.
func goLimiterMemory(b *testing.B, _ int) takeFunc {
	s, err := memorystore.New(&memorystore.Config{Tokens: bigCount, Interval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(context.Background()) })
	ctx := context.Background()
	return func(key string) (bool, error) {
		_, _, _, ok, err := s.Take(ctx, key)
		return ok, err
	}
}

// ululeMemory is ulule/limiter's memory store: a fixed window per key in a
// sync.Map. Its store prefixes every key, which allocates on every call.
func ululeMemory(b *testing.B, _ int) takeFunc {
	r, err := ulule.NewRateFromFormatted("1000000000-H")
	if err != nil {
		b.Fatal(err)
	}
	lim := ulule.New(ulmemory.NewStore(), r)
	ctx := context.Background()
	return func(key string) (bool, error) {
		c, err := lim.Get(ctx, key)
		return !c.Reached, err
	}
}

// throttledMemory is throttled's GCRA limiter over its memstore without a
// key bound (a plain map, the faster of its two modes; with a bound every
// call takes an LRU's exclusive lock). GCRA updates by compare-and-swap, and
// a hot key contended by every core can lose more than the default ten
// rounds in a row, which throttled reports as an error: the rounds are
// unbounded here so that contention costs time, as it does in the others,
// rather than failing the run.
func throttledMemory(b *testing.B, _ int) takeFunc {
	st, err := memstore.NewCtx(0)
	if err != nil {
		b.Fatal(err)
	}
	return throttledGCRA(b, st)
}

// throttledGCRA is throttled's GCRA limiter over st, the same in the memory
// and Redis families, with its compare-and-swap rounds unbounded.
func throttledGCRA(b *testing.B, st throttled.GCRAStoreCtx) takeFunc {
	lim, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{
		MaxRate:  throttled.PerSec(1_000_000),
		MaxBurst: bigCount,
	})
	if err != nil {
		b.Fatal(err)
	}
	lim.SetMaxCASAttemptsLimit(1 << 30)
	ctx := context.Background()
	return func(key string) (bool, error) {
		limited, _, err := lim.RateLimitCtx(ctx, key, 1)
		return !limited, err
	}
}

// echoMemory is Echo's RateLimiterMemoryStore: an x/time/rate limiter per
// key in a map behind one mutex.
func echoMemory(b *testing.B, _ int) takeFunc {
	s := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate:  bigCount,
		Burst: bigCount,
	})
	return s.Allow
}

// xTimeRate is what many services write by hand: a golang.org/x/time/rate
// limiter per key in a sync.Map, created on first use.
func xTimeRate(b *testing.B, _ int) takeFunc {
	var m sync.Map
	return func(key string) (bool, error) {
		v, ok := m.Load(key)
		if !ok {
			v, _ = m.LoadOrStore(key, rate.NewLimiter(bigCount, bigCount))
		}
		return v.(*rate.Limiter).Allow(), nil
	}
}
