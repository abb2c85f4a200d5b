package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

// RunConcurrency runs the concurrency-limit part of the suite, which Run
// runs too for stores that implement core.ConcurrencyStore: N leases
// admitted then refused, release, expiry at exactly the TTL by the driven
// clock, renewal, the errors of releasing what is not held, lease ids that
// name one key's slot only, and 100 concurrent callers admitted exactly N
// times.
func RunConcurrency(t *testing.T, newStore Factory) {
	t.Run("AdmitsNThenRefuses", func(t *testing.T) { runLeaseLimit(t, newStore) })
	t.Run("ReleaseFreesTheSlot", func(t *testing.T) { runLeaseRelease(t, newStore) })
	t.Run("ExpiryFreesAtExactlyTheTTL", func(t *testing.T) { runLeaseExpiry(t, newStore) })
	t.Run("RenewExtendsTheLease", func(t *testing.T) { runLeaseRenew(t, newStore) })
	t.Run("ReleasingWhatIsNotHeldIsAnError", func(t *testing.T) { runLeaseNotHeld(t, newStore) })
	t.Run("ConcurrentAcquiresAdmitExactlyN", func(t *testing.T) { runLeaseConcurrent(t, newStore) })
	t.Run("KeysAreIndependentOfRateLimits", func(t *testing.T) { runLeaseKeys(t, newStore) })
	t.Run("InvalidInputIsAnError", func(t *testing.T) { runLeaseInvalid(t, newStore) })
	t.Run("EverythingExpires", func(t *testing.T) { runLeaseExpires(t, newStore) })
	t.Run("ClosedStoreSaysSo", func(t *testing.T) { runLeaseClosed(t, newStore) })
}

func runConcurrencyIfAble(t *testing.T, newStore Factory) {
	st, _ := newConcurrencyStore(t, newStore)
	if st == nil {
		t.Skip("the store does not implement core.ConcurrencyStore")
	}
	RunConcurrency(t, newStore)
}

// concurrencyStore is a store of the suite that limits concurrency.
type concurrencyStore interface {
	core.Store
	core.ConcurrencyStore
}

func newConcurrencyStore(t *testing.T, f Factory) (concurrencyStore, *ManualClock) {
	t.Helper()
	st, c := newStore(t, f)
	cs, _ := st.(concurrencyStore)
	return cs, c
}

// mustConcurrencyStore is newConcurrencyStore for the subtests of
// RunConcurrency, where a store without the interface is a failure.
func mustConcurrencyStore(t *testing.T, f Factory) (concurrencyStore, *ManualClock) {
	t.Helper()
	cs, c := newConcurrencyStore(t, f)
	if cs == nil {
		t.Fatal("the store does not implement core.ConcurrencyStore")
	}
	return cs, c
}

func leaseID(i int) string { return fmt.Sprintf("%032x", i+1) }

func conc(n int64, ttl time.Duration) core.Concurrency {
	return core.Concurrency{Limit: n, TTL: ttl}
}

func acquire(t *testing.T, st core.ConcurrencyStore, key, id string, c core.Concurrency) core.ConcurrencyDecision {
	t.Helper()
	d, err := st.Acquire(context.Background(), key, id, c)
	if err != nil {
		t.Fatalf("Acquire(%q, %s, %v): %v", key, id, c, err)
	}
	return d
}

func runLeaseLimit(t *testing.T, f Factory) {
	st, _ := mustConcurrencyStore(t, f)
	key := keyFor(t, "k")
	c := conc(3, 10*s)
	for i := range 3 {
		if d := acquire(t, st, key, leaseID(i), c); !d.Allowed || d.InFlight != int64(i+1) {
			t.Fatalf("lease %d: %+v, want admitted with %d in flight", i, d, i+1)
		}
	}
	d := acquire(t, st, key, leaseID(3), c)
	if d.Allowed || d.InFlight != 3 || d.NextExpiry != 10*s {
		t.Fatalf("fourth lease: %+v, want refused with 3 in flight and the next expiry in 10s", d)
	}
	// A larger limit on the same key counts the same leases.
	if d := acquire(t, st, key, leaseID(4), conc(4, 10*s)); !d.Allowed || d.InFlight != 4 {
		t.Fatalf("under a limit of 4: %+v, want admitted as the fourth", d)
	}
}

func runLeaseRelease(t *testing.T, f Factory) {
	st, _ := mustConcurrencyStore(t, f)
	key := keyFor(t, "k")
	c := conc(2, 10*s)
	acquire(t, st, key, leaseID(0), c)
	acquire(t, st, key, leaseID(1), c)
	if err := st.Release(context.Background(), key, leaseID(0)); err != nil {
		t.Fatal(err)
	}
	if d := acquire(t, st, key, leaseID(2), c); !d.Allowed || d.InFlight != 2 {
		t.Fatalf("after a release: %+v, want admitted with 2 in flight", d)
	}
	if d := acquire(t, st, key, leaseID(3), c); d.Allowed {
		t.Fatalf("a third lease: %+v, want refused", d)
	}
}

