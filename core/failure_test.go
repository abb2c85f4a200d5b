package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultyStore is a Store whose failures the test turns on and off: it
// decides with a memory store while healthy.
type faultyStore struct {
	mem     *MemoryStore
	fault   atomic.Value // string: "", "error", "hang", "stuck", "panic"
	calls   atomic.Int64
	release chan struct{} // ends "stuck" calls, which ignore their context
	entered chan struct{} // has a value once a call has reached the store
}

func newFaultyStore(t testing.TB, clock Clock, fault string) *faultyStore {
	s := &faultyStore{mem: NewMemoryStore(MemoryClock(clock)), release: make(chan struct{}), entered: make(chan struct{}, 1)}
	s.fault.Store(fault)
	t.Cleanup(func() { close(s.release); s.mem.Close() })
	return s
}

var errRefused = errors.New("dial tcp 10.0.0.9:6379: connection refused")

func (s *faultyStore) Take(ctx context.Context, key string, rule Rule, cost int64) (Decision, error) {
	s.calls.Add(1)
	select {
	case s.entered <- struct{}{}:
	default:
	}
	switch s.fault.Load().(string) {
	case "error":
		return Decision{}, errRefused
	case "hang":
		<-ctx.Done()
		return Decision{}, ctx.Err()
	case "stuck":
		<-s.release
		return Decision{}, errors.New("answered after the deadline")
	case "panic":
		panic("store bug")
	}
	return s.mem.Take(ctx, key, rule, cost)
}

func (s *faultyStore) Reset(ctx context.Context, key string, rule Rule) error {
	return s.mem.Reset(ctx, key, rule)
}

func (s *faultyStore) Close() error { return nil }

// closeLater builds a limiter and closes it, with its fallback store, when
// the test ends.
func closeLater(t testing.TB, opts ...Option) *Limiter {
	l := New(opts...)
	t.Cleanup(func() { l.Close() })
	return l
}

// quiet is a logger that discards, for tests that do not read the log.
var quiet = slog.New(slog.DiscardHandler)

func TestLimiter_failurePolicies(t *testing.T) {
	tests := []struct {
		policy FailurePolicy
		fault  string
		codes  string // two requests under 1/minute
		action Action
		limit  string // X-RateLimit-Limit of the first response
	}{
		{FailOpen, "error", "[200 200]", ActionFailOpen, ""},
		{FailOpen, "hang", "[200 200]", ActionFailOpen, ""},
		{FailOpen, "stuck", "[200 200]", ActionFailOpen, ""},
		{FailOpen, "panic", "[200 200]", ActionFailOpen, ""},
		{FailClosed, "error", "[503 503]", ActionFailClosed, ""},
		{FailClosed, "hang", "[503 503]", ActionFailClosed, ""},
		{FailClosed, "panic", "[503 503]", ActionFailClosed, ""},
		{Fallback, "error", "[200 429]", ActionFallback, "1"},
		{Fallback, "stuck", "[200 429]", ActionFallback, "1"},
		{Fallback, "panic", "[200 429]", ActionFallback, "1"},
		{0, "error", "[200 429]", ActionFallback, "1"}, // the default
		{FailClosed, "", "[200 429]", ActionStore, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String()+"/"+tt.fault, func(t *testing.T) {
			clk := newStepClock()
			store := newFaultyStore(t, clk.Now, tt.fault)
			rec := &recorder{}
			opts := []Option{WithStore(store), WithClock(clk.Now), WithTimeout(20 * time.Millisecond), WithObserver(rec), WithLogger(quiet)}
			if tt.policy != 0 {
				opts = append(opts, WithFailurePolicy(tt.policy))
			}
			lim := closeLater(t, opts...)
			h := MustNewMiddleware("1/minute", WithLimiter(lim)).Handler(okHandler)
			first := get(h, "/", client)
			second := get(h, "/", client)
			if codes := fmt.Sprint([]int{first.Code, second.Code}); codes != tt.codes {
				t.Errorf("codes %s; want %s", codes, tt.codes)
			}
			if got := first.Header().Get("X-RateLimit-Limit"); got != tt.limit {
				t.Errorf("X-RateLimit-Limit %q; want %q", got, tt.limit)
			}
			if tt.policy == FailClosed && tt.fault != "" && first.Header().Get("Retry-After") != "1" {
				t.Errorf("503 without Retry-After: 1 (the probe interval)")
			}
			if e := rec.last(); e.Kind != EventDecision || e.DecidedBy != tt.action {
				t.Errorf("last event %v/%v; want a decision by %v", e.Kind, e.DecidedBy, tt.action)
			}
			if tt.fault != "" {
				want := "[store-down store-error decision decision]"
				if got := fmt.Sprint(rec.kinds()); got != want {
					t.Errorf("events %s; want %s (the second request skips the store that is down)", got, want)
				}
				if n := store.calls.Load(); n != 1 {
					t.Errorf("store called %d times; want once until the probe interval passes", n)
				}
			}
		})
	}
}

