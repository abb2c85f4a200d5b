package core

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// leaseStore wraps a memory store to watch, or break, its concurrency
// calls.
type leaseStore struct {
	*MemoryStore
	fail     atomic.Bool // every call fails, as a store that is down
	lost     atomic.Bool // Renew answers ErrLeaseNotHeld
	lose     atomic.Bool // Acquire takes the lease but fails, as a reply lost to a timeout
	renewals chan string // gets each renewed lease id, if not nil
	releases chan error  // gets each release's answer, if not nil
}

var errLeaseStoreDown = errors.New("store down")

func (s *leaseStore) Acquire(ctx context.Context, key, lease string, c Concurrency) (ConcurrencyDecision, error) {
	if s.fail.Load() {
		return ConcurrencyDecision{}, errLeaseStoreDown
	}
	if s.lose.Load() {
		_, _ = s.MemoryStore.Acquire(ctx, key, lease, c)
		return ConcurrencyDecision{}, errLeaseStoreDown
	}
	return s.MemoryStore.Acquire(ctx, key, lease, c)
}

func (s *leaseStore) Renew(ctx context.Context, key, lease string, ttl time.Duration) error {
	var err error
	switch {
	case s.fail.Load():
		err = errLeaseStoreDown
	case s.lost.Load():
		err = ErrLeaseNotHeld
	default:
		err = s.MemoryStore.Renew(ctx, key, lease, ttl)
	}
	if s.renewals != nil {
		s.renewals <- lease
	}
	return err
}

func (s *leaseStore) Release(ctx context.Context, key, lease string) error {
	if s.fail.Load() {
		return errLeaseStoreDown
	}
	err := s.MemoryStore.Release(ctx, key, lease)
	if s.releases != nil {
		s.releases <- err
	}
	return err
}

func newLeaseLimiter(t *testing.T, opts ...Option) (*Limiter, *leaseStore, *stepClock) {
	t.Helper()
	clk := &stepClock{now: time.Unix(1_700_000_000, 0)}
	st := &leaseStore{MemoryStore: NewMemoryStore(MemoryClock(clk.Now))}
	l := New(append([]Option{WithStore(st), WithClock(clk.Now)}, opts...)...)
	t.Cleanup(func() { l.Close() })
	return l, st, clk
}

func mustAcquire(t *testing.T, l *Limiter, key string, c Concurrency) (Decision, *Lease) {
	t.Helper()
	d, ls, err := l.Acquire(context.Background(), key, c)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed != (ls != nil) {
		t.Fatalf("decision %+v with lease %v: a lease must come with an admission, and only then", d, ls)
	}
	return d, ls
}

func TestConcurrency_badLimitsAreRefusedQuotingThem(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		ttl  time.Duration
		want string
	}{
		{0, time.Second, "limit 0"},
		{-3, time.Second, "limit -3"},
		{1, -time.Second, "TTL -1s"},
		{1, time.Microsecond, "TTL 1µs"},
		{1, 400 * 24 * time.Hour, "TTL 9600h0m0s"},
	} {
		if _, err := NewConcurrency(tc.n, tc.ttl); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewConcurrency(%d, %v) = %v, want an error quoting %q", tc.n, tc.ttl, err, tc.want)
		}
	}
	if _, err := NewConcurrencyMiddleware(0); err == nil || !strings.Contains(err.Error(), "limit 0") {
		t.Errorf("NewConcurrencyMiddleware(0) = %v, want an error quoting 0", err)
	}
	if _, err := NewConcurrencyMiddleware(1, WithLeaseTTL(-time.Second)); err == nil || !strings.Contains(err.Error(), "WithLeaseTTL(-1s)") {
		t.Errorf("WithLeaseTTL(-1s): %v, want an error quoting it", err)
	}
	if _, err := NewConcurrencyMiddleware(1, WithConcurrencyWait(-time.Second)); err == nil || !strings.Contains(err.Error(), "WithConcurrencyWait(-1s)") {
		t.Errorf("WithConcurrencyWait(-1s): %v, want an error quoting it", err)
	}
	l := New()
	defer l.Close()
	d, ls, err := l.Acquire(context.Background(), "k", Concurrency{Limit: 0, TTL: time.Second})
	if err == nil || ls != nil || d.Allowed {
		t.Errorf("Acquire with a limit of 0: %+v, %v, %v; want an error and no lease", d, ls, err)
	}
}