func runLeaseExpiry(t *testing.T, f Factory) {
	st, clock := mustConcurrencyStore(t, f)
	key := keyFor(t, "k")
	c := conc(2, 5*s)
	acquire(t, st, key, leaseID(0), c) // expires at 5s
	clock.Set(2 * s)
	acquire(t, st, key, leaseID(1), c) // expires at 7s
	clock.Set(5*s - time.Microsecond)
	if d := acquire(t, st, key, leaseID(2), c); d.Allowed || d.NextExpiry != time.Microsecond {
		t.Fatalf("1µs before the first lease's TTL: %+v, want refused, next expiry in 1µs", d)
	}
	clock.Set(5 * s)
	if d := acquire(t, st, key, leaseID(2), c); !d.Allowed || d.InFlight != 2 {
		t.Fatalf("at exactly the first lease's TTL: %+v, want its slot free again", d)
	}
	if err := st.Release(context.Background(), key, leaseID(0)); !errors.Is(err, core.ErrLeaseNotHeld) {
		t.Fatalf("release of the expired lease: %v, want an error wrapping core.ErrLeaseNotHeld", err)
	}
	if err := st.Renew(context.Background(), key, leaseID(0), c.TTL); !errors.Is(err, core.ErrLeaseNotHeld) {
		t.Fatalf("renewal of the expired lease: %v, want an error wrapping core.ErrLeaseNotHeld", err)
	}
	// Everything expires: long after, the key is empty.
	clock.Set(time.Hour)
	for i := range 2 {
		if d := acquire(t, st, key, leaseID(10+i), c); !d.Allowed || d.InFlight != int64(i+1) {
			t.Fatalf("an hour later, lease %d: %+v, want admitted with %d in flight", i, d, i+1)
		}
	}
}

func runLeaseRenew(t *testing.T, f Factory) {
	st, clock := mustConcurrencyStore(t, f)
	key := keyFor(t, "k")
	c := conc(1, 5*s)
	acquire(t, st, key, leaseID(0), c)
	clock.Set(4 * s)
	if err := st.Renew(context.Background(), key, leaseID(0), 5*s); err != nil {
		t.Fatal(err)
	}
	clock.Set(9*s - time.Microsecond) // past the first TTL, before the renewed one
	if d := acquire(t, st, key, leaseID(1), c); d.Allowed || d.NextExpiry != time.Microsecond {
		t.Fatalf("before the renewed TTL ends: %+v, want refused, next expiry in 1µs", d)
	}
	clock.Set(9 * s)
	if d := acquire(t, st, key, leaseID(1), c); !d.Allowed {
		t.Fatalf("at the renewed TTL: %+v, want admitted", d)
	}
	// A renewal never brings back a lease that has expired.
	if err := st.Renew(context.Background(), key, leaseID(0), 5*s); !errors.Is(err, core.ErrLeaseNotHeld) {
		t.Fatalf("renewal of an expired lease: %v, want an error wrapping core.ErrLeaseNotHeld", err)
	}
	if d := acquire(t, st, key, leaseID(2), c); d.Allowed {
		t.Fatalf("after the failed renewal: %+v, want refused (one lease in flight)", d)
	}
}

func runLeaseNotHeld(t *testing.T, f Factory) {
	st, _ := mustConcurrencyStore(t, f)
	key, other := keyFor(t, "k"), keyFor(t, "other")
	c := conc(1, 10*s)
	ctx := context.Background()
	if err := st.Release(ctx, key, leaseID(0)); !errors.Is(err, core.ErrLeaseNotHeld) {
		t.Fatalf("release without an acquire: %v, want an error wrapping core.ErrLeaseNotHeld", err)
	}
	acquire(t, st, key, leaseID(0), c)
	acquire(t, st, other, leaseID(1), c)
	// Another key's lease id, and a made-up one, release nothing here.
	for _, id := range []string{leaseID(1), leaseID(99), ""} {
		if err := st.Release(ctx, key, id); !errors.Is(err, core.ErrLeaseNotHeld) {
			t.Fatalf("release of %q under the wrong key: %v, want an error wrapping core.ErrLeaseNotHeld", id, err)
		}
		if err := st.Renew(ctx, key, id, c.TTL); !errors.Is(err, core.ErrLeaseNotHeld) {
			t.Fatalf("renewal of %q under the wrong key: %v, want an error wrapping core.ErrLeaseNotHeld", id, err)
		}
	}
	if d := acquire(t, st, key, leaseID(2), c); d.Allowed {
		t.Fatalf("after forged releases: %+v, want the key still full", d)
	}
	if d := acquire(t, st, other, leaseID(3), c); d.Allowed {
		t.Fatalf("the other key after forged releases: %+v, want it still full", d)
	}
	if err := st.Release(ctx, key, leaseID(0)); err != nil {
		t.Fatal(err)
	}
	if err := st.Release(ctx, key, leaseID(0)); !errors.Is(err, core.ErrLeaseNotHeld) {
		t.Fatalf("second release: %v, want an error wrapping core.ErrLeaseNotHeld", err)
	}
	if err := st.Renew(ctx, key, leaseID(0), c.TTL); !errors.Is(err, core.ErrLeaseNotHeld) {
		t.Fatalf("renewal after release: %v, want an error wrapping core.ErrLeaseNotHeld", err)
	}
	// The double release freed nothing more than the one slot.
	acquire(t, st, key, leaseID(4), c)
	if d := acquire(t, st, key, leaseID(5), c); d.Allowed {
		t.Fatalf("after a double release: %+v, want one slot only", d)
	}
}

