package core

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// FailurePolicy says what a Limiter does with a check when its store fails:
// returns an error, times out (WithTimeout) or panics.
//
// Whatever the policy, a failed store is treated as down until it answers
// again: while it is down, checks do not wait for it; one check at most per
// probe interval (WithProbeInterval, default one second) tries it, and the
// first that succeeds brings it back. So an outage costs each request
// nothing, and the store sees at most one retry per interval from each
// limiter, never a storm. Each failure, and each change between down and up,
// reaches the observer and the logger.
//
// Some errors are not outages. One that wraps ErrCorruptState concerns one
// key, and one that wraps ErrClockSkew this instance's calendar limits: the
// policy answers that request alone, it is reported as a store error, and
// the store is not marked down. One that wraps ErrClosed means
// the store was closed: the check returns it, and no policy applies. Nor
// does one for a rule that cannot be enforced (Rule.Validate fails with
// the limiter's defaults applied): that is a mistake in set-up, which the
// middleware refuses with 500 and reports once (see EventConfigError); it
// is never served unlimited, also while the store is down.
//
// Fallback is the default. A rate limiter exists to protect the service, and
// the other two policies each give up half of that during an outage of the
// store: FailOpen drops all limits, so a login endpoint can be brute-forced
// for as long as Redis is down, and FailClosed makes the limiter's store a
// single point of failure for the whole API. Fallback keeps limiting, each
// instance on its own (so N instances admit up to N times the limit) until
// the store is back, and costs nothing until the first failure.
type FailurePolicy uint8

// The failure policies; the zero value means Fallback.
const (
	// FailOpen serves requests the store could not decide, unlimited.
	FailOpen FailurePolicy = iota + 1
	// FailClosed refuses them: the middleware answers 503 Service
	// Unavailable, Take returns an error wrapping ErrUnavailable.
	FailClosed
	// Fallback decides them with a memory store local to the limiter,
	// made on the first failure and kept for the next outage.
	Fallback
)

// String returns the policy's name, such as "fail-open".
func (p FailurePolicy) String() string {
	switch p {
	case FailOpen:
		return "fail-open"
	case FailClosed:
		return "fail-closed"
	case Fallback, 0:
		return "fallback"
	}
	return fmt.Sprintf("FailurePolicy(%d)", uint8(p))
}

// WithFailurePolicy sets what the limiter does when its store fails (default
// Fallback; see FailurePolicy).
func WithFailurePolicy(p FailurePolicy) Option {
	return limiterOption(func(c *config) {
		if p > Fallback {
			c.problems = append(c.problems, fmt.Errorf("limitkit: WithFailurePolicy(%d): unknown policy; use FailOpen, FailClosed or Fallback", uint8(p)))
			return
		}
		c.policy = p
	})
}

// DefaultProbeInterval is how often, at most, a limiter tries a store that
// has failed.
const DefaultProbeInterval = time.Second

// WithProbeInterval sets how often, at most, the limiter tries its store
// again while the store is down (default DefaultProbeInterval). Zero makes
// every check try it, which suits a store whose errors are rare and brief.
func WithProbeInterval(d time.Duration) Option {
	return limiterOption(func(c *config) {
		if d < 0 {
			c.problems = append(c.problems, fmt.Errorf("limitkit: WithProbeInterval(%v): the interval must not be negative", d))
			return
		}
		c.probe, c.probeSet = d, true
	})
}

// Action says how a check was decided, in the light of the failure policy.
type Action uint8

// The actions.
const (
	// ActionStore: the limiter's store decided.
	ActionStore Action = iota
	// ActionFailOpen: the store failed or is down; the request was admitted
	// without a decision.
	ActionFailOpen
	// ActionFailClosed: the store failed or is down; the request was refused.
	ActionFailClosed
	// ActionFallback: the store failed or is down; the fallback memory store
	// decided.
	ActionFallback
)

var actionNames = [...]string{"store", "fail-open", "fail-closed", "fallback"}

