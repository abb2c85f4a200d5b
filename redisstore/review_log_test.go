package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
)

// TestReview_fullLogDenialIsCheap fills a 100000/hour sliding log with
// 100000 requests at distinct times (written directly, as the script would),
// and checks that a refused request, and one that expires part of the log,
// decide as the memory store does and take little Redis time. It passes: kept
// as a regression test.
func TestReview_fullLogDenialIsCheap(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	rule := core.Rule{Limits: []core.Limit{core.Per(core.MaxLogCount, time.Hour)}, Algorithm: core.SlidingWindowLog}
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithPrefix("log:"))
	defer st.Close()
	mem := core.NewMemoryStore(core.MemoryClock(clk.Now))
	defer mem.Close()
	lk := st.keys(nil, "full", rule.Shape(), 1)[0]
	t0 := clk.Now().UnixMicro()
	args := []any{"0"}
	for i := range int64(core.MaxLogCount) {
		args = append(args, strconv.FormatInt(t0+i*30000, 10), strconv.FormatInt(i+1, 10))
		if _, err := mem.Take(ctx, "full", rule, 1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(30 * time.Millisecond)
	}
	for i := 0; i < len(args); i += 10000 {
		if err := c.RPush(ctx, lk, args[i:min(i+10000, len(args))]...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c.PExpire(ctx, lk, 2*time.Hour)
	clk.Set(clk.Now().Sub(storetest.Epoch) - 30*time.Millisecond + time.Microsecond)
	for i, step := range []time.Duration{0, time.Microsecond, 29 * time.Millisecond, 10 * time.Minute, time.Second, 0, 30 * time.Minute} {
		clk.Advance(step)
		for _, cost := range []int64{1, 5000, core.MaxLogCount} {
			want, _ := mem.Take(ctx, "full", rule, cost)
			start := time.Now()
			got, err := st.Take(ctx, "full", rule, cost)
			el := time.Since(start)
			if err != nil || got != want {
				t.Fatalf("step %d cost %d: got %+v %v, want %+v", i, cost, got, err, want)
			}
			if el > 20*time.Millisecond && step < 10*time.Minute {
				t.Errorf("step %d cost %d: %v", i, cost, el)
			}
		}
	}
}