func TestConcurrency_optionsThatMeanNothingAreRefused(t *testing.T) {
	for name, o := range map[string]MiddlewareOption{
		"WithCost":       WithCost(func(*http.Request) int64 { return 2 }),
		"WithAlgorithm":  WithAlgorithm(TokenBucket),
		"WithBurst":      WithBurst(5),
		"WithPlans":      WithPlans(map[string]string{"pro": "5/second"}, func(*http.Request) string { return "" }),
		"WithResetEpoch": WithResetEpoch(),
		"WithChargeWhen": WithChargeWhen(func(status int) bool { return status >= 400 }),
		"WithTimeZone":   WithTimeZone(time.UTC),
		"WithQuotaUnit":  WithQuotaUnit(QuotaUnitContentBytes),
	} {
		if _, err := NewConcurrencyMiddleware(2, o); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("NewConcurrencyMiddleware(2, %s): %v, want an error naming it", name, err)
		}
	}
	for name, o := range map[string]MiddlewareOption{"WithLeaseTTL": WithLeaseTTL(time.Second), "WithConcurrencyWait": WithConcurrencyWait(time.Second)} {
		if _, err := NewMiddleware("5/second", o); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("NewMiddleware(5/second, %s): %v, want an error naming it", name, err)
		}
	}
}

// plainStore is a Store that cannot limit concurrency.
type plainStore struct{ Store }

func TestConcurrency_aStoreThatCannotIsAnError(t *testing.T) {
	ms := NewMemoryStore()
	defer ms.Close()
	l := New(WithStore(plainStore{ms}))
	defer l.Close()
	if _, err := NewConcurrencyMiddleware(2, WithLimiter(l)); err == nil || !strings.Contains(err.Error(), "ConcurrencyStore") {
		t.Errorf("a middleware on a store without concurrency: %v, want an error at construction", err)
	}
	if _, _, err := l.Acquire(context.Background(), "k", Concurrency{Limit: 1, TTL: time.Second}); err == nil {
		t.Error("Acquire on a store without concurrency succeeded")
	}
}

func TestLimiterAcquire_admitsNReleasesAndRefusesDoubleRelease(t *testing.T) {
	l, st, _ := newLeaseLimiter(t)
	c := Concurrency{Limit: 2, TTL: time.Minute}
	d1, a := mustAcquire(t, l, "k", c)
	d2, b := mustAcquire(t, l, "k", c)
	if !d1.Allowed || d1.Remaining != 1 || !d2.Allowed || d2.Remaining != 0 || !d2.Concurrency || d2.Limit.Count != 2 {
		t.Fatalf("two acquires: %+v, %+v; want admitted with 1 and 0 slots left, as a concurrency decision of 2", d1, d2)
	}
	if a.ID() == b.ID() || len(a.ID()) != 32 {
		t.Fatalf("lease ids %q and %q: want two distinct 128-bit ids", a.ID(), b.ID())
	}
	d3, _ := mustAcquire(t, l, "k", c)
	if d3.Allowed || d3.RetryAfter != ConcurrencyRetryAfter {
		t.Fatalf("third acquire: %+v, want refused with Retry-After %v", d3, ConcurrencyRetryAfter)
	}
	if d, _ := mustAcquire(t, l, "other", c); !d.Allowed {
		t.Fatalf("another key: %+v, want admitted", d)
	}
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(context.Background()); !errors.Is(err, ErrLeaseNotHeld) {
		t.Fatalf("second release: %v, want an error wrapping ErrLeaseNotHeld", err)
	}
	if d, _ := mustAcquire(t, l, "k", c); !d.Allowed {
		t.Fatalf("after a release: %+v, want admitted", d)
	}
	if d, _ := mustAcquire(t, l, "k", c); d.Allowed {
		t.Fatalf("the double release freed a second slot: %+v", d)
	}
	_ = b.Release(context.Background())
	if n := st.Leases(); n != 2 {
		t.Fatalf("Leases = %d, want 2 (k with one lease, other with one)", n)
	}
}

