package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
)

func reviewMix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// collidingRules finds, in about 2^14 tries, two valid FixedWindow rules of
// different limits that collided under the first Rule.Shape, which chained a
// bijective mixer over count and period with XOR, so that the period could
// cancel any difference of the counts' mixes that fits 50 bits. Shape is now
// a SHA-256, which this construction does not touch.
func collidingRules(t *testing.T) (core.Rule, core.Rule) {
	h0 := reviewMix64(uint64(core.FixedWindow) + 0x9e3779b97f4a7c15)
	const c1 = 10
	a := reviewMix64(h0 ^ c1)
	for c2 := uint64(11); c2 < 1<<24; c2++ {
		x := a ^ reviewMix64(h0^c2)
		if x >= 1<<50 || x <= 1 {
			continue
		}
		r1 := core.Rule{Limits: []core.Limit{core.Per(c1, time.Microsecond)}, Algorithm: core.FixedWindow}
		r2 := core.Rule{Limits: []core.Limit{core.Per(int64(c2), time.Duration(1^x)*time.Microsecond)}, Algorithm: core.FixedWindow}
		if r1.Validate() != nil || r2.Validate() != nil {
			continue
		}
		return r1, r2
	}
	t.Fatal("no collision found")
	return core.Rule{}, core.Rule{}
}

// TestShape_constructedCollisionsOfTheOldMixerAreApart: two rules that
// shared the first 64-bit Shape by construction (found by the review of
// issue 8) have distinct shapes now, and neither store lets one read the
// other's state.
func TestShape_constructedCollisionsOfTheOldMixerAreApart(t *testing.T) {
	r1, r2 := collidingRules(t)
	if r1.Shape() == r2.Shape() {
		t.Fatalf("rules %s and %s share shape %016x", r1.String(), r2.String(), r1.Shape())
	}
	c := redistest.Server(t)
	ctx := context.Background()
	clk := storetest.NewClock()
	mem := core.NewMemoryStore(core.MemoryClock(clk.Now))
	defer mem.Close()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithPrefix("shape:"))
	defer st.Close()
	for _, s := range []core.Store{mem, st} {
		if d, err := s.Take(ctx, "k", r1, r1.Limits[0].Count); err != nil || !d.Allowed {
			t.Fatalf("%T: %+v %v", s, d, err)
		}
		d, err := s.Take(ctx, "k", r2, 1)
		if err != nil || !d.Allowed || d.Remaining != r2.Limits[0].Count-1 {
			t.Errorf("%T: a fresh rule %s on the key reads the other rule's state: %+v %v", s, r2.String(), d, err)
		}
	}
}
