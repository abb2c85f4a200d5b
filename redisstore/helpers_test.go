package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/redis/go-redis/v9"
)

// testTimeout replaces the store's default timeout in tests that count any
// error as a failure, so that a loaded machine does not fail them.
const testTimeout = 10 * time.Second

// op is one request of a differential test.
type op struct {
	advance time.Duration // move the clock by this much first (may be < 0)
	key     string
	rule    int // index into diffRules
	cost    int64
}

// diffRules cover every algorithm, multi-limit rules, odd periods that do
// not divide evenly, and bursts.
var diffRules = func() []core.Rule {
	var rs []core.Rule
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		for _, expr := range []string{"5/second", "3/2 seconds", "7/second;20/10 seconds", "2/second;4/3 seconds;9/7 seconds"} {
			rs = append(rs, core.MustRule(expr, alg))
		}
		if alg == core.TokenBucket || alg == core.LeakyBucket {
			r := core.MustRule("4/second;10/5 seconds", alg)
			r.Burst = 6
			rs = append(rs, r)
		}
	}
	rs = append(rs, core.Rule{Limits: []core.Limit{core.Per(3, 700*time.Microsecond)}, Algorithm: core.SlidingWindowCounter})
	rs = append(rs, core.Rule{Limits: []core.Limit{core.Per(3, 1001*time.Microsecond)}, Algorithm: core.TokenBucket})
	return rs
}()

// randomOps returns n requests on a few keys at random times: mostly small
// steps, some long idles, equal times (which the log merges), and now and
// then a step back in time. With shared, the rules of one algorithm and
// number of limits share keys, and so their state, as after a change of
// configuration; else every rule has keys of its own.
func randomOps(r *rand.Rand, n int, shared bool) []op {
	ops := make([]op, n)
	for i := range ops {
		var adv time.Duration
		switch x := r.IntN(100); {
		case x < 25:
			adv = 0
		case x < 80:
			adv = time.Duration(r.IntN(300_000)) * time.Microsecond
		case x < 95:
			adv = time.Duration(r.IntN(4_000_000)) * time.Microsecond
		case x < 98:
			adv = time.Duration(r.IntN(20)) * time.Second
		default:
			adv = -time.Duration(r.IntN(50_000)) * time.Microsecond
		}
		ri := r.IntN(len(diffRules))
		rule := diffRules[ri]
		cost := int64(1)
		switch x := r.IntN(20); {
		case x == 0:
			cost = 0
		case x < 4:
			cost = int64(r.IntN(12))
		}
		key := fmt.Sprintf("k%d/rule%d", r.IntN(3), ri)
		if shared {
			key = fmt.Sprintf("k%d/%v/%d", r.IntN(3), rule.Algorithm, len(rule.Limits))
		}
		ops[i] = op{advance: adv, key: key, rule: ri, cost: cost}
	}
	return ops
}

// runDifferential plays ops on the memory store and on the store under test,
// both on clk, and fails at the first decision that differs as compare sees
// it.
func runDifferential(t *testing.T, clk *storetest.ManualClock, st core.Store, ops []op, compare func(want, got core.Decision) bool) {
	t.Helper()
	mem := core.NewMemoryStore(core.MemoryClock(clk.Now), core.MemorySweepInterval(time.Hour))
	t.Cleanup(func() { mem.Close() })
	ctx := context.Background()
	for i, o := range ops {
		clk.Advance(o.advance)
		rule := diffRules[o.rule]
		want, err := mem.Take(ctx, o.key, rule, o.cost)
		if err != nil {
			t.Fatalf("op %d: memory store: %v", i, err)
		}
		got, err := st.Take(ctx, o.key, rule, o.cost)
		if err != nil {
			t.Fatalf("op %d: %+v: %v", i, o, err)
		}
		if !compare(want, got) {
			t.Fatalf("op %d at +%v: Take(%q, %v %s, cost %d)\n got  %+v\n want %+v",
				i, clk.Now().Sub(storetest.Epoch), o.key, rule.Algorithm, rule.String(), o.cost, got, want)
		}
	}
}

func equal(want, got core.Decision) bool { return want == got }

// dbKeys lists every key of a standalone Redis; SCAN also makes Redis drop
// the expired keys it meets.
func dbKeys(t *testing.T, c *redis.Client) []string {
	t.Helper()
	var all []string
	iter := c.Scan(context.Background(), 0, "*", 1000).Iterator()
	for iter.Next(context.Background()) {
		all = append(all, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return all
}