func TestLimiter_storeThatHangsIsCutOffAtTheDeadline(t *testing.T) {
	for _, fault := range []string{"hang", "stuck"} {
		t.Run(fault, func(t *testing.T) {
			store := newFaultyStore(t, time.Now, fault)
			rec := &recorder{}
			lim := closeLater(t, WithStore(store), WithTimeout(10*time.Millisecond), WithFailurePolicy(FailClosed), WithObserver(rec), WithLogger(quiet))
			start := time.Now()
			_, err := lim.Allow(context.Background(), "k", MustRule("1/second", 0))
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v; want ErrUnavailable wrapping a deadline", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v; want about the 10ms deadline", took)
			}
			if e := rec.events[1]; e.Kind != EventStoreError || !strings.Contains(e.Err.Error(), "did not answer within 10ms") {
				t.Errorf("event %v %v; want a store error naming the deadline", e.Kind, e.Err)
			}
		})
	}
}

func TestLimiter_fallbackReturnsToTheStoreWhenAProbeSucceeds(t *testing.T) {
	clk := newStepClock()
	store := newFaultyStore(t, clk.Now, "error")
	rec := &recorder{}
	var logs bytes.Buffer
	lim := closeLater(t, WithStore(store), WithClock(clk.Now), WithObserver(rec), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	rule := MustRule("100/minute", 0)
	take := func() Decision {
		t.Helper()
		d, err := lim.Allow(context.Background(), "k", rule)
		if err != nil {
			t.Fatalf("Allow: %v; the fallback should decide", err)
		}
		return d
	}
	take()
	take()
	clk.Add(999 * time.Millisecond)
	take()
	if n := store.calls.Load(); n != 1 {
		t.Fatalf("store called %d times before the probe interval; want 1", n)
	}
	store.fault.Store("")
	clk.Add(time.Millisecond)
	if d := take(); d.Remaining != 99 {
		t.Errorf("remaining %d after recovery; want 99: the store decides again, with its own count", d.Remaining)
	}
	take()
	if n := store.calls.Load(); n != 3 {
		t.Errorf("store called %d times; want 3 (the failure, the probe, and the next check)", n)
	}
	want := "[store-down store-error decision decision decision store-up decision decision]"
	if got := fmt.Sprint(rec.kinds()); got != want {
		t.Errorf("events %s; want %s", got, want)
	}
	for _, msg := range []string{"rate limit store failed", "connection refused", "answers again"} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("log lacks %q:\n%s", msg, logs.String())
		}
	}
}

func TestLimiter_onlyOneCallerProbesAStoreThatIsDown(t *testing.T) {
	clk := newStepClock()
	store := newFaultyStore(t, clk.Now, "error")
	lim := closeLater(t, WithStore(store), WithClock(clk.Now), WithLogger(quiet))
	rule := MustRule("100/minute", 0)
	lim.Allow(context.Background(), "k", rule)
	clk.Add(time.Second)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-start
			lim.Allow(context.Background(), "k", rule)
		})
	}
	close(start)
	wg.Wait()
	if n := store.calls.Load(); n != 2 {
		t.Errorf("store called %d times; want 2: the failure and one probe", n)
	}
}

