// What the limiters' observers heard, as the outage scenarios use it: they
// wait for events (an instance reporting its store down or up, a failed
// probe, enough requests of the load) instead of sleeping, and they judge
// each request by how its limiter decided it instead of by the wall-clock
// phase it fell in, so that a loaded machine changes the figures but not
// the verdict.
package integration_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

// awaitTimeout bounds every wait for an event: it is not a margin any
// assertion depends on, only how long a test hangs when an event never comes.
const awaitTimeout = 30 * time.Second

// signal wakes everyone waiting for a change. Its owner's lock guards it:
// waiters take wait() under the lock, notify() is called under it.
type signal struct{ ch chan struct{} }

func (s *signal) wait() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) notify() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// await blocks until cond, called with mu held, holds, or ctx ends.
func await(ctx context.Context, mu *sync.Mutex, s *signal, cond func() bool) error {
	for {
		mu.Lock()
		if cond() {
			mu.Unlock()
			return nil
		}
		ch := s.wait()
		mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// transition is one store-down or store-up event, when the observer heard it.
type transition struct {
	up bool
	at time.Time
}

// timedOut reports whether a store error is a deadline passing: the
// context's, as the limiter or the store reports it, or the connection's,
// which go-redis sets to the same instant (whichever timer fires first).
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// storeError is one failed call of the store.
type storeError struct {
	at      time.Time
	err     error
	latency time.Duration
}

// heard is what an observer heard about one client.
type heard struct {
	decisions, storeErrors int
	action                 core.Action // of the last decision
}

// client returns the record of identity; c.mu must be held.
func (c *counters) client(identity string) *heard {
	if c.clients == nil {
		c.clients = map[string]*heard{}
	}
	h := c.clients[identity]
	if h == nil {
		h = &heard{}
		c.clients[identity] = h
	}
	return h
}

// heardOf returns a copy of what was heard about identity.
func (c *counters) heardOf(identity string) heard {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.client(identity)
}

// transitions returns the store's transitions so far.
func (c *counters) transitions() []transition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]transition(nil), c.trans...)
}

// storeErrorsBetween returns the store errors heard in [from, to].
func (c *counters) storeErrorsBetween(from, to time.Time) []storeError {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []storeError
	for _, e := range c.errs {
		if !e.at.Before(from) && !e.at.After(to) {
			out = append(out, e)
		}
	}
	return out
}

// awaitTransitions waits until cond holds of every instance's transitions
// and store errors (cond is called with the instance's counters locked).
func awaitTransitions(t *testing.T, insts []*instance, what string, cond func(trans []transition, errs []storeError) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), awaitTimeout)
	defer cancel()
	for i, in := range insts {
		c := in.obs
		if err := await(ctx, &c.mu, &c.changed, func() bool { return cond(c.trans, c.errs) }); err != nil {
			t.Fatalf("instance %d: waiting for %s: %v (transitions %v)", i, what, err, c.transitions())
		}
	}
}

// upAfter returns the first store-up transition after t.
func upAfter(trans []transition, t time.Time) (time.Time, bool) {
	for _, tr := range trans {
		if tr.up && tr.at.After(t) {
			return tr.at, true
		}
	}
	return time.Time{}, false
}

// window is a span in which one instance reported its store down: from its
// store-down event to the next store-up (to is zero if none came).
type window struct{ from, to time.Time }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// holds reports whether the request r lies entirely inside w: it reached the
// limiter after the store-down event and was answered before the store-up
// event. Such a request cannot have been decided by the store: the limiter
// marks the store down before it reports it so, and reports it up before
// the request whose probe succeeded is answered.
func (w window) holds(r loadRecord) bool {
	return !r.start.Before(w.from) && (w.to.IsZero() || !r.end().After(w.to))
}

// downWindows returns every span in which the store was reported down.
func downWindows(trans []transition) []window {
	var out []window
	for _, tr := range trans {
		switch {
		case !tr.up:
			out = append(out, window{from: tr.at})
		case len(out) > 0 && out[len(out)-1].to.IsZero():
			out[len(out)-1].to = tr.at
		}
	}
	return out
}

// loadRecord is one request and how its limiter decided it.
type loadRecord struct {
	group int
	reply
	retryAfter bool
	// decided: the instance's observer heard exactly one decision for the
	// request's client while it was in flight, so action is this request's.
	decided bool
	action  core.Action
	// storeFailed: the request's own call of the store failed (for a request
	// that reached a limiter already down, that call was a failed probe).
	storeFailed bool
}

func (r loadRecord) end() time.Time { return r.start.Add(r.latency) }

// byClient keys requests by their X-Client header as it is, so that an
// event's Identity is the client's name, by which send finds its decisions.
var byClient = core.WithKey(func(r *http.Request) (string, error) { return r.Header.Get("X-Client"), nil })

