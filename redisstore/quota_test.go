package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/redistest"
)

// TestReserve_chargesAtRedisTime checks that a reservation carries Redis's
// TIME, not the app's clock, so that a refund made by another instance, or
// after the app's clock moved, finds its window.
func TestReserve_chargesAtRedisTime(t *testing.T) {
	s := redistest.Start(t)
	c := s.Client()
	ctx := context.Background()
	st := New(c, WithTimeout(testTimeout))
	rule := core.MustRule("5/minute", core.FixedWindow)
	before, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	d, ch, err := st.Reserve(ctx, "k", rule, 3)
	if err != nil || !d.Allowed || ch.Cost != 3 {
		t.Fatalf("Reserve: %+v, %+v, %v", d, ch, err)
	}
	after, _ := c.Time(ctx).Result()
	if ch.At.Before(before.Truncate(time.Microsecond)) || ch.At.After(after) {
		t.Fatalf("charged at %v; want Redis's time, between %v and %v", ch.At, before, after)
	}
	if err := st.Refund(ctx, "k", rule, ch, 3); err != nil {
		t.Fatal(err)
	}
	if d, err := st.Peek(ctx, "k", rule, 0); err != nil || d.Remaining != 5 {
		t.Fatalf("after the refund: %+v, %v; want 5 remaining", d, err)
	}
	// The refund kept the key's TTL.
	keys := st.keys(nil, "k", rule.Shape(), 1)
	if ttl := c.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL after the refund: %v; want the window's", ttl)
	}
}

// TestRefund_endsCachedDenials checks that a refund forgets the key's
// cached denials, which would otherwise refuse what the refund gave back.
func TestRefund_endsCachedDenials(t *testing.T) {
	s := redistest.Start(t)
	ctx := context.Background()
	st := New(s.Client(), WithTimeout(testTimeout), WithDenyCache(10))
	rule := core.MustRule("2/minute", core.FixedWindow)
	_, ch, err := st.Reserve(ctx, "k", rule, 2)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := st.Take(ctx, "k", rule, 1); d.Allowed {
		t.Fatal("a full budget admitted")
	}
	if err := st.Refund(ctx, "k", rule, ch, 2); err != nil {
		t.Fatal(err)
	}
	if d, err := st.Take(ctx, "k", rule, 1); err != nil || !d.Allowed {
		t.Fatalf("after the refund: %+v, %v; want admitted, not the cached denial", d, err)
	}
}

// TestRefund_ofCorruptStateSaysSo checks that a refund over foreign data
// leaves it alone and reports it.
func TestRefund_ofCorruptStateSaysSo(t *testing.T) {
	s := redistest.Start(t)
	c := s.Client()
	ctx := context.Background()
	st := New(c, WithTimeout(testTimeout))
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		rule := core.MustRule("5/minute", alg)
		key := "corrupt-" + alg.String()
		_, ch, err := st.Reserve(ctx, key, rule, 2)
		if err != nil {
			t.Fatal(err)
		}
		k := st.keys(nil, key, rule.Shape(), 1)[0]
		c.Del(ctx, k)
		c.HSet(ctx, k, "x", "y")
		if err := st.Refund(ctx, key, rule, ch, 1); err == nil || !errorsIsCorrupt(err) {
			t.Fatalf("%v: refund over a hash: %v; want an error wrapping core.ErrCorruptState", alg, err)
		}
		if typ := c.Type(ctx, k).Val(); typ != "hash" {
			t.Fatalf("%v: the foreign data became a %s", alg, typ)
		}
	}
}

func errorsIsCorrupt(err error) bool { return errors.Is(err, core.ErrCorruptState) }