// String returns the action's name, such as "fallback".
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// ErrUnavailable is wrapped by the error of a check refused because the
// store failed under FailClosed.
var ErrUnavailable = errors.New("limitkit: rate limit store unavailable")

// errStoreDown is the reason given for checks that skipped a store known to
// be down.
var errStoreDown = errors.New("limitkit: store is down; waiting for a probe to succeed")

func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return ErrUnavailable
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// health is the limiter's view of its store: up, or down until a probe
// succeeds.
type health struct {
	down      atomic.Bool
	nextProbe atomic.Int64 // Unix ns by the limiter's clock
}

// outcome is one check as the limiter made it.
type outcome struct {
	d       Decision
	action  Action
	err     error         // the store's error, or why it was not asked
	latency time.Duration // the store's, when asked and an observer listens
	gone    bool          // the caller's context ended: not the store's fault
	closed  bool          // the limiter or its store is closed: err wraps ErrClosed
	invalid bool          // the rule cannot be enforced: err says why
	charge  Charge        // what a reserving check charged (see op)
}

// op is what a check asks of the store: Take, or QuotaStore's Peek or
// Reserve. All three go through the failure policy alike.
type op uint8

const (
	opTake op = iota
	opPeek
	opReserve
)

// stopped reports a check that ended without a decision, by the store or
// by the policy, and that is no outage of the store: err says why.
func (o *outcome) stopped() bool { return o.gone || o.closed || o.invalid }

// take runs one check through the failure policy. rule must have its
// defaults applied and be valid. scope and identity only label events.
func (l *Limiter) take(ctx context.Context, scope, identity string, key storeKey, rule *Rule, cost int64) outcome {
	return l.check(ctx, opTake, scope, identity, key, rule, cost)
}

// check is take for any op. A peek or a reservation on a store that is not
// a QuotaStore is a mistake in set-up, reported as a rule that cannot be
// enforced.
func (l *Limiter) check(ctx context.Context, op op, scope, identity string, key storeKey, rule *Rule, cost int64) (o outcome) {
	if op != opTake && !l.quota {
		return outcome{err: l.noQuota(), invalid: true}
	}
	if err := ctx.Err(); err != nil {
		return outcome{err: err, gone: true}
	}
	if l.closed.Load() {
		return outcome{err: errLimiterClosed, closed: true}
	}
	probing := l.health.down.Load()
	if probing && !l.claimProbe() {
		if err := rule.Validate(); err != nil {
			return outcome{err: err, invalid: true}
		}
		return l.degraded(ctx, op, key, *rule, cost, errStoreDown)
	}
	var lat time.Duration
	var err error
	if l.mem != nil {
		lat, err = l.memoryCall(op, key, rule, cost, &o)
	} else {
		o.d, o.charge, lat, err = l.ask(ctx, op, key, *rule, cost)
	}
	if err == nil {
		if probing {
			l.answered(scope, lat)
		}
		o.latency = lat
		return o
	}
	if ctx.Err() != nil {
		return outcome{err: ctx.Err(), gone: true}
	}
	if errors.Is(err, ErrClosed) {
		// Closed under the limiter: the program's doing, not an outage.
		return outcome{err: err, closed: true}
	}
	if verr := rule.Validate(); verr != nil {
		// The store rejected a rule that cannot be enforced (the defaults
		// of a limiter set by SetDefault after the routes were built): a
		// mistake in set-up, which no policy or fallback store can mend.
		return outcome{err: verr, invalid: true}
	}
	if errors.Is(err, ErrCorruptState) || errors.Is(err, ErrClockSkew) {
		// One key's state, or this instance's clock, not the store: the
		// policy answers this request alone, and the store, which did
		// answer, is up.
		if probing {
			l.answered(scope, lat)
		}
		o = l.degraded(ctx, op, key, *rule, cost, err)
		l.storeFailed(scope, identity, o, lat)
		return o
	}
	if !probing && l.health.down.CompareAndSwap(false, true) {
		l.health.nextProbe.Store(l.now().UnixNano() + int64(l.cfg.probe))
		l.emit(Event{Kind: EventStoreDown, Scope: scope, Err: err, DecidedBy: l.policyAction()})
		l.logger().Warn("limitkit: rate limit store failed; applying the failure policy until it answers again",
			"policy", l.cfg.policy.String(), "probe_interval", l.cfg.probe, "err", err)
	}
	o = l.degraded(ctx, op, key, *rule, cost, err)
	l.storeFailed(scope, identity, o, lat)
	return o
}

