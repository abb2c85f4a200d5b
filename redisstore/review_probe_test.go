package redisstore

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
)

// reviewRules stress the edges of the arithmetic: huge counts (near 2^52),
// the largest sliding log, periods that are not whole milliseconds, counts
// that do not divide the period, bursts, and several limits.
var reviewRules = func() []core.Rule {
	var rs []core.Rule
	big := int64(1) << 52
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		exprs := []core.Rule{
			{Limits: []core.Limit{core.Per(3, 1001*time.Microsecond)}},
			{Limits: []core.Limit{core.Per(7, 3*time.Second)}},
			{Limits: []core.Limit{core.Per(2, time.Second), core.Per(5, 7*time.Second), core.Per(9, 13*time.Second)}},
			{Limits: []core.Limit{core.Per(1, time.Microsecond)}},
			{Limits: []core.Limit{core.Per(3, time.Second+500*time.Nanosecond)}},
		}
		switch alg {
		case core.SlidingWindowLog:
			exprs = append(exprs, core.Rule{Limits: []core.Limit{core.Per(core.MaxLogCount, time.Hour)}})
		case core.TokenBucket, core.LeakyBucket:
			exprs = append(exprs, core.Rule{Limits: []core.Limit{core.Per(1<<20, time.Duration(1<<50)*time.Microsecond)}},
				core.Rule{Limits: []core.Limit{core.Per(4, time.Second), core.Per(10, 5*time.Second)}, Burst: 6},
				core.Rule{Limits: []core.Limit{core.Per(3, 10*time.Microsecond)}, Burst: 1 << 40})
		case core.SlidingWindowCounter:
			// Huge counts hang counterWait (TestReview_counterWaitIsLinearInTheWindow).
		default:
			exprs = append(exprs, core.Rule{Limits: []core.Limit{core.Per(big, time.Duration(1<<50)*time.Microsecond)}},
				core.Rule{Limits: []core.Limit{core.Per(big-1, time.Second), core.Per(big, time.Minute)}})
		}
		for _, r := range exprs {
			r.Algorithm = alg
			if err := r.Validate(); err != nil {
				continue
			}
			rs = append(rs, r)
		}
	}
	return rs
}()

func reviewCost(r *rand.Rand, rule core.Rule) int64 {
	l := rule.Limits[r.IntN(len(rule.Limits))]
	switch x := r.IntN(16); x {
	case 0:
		return 0
	case 1:
		return math.MaxInt64
	case 2:
		return 1 << 62
	case 3:
		return l.Count
	case 4:
		return l.Count + 1
	case 5:
		return l.Count - 1
	case 6:
		if rule.Burst > 0 {
			return rule.Burst + int64(r.IntN(3)) - 1
		}
		return 1 << 53
	case 7:
		return int64(r.Int64N(l.Count + 1))
	default:
		return int64(r.IntN(3))
	}
}

// TestReview_differentialEdges plays random sequences, with the costs an
// attacker would choose (0, huge, exactly the count, one over), on memory
// and Redis, with the clock moving forward by steps of every size and now and
// then back, and requires identical decisions. Keys are shared between
// rules of different shapes too.
func TestReview_differentialEdges(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	for seed := range reviewSeeds() {
		r := rand.New(rand.NewPCG(seed, 99))
		clk := storetest.NewClock()
		var opts []Option
		opts = append(opts, WithClock(clk.Now), WithTimeout(testTimeout), WithPrefix(fmt.Sprintf("rv%d:", seed)))
		if seed%2 == 1 {
			opts = append(opts, WithDenyCache(1000))
		}
		if seed%4 == 2 {
			opts = append(opts, WithBatching(50*time.Microsecond, 16)) // the batched script
		}
		st := New(c, opts...)
		mem := core.NewMemoryStore(core.MemoryClock(clk.Now), core.MemorySweepInterval(time.Hour))
		for i := range 2500 {
			var adv time.Duration
			switch x := r.IntN(100); {
			case x < 30:
				adv = 0
			case x < 60:
				adv = time.Duration(r.IntN(2000)) * time.Microsecond
			case x < 85:
				adv = time.Duration(r.IntN(2_000_000)) * time.Microsecond
			case x < 95:
				adv = time.Duration(r.IntN(3600)) * time.Second
			default:
				adv = -time.Duration(r.IntN(2_000_000)) * time.Microsecond
			}
			clk.Advance(adv)
			ri := r.IntN(len(reviewRules))
			rule := reviewRules[ri]
			cost := reviewCost(r, rule)
			key := fmt.Sprintf("k%d", r.IntN(2))
			want, werr := mem.Take(ctx, key, rule, cost)
			got, gerr := st.Take(ctx, key, rule, cost)
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("seed %d op %d: errors differ: mem %v redis %v", seed, i, werr, gerr)
			}
			cmpWant, cmpGot := want, got
			if seed%2 == 1 {
				// The deny cache's Remaining is Redis's figure at the denial
				// (documented); its RetryAfter and Limit for a larger cost are
				// the smaller cost's (TestReview_denyCacheRetryAfterForALargerCost):
				// compare what it promises never to get wrong.
				cmpWant = core.Decision{Allowed: want.Allowed, Never: want.Never}
				cmpGot = core.Decision{Allowed: got.Allowed, Never: got.Never}
			}
			if cmpWant != cmpGot {
				t.Fatalf("seed %d op %d at +%v: Take(%q, %v %s burst %d, cost %d)\n got  %+v\n want %+v",
					seed, i, clk.Now().Sub(storetest.Epoch), key, rule.Algorithm, rule.String(), rule.Burst, cost, got, want)
			}
			if want.Allowed && cost > 0 {
				for _, l := range rule.Limits {
					b := l.Count
					if rule.Burst > 0 && (rule.Algorithm == core.TokenBucket || rule.Algorithm == core.LeakyBucket) {
						b = rule.Burst
					}
					if cost > b {
						t.Fatalf("seed %d op %d: cost %d admitted over %v (burst %d)", seed, i, cost, l, b)
					}
				}
			}
		}
		mem.Close()
		st.Close()
	}
}

// reviewSeeds is 6 seeds, or REVIEW_SEEDS of them for a longer search.
func reviewSeeds() uint64 {
	if n, err := strconv.Atoi(os.Getenv("REVIEW_SEEDS")); err == nil && n > 0 {
		return uint64(n)
	}
	return 6
}