func runLeaseConcurrent(t *testing.T, f Factory) {
	st, _ := mustConcurrencyStore(t, f)
	key := keyFor(t, "k")
	c := conc(7, time.Minute)
	var admitted, failed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := st.Acquire(context.Background(), key, leaseID(i), c)
			if err != nil {
				failed.Add(1)
			} else if d.Allowed {
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed", failed.Load())
	}
	if got := admitted.Load(); got != 7 {
		t.Fatalf("admitted %d of 100 concurrent acquires, want exactly 7", got)
	}
}

// runLeaseKeys checks that a key's leases and its rate-limit state under
// the same name never meet, and that Reset of a rule leaves leases alone.
func runLeaseKeys(t *testing.T, f Factory) {
	st, _ := mustConcurrencyStore(t, f)
	key := keyFor(t, "k")
	c := conc(1, 10*s)
	r := rule("1/minute", core.FixedWindow, 0)
	acquire(t, st, key, leaseID(0), c)
	if d := take(t, st, key, r, 1); !d.Allowed {
		t.Fatalf("a rate limit on the key of a lease: %+v, want admitted", d)
	}
	if err := st.Reset(context.Background(), key, r); err != nil {
		t.Fatal(err)
	}
	if d := acquire(t, st, key, leaseID(1), c); d.Allowed {
		t.Fatalf("after Reset of a rate limit: %+v, want the lease still held", d)
	}
}

func runLeaseInvalid(t *testing.T, f Factory) {
	st, _ := mustConcurrencyStore(t, f)
	key := keyFor(t, "k")
	ctx := context.Background()
	for _, c := range []core.Concurrency{conc(0, s), conc(-1, s), conc(1, 0), conc(1, -s)} {
		if d, err := st.Acquire(ctx, key, leaseID(0), c); err == nil {
			t.Errorf("Acquire under %+v: %+v, want an error", c, d)
		}
	}
	acquire(t, st, key, leaseID(0), conc(1, s))
	if err := st.Renew(ctx, key, leaseID(0), 0); err == nil || errors.Is(err, core.ErrLeaseNotHeld) {
		t.Errorf("Renew with a TTL of 0: %v, want an error about the TTL", err)
	}
}

func runLeaseClosed(t *testing.T, f Factory) {
	st, _ := mustConcurrencyStore(t, f)
	key := keyFor(t, "k")
	c := conc(1, s)
	acquire(t, st, key, leaseID(0), c)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.Acquire(ctx, key, leaseID(1), c); !errors.Is(err, core.ErrClosed) {
		t.Errorf("Acquire after Close: %v, want an error wrapping core.ErrClosed", err)
	}
	if err := st.Renew(ctx, key, leaseID(0), s); !errors.Is(err, core.ErrClosed) {
		t.Errorf("Renew after Close: %v, want an error wrapping core.ErrClosed", err)
	}
	if err := st.Release(ctx, key, leaseID(0)); !errors.Is(err, core.ErrClosed) {
		t.Errorf("Release after Close: %v, want an error wrapping core.ErrClosed", err)
	}
}

// runLeaseExpires checks, for a store that can list what it holds without
// an expiry (Expirer), that acquiring, renewing, refusing and releasing
// leave nothing that never expires.
func runLeaseExpires(t *testing.T, f Factory) {
	st, clock := mustConcurrencyStore(t, f)
	x, ok := st.(Expirer)
	if !ok {
		t.Skipf("%T cannot list what it holds without an expiry", st)
	}
	key := keyFor(t, "k")
	ctx := context.Background()
	c := conc(2, 5*s)
	acquire(t, st, key, leaseID(0), c)
	acquire(t, st, key, leaseID(1), c)
	acquire(t, st, key, leaseID(2), c) // refused
	clock.Set(s)
	if err := st.Renew(ctx, key, leaseID(0), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := st.Release(ctx, key, leaseID(1)); err != nil {
		t.Fatal(err)
	}
	acquire(t, st, key+":2", leaseID(3), c)
	if err := st.Release(ctx, key+":2", leaseID(3)); err != nil {
		t.Fatal(err)
	}
	names, err := x.Unexpiring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > 0 {
		t.Fatalf("the store holds %d names that never expire, such as %q", len(names), names[0])
	}
}
