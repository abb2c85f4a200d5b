package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// corruptKeyStore decides with a memory store, except for the key ending in
// bad, which holds foreign data: it fails as redisstore does for such a key.
type corruptKeyStore struct {
	mem   *MemoryStore
	calls atomic.Int64
}

func (s *corruptKeyStore) Take(ctx context.Context, key string, rule Rule, cost int64) (Decision, error) {
	s.calls.Add(1)
	if strings.HasSuffix(key, ":bad") {
		return Decision{}, fmt.Errorf("fake store: take %q: %w under limitkit:{%s}:0", key, ErrCorruptState, key)
	}
	return s.mem.Take(ctx, key, rule, cost)
}

func (s *corruptKeyStore) Reset(ctx context.Context, key string, rule Rule) error {
	return s.mem.Reset(ctx, key, rule)
}

func (s *corruptKeyStore) Close() error { return s.mem.Close() }

func userHeader(r *http.Request) (string, error) { return r.Header.Get("X-User"), nil }

// One key holding state the store cannot read concerns that key alone: the
// failure policy answers its request, and it is reported, but the store is
// not marked down, so every other key goes on being decided by it, and so
// does the bad key's next request.
func TestLimiter_corruptStateOfOneKeyAffectsOnlyThatRequest(t *testing.T) {
	tests := []struct {
		policy FailurePolicy
		codes  string // bad, good, bad, good under 5/minute
		bad    Action // who decided the bad key's requests
	}{
		{FailOpen, "[200 200 200 200]", ActionFailOpen},
		{FailClosed, "[503 200 503 200]", ActionFailClosed},
		{Fallback, "[200 200 200 200]", ActionFallback},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			store := &corruptKeyStore{mem: NewMemoryStore()}
			rec := &recorder{}
			var logs bytes.Buffer
			lim := closeLater(t, WithStore(store), WithFailurePolicy(tt.policy), WithObserver(rec), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			h := MustNewMiddleware("5/minute", WithLimiter(lim), WithName("s"), WithKey(userHeader)).Handler(okHandler)
			var codes []int
			for _, user := range []string{"bad", "good", "bad", "good"} {
				codes = append(codes, get(h, "/", client, "X-User", user).Code)
			}
			if got := fmt.Sprint(codes); got != tt.codes {
				t.Errorf("codes %s; want %s", got, tt.codes)
			}
			if n := store.calls.Load(); n != 4 {
				t.Errorf("store asked %d times; want 4: it must not be skipped as down", n)
			}
			if lim.health.down.Load() {
				t.Error("store marked down for one key's corrupt state")
			}
			var actions []Action
			errs := 0
			for _, e := range rec.events {
				switch e.Kind {
				case EventDecision:
					actions = append(actions, e.DecidedBy)
				case EventStoreError:
					errs++
					if !errors.Is(e.Err, ErrCorruptState) || e.Scope != "s" {
						t.Errorf("store error event %v in scope %q; want ErrCorruptState in s", e.Err, e.Scope)
					}
				case EventStoreDown:
					t.Errorf("store-down event for one key's corrupt state")
				}
			}
			if want := fmt.Sprint([]Action{tt.bad, ActionStore, tt.bad, ActionStore}); fmt.Sprint(actions) != want {
				t.Errorf("decided by %v; want %s", actions, want)
			}
			if errs != 2 || !strings.Contains(logs.String(), "corrupt rate-limit state") {
				t.Errorf("%d store error events (want 2); log:\n%s", errs, logs.String())
			}
			if strings.Contains(logs.String(), "store failed") {
				t.Errorf("logged as an outage:\n%s", logs.String())
			}
		})
	}
}

// Limiter.Take answers a corrupt key by the policy too: FailClosed's error
// wraps both ErrUnavailable and ErrCorruptState.
func TestLimiter_TakeOfACorruptKeyFollowsThePolicy(t *testing.T) {
	store := &corruptKeyStore{mem: NewMemoryStore()}
	lim := closeLater(t, WithStore(store), WithFailurePolicy(FailClosed), WithLogger(quiet))
	_, err := lim.Allow(context.Background(), "s:bad", MustRule("5/minute", 0))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrCorruptState) {
		t.Errorf("error %v; want ErrUnavailable wrapping ErrCorruptState", err)
	}
	if d, err := lim.Allow(context.Background(), "s:good", MustRule("5/minute", 0)); err != nil || d.Remaining != 4 {
		t.Errorf("another key: %+v, %v; want the store's decision", d, err)
	}
}
