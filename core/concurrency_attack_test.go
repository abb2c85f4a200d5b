package core

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestConcurrencyMiddleware_panicReleasesTheSlot(t *testing.T) {
	l, st, _ := newLeaseLimiter(t)
	cm := MustNewConcurrencyMiddleware(1, WithLimiter(l))
	h := cm.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	for i := range 3 {
		func() {
			defer func() {
				if p := recover(); p != "boom" {
					t.Fatalf("request %d: recovered %v, want the handler's panic", i, p)
				}
			}()
			getFrom(h, "192.0.2.1")
		}()
		if n := st.Leases(); n != 0 {
			t.Fatalf("after panic %d, %d leases are live, want 0", i, n)
		}
	}
}

// TestConcurrencyMiddleware_clientsThatLeaveCannotLeakOrGainSlots is the
// attack of a client opening many connections and dropping them mid-request,
// against a real server: while its handlers run, it has its N slots and no
// more, whatever it drops; handlers that stop on their context give the
// slots back as they stop; and none leaks.
func TestConcurrencyMiddleware_clientsThatLeaveCannotLeakOrGainSlots(t *testing.T) {
	l, st, _ := newLeaseLimiter(t)
	const n = 3
	var mu sync.Mutex
	status := map[int]int{}
	entered := make(chan struct{}, 100)
	returned := make(chan struct{}, 100)
	stubborn := make(chan struct{}) // handlers of /stubborn ignore their context until this closes
	cm := MustNewConcurrencyMiddleware(n, WithLimiter(l), WithKey(Global))
	inner := cm.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		if r.URL.Path == "/stubborn" {
			<-stubborn
			return
		}
		<-r.Context().Done()
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- struct{}{} }() // after the middleware released
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	send := func(ctx context.Context, path string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		resp, err := srv.Client().Do(req)
		if err == nil {
			mu.Lock()
			status[resp.StatusCode]++
			mu.Unlock()
			resp.Body.Close()
		}
	}

	// Round 1: 20 connections at once, all dropped after the first n got in.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); send(ctx, "/") }()
	}
	for range n {
		<-entered
	}
	for range 17 {
		send(context.Background(), "/") // refused at once: the n are in flight
	}
	if status[http.StatusTooManyRequests] != 17 {
		t.Fatalf("with %d in flight, %v; want 17 refusals", n, status)
	}
	cancel() // the client leaves every request
	wg.Wait()
	for range n + 17 {
		<-returned
	}
	if k := st.Leases(); k != 0 {
		t.Fatalf("after the client left, %d leases are live, want 0", k)
	}

	// Round 2: handlers that ignore their context keep their slots after
	// the client leaves, so dropping connections buys no extra work.
	ctx, cancel = context.WithCancel(context.Background())
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); send(ctx, "/stubborn") }()
	}
	for range n {
		<-entered
	}
	cancel()
	wg.Wait() // the client is gone; the handlers still run
	mu.Lock()
	clear(status)
	mu.Unlock()
	for range 5 {
		send(context.Background(), "/")
	}
	if status[http.StatusTooManyRequests] != 5 {
		t.Fatalf("with %d handlers still running for a client that left: %v, want every new request refused", n, status)
	}
	close(stubborn)
	for range n + 5 {
		<-returned
	}
	if k := st.Leases(); k != 0 {
		t.Fatalf("after the stubborn handlers returned, %d leases are live, want 0", k)
	}
}

// TestLease_idsCannotBeForged: a lease names one slot of one key; a
// release by another key's lease id, or a made-up one, frees nothing.
func TestLease_idsCannotBeForged(t *testing.T) {
	l, st, _ := newLeaseLimiter(t)
	c := Concurrency{Limit: 1, TTL: time.Minute}
	_, victim := mustAcquire(t, l, "victim", c)
	_, mine := mustAcquire(t, l, "attacker", c)
	ctx := context.Background()
	for _, id := range []string{victim.ID(), mine.ID(), "", "00000000000000000000000000000000"} {
		for _, key := range []string{"victim", "attacker"} {
			if (key == "victim") == (id == victim.ID()) && id != "" && id != "00000000000000000000000000000000" {
				continue // the real lease of that key
			}
			if err := st.Release(ctx, key, id); !errors.Is(err, ErrLeaseNotHeld) {
				t.Fatalf("release of %q under %q: %v, want ErrLeaseNotHeld", id, key, err)
			}
		}
	}
	if d, _ := mustAcquire(t, l, "victim", c); d.Allowed {
		t.Fatalf("the victim's slot was freed by a forged release: %+v", d)
	}
	_ = victim.Release(ctx)
	_ = mine.Release(ctx)
}

