package core

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// failedLogin charges what is not a success, as the example's POST /login.
var failedLogin = WithChargeWhen(func(status int) bool { return status != http.StatusOK })

func statusHandler(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
}

func TestChargeWhen_countsOnlyMatchingResponses(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("5/minute", WithLimiter(lim), WithName("login"), failedLogin)
	ok, wrong := m.Handler(statusHandler(200)), m.Handler(statusHandler(401))
	for i := range 20 {
		if w := get(ok, "/", client); w.Code != 200 {
			t.Fatalf("success %d: %d; want every success served, none counted", i, w.Code)
		}
	}
	for i := range 5 {
		if w := get(wrong, "/", client); w.Code != 401 {
			t.Fatalf("failure %d: %d; want 401 from the handler", i, w.Code)
		}
	}
	for name, h := range map[string]http.Handler{"right": ok, "wrong": wrong} {
		if w := get(h, "/", client); w.Code != http.StatusTooManyRequests {
			t.Errorf("after 5 failures, the %s password: %d; want 429", name, w.Code)
		}
	}
}

// TestChargeWhen_concurrentFailuresCannotSlipPast sends 20 wrong passwords
// at once against 5/minute: each is reserved before its handler runs, so at
// most 5 reach it however they interleave.
func TestChargeWhen_concurrentFailuresCannotSlipPast(t *testing.T) {
	lim, _ := clockedLimiter(t)
	var inHandler atomic.Int32
	arrived := make(chan struct{}, 20)
	release := make(chan struct{})
	h := MustNewMiddleware("5/minute", WithLimiter(lim), failedLogin).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inHandler.Add(1)
		arrived <- struct{}{}
		<-release // all stay in the handler until every request is decided
		w.WriteHeader(http.StatusUnauthorized)
	}))
	codes := make(chan int, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- get(h, "/", client).Code }()
	}
	// Every request is either in the handler or refused before release.
	refused := 0
	for admitted := 0; admitted+refused < 20; {
		select {
		case <-arrived:
			admitted++
		case c := <-codes:
			if c != http.StatusTooManyRequests {
				t.Fatalf("a request finished with %d before release", c)
			}
			refused++
		}
	}
	close(release)
	wg.Wait()
	if n := inHandler.Load(); n != 5 || refused != 15 {
		t.Fatalf("%d requests reached the handler and %d were refused; want 5 and 15", n, refused)
	}
	if w := get(h, "/", client); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after the burst: %d; want 429, the 5 failures count", w.Code)
	}
}

func TestChargeWhen_panickingHandlerIsCharged(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("2/minute", WithLimiter(lim), failedLogin)
	h := m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	for i := range 2 {
		func() {
			defer func() {
				if p := recover(); p != "boom" {
					t.Fatalf("request %d: recovered %v; want the handler's panic to go on up", i, p)
				}
			}()
			get(h, "/", client)
		}()
	}
	if w := get(m.Handler(statusHandler(200)), "/", client); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after 2 panics: %d; want 429, a panic is charged", w.Code)
	}
}

func TestChargeWhen_clientLeavingMidHandler(t *testing.T) {
	for _, tt := range []struct {
		name    string
		write   bool // the handler answers 200 before the client goes
		charged bool
	}{
		{"before any answer: charged", false, true},
		{"after a success: not charged", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := clockedLimiter(t)
			m := MustNewMiddleware("1/minute", WithLimiter(lim), failedLogin)
			ctx, cancel := context.WithCancel(context.Background())
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.write {
					w.WriteHeader(http.StatusOK)
				}
				cancel() // the client hangs up
				<-r.Context().Done()
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			r.RemoteAddr = client
			h.ServeHTTP(httptest.NewRecorder(), r)
			code := get(m.Handler(statusHandler(200)), "/", client).Code
			if charged := code == http.StatusTooManyRequests; charged != tt.charged {
				t.Fatalf("next request: %d; want charged = %v", code, tt.charged)
			}
		})
	}
}

func TestChargeWhen_panickingMatchCharges(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("1/minute", WithLimiter(lim), WithChargeWhen(func(int) bool { panic("bad") }))
	get(m.Handler(okHandler), "/", client)
	if w := get(m.Handler(okHandler), "/", client); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after a charge function panicked: %d; want 429, the request was charged", w.Code)
	}
}

// noQuotaStore is a Store that cannot peek, reserve or refund.
type noQuotaStore struct{ Store }

