package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// closableStore is a Store that admits everything until it is closed, and
// then, if it reportsClosed, answers ErrClosed as the module's stores do;
// otherwise it goes on answering, as a store that does not track Close.
type closableStore struct {
	reportsClosed bool
	closed        atomic.Bool
	calls         atomic.Int64
}

func (s *closableStore) Take(_ context.Context, _ string, rule Rule, _ int64) (Decision, error) {
	s.calls.Add(1)
	if s.reportsClosed && s.closed.Load() {
		return Decision{}, fmt.Errorf("fake store: %w", ErrClosed)
	}
	return Decision{Allowed: true, Limit: rule.Limits[0], Remaining: 1}, nil
}

func (s *closableStore) Reset(context.Context, string, Rule) error {
	if s.reportsClosed && s.closed.Load() {
		return fmt.Errorf("fake store: %w", ErrClosed)
	}
	return nil
}

func (s *closableStore) Close() error { s.closed.Store(true); return nil }

// memorySweepers counts the goroutines running a memory store's sweeper.
func memorySweepers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "core.(*MemoryStore).sweeper(")
}

// noMoreSweepersThan fails t unless, within a bounded while, at most n
// memory-store sweepers run: a goroutine on its way out may take a moment.
func noMoreSweepersThan(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for memorySweepers() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d memory store sweepers run; want at most %d: a fallback store was made and leaked", memorySweepers(), n)
		}
		runtime.Gosched()
	}
}

// After Close, a Limiter answers every call with ErrClosed, whatever its
// store says and whatever its failure policy: closing is the program's own
// doing, not an outage, so nothing is admitted, no fallback store is made
// (its sweeper would leak), and nothing is reported as a store failure.
func TestLimiter_afterCloseEveryCallReturnsErrClosedWithoutThePolicy(t *testing.T) {
	for _, policy := range []FailurePolicy{FailOpen, FailClosed, Fallback} {
		for _, reports := range []bool{true, false} {
			t.Run(fmt.Sprintf("%v/store reports closed %v", policy, reports), func(t *testing.T) {
				store := &closableStore{reportsClosed: reports}
				rec := &recorder{}
				var logs bytes.Buffer
				sweepers := memorySweepers()
				lim := New(WithStore(store), WithFailurePolicy(policy), WithObserver(rec), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
				if err := lim.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				rule := MustRule("5/minute", 0)
				ctx := context.Background()
				d1, err1 := lim.Take(ctx, "k", rule, 1)
				d2, err2 := lim.Allow(ctx, "k", rule)
				err3 := lim.Reset(ctx, "k", rule)
				for i, err := range []error{err1, err2, err3} {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("call %d after Close: error %v; want one wrapping ErrClosed", i+1, err)
					}
				}
				if d1.Allowed || d2.Allowed {
					t.Errorf("admitted after Close: %+v %+v", d1, d2)
				}
				if n := store.calls.Load(); n != 0 {
					t.Errorf("the store was asked %d times after Close", n)
				}
				if kinds := rec.kinds(); len(kinds) != 0 || logs.Len() != 0 {
					t.Errorf("events %v, log %q after Close; want none", kinds, logs.String())
				}
				if lim.fallbackIfMade() != nil {
					t.Error("a fallback store was made after Close")
				}
				noMoreSweepersThan(t, sweepers)
				if err := lim.Close(); err != nil {
					t.Errorf("second Close: %v; want nil", err)
				}
			})
		}
	}
}

// A store closed under a limiter that is still open (closed directly, or
// by another limiter sharing it) answers ErrClosed: that too is the
// program's doing, so the limiter returns it as it is, without marking the
// store down, applying the policy or making a fallback store.
func TestLimiter_storeThatSaysClosedIsNotAnOutage(t *testing.T) {
	store := &closableStore{reportsClosed: true}
	rec := &recorder{}
	var logs bytes.Buffer
	sweepers := memorySweepers()
	lim := closeLater(t, WithStore(store), WithObserver(rec), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	store.Close()
	for range 2 {
		if d, err := lim.Allow(context.Background(), "k", MustRule("5/minute", 0)); !errors.Is(err, ErrClosed) || d.Allowed {
			t.Errorf("Allow = %+v, %v; want a refusal wrapping ErrClosed", d, err)
		}
	}
	if lim.health.down.Load() || lim.fallbackIfMade() != nil {
		t.Errorf("store marked down (%v) or fallback made (%v)", lim.health.down.Load(), lim.fallbackIfMade() != nil)
	}
	for _, e := range rec.events {
		if e.Kind == EventStoreDown || e.Kind == EventStoreError {
			t.Errorf("event %v %v; a closed store is not a failure", e.Kind, e.Err)
		}
	}
	if strings.Contains(logs.String(), "store failed") || strings.Contains(logs.String(), "store error") {
		t.Errorf("logged as an outage:\n%s", logs.String())
	}
	noMoreSweepersThan(t, sweepers)
}

// A middleware whose limiter is closed (a request that arrives during
// shutdown) is refused with 503: never served unlimited.
func TestMiddleware_closedLimiterRefusesWith503(t *testing.T) {
	lim := New(WithStore(&closableStore{}), WithLogger(quiet))
	lim.Close()
	w := get(MustNewMiddleware("5/minute", WithLimiter(lim)).Handler(okHandler), "/", client)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "rate limiter unavailable") {
		t.Errorf("got %d %q; want 503 rate limiter unavailable", w.Code, w.Body)
	}
}