// answered brings a store that was down back up, since it answered a probe.
func (l *Limiter) answered(scope string, lat time.Duration) {
	if l.health.down.CompareAndSwap(true, false) {
		l.emit(Event{Kind: EventStoreUp, Scope: scope, Latency: lat})
		l.logger().Info("limitkit: rate limit store answers again; back from the failure policy", "policy", l.cfg.policy.String())
	}
}

// storeFailed reports one failed call of the store.
func (l *Limiter) storeFailed(scope, identity string, o outcome, lat time.Duration) {
	l.emit(Event{Kind: EventStoreError, Scope: scope, Identity: identity, DecidedBy: o.action, Latency: lat, Err: o.err})
	l.logger().Warn("limitkit: rate limit store error", "scope", scope, "action", o.action.String(), "err", o.err)
}

// claimProbe reports whether this caller is the one that may try the store
// now: the first to arrive after the probe time moves it on.
func (l *Limiter) claimProbe() bool {
	if l.cfg.probe <= 0 {
		return true // no interval: every check tries the store
	}
	now := l.now().UnixNano()
	next := l.health.nextProbe.Load()
	if now < next {
		return false
	}
	return l.health.nextProbe.CompareAndSwap(next, now+int64(l.cfg.probe))
}

func (l *Limiter) policyAction() Action {
	switch l.cfg.policy {
	case FailOpen:
		return ActionFailOpen
	case FailClosed:
		return ActionFailClosed
	}
	return ActionFallback
}

// degraded decides a check the store could not, by the policy.
func (l *Limiter) degraded(ctx context.Context, op op, key storeKey, rule Rule, cost int64, cause error) outcome {
	switch a := l.policyAction(); a {
	case ActionFallback:
		fb := l.fallbackStore()
		if fb == nil {
			return outcome{err: errLimiterClosed, closed: true}
		}
		d, c, err := storeCall(ctx, fb, op, key, rule, cost)
		if errors.Is(err, ErrClosed) { // closed by Close since take began
			return outcome{err: errLimiterClosed, closed: true}
		}
		if err != nil {
			// The memory store fails only on a rule it cannot enforce, which
			// take has checked: a configuration error all the same.
			return outcome{err: errors.Join(cause, err), invalid: true}
		}
		return outcome{d: d, action: ActionFallback, err: cause, charge: c}
	default:
		return outcome{action: a, err: cause}
	}
}

// fallbackStore returns the fallback store, made on first use; nil once
// the limiter is closed, for a store made then would never be closed.
func (l *Limiter) fallbackStore() *MemoryStore {
	if fb := l.fallback.Load(); fb != nil {
		return fb
	}
	l.fallbackMu.Lock()
	defer l.fallbackMu.Unlock()
	if l.closed.Load() {
		return nil
	}
	if fb := l.fallback.Load(); fb != nil {
		return fb
	}
	fb := NewMemoryStore(l.memoryOptions()...)
	l.fallback.Store(fb)
	return fb
}

// fallbackIfMade returns the fallback store if a failure has made it.
func (l *Limiter) fallbackIfMade() *MemoryStore { return l.fallback.Load() }

// DeadlineKeeper is implemented by stores that promise to return from Take
// by the deadline of its context, whatever their backend does (redisstore's
// Store is one). A Limiter calls such a store on the caller's goroutine;
// any other store it calls on a goroutine of its own, so that a store that
// ignores its context still cannot hang a request.
type DeadlineKeeper interface {
	Store
	KeepsDeadlines() bool
}

