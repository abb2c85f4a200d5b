package core

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// skewedStore fails calendar rules as the Redis store does for an instance
// whose clock is a window or more from Redis's, and decides the rest.
type skewedStore struct{ mem *MemoryStore }

func (s skewedStore) Take(ctx context.Context, key string, rule Rule, cost int64) (Decision, error) {
	if hasCalendar(rule.Limits) {
		return Decision{}, fmt.Errorf("fake store: take %q: %w", key, ErrClockSkew)
	}
	return s.mem.Take(ctx, key, rule, cost)
}
func (s skewedStore) Reset(ctx context.Context, key string, rule Rule) error {
	return s.mem.Reset(ctx, key, rule)
}
func (s skewedStore) Close() error { return s.mem.Close() }

// A clock too far from the store's fails this instance's calendar limits,
// by the failure policy, and nothing else: the store is not marked down, so
// other rules go on being decided by it.
func TestLimiter_clockSkewFailsOnlyCalendarRules(t *testing.T) {
	rec := &recorder{}
	lim := closeLater(t, WithStore(skewedStore{NewMemoryStore()}), WithFailurePolicy(FailClosed), WithObserver(rec))
	month := MustNewMiddleware("5/calendar month", WithLimiter(lim), WithName("month")).Handler(okHandler)
	minute := MustNewMiddleware("5/minute", WithLimiter(lim), WithName("minute")).Handler(okHandler)
	var codes []int
	for range 2 {
		codes = append(codes, get(month, "/", client).Code, get(minute, "/", client).Code)
	}
	if got := fmt.Sprint(codes); got != "[503 200 503 200]" {
		t.Errorf("codes %s; want the calendar rule refused by FailClosed and the other served", got)
	}
	if lim.health.down.Load() {
		t.Error("store marked down for this instance's clock")
	}
	for _, e := range rec.events {
		if e.Kind == EventStoreDown {
			t.Errorf("store-down event for clock skew: %v", e.Err)
		}
		if e.Kind == EventStoreError && !strings.Contains(e.Err.Error(), "too far") {
			t.Errorf("store error event %v; want the clock skew", e.Err)
		}
	}
}