// TestLease_renewsItselfWhileHeld drives the store's clock past the TTL
// between renewals, which run on real timers every third of the TTL: the
// lease survives as long as it renews, and its slot comes back at the TTL
// after renewals stop.
func TestLease_renewsItselfWhileHeld(t *testing.T) {
	lost := make(chan Event, 1)
	l, st, clk := newLeaseLimiter(t, WithObserver(ObserverFunc(func(e Event) {
		if e.Kind == EventLeaseLost {
			lost <- e
		}
	})))
	st.renewals = make(chan string, 16)
	c := Concurrency{Limit: 1, TTL: 30 * time.Millisecond}
	_, ls := mustAcquire(t, l, "k", c)
	for range 3 {
		<-st.renewals // renewed at the clock's time: good until now + TTL
		clk.Add(25 * time.Millisecond)
	}
	// 75ms after the acquire, well past the TTL: still held.
	if d, _ := mustAcquire(t, l, "k", c); d.Allowed {
		t.Fatalf("after %v of renewals: %+v, want the lease still held", 75*time.Millisecond, d)
	}
	st.lost.Store(true) // from now on renewals fail as for an expired lease
	<-st.renewals
	if e := <-lost; !errors.Is(e.Err, ErrLeaseNotHeld) {
		t.Fatalf("lost lease event: %+v, want its error to wrap ErrLeaseNotHeld", e)
	}
	_ = ls.Release(context.Background())
}

func TestLimiterAcquire_failurePolicies(t *testing.T) {
	c := Concurrency{Limit: 1, TTL: time.Minute}
	t.Run("FailOpen", func(t *testing.T) {
		l, st, _ := newLeaseLimiter(t, WithFailurePolicy(FailOpen))
		st.fail.Store(true)
		for range 3 {
			d, ls := mustAcquire(t, l, "k", c)
			if !d.Allowed || ls.Release(context.Background()) != nil {
				t.Fatalf("fail-open acquire: %+v; want admitted with a lease that releases", d)
			}
		}
	})
	t.Run("FailClosed", func(t *testing.T) {
		l, st, _ := newLeaseLimiter(t, WithFailurePolicy(FailClosed))
		st.fail.Store(true)
		if d, ls, err := l.Acquire(context.Background(), "k", c); !errors.Is(err, ErrUnavailable) || ls != nil || d.Allowed {
			t.Fatalf("fail-closed acquire: %+v, %v, %v; want ErrUnavailable", d, ls, err)
		}
	})
	t.Run("Fallback", func(t *testing.T) {
		l, st, _ := newLeaseLimiter(t, WithProbeInterval(time.Hour))
		held, _ := mustAcquire(t, l, "k", c) // in the store
		_ = held
		st.fail.Store(true)
		// The fallback counts this instance alone: the store's lease is
		// not seen, so one more is admitted, and then no more.
		d, ls := mustAcquire(t, l, "k", c)
		if !d.Allowed {
			t.Fatalf("first fallback acquire: %+v, want admitted by the fallback store", d)
		}
		if d, _ := mustAcquire(t, l, "k", c); d.Allowed {
			t.Fatalf("second fallback acquire: %+v, want refused by the fallback store", d)
		}
		st.fail.Store(false)
		// The lease is released where it was acquired: in the fallback.
		if err := ls.Release(context.Background()); err != nil {
			t.Fatalf("release of a fallback lease with the store back: %v", err)
		}
		if d, _ := mustAcquire(t, l, "k", c); !d.Allowed {
			t.Fatalf("the fallback slot was not given back: %+v", d)
		}
	})
}

// blocking is a handler that reports each request it enters and returns
// when release is closed or its request's context ends.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocking() *blocking {
	return &blocking{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *blocking) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-r.Context().Done():
	}
}

