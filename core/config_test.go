package core

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A middleware built without WithLimiter takes its rule's defaults from the
// default limiter of each request. When SetDefault, after the routes were
// built, installs one whose defaults cannot enforce the rule (the sliding
// log keeps at most 100,000 entries), that is a mistake in set-up, not an
// outage: the route is refused with 500 and never served unlimited, the
// mistake is reported once (an Error log line and an EventConfigError), and
// the store, which is healthy, is not marked down, so other routes go on
// being decided by it.
func TestMiddleware_ruleTheNewDefaultCannotEnforceIsRefusedWith500NotServed(t *testing.T) {
	old := defaultLimiter.Load()
	t.Cleanup(func() { defaultLimiter.Store(old) })
	big := MustNewMiddleware("200000/minute")
	small := MustNewMiddleware("5/minute")
	rec := &recorder{}
	var logs bytes.Buffer
	lim := closeLater(t, WithAlgorithm(SlidingWindowLog), WithObserver(rec), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	SetDefault(lim)
	var codes []int
	for range 3 {
		w := get(big.Handler(okHandler), "/", client)
		codes = append(codes, w.Code)
		if !strings.Contains(w.Body.String(), "rate limit cannot be enforced") {
			t.Errorf("body %q; want it to say the limit cannot be enforced", w.Body)
		}
	}
	w := get(small.Handler(okHandler), "/", client)
	codes = append(codes, w.Code)
	if got := fmt.Sprint(codes); got != "[500 500 500 200]" || w.Header().Get("X-RateLimit-Remaining") != "4" {
		t.Errorf("codes %s, the small route's remaining %q; want [500 500 500 200] and 4", got, w.Header().Get("X-RateLimit-Remaining"))
	}
	if lim.health.down.Load() {
		t.Error("the healthy store was marked down for a configuration error")
	}
	var kinds []EventKind
	for _, e := range rec.events {
		kinds = append(kinds, e.Kind)
		if e.Kind == EventConfigError && (e.Scope != big.Scope() || e.Err == nil || !strings.Contains(e.Err.Error(), "at most 100000")) {
			t.Errorf("config error event in scope %q with %v; want scope %q and the validation error", e.Scope, e.Err, big.Scope())
		}
	}
	if got := fmt.Sprint(kinds); got != "[config-error decision]" {
		t.Errorf("events %s; want [config-error decision]: reported once, and the small route decided", got)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || strings.Count(logs.String(), "\n") != 1 {
		t.Errorf("log has %d Error lines; want one and nothing else:\n%s", n, logs.String())
	}
}

// While the store is down, a rule that cannot be enforced is still a
// configuration error: the failure policy, even FailOpen, does not serve it.
func TestMiddleware_ruleThatCannotBeEnforcedIsRefusedAlsoWhileTheStoreIsDown(t *testing.T) {
	for _, policy := range []FailurePolicy{FailOpen, FailClosed, Fallback} {
		t.Run(policy.String(), func(t *testing.T) {
			clk := newStepClock()
			store := newFaultyStore(t, clk.Now, "error")
			lim := closeLater(t, WithStore(store), WithClock(clk.Now), WithFailurePolicy(policy), WithLogger(quiet))
			good := MustNewMiddleware("5/minute", WithLimiter(lim)).Handler(okHandler)
			get(good, "/", client) // marks the store down
			// Built for the default algorithm, then checked by a limiter whose
			// default is the log: as if built before SetDefault.
			bad := MustNewMiddleware("200000/minute", WithLimiter(lim))
			bad.base.rule.Algorithm = SlidingWindowLog
			for _, probe := range []time.Duration{0, time.Second} { // skipped, then probing, the store
				clk.Add(probe)
				if w := get(bad.Handler(okHandler), "/", client); w.Code != http.StatusInternalServerError {
					t.Errorf("after %v: %d; want 500", probe, w.Code)
				}
			}
		})
	}
}

// A rule the store rejects comes out of the limiter's check as the
// configuration error it is, for the caller to report: not as an outage.
func TestLimiter_ruleTheStoreRejectsIsNotAnOutage(t *testing.T) {
	rec := &recorder{}
	lim := closeLater(t, WithObserver(rec), WithLogger(quiet))
	rule := MustRule("200000/minute", 0)
	rule.Algorithm = SlidingWindowLog
	o := lim.take(context.Background(), "s", "id", storeKey{"s:", "id"}, &rule, 1)
	if !o.invalid || o.err == nil || lim.health.down.Load() || len(rec.events) != 0 {
		t.Errorf("outcome %+v, down %v, events %v; want a configuration error, the store up, nothing reported by take", o, lim.health.down.Load(), rec.kinds())
	}
}