func TestChargeWhen_needsAQuotaStore(t *testing.T) {
	lim := New(WithStore(noQuotaStore{NewMemoryStore()}))
	defer lim.Close()
	if _, err := NewMiddleware("5/minute", WithLimiter(lim), failedLogin); !errors.Is(err, ErrNoQuota) {
		t.Fatalf("NewMiddleware: %v; want an error wrapping ErrNoQuota", err)
	}
	if _, err := lim.Peek(context.Background(), "k", MustRule("5/minute", 0), 1); !errors.Is(err, ErrNoQuota) {
		t.Fatalf("Peek: %v; want ErrNoQuota", err)
	}
	if _, err := lim.Reserve(context.Background(), "k", MustRule("5/minute", 0), 1); !errors.Is(err, ErrNoQuota) {
		t.Fatalf("Reserve: %v; want ErrNoQuota", err)
	}
	if _, err := NewMiddleware("5/minute", WithChargeWhen(nil)); err == nil {
		t.Fatal("WithChargeWhen(nil): no error")
	}
}

// TestMiddleware_leakyBucketGivesTheSlotBackWhenTheClientGoes holds the
// second request for its slot; its client leaves, and the third request
// gets the slot the second had, not the one after.
func TestMiddleware_leakyBucketGivesTheSlotBackWhenTheClientGoes(t *testing.T) {
	lim, _ := clockedLimiter(t)
	var mu sync.Mutex
	var held []time.Duration
	var leave context.CancelFunc // the client of the request being held hangs up
	wait := middlewareOption(func(c *middlewareConfig) {
		c.wait = func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			held = append(held, d)
			if leave != nil {
				leave()
				leave = nil
			}
			mu.Unlock()
			return ctx.Err()
		}
	})
	m := MustNewMiddleware("2/second", WithLimiter(lim), WithAlgorithm(LeakyBucket), WithBurst(3), wait)
	h := m.Handler(okHandler)
	get(h, "/", client) // served at once
	ctx, cancel := context.WithCancel(context.Background())
	leave = cancel
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	r.RemoteAddr = client
	if res := m.Enforce(r, http.Header{}); res.Verdict != Gone {
		t.Fatalf("held request of a client that left: %+v; want Gone", res)
	}
	get(h, "/", client)
	get(h, "/", client)
	if fmt.Sprint(held) != "[500ms 500ms 1s]" {
		t.Fatalf("held %v; want the third request in the second's slot (500ms), the fourth after it", held)
	}
}