func getFrom(h http.Handler, ip string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = ip + ":1234"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestConcurrencyMiddleware_refusesWhenFullAndFreesOnReturn(t *testing.T) {
	l, st, _ := newLeaseLimiter(t)
	cm := MustNewConcurrencyMiddleware(2, WithLimiter(l), WithName("conc"), WithIETFHeaders())
	b := newBlocking()
	h := cm.Handler(b)
	var wg sync.WaitGroup
	recs := make([]*httptest.ResponseRecorder, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); recs[i] = getFrom(h, "192.0.2.1") }()
		<-b.entered
	}
	rec := getFrom(h, "192.0.2.1")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("third request in flight: %d, want 429", rec.Code)
	}
	hd := rec.Header()
	if hd.Get("X-RateLimit-Limit") != "2" || hd.Get("X-RateLimit-Remaining") != "0" || hd.Get("Retry-After") != "1" || hd.Get("X-RateLimit-Reset") != "" {
		t.Errorf("refusal headers %v: want limit 2, remaining 0, Retry-After 1 and no reset", hd)
	}
	if got, want := hd.Get("RateLimit-Policy"), `"conc";q=2;qu="concurrent-requests"`; got != want {
		t.Errorf("RateLimit-Policy = %q, want %q", got, want)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["limit"] != "2 concurrent" || body["retry_after"] != 1.0 {
		t.Errorf("body %s (%v): want the limit as \"2 concurrent\" and retry_after 1", rec.Body, err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); getFrom(h, "192.0.2.2") }()
	<-b.entered // another client has slots of its own
	close(b.release)
	wg.Wait()
	for i, r := range recs {
		if r.Code != http.StatusOK || r.Header().Get("X-RateLimit-Remaining") != []string{"1", "0"}[i] {
			t.Errorf("request %d: %d, remaining %q", i, r.Code, r.Header().Get("X-RateLimit-Remaining"))
		}
	}
	if n := st.Leases(); n != 0 {
		t.Fatalf("after every handler returned, %d leases are live, want 0", n)
	}
}

// TestMemoryStore_leasesAreBounded: at the store's bound of keys, a new
// key's acquire is refused, never admitted by evicting another key's
// leases; keys whose leases all ended make room again.
func TestMemoryStore_leasesAreBounded(t *testing.T) {
	clk := newStepClock()
	s := NewMemoryStore(MemoryClock(clk.Now), MemoryMaxKeys(4))
	defer s.Close()
	ctx := context.Background()
	c := Concurrency{Limit: 1, TTL: time.Second}
	for i := range 4 {
		if d, err := s.Acquire(ctx, "k"+string(rune('0'+i)), "id", c); err != nil || !d.Allowed {
			t.Fatalf("key %d: %+v, %v", i, d, err)
		}
	}
	if d, err := s.Acquire(ctx, "new", "id", c); err != nil || d.Allowed {
		t.Fatalf("a fifth key at a bound of 4: %+v, %v; want refused", d, err)
	}
	if d, _ := s.Acquire(ctx, "k0", "id2", c); d.Allowed {
		t.Fatalf("k0's slot after the refused flood: %+v, want still held", d)
	}
	if err := s.Release(ctx, "k1", "id"); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Acquire(ctx, "new", "id", c); err != nil || !d.Allowed {
		t.Fatalf("after a key's last lease ended: %+v, %v; want room for a new key", d, err)
	}
	clk.Add(time.Second)
	s.Sweep()
	if n := s.Leases(); n != 0 {
		t.Fatalf("after every TTL and a sweep: %d leases, want 0", n)
	}
	if n := s.leases.keys.Load(); n != 0 {
		t.Fatalf("after every TTL and a sweep: %d keys, want 0", n)
	}
}

// TestLimiterAcquire_givesBackTheSlotOfAFailedAcquire: a store that took a
// lease but whose answer was lost (a timeout) would keep that slot, never
// renewed, for a whole TTL; the limiter gives it back once the store is up.
func TestLimiterAcquire_givesBackTheSlotOfAFailedAcquire(t *testing.T) {
	l, st, _ := newLeaseLimiter(t, WithFailurePolicy(FailClosed), WithProbeInterval(0))
	st.releases = make(chan error, 8)
	c := Concurrency{Limit: 1, TTL: time.Hour}
	st.lose.Store(true)
	if _, _, err := l.Acquire(context.Background(), "k", c); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("acquire whose answer is lost: %v, want ErrUnavailable", err)
	}
	if n := st.Leases(); n != 1 {
		t.Fatalf("the store holds %d leases, want the 1 it took", n)
	}
	st.lose.Store(false)
	_, other := mustAcquire(t, l, "other", c) // the store answers: it is up again
	select {
	case err := <-st.releases:
		if err != nil {
			t.Fatalf("giving back the lost lease: %v, want it released", err)
		}
	case <-time.After(time.Minute): // a bound for a failure, not a synchronisation
		t.Fatal("the lost lease was not given back within a minute")
	}
	if d, _ := mustAcquire(t, l, "k", c); !d.Allowed {
		t.Fatalf("after the lost lease was given back: %+v, want its slot free, long before its TTL", d)
	}
	_ = other
}