// send sends GET /items to insts[i] as client, one request at a time per
// client, and classifies it by what the instance's observer heard about the
// client meanwhile. The instances must key by byClient.
func send(ctx context.Context, c *http.Client, insts []*instance, i int, client string) loadRecord {
	before := insts[i].obs.heardOf(client)
	var ra bool
	r := reply{inst: i, start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, insts[i].srv.URL+"/items", nil)
	if err == nil {
		req.Header.Set("X-Client", client)
		var resp *http.Response
		resp, err = c.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			r.status = resp.StatusCode
			ra = resp.Header.Get("Retry-After") != ""
		}
	}
	r.err, r.latency = err, time.Since(r.start)
	after := insts[i].obs.heardOf(client)
	return loadRecord{
		reply: r, retryAfter: ra,
		decided: after.decisions == before.decisions+1, action: after.action,
		storeFailed: after.storeErrors > before.storeErrors,
	}
}

// policyActions is the action each policy takes for a check the store did
// not decide.
var policyActions = map[core.FailurePolicy]core.Action{
	core.FailOpen: core.ActionFailOpen, core.FailClosed: core.ActionFailClosed, core.Fallback: core.ActionFallback,
}

// breach returns how r breaks the contract of policy p, or "": a request is
// decided by the store or by p's action, never another; the store's
// decisions are 200 or 429; FailOpen serves; FailClosed answers 503 with
// Retry-After; Fallback's memory store answers 200 or 429.
func breach(p core.FailurePolicy, r loadRecord) string {
	ok := func(s ...int) bool {
		for _, v := range s {
			if r.status == v {
				return true
			}
		}
		return false
	}
	switch {
	case r.err != nil:
		return fmt.Sprintf("transport error: %v", r.err)
	case !r.decided:
		return fmt.Sprintf("answered %d without exactly one decision event", r.status)
	case r.action == core.ActionStore:
		if !ok(http.StatusOK, http.StatusTooManyRequests) {
			return fmt.Sprintf("decided by the store, answered %d", r.status)
		}
	case r.action != policyActions[p]:
		return fmt.Sprintf("decided %v, answered %d", r.action, r.status)
	case p == core.FailOpen && !ok(http.StatusOK):
		return fmt.Sprintf("decided fail-open, answered %d", r.status)
	case p == core.FailClosed && (!ok(http.StatusServiceUnavailable) || !r.retryAfter):
		return fmt.Sprintf("decided fail-closed, answered %d (Retry-After: %v)", r.status, r.retryAfter)
	case p == core.Fallback && !ok(http.StatusOK, http.StatusTooManyRequests):
		return fmt.Sprintf("decided by the fallback, answered %d", r.status)
	}
	return ""
}

// storeTally counts the requests of one client that the store decided, and
// the failed store calls, each of which may or may not have been charged.
type storeTally struct {
	sent, admitted, denied, byPolicy, failed int
}

func tallyStore(rs []loadRecord) storeTally {
	st := storeTally{sent: len(rs)}
	for _, r := range rs {
		switch {
		case r.decided && r.action == core.ActionStore && r.status == http.StatusOK:
			st.admitted++
		case r.decided && r.action == core.ActionStore && r.status == http.StatusTooManyRequests:
			st.denied++
		default:
			st.byPolicy++
		}
		if r.storeFailed {
			st.failed++
		}
	}
	return st
}

func (st storeTally) String() string {
	return fmt.Sprintf("decided by the store %d (admitted %d, denied %d), by the policy %d, failed store calls %d",
		st.admitted+st.denied, st.admitted, st.denied, st.byPolicy, st.failed)
}

// exactly returns what is wrong with st for a new client of one shared
// budget of limit, or "": shared state admits exactly limit, less only
// what failed calls may have charged without an answer.
func (st storeTally) exactly(limit int) string {
	if st.admitted > limit || st.admitted < limit-st.failed {
		return fmt.Sprintf("the store admitted %d with %d failed calls; want exactly %d (less one per failed call) across the instances (shared state)",
			st.admitted, st.failed, limit)
	}
	return ""
}

// untilStoreDecided sends requests as client, one after another, rotating
// over insts, until n of them were decided by the store. After a request
// the policy decided it waits for that instance to report the store up (the
// background load's requests probe it), so that a deadline a loaded machine
// missed costs time, not the check. It gives up after 10n requests.
func untilStoreDecided(t *testing.T, c *http.Client, insts []*instance, n int, client string) []loadRecord {
	t.Helper()
	var rs []loadRecord
	for k, decided := 0, 0; decided < n; k++ {
		if k == 10*n {
			t.Errorf("%s: only %d of %d requests decided by the store", client, decided, k)
			break
		}
		i := k % len(insts)
		r := send(t.Context(), c, insts, i, client)
		rs = append(rs, r)
		if r.decided && r.action == core.ActionStore {
			decided++
			continue
		}
		awaitTransitions(t, insts[i:i+1], "the store up again", func(trans []transition, _ []storeError) bool {
			return len(trans) == 0 || trans[len(trans)-1].up
		})
	}
	return rs
}

func replies(rs []loadRecord) []reply {
	out := make([]reply, len(rs))
	for i, r := range rs {
		out[i] = r.reply
	}
	return out
}
