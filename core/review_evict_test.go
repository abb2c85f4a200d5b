package core

import (
	"context"
	"testing"
	"time"
)

// TestReview_evictionWhenTheClockGoesBack shows that the memory store's
// eviction assumes a loss of at most 1, which a bucket's loss exceeds when
// the reading of now is older than the entry's state ((TAT−now)/depth > 1):
// the clock went back, or, with the default clock, a goroutine that read the
// time before taking the shard's lock (as Take does) stalled for longer than
// the bucket's depth. evictLocked starts at best = 2.0 with a nil victim:
//
//   - loss exactly 2.0: `l == best && e.expires < victim.expires` dereferences
//     the nil victim, panicking with the shard's mutex held, so every later
//     call on that shard deadlocks;
//   - loss above 2.0 for every entry: no victim, nothing evicted, and Len
//     exceeds MemoryMaxKeys.
//
// Fix: `if victim == nil || l < best || ...` in consider (and clamp loss).
func TestReview_evictionWhenTheClockGoesBack(t *testing.T) {
	ctx := context.Background()
	rule := MustRule("1/second", TokenBucket)
	t.Run("bound", func(t *testing.T) {
		now := time.Unix(1000, 0)
		s := NewMemoryStore(MemoryMaxKeys(1), MemoryClock(func() time.Time { return now }))
		defer s.Close()
		if d, err := s.Take(ctx, "a", rule, 1); err != nil || !d.Allowed {
			t.Fatal(d, err)
		}
		now = now.Add(-3 * time.Second) // loss (TAT−now)/depth = 4
		if _, err := s.Take(ctx, "b", rule, 1); err != nil {
			t.Fatal(err)
		}
		if n := s.Len(); n > 1 {
			t.Errorf("Len %d exceeds MemoryMaxKeys(1)", n)
		}
	})
	t.Run("panic", func(t *testing.T) {
		now := time.Unix(1000, 0)
		s := NewMemoryStore(MemoryMaxKeys(1), MemoryClock(func() time.Time { return now }))
		defer s.Close()
		if d, err := s.Take(ctx, "a", rule, 1); err != nil || !d.Allowed {
			t.Fatal(d, err)
		}
		now = now.Add(-time.Second) // loss exactly 2
		done := make(chan any, 1)
		go func() {
			defer func() { done <- recover() }()
			_, _ = s.Take(ctx, "b", rule, 1)
		}()
		if p := <-done; p != nil {
			t.Errorf("Take panicked (with the shard locked): %v", p)
			locked := make(chan struct{})
			go func() { _, _ = s.Take(ctx, "a", rule, 1); close(locked) }()
			select {
			case <-locked:
			case <-time.After(time.Second):
				t.Errorf("and the shard is now locked for good")
			}
		}
	})
}
