package redisstore

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
)

// TestReview_logRebase writes a sliding log whose base has passed 2^50, as
// after 2^50 units admitted without the log emptying, and checks that the
// script's rewrite of the running totals keeps the decisions and the log
// right, including a trim right after. It passes: kept as a regression test.
func TestReview_logRebase(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	rule := core.Rule{Limits: []core.Limit{core.Per(10, time.Hour)}, Algorithm: core.SlidingWindowLog}
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithPrefix("rebase:"))
	defer st.Close()
	lk := st.keys(nil, "k", rule.Shape(), 1)[0]
	t0 := clk.Now().UnixMicro()
	b := int64(1)<<50 + 5
	f := func(v int64) string { return strconv.FormatInt(v, 10) }
	if err := c.RPush(ctx, lk, f(b), f(t0), f(b+1), f(t0+1), f(b+3)).Err(); err != nil {
		t.Fatal(err)
	}
	c.PExpire(ctx, lk, 2*time.Hour)
	clk.Advance(2 * time.Microsecond)
	d, err := st.Take(ctx, "k", rule, 2)
	if err != nil || !d.Allowed || d.Remaining != 5 {
		t.Fatalf("%+v %v; want admitted with 5 left", d, err)
	}
	got, _ := c.LRange(ctx, lk, 0, -1).Result()
	want := []string{"0", f(t0), "1", f(t0 + 1), "3", f(t0 + 2), "5"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("log after the rebase %v, want %v", got, want)
	}
	if d, _ := st.Take(ctx, "k", rule, 6); d.Allowed || d.RetryAfter != time.Hour-2*time.Microsecond {
		t.Fatalf("cost 6: %+v; want denied until the first request leaves", d)
	}
	clk.Advance(time.Hour - 2*time.Microsecond) // the first request leaves
	if d, _ := st.Take(ctx, "k", rule, 6); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("cost 6 after the first left: %+v", d)
	}
}
