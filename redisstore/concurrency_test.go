package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/redistest"
)

// TestConcurrency_leasesExpireInRedisTime runs without a driven clock: the
// script reads Redis's TIME, and a lease nobody renews frees its slot
// within its TTL. The bound is generous (a loaded machine); there is no
// lower bound but the first refusal, which is checked only when it came
// well within the TTL.
func TestConcurrency_leasesExpireInRedisTime(t *testing.T) {
	c := redistest.Server(t)
	st := New(c, WithTimeout(testTimeout))
	ctx := context.Background()
	lim := core.Concurrency{Limit: 1, TTL: 300 * time.Millisecond}
	start := time.Now()
	if d, err := st.Acquire(ctx, "k", "a", lim); err != nil || !d.Allowed {
		t.Fatalf("first acquire: %+v, %v", d, err)
	}
	d, err := st.Acquire(ctx, "k", "b", lim)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < lim.TTL/2 && (d.Allowed || d.NextExpiry <= 0 || d.NextExpiry > lim.TTL) {
		t.Fatalf("second acquire within the TTL: %+v, want refused with the next expiry within the TTL", d)
	}
	// The set outlives no lease: its TTL is at most the lease's, and, read
	// well within the TTL, still positive (a loaded machine may read it
	// after the lease has gone, and the set with it).
	ttl, err := c.PTTL(ctx, st.leaseKey("k")).Result()
	if err != nil || ttl == -time.Nanosecond || ttl > lim.TTL || (ttl <= 0 && time.Since(start) < lim.TTL/2) { // -1: no TTL
		t.Fatalf("PTTL of the lease set = %v, %v; want within (0, %v]", ttl, err, lim.TTL)
	}
	for !d.Allowed {
		if time.Since(start) > lim.TTL+5*time.Second {
			t.Fatalf("the slot of an unrenewed lease of %v is not back after %v", lim.TTL, time.Since(start))
		}
		time.Sleep(10 * time.Millisecond) // polling Redis's clock: no event to wait on
		if d, err = st.Acquire(ctx, "k", "b", lim); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("slot back %v after the acquire of a lease of %v", time.Since(start), lim.TTL)
}

// TestConcurrency_corruptKeyIsThatKeysAlone plants a string where a key's
// leases live: that key's calls fail with ErrCorruptState, others work.
func TestConcurrency_corruptKeyIsThatKeysAlone(t *testing.T) {
	c := redistest.Server(t)
	st := New(c, WithTimeout(testTimeout))
	ctx := context.Background()
	lim := core.Concurrency{Limit: 1, TTL: time.Minute}
	if err := c.Set(ctx, st.leaseKey("bad"), "foreign", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Acquire(ctx, "bad", "a", lim); !errors.Is(err, core.ErrCorruptState) {
		t.Errorf("Acquire on corrupt state: %v, want ErrCorruptState", err)
	}
	if err := st.Renew(ctx, "bad", "a", time.Minute); !errors.Is(err, core.ErrCorruptState) {
		t.Errorf("Renew on corrupt state: %v, want ErrCorruptState", err)
	}
	if err := st.Release(ctx, "bad", "a"); !errors.Is(err, core.ErrCorruptState) {
		t.Errorf("Release on corrupt state: %v, want ErrCorruptState", err)
	}
	if d, err := st.Acquire(ctx, "good", "a", lim); err != nil || !d.Allowed {
		t.Errorf("another key: %+v, %v; want admitted", d, err)
	}
}

// TestConcurrency_keysAreClusterSafe checks that a key's leases share the
// hash tag of its rate-limit state, hashed when the key could break out of
// the tag.
func TestConcurrency_keysAreClusterSafe(t *testing.T) {
	st := New(redistest.Server(t))
	if got, want := st.leaseKey("api:1.2.3.4"), DefaultPrefix+"{api:1.2.3.4}:concurrency"; got != want {
		t.Errorf("leaseKey = %q, want %q", got, want)
	}
	rk := st.keys(nil, "x}{y", 0, 1)[0]
	lk := st.leaseKey("x}{y")
	if rk[:len(rk)-len("0000000000000000:0")] != lk[:len(lk)-len("concurrency")] {
		t.Errorf("rate key %q and lease key %q do not share their tag", rk, lk)
	}
}

// TestConcurrency_timeoutIsAnError: a Redis that does not answer makes
// Acquire fail by the store's timeout, not hang.
func TestConcurrency_timeoutIsAnError(t *testing.T) {
	c := redistest.Server(t)
	st := New(c, WithTimeout(50*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Acquire(ctx, "k", "a", core.Concurrency{Limit: 1, TTL: time.Second}); err == nil {
		t.Fatal("Acquire with a cancelled context succeeded")
	}
}