func TestLimiter_TakeFollowsThePolicy(t *testing.T) {
	tests := []struct {
		policy  FailurePolicy
		allowed bool
		err     error
	}{
		{FailOpen, true, nil},
		{FailClosed, false, ErrUnavailable},
		{Fallback, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			store := newFaultyStore(t, time.Now, "error")
			lim := closeLater(t, WithStore(store), WithFailurePolicy(tt.policy), WithLogger(quiet))
			d, err := lim.Allow(context.Background(), "k", MustRule("5/minute", 0))
			if d.Allowed != tt.allowed || !errors.Is(err, tt.err) {
				t.Errorf("Allow = %v, %v; want allowed %v, error %v", d.Allowed, err, tt.allowed, tt.err)
			}
			if tt.err != nil && !errors.Is(err, errRefused) {
				t.Errorf("error %v does not wrap the store's", err)
			}
		})
	}
}

func TestLimiter_clientGoingAwayIsNotAStoreFailure(t *testing.T) {
	store := newFaultyStore(t, time.Now, "hang")
	rec := &recorder{}
	lim := closeLater(t, WithStore(store), WithTimeout(time.Hour), WithObserver(rec), WithLogger(quiet))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := lim.Allow(ctx, "k", MustRule("5/minute", 0))
		done <- err
	}()
	<-store.entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("error %v; want context.Canceled", err)
	}
	if lim.health.down.Load() || len(rec.kinds()) != 0 {
		t.Errorf("store marked down (%v) or events %v after the caller left", lim.health.down.Load(), rec.kinds())
	}
}

func TestMiddleware_failClosedUsesItsOwnBodyEvenWithADenyHandler(t *testing.T) {
	store := newFaultyStore(t, time.Now, "error")
	lim := closeLater(t, WithStore(store), WithFailurePolicy(FailClosed), WithLogger(quiet))
	deny := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	w := get(MustNewMiddleware("1/minute", WithLimiter(lim), WithDenyHandler(deny)).Handler(okHandler), "/", client)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "rate limiter unavailable") {
		t.Errorf("got %d %q; want 503 with the default body", w.Code, w.Body)
	}
}

func TestNew_panicsOnBadOptionsNamingThem(t *testing.T) {
	tests := []struct {
		opt  Option
		want string
	}{
		{WithTimeout(-time.Second), "WithTimeout(-1s)"},
		{WithProbeInterval(-time.Second), "WithProbeInterval(-1s)"},
		{WithFailurePolicy(9), "WithFailurePolicy(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			defer func() {
				if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), tt.want) {
					t.Errorf("panic %v; want one naming %s", p, tt.want)
				}
			}()
			New(tt.opt)
		})
	}
}

// keeperStore is a faultyStore that promises to keep its deadlines, and
// records whether its calls came with one.
type keeperStore struct {
	*faultyStore
	withDeadline atomic.Int64
}

func (s *keeperStore) KeepsDeadlines() bool { return true }

func (s *keeperStore) Take(ctx context.Context, key string, rule Rule, cost int64) (Decision, error) {
	if _, ok := ctx.Deadline(); ok {
		s.withDeadline.Add(1)
	}
	return s.faultyStore.Take(ctx, key, rule, cost)
}

// A store that keeps its deadlines is called under the limiter's deadline
// and its failures follow the policy as any other store's: a hang ends at
// the deadline, a panic becomes an error, and a healthy call decides.
func TestLimiter_deadlineKeeperFollowsThePolicyToo(t *testing.T) {
	tests := []struct {
		fault   string
		allowed bool
		says    string
	}{
		{"", true, ""},
		{"hang", false, "did not answer within 10ms"},
		{"panic", false, "store panicked"},
		{"error", false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run("fault="+tt.fault, func(t *testing.T) {
			store := &keeperStore{faultyStore: newFaultyStore(t, time.Now, tt.fault)}
			lim := closeLater(t, WithStore(store), WithTimeout(10*time.Millisecond), WithFailurePolicy(FailClosed), WithLogger(quiet))
			d, err := lim.Allow(context.Background(), "k", MustRule("1/second", 0))
			if d.Allowed != tt.allowed {
				t.Errorf("Allowed = %v, want %v (err %v)", d.Allowed, tt.allowed, err)
			}
			if tt.says == "" && err != nil || tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says)) {
				t.Errorf("error %v; want one saying %q", err, tt.says)
			}
			if n := store.withDeadline.Load(); n != 1 {
				t.Errorf("%d of 1 calls came with a deadline", n)
			}
		})
	}
}