// ask calls the store under the deadline, turning a panic into an error.
// The latency is measured only when an observer listens.
func (l *Limiter) ask(ctx context.Context, op op, key storeKey, rule Rule, cost int64) (d Decision, c Charge, lat time.Duration, err error) {
	var start time.Time
	if l.cfg.observer != nil {
		start = time.Now()
		defer func() { lat = time.Since(start) }()
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.timeout)
	defer cancel()
	if l.keeper {
		d, c, err = l.storeCall(ctx, op, key, rule, cost)
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = l.timedOut(err)
		}
		return d, c, 0, err
	}
	// The buffer lets the goroutine finish and be collected even when
	// nobody waits for its answer any more.
	ch := make(chan outcome, 1)
	go func() {
		var a outcome
		a.d, a.charge, a.err = l.storeCall(ctx, op, key, rule, cost)
		ch <- a
	}()
	select {
	case a := <-ch:
		return a.d, a.charge, 0, a.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Decision{}, Charge{}, 0, l.timedOut(nil)
		}
		return Decision{}, Charge{}, 0, ctx.Err()
	}
}

// storeCall calls the limiter's store, turning a panic into an error.
func (l *Limiter) storeCall(ctx context.Context, op op, key storeKey, rule Rule, cost int64) (d Decision, c Charge, err error) {
	defer func() {
		if p := recover(); p != nil {
			d, c, err = Decision{}, Charge{}, fmt.Errorf("limitkit: store panicked: %v", p)
		}
	}()
	return storeCall(ctx, l.cfg.store, op, key, rule, cost)
}

// memoryCall is ask for a limiter on the memory store, which never waits
// on I/O, so it is called on the caller's goroutine without a deadline. It
// writes the decision and charge to o, which is zero, and is shorter by
// three calls than ask, each of which copied them on return: nearly every
// request through the middleware is one of these.
func (l *Limiter) memoryCall(op op, key storeKey, rule *Rule, cost int64, o *outcome) (lat time.Duration, err error) {
	if l.cfg.observer != nil {
		start := time.Now()
		defer func() { lat = time.Since(start) }()
	}
	defer func() {
		if p := recover(); p != nil {
			o.d, o.charge, err = Decision{}, Charge{}, fmt.Errorf("limitkit: store panicked: %v", p)
		}
	}()
	return 0, l.mem.callTo(op, key, rule, cost, &o.d, &o.charge)
}

// storeCall asks st for op; st is a QuotaStore unless op is opTake. The
// memory store is given the key in its parts (see storeKey).
func storeCall(ctx context.Context, st Store, op op, k storeKey, rule Rule, cost int64) (Decision, Charge, error) {
	if ms, ok := st.(*MemoryStore); ok {
		return ms.call(op, k, rule, cost)
	}
	key := k.String()
	switch op {
	case opPeek:
		d, err := st.(QuotaStore).Peek(ctx, key, rule, cost)
		return d, Charge{}, err
	case opReserve:
		return st.(QuotaStore).Reserve(ctx, key, rule, cost)
	}
	d, err := st.Take(ctx, key, rule, cost)
	return d, Charge{}, err
}

// timedOut is the error of a check the store did not answer in time.
// cause, the store's own error if it returned one, is kept: it may say why
// (redisstore names a refused connection). The result always wraps
// context.DeadlineExceeded.
func (l *Limiter) timedOut(cause error) error {
	switch {
	case cause == nil || cause == context.DeadlineExceeded:
		return fmt.Errorf("limitkit: store did not answer within %v: %w", l.cfg.timeout, context.DeadlineExceeded)
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Errorf("limitkit: store did not answer within %v: %w", l.cfg.timeout, cause)
	}
	return fmt.Errorf("limitkit: store did not answer within %v: %w: %w", l.cfg.timeout, context.DeadlineExceeded, cause)
}
