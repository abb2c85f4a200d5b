package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
)

// TestReview_denyCacheRetryAfterForALargerCost shows that the deny cache,
// documented as "exact in Allowed and RetryAfter", answers a request of a
// larger cost with the RetryAfter of a smaller cost's denial: the client is
// told to come back before Redis would admit it (and, on a multi-limit rule,
// may be told the wrong Limit). Found by TestReview_differentialEdges.
//
// Fix: answer from the cache only at the same cost (or correct the doc).
func TestReview_denyCacheRetryAfterForALargerCost(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	rule := core.MustRule("10/10 seconds", core.TokenBucket)
	clk := storetest.NewClock()
	cached := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithPrefix("dc1:"), WithDenyCache(100))
	exact := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithPrefix("dc2:"))
	for _, s := range []*Store{cached, exact} {
		if d, err := s.Take(ctx, "k", rule, 10); err != nil || !d.Allowed {
			t.Fatal(d, err)
		}
		if d, err := s.Take(ctx, "k", rule, 1); err != nil || d.Allowed || d.RetryAfter != time.Second {
			t.Fatal(d, err)
		}
	}
	got, _ := cached.Take(ctx, "k", rule, 9)
	want, _ := exact.Take(ctx, "k", rule, 9)
	if got.RetryAfter != want.RetryAfter {
		t.Fatalf("cost 9 after a cached cost-1 denial: RetryAfter %v, Redis says %v", got.RetryAfter, want.RetryAfter)
	}
}
