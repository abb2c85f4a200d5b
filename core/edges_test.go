package core

// Regression tests from the adversarial review of issue 8.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// collidingRules returns two rules of different shapes whose states of
// one key lie under one hash in the memory store: bucket rules that differ
// only in their burst, which the hash leaves out.
func collidingRules(t *testing.T, s *MemoryStore, key string) (Rule, Rule) {
	r1 := Rule{Limits: []Limit{Per(10, time.Hour)}, Algorithm: TokenBucket}
	r2 := Rule{Limits: []Limit{Per(10, time.Hour)}, Algorithm: TokenBucket, Burst: 100}
	if r1.Validate() != nil || r2.Validate() != nil || r1.Shape() == r2.Shape() {
		t.Fatal("want two valid rules of different shapes")
	}
	if k := (storeKey{id: key}); s.hashOf(k, &r1, TokenBucket) != s.hashOf(k, &r2, TokenBucket) {
		t.Fatal("want the two rules' states of one key under one hash")
	}
	return r1, r2
}

// TestMemoryStore_collidedEntriesAreKeptApart checks the memory store's
// entries of one key under one hash: kept apart, counted in Len, reset one
// at a time, and swept in one pass. It began as a regression test of the
// adversarial review of issue 8, when such entries had a map of their own.
func TestMemoryStore_collidedEntriesAreKeptApart(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	// A bound of 256 keys a shard: the bound is shared out among 256
	// shards, and a bound of 2 a shard (MemoryMaxKeys(512)) evicted one of
	// the three entries below whenever the third landed in the collided
	// pair's shard, one run in 256.
	s := NewMemoryStore(MemoryMaxKeys(1<<16), MemoryClock(func() time.Time { return now }))
	defer s.Close()
	r1, r2 := collidingRules(t, s, "k")
	take := func(r Rule, cost int64) Decision {
		t.Helper()
		d, err := s.Take(ctx, "k", r, cost)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	take(r2, 5)
	take(r1, 10)
	if n := s.Len(); n != 2 {
		t.Fatalf("Len %d, want 2", n)
	}
	if d := take(r2, 1); d.Remaining != r2.Burst-6 {
		t.Fatalf("r2 misread: %+v", d)
	}
	if err := s.Reset(ctx, "k", r2); err != nil { // the first on the probe
		t.Fatal(err)
	}
	if d := take(r1, 1); d.Allowed {
		t.Fatalf("r1 lost its state when r2 was reset: %+v", d)
	}
	if d := take(r2, 1); d.Remaining != r2.Burst-1 {
		t.Fatalf("r2 not reset: %+v", d)
	}
	if n := s.Len(); n != 2 {
		t.Fatalf("Len %d, want 2", n)
	}
	take(MustRule("5/second", FixedWindow), 1)
	if n := s.Len(); n != 3 {
		t.Fatalf("Len %d, want 3", n)
	}
	now = now.Add(time.Duration(1<<50) * time.Microsecond)
	s.Sweep()
	if n := s.Len(); n != 0 {
		t.Fatalf("Len %d after everything expired and a sweep", n)
	}
}

// TestMemoryStore_evictsWhenTheClockGoesBack guards against a finding of the
// review of issue 8, now fixed: the memory store's eviction assumes a loss of
// at most 1, which a bucket's loss exceeds when the reading of now is older
// than the entry's state ((TAT−now)/depth > 1): the clock went back, or, with
// the default clock, a goroutine that read the time before taking the shard's
// lock (as Take does) stalled for longer than the bucket's depth. evictLocked
// starts at best = 2.0 with a nil victim:
//
//   - loss exactly 2.0: `l == best && e.expires < victim.expires` dereferences
//     the nil victim, panicking with the shard's mutex held, so every later
//     call on that shard deadlocks;
//   - loss above 2.0 for every entry: no victim, nothing evicted, and Len
//     exceeds MemoryMaxKeys.
func TestMemoryStore_evictsWhenTheClockGoesBack(t *testing.T) {
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

// TestEnforce_panickingPlanOrExemptIsRecovered guards against a finding of
// the review of issue 8, now fixed: unlike the key and cost functions, a
// panicking planOf (WithPlans) or exempt function (WithExempt) escapes
// Enforce and Handler: under net/http the server then drops the connection
// with no status at all (claim: every request ends with a status; panicking
// functions never escape). A planOf that reads a claim of a token or a header
// the client sends can be made to panic by the client.
func TestEnforce_panickingPlanOrExemptIsRecovered(t *testing.T) {
	lim := New()
	defer lim.Close()
	for name, opt := range map[string]MiddlewareOption{
		"plans":  WithPlans(map[string]string{"pro": "5/minute"}, func(r *http.Request) string { panic("no claims") }),
		"exempt": WithExempt(func(r *http.Request) bool { panic("nil map") }),
	} {
		m := MustNewMiddleware("1/minute", WithLimiter(lim), WithName("p-"+name), opt)
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: Enforce panicked: %v", name, p)
				}
			}()
			m.Enforce(httptest.NewRequest("GET", "/", nil), http.Header{})
		}()
	}
}

// TestByClientIP_forgedHeaderBehindAnXRealIPProxyChoosesNothing guards
// against a finding of the review of issue 8, now fixed: ByClientIP's
// documented default at work behind the most common nginx set-up,
// `proxy_set_header X-Real-IP $remote_addr;` with the client's own
// X-Forwarded-For passed through: the first header present is read, so a
// client that sends X-Forwarded-For picks its identity and a fresh budget per
// request. The doc tells such users to use ByClientIPHeader, but nothing
// warns a user who does not read it.
func TestByClientIP_forgedHeaderBehindAnXRealIPProxyChoosesNothing(t *testing.T) {
	key := MustByClientIP("10.0.0.1")
	ids := map[string]bool{}
	for _, forged := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:5555"
		r.Header.Set("X-Real-IP", "203.0.113.9") // set by nginx: the real client
		r.Header.Set("X-Forwarded-For", forged)  // sent by the client, passed through
		id, _ := key(r)
		ids[id] = true
	}
	if len(ids) != 1 {
		t.Errorf("one client behind an X-Real-IP proxy got %d identities: %v", len(ids), ids)
	}
}
