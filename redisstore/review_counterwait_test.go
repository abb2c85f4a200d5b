package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
)

// TestReview_counterWaitIsLinearInTheWindow shows that a denial under the
// sliding window counter can cost work linear in the window's length in µs,
// in Go (holding a shard's lock) and in Lua (blocking all of Redis).
//
// A plausible quota of bytes, 100 GB per 30 days with the cost taken from the
// request's size: a client that spent 1 byte last window asks for the whole
// quota now. counterWait's fix-up loop `for e > 0 && fits(e-1) { e-- }` then
// walks down µs by µs through the ~2·10^7 µs in which the previous window's
// 1-byte weight is below half an ulp of 10^11 and rounds away. Each such
// request is a 2·10^7-step loop: ~1 s of Redis's single thread per request.
// With count 2^52 and a 2^50 µs window the walk is ~2^49 steps: Redis and
// the memory store's shard hang for good.
//
// Fix: find the first fitting elapsed by a binary search over [0, window]
// (fits is monotone in e in doubles too), in core.counterWait and the Lua
// wait alike.
func TestReview_counterWaitIsLinearInTheWindow(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	rule := core.Rule{Limits: []core.Limit{core.Per(100_000_000_000, 30*24*time.Hour)}, Algorithm: core.SlidingWindowCounter}
	clk := storetest.NewClock()
	mem := core.NewMemoryStore(core.MemoryClock(clk.Now))
	defer mem.Close()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithPrefix("cw:"))
	defer st.Close()
	// Align to the start of a window, spend 1, move to the next window.
	w := 30 * 24 * time.Hour
	clk.Set(w - time.Duration(storetest.Epoch.UnixNano())%w)
	for _, s := range []core.Store{mem, st} {
		if d, err := s.Take(ctx, "bytes", rule, 1); err != nil || !d.Allowed {
			t.Fatalf("%T: %+v %v", s, d, err)
		}
	}
	clk.Advance(w)
	for _, s := range []core.Store{mem, st} {
		start := time.Now()
		d, err := s.Take(ctx, "bytes", rule, rule.Limits[0].Count)
		el := time.Since(start)
		t.Logf("%T: denial took %v: %+v %v", s, el, d, err)
		if el > 20*time.Millisecond {
			t.Errorf("%T: one denied request took %v of store time (want well under a millisecond)", s, el)
		}
	}
}
