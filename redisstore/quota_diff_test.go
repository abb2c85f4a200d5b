package redisstore

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
)

// TestQuota_decidesAsTheMemoryStore plays random takes, peeks, reservations
// and refunds (of earlier reservations, in part or whole, some long after)
// on the memory store and on Redis, on one driven clock, and fails at the
// first decision that differs: every refund must give back in Redis what it
// gives back in memory, for every algorithm and rule shape. Odd seeds let
// rules of one algorithm share keys, so that a refund comes under another
// rule shape than later charges.
func TestQuota_decidesAsTheMemoryStore(t *testing.T) {
	for seed := range uint64(6) {
		quotaDifferential(t, seed)
	}
}

func quotaDifferential(t *testing.T, seed uint64) {
	c := redistest.Server(t)
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout))
	defer st.Close()
	mem := core.NewMemoryStore(core.MemoryClock(clk.Now), core.MemorySweepInterval(time.Hour))
	defer mem.Close()
	ctx := context.Background()
	type reservation struct {
		o      op
		memC   core.Charge
		redisC core.Charge
	}
	var open []reservation
	r := rand.New(rand.NewPCG(seed, 10))
	for i, o := range randomOps(r, 3000, seed%2 == 1) {
		clk.Advance(o.advance)
		rule := diffRules[o.rule]
		var want, got core.Decision
		var err1, err2 error
		what := "take"
		switch x := r.IntN(10); {
		case x < 3 && len(open) > 0:
			j := r.IntN(len(open))
			rv := open[j]
			open = append(open[:j], open[j+1:]...)
			amount := r.Int64N(rv.memC.Cost + 1)
			if err := mem.Refund(ctx, rv.o.key, diffRules[rv.o.rule], rv.memC, amount); err != nil {
				t.Fatalf("op %d: memory refund: %v", i, err)
			}
			if err := st.Refund(ctx, rv.o.key, diffRules[rv.o.rule], rv.redisC, amount); err != nil {
				t.Fatalf("op %d: redis refund: %v", i, err)
			}
			// Every limit of the refunded key must now decide alike: peek.
			o, rule, what = rv.o, diffRules[rv.o.rule], "peek after a refund"
			want, err1 = mem.Peek(ctx, o.key, rule, 1)
			got, err2 = st.Peek(ctx, o.key, rule, 1)
		case x < 5:
			what = "peek"
			want, err1 = mem.Peek(ctx, o.key, rule, o.cost)
			got, err2 = st.Peek(ctx, o.key, rule, o.cost)
		case x < 8:
			what = "reserve"
			var mc, rc core.Charge
			want, mc, err1 = mem.Reserve(ctx, o.key, rule, o.cost)
			got, rc, err2 = st.Reserve(ctx, o.key, rule, o.cost)
			if want.Allowed && got.Allowed && o.cost > 0 {
				if !mc.At.Equal(rc.At) || mc.Cost != rc.Cost {
					t.Fatalf("op %d: charges differ: memory %+v, redis %+v", i, mc, rc)
				}
				open = append(open, reservation{o, mc, rc})
			}
		default:
			want, err1 = mem.Take(ctx, o.key, rule, o.cost)
			got, err2 = st.Take(ctx, o.key, rule, o.cost)
		}
		if err1 != nil || err2 != nil {
			t.Fatalf("op %d: %s: memory %v, redis %v", i, what, err1, err2)
		}
		if want != got {
			t.Fatalf("seed %d op %d at +%v: %s(%q, %v %s, cost %d)\n got  %+v\n want %+v",
				seed, i, clk.Now().Sub(storetest.Epoch), what, o.key, rule.Algorithm, rule.String(), o.cost, got, want)
		}
	}
}
