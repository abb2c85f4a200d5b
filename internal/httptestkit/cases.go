package httptestkit

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

// The checks below are the behaviours every adapter must show alike. Each
// adapter's test builds its own framework's app; the check sends the
// requests and asserts.

// FailurePolicies checks, for every failure policy, the statuses of three
// requests to GET / when the store always fails, and the last body. serve
// returns the app under test: GET / limited to 1/minute by a middleware on
// lim, answering "ok".
func FailurePolicies(t *testing.T, serve func(lim *core.Limiter) http.Handler) {
	t.Helper()
	tests := []struct {
		policy core.FailurePolicy
		codes  string
		body   string
	}{
		{core.FailOpen, "[200 200 200]", "ok"},
		{core.FailClosed, "[503 503 503]", `{"error":"rate limiter unavailable"}` + "\n"},
		{core.Fallback, "[200 429 429]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			lim, _ := NewLimiter(t, core.WithStore(FailingStore{}), core.WithFailurePolicy(tt.policy), core.WithLogger(slog.New(slog.DiscardHandler)))
			h := serve(lim)
			var codes []int
			var last string
			for range 3 {
				w := Do(h, "GET", "/", Client)
				codes = append(codes, w.Code)
				last = w.Body.String()
			}
			if fmt.Sprint(codes) != tt.codes {
				t.Errorf("codes %v; want %s", codes, tt.codes)
			}
			if tt.body != "" && last != tt.body {
				t.Errorf("body %q; want %q", last, tt.body)
			}
		})
	}
}

// LeakyBucketHold checks that h, which limits GET / by a leaky bucket of
// 20/second with a burst of 2 on a real clock, serves the first request at
// once, holds the second for its 50ms slot and refuses the third.
func LeakyBucketHold(t *testing.T, h http.Handler) {
	t.Helper()
	if w := Do(h, "GET", "/", Client); w.Code != http.StatusOK {
		t.Fatalf("first request: %d", w.Code)
	}
	start := time.Now()
	w := Do(h, "GET", "/", Client)
	if held := time.Since(start); w.Code != http.StatusOK || held < 40*time.Millisecond {
		t.Errorf("second request: %d after %v; want 200 after its 50ms slot", w.Code, held)
	}
	if w := Do(h, "GET", "/", Client); w.Code != http.StatusTooManyRequests {
		t.Errorf("third request: %d; want 429, the queue is full", w.Code)
	}
}

// ShadowMode checks that three requests to GET / are all served without
// rate limit headers and two shadow denials are reported. serve returns the
// app under test: GET / limited to 1/minute in shadow mode by a middleware on
// lim.
func ShadowMode(t *testing.T, serve func(lim *core.Limiter) http.Handler) {
	t.Helper()
	var mu sync.Mutex
	var shadowed int
	lim, _ := NewLimiter(t, core.WithObserver(core.ObserverFunc(func(e core.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Kind == core.EventDecision && e.Shadow {
			shadowed++
		}
	})))
	h := serve(lim)
	for i := range 3 {
		if w := Do(h, "GET", "/", Client); w.Code != http.StatusOK || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("request %d: %d %v; shadow mode serves without headers", i, w.Code, w.Header())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if shadowed != 2 {
		t.Errorf("%d shadow denials reported; want 2", shadowed)
	}
}