func TestMiddleware_peekSeesTheRoutesBudgetWithoutCharging(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("3/minute", WithLimiter(lim),
		WithKey(ByHeader("X-User")),
		WithPlans(map[string]string{"pro": "10/minute"}, func(r *http.Request) string { return r.Header.Get("X-Plan") }))
	h := m.Handler(okHandler)
	peek := func(header ...string) Usage {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/usage", nil)
		r.RemoteAddr = client
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		u, err := m.Peek(r)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	get(h, "/", client, "X-User", "ann")
	for range 5 {
		if u := peek("X-User", "ann"); u.Remaining() != 2 || u.Plan != "" || u.Decision.Limit.String() != "3/minute" {
			t.Fatalf("ann's usage %+v (remaining %d); want 2 of 3/minute left, no plan", u, u.Remaining())
		}
	}
	if u := peek("X-User", "bob", "X-Plan", "pro"); u.Remaining() != 10 || u.Plan != "pro" || u.Scope != m.Scope()+"/pro" {
		t.Fatalf("bob's usage %+v; want 10 left under plan pro", u)
	}
	get(h, "/", client, "X-User", "ann")
	get(h, "/", client, "X-User", "ann")
	if u := peek("X-User", "ann"); u.Remaining() != 0 || u.Decision.Allowed || u.Decision.RetryAfter <= 0 {
		t.Fatalf("ann's usage when spent: %+v; want 0 left and a retry time", u)
	}
	// No identity: the key error policy's peer-IP budget, which is fresh.
	if u := peek(); u.Remaining() != 3 {
		t.Fatalf("usage of an unidentified client: %+v; want the peer IP's fresh budget", u)
	}
}

// downQuotaStore is a QuotaStore that always fails.
type downQuotaStore struct{}

var errDown = errors.New("down")

func (downQuotaStore) Take(context.Context, string, Rule, int64) (Decision, error) {
	return Decision{}, errDown
}
func (downQuotaStore) Reset(context.Context, string, Rule) error { return errDown }
func (downQuotaStore) Close() error                              { return nil }
func (downQuotaStore) Peek(context.Context, string, Rule, int64) (Decision, error) {
	return Decision{}, errDown
}
func (downQuotaStore) Reserve(context.Context, string, Rule, int64) (Decision, Charge, error) {
	return Decision{}, Charge{}, errDown
}
func (downQuotaStore) Refund(context.Context, string, Rule, Charge, int64) error { return errDown }

func TestReserve_followsTheFailurePolicy(t *testing.T) {
	ctx := context.Background()
	rule := MustRule("5/minute", FixedWindow)
	t.Run("fallback reserves and settles in the fallback store", func(t *testing.T) {
		lim, _ := clockedLimiter(t, WithStore(downQuotaStore{}))
		res, err := lim.Reserve(ctx, "k", rule, 4)
		if err != nil || !res.OK() || res.Decision.Remaining != 1 {
			t.Fatalf("Reserve: %+v, %v; want the fallback's admission", res, err)
		}
		if err := res.Cancel(ctx); err != nil {
			t.Fatalf("Cancel: %v; want the fallback store to give back", err)
		}
		if d, _ := lim.fallbackIfMade().Peek(ctx, "k", rule, 0); d.Remaining != 5 {
			t.Fatalf("fallback after Cancel: %+v; want 5 remaining", d)
		}
	})
	t.Run("fail open admits and gives back nothing", func(t *testing.T) {
		lim, _ := clockedLimiter(t, WithStore(downQuotaStore{}), WithFailurePolicy(FailOpen))
		res, err := lim.Reserve(ctx, "k", rule, 4)
		if err != nil || !res.OK() || res.Settle(ctx, 1) != nil {
			t.Fatalf("Reserve: %+v, %v; want admitted, settled without a store", res, err)
		}
		if d, err := lim.Peek(ctx, "k", rule, 1); err != nil || !d.Allowed {
			t.Fatalf("Peek: %+v, %v; want allowed", d, err)
		}
	})
	t.Run("fail closed refuses", func(t *testing.T) {
		lim, _ := clockedLimiter(t, WithStore(downQuotaStore{}), WithFailurePolicy(FailClosed))
		if _, err := lim.Reserve(ctx, "k", rule, 4); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Reserve: %v; want ErrUnavailable", err)
		}
		if _, err := lim.Peek(ctx, "k", rule, 1); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Peek: %v; want ErrUnavailable", err)
		}
	})
}

func TestPeek_isNoDecisionForTheObserver(t *testing.T) {
	var kinds []EventKind
	lim, _ := clockedLimiter(t, WithObserver(ObserverFunc(func(e Event) { kinds = append(kinds, e.Kind) })))
	rule := MustRule("5/minute", 0)
	for range 3 {
		if _, err := lim.Peek(context.Background(), "k", rule, 1); err != nil {
			t.Fatal(err)
		}
	}
	m := MustNewMiddleware("5/minute", WithLimiter(lim))
	if _, err := m.Peek(httptest.NewRequest(http.MethodGet, "/", nil)); err != nil {
		t.Fatal(err)
	}
	if len(kinds) != 0 {
		t.Fatalf("peeks reported %v; want no events", kinds)
	}
	if _, err := lim.Reserve(context.Background(), "k", rule, 1); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(kinds) != "[decision]" {
		t.Fatalf("a reservation reported %v; want one decision", kinds)
	}
}

// Peek is documented not to ask the cost function: a /usage request is not
// the route's request, and a cost function written for the route (one that
// reads its body, or a value its handlers set) must neither run on it nor,
// failing there, send the peek to the key error policy's budget.
func TestMiddleware_peekAsksNoCostFunction(t *testing.T) {
	lim, _ := clockedLimiter(t)
	calls := 0
	m := MustNewMiddleware("3/minute", WithLimiter(lim), WithKey(ByHeader("X-User")),
		WithCost(func(r *http.Request) int64 {
			calls++
			if r.URL.Path != "/" {
				panic("the route's cost function sees another route's request")
			}
			return 1
		}))
	get(m.Handler(okHandler), "/", client, "X-User", "ann")
	calls = 0
	r := httptest.NewRequest(http.MethodGet, "/usage", nil)
	r.RemoteAddr = client
	r.Header.Set("X-User", "ann")
	u, err := m.Peek(r)
	if err != nil || u.Remaining() != 2 || calls != 0 {
		t.Fatalf("Peek: %+v (remaining %d), %v, cost function called %d times; want ann's 2 left and no call", u, u.Remaining(), err, calls)
	}
}