func TestConcurrencyMiddleware_waitsForASlotWithABound(t *testing.T) {
	l, _, clk := newLeaseLimiter(t)
	var held *Lease
	var holds []time.Duration
	release := middlewareOption(func(c *middlewareConfig) {
		c.wait = func(ctx context.Context, d time.Duration) error {
			holds = append(holds, d)
			if len(holds) == 3 && held != nil {
				_ = held.Release(ctx) // a request in flight ends during the wait
			}
			clk.Add(d)
			return nil
		}
	})
	cm := MustNewConcurrencyMiddleware(1, WithLimiter(l), WithKey(Global), WithConcurrencyWait(time.Second), release)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	_, held = mustAcquireVia(t, cm, req)
	res, lease := cm.Enforce(req, http.Header{})
	if res.Verdict != Serve || lease == nil {
		t.Fatalf("after a slot freed during the wait: %+v, want served with a lease", res)
	}
	if want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}; !equalDurations(holds, want) {
		t.Fatalf("waited %v, want the backoff %v", holds, want)
	}
	// Nobody releases now: the wait ends at its bound with a 429.
	holds, held = nil, nil
	res, _ = cm.Enforce(req, http.Header{})
	if res.Status != http.StatusTooManyRequests {
		t.Fatalf("after the whole wait: %+v, want 429", res)
	}
	total := time.Duration(0)
	for _, d := range holds {
		total += d
	}
	if total != time.Second {
		t.Fatalf("waited %v in all (%v), want the bound of 1s exactly", total, holds)
	}
	cm.Release(req, lease)
}

func mustAcquireVia(t *testing.T, cm *ConcurrencyMiddleware, r *http.Request) (Result, *Lease) {
	t.Helper()
	res, ls := cm.Enforce(r, http.Header{})
	if res.Verdict != Serve || ls == nil {
		t.Fatalf("first request: %+v, want served with a lease", res)
	}
	return res, ls
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestConcurrencyMiddleware_clientThatLeavesDuringTheWaitTakesNoSlot(t *testing.T) {
	l, st, _ := newLeaseLimiter(t)
	cm := MustNewConcurrencyMiddleware(1, WithLimiter(l), WithKey(Global), WithConcurrencyWait(time.Hour))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	_, held := mustAcquireVia(t, cm, req)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, lease := cm.Enforce(req.WithContext(ctx), http.Header{})
	if res.Verdict != Gone || lease != nil {
		t.Fatalf("a client gone before its slot: %+v, %v; want Gone with no lease", res, lease)
	}
	cm.Release(req, held)
	if k := st.Leases(); k != 0 {
		t.Fatalf("%d leases are live, want 0", k)
	}
}

func TestConcurrencyMiddleware_shadowServesWithoutASlot(t *testing.T) {
	l, _, _ := newLeaseLimiter(t)
	var shadowed []Event
	l.cfg.observer = ObserverFunc(func(e Event) { shadowed = append(shadowed, e) })
	cm := MustNewConcurrencyMiddleware(1, WithLimiter(l), WithKey(Global), WithShadow())
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	_, held := mustAcquireVia(t, cm, req)
	h := http.Header{}
	res, lease := cm.Enforce(req, h)
	if res.Verdict != Serve || lease != nil || len(h) != 0 {
		t.Fatalf("over the limit in shadow mode: %+v, lease %v, headers %v; want served with no slot and no headers", res, lease, h)
	}
	if len(shadowed) != 2 || !shadowed[1].Shadow || !shadowed[1].Decision.Concurrency {
		t.Fatalf("events %+v: want the second reported as a shadow denial of a concurrency limit", shadowed)
	}
	cm.Release(req, held)
}

func TestConcurrencyMiddleware_scopes(t *testing.T) {
	a := MustNewConcurrencyMiddleware(2)
	b := MustNewConcurrencyMiddleware(2)
	r := MustNewMiddleware("2/second")
	if a.Scope() == b.Scope() || a.Scope() == r.Scope() {
		t.Errorf("scopes %q, %q and the rate limit's %q: want three budgets", a.Scope(), b.Scope(), r.Scope())
	}
	n1 := MustNewConcurrencyMiddleware(2, WithName("uploads"))
	n2 := MustNewConcurrencyMiddleware(5, WithName("uploads"))
	if n1.Scope() != "uploads" || n2.Scope() != "uploads" {
		t.Errorf("named scopes %q, %q; want both \"uploads\"", n1.Scope(), n2.Scope())
	}
}

func TestConcurrencyMiddleware_failClosedIs503(t *testing.T) {
	l, st, _ := newLeaseLimiter(t, WithFailurePolicy(FailClosed))
	st.fail.Store(true)
	cm := MustNewConcurrencyMiddleware(1, WithLimiter(l))
	rec := getFrom(cm.Handler(http.NotFoundHandler()), "192.0.2.1")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("store down under FailClosed: %d %v, want 503 with Retry-After", rec.Code, rec.Header())
	}
}

func TestConcurrencyMiddleware_defaultLimiterWithoutConcurrencyIs500(t *testing.T) {
	prev := defaultLimiter.Load()
	defer defaultLimiter.Store(prev)
	cm := MustNewConcurrencyMiddleware(1)
	plain := New(WithStore(plainStore{NewMemoryStore()}))
	defer plain.Close()
	SetDefault(plain)
	rec := getFrom(cm.Handler(http.NotFoundHandler()), "192.0.2.1")
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("default limiter's store cannot limit concurrency: %d, want 500", rec.Code)
	}
}
