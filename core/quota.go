package core

// Quotas beyond a plain charge: looking at a budget without spending it
// (Peek), and charging an estimate that is settled to the actual cost later
// or cancelled (Reserve). Both need a QuotaStore.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrReservationDone is wrapped by the error of a Settle or Cancel of a
// reservation already settled or cancelled: a reservation gives back at
// most once.
var ErrReservationDone = errors.New("limitkit: the reservation is already settled or cancelled")

// ErrNotReserved is wrapped by the error of a Settle or Cancel of a
// reservation whose request was denied: nothing was charged, so there is
// nothing to settle.
var ErrNotReserved = errors.New("limitkit: the reservation was denied; nothing was charged")

func (l *Limiter) noQuota() error {
	return fmt.Errorf("%w: %T", ErrNoQuota, l.cfg.store)
}

// Peek returns the decision Take would return for a request of the given
// cost under key and rule now, without charging it: whether it would be
// admitted, what would be left after it (Remaining), when the limit is
// replenished and, were it denied, when to retry. A cost no limit can ever
// admit gets Decision.Never, as from Take. Peek is not a request: the
// observer hears of no decision (store failures are reported as for Take),
// and the memory store adds no key for it.
//
// The failure policy answers as for Take: FailOpen says Allowed with the
// rule's first limit, FailClosed returns an error wrapping ErrUnavailable,
// Fallback peeks at the fallback store. On a store that does not implement
// QuotaStore, Peek returns an error wrapping ErrNoQuota.
func (l *Limiter) Peek(ctx context.Context, key string, rule Rule, cost int64) (Decision, error) {
	if cost < 0 {
		return Decision{}, fmt.Errorf("limitkit: cost %d must not be negative", cost)
	}
	l.applyDefaults(&rule)
	if err := rule.Validate(); err != nil {
		return Decision{}, err
	}
	o := l.check(ctx, opPeek, "", "", storeKey{id: key}, &rule, cost)
	if o.stopped() {
		return Decision{}, o.err
	}
	switch o.action {
	case ActionFailOpen:
		return Decision{Allowed: true, Limit: rule.Limits[0]}, nil
	case ActionFailClosed:
		return Decision{}, unavailable(o.err)
	}
	return o.d, nil
}

// Reservation is a charge made before the work whose cost it estimates
// (LLM tokens, bytes streamed, a login attempt that may not count), to be
// settled to the actual cost with Settle, or given back whole with Cancel,
// once. Limiter.Reserve makes it. It is safe for concurrent use: of
// concurrent Settle and Cancel calls, one gives back and the others fail
// with ErrReservationDone.
//
// What a refund gives back depends on the algorithm, in every store alike
// (core/storetest proves it), and never more than the charge still counts
// for at the store's time of the refund:
//
//   - FixedWindow: the refund comes off the window's count only while the
//     window the charge was made in is the current one; once a new window
//     has begun, the charge no longer counts and nothing is given back.
//     So for a calendar limit: while the charge's day, week, month or year
//     is the current one in its zone.
//   - SlidingWindowCounter: the refund comes off the count of the charge's
//     window, whether that is the current window or, weighted by what is
//     left of it, the previous one; nothing once it is older.
//   - SlidingWindowLog: the refund comes off the charge's own log entry
//     (the entry's running total and every later one shift down by it);
//     once the charge has left the window nothing is given back.
//   - TokenBucket, LeakyBucket: the theoretical arrival time moves back by
//     refund × the limit's emission interval, never before the time of the
//     refund: a bucket never holds more than its burst. For the leaky
//     bucket this gives the slot back to the queue. This is exactly the
//     state the bucket would hold had the charge cost less, as long as the
//     bucket has not been full since the charge; once it has, the charge is
//     all replenished and nothing is given back, so a bucket never gets a
//     charge back on top of its burst. (Each key keeps, beside its arrival
//     time, when a charge last found it full.)
//
// A count is never taken below zero: if the key was reset or its state
// evicted since the charge, a refund can make it fresh, never fresher.
type Reservation struct {
	// Decision is the store's decision on the estimate. Only if it is
	// Allowed was anything charged; otherwise Settle and Cancel fail with
	// ErrNotReserved.
	Decision Decision

	lim      *Limiter
	st       QuotaStore // where the charge was made; nil if none was (FailOpen)
	key      string
	rule     Rule
	charge   Charge
	estimate int64
	done     atomic.Bool
}

// Reserve charges a request of cost estimate under key and rule, as Take
// does, and returns the reservation, to be settled to the actual cost or
// cancelled once the work is done; only the difference is ever given back,
// in the same store that was charged. The reservation's Decision says
// whether it was admitted; a denied one charged nothing (a cost no limit
// can ever admit gets Decision.Never, as from Take). The observer hears of
// the decision as of Take's; settling is not reported as a decision.
//
// The failure policy answers as for Take: FailOpen admits without a charge
// (settling then gives back nothing), FailClosed returns an error wrapping
// ErrUnavailable, Fallback reserves in the fallback store, which the
// reservation then settles with. On a store that does not implement
// QuotaStore, Reserve returns an error wrapping ErrNoQuota.
func (l *Limiter) Reserve(ctx context.Context, key string, rule Rule, estimate int64) (*Reservation, error) {
	if estimate < 0 {
		return nil, fmt.Errorf("limitkit: estimate %d must not be negative", estimate)
	}
	l.applyDefaults(&rule)
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	o := l.check(ctx, opReserve, "", "", storeKey{id: key}, &rule, estimate)
	if o.stopped() {
		return nil, o.err
	}
	if obs := l.cfg.observer; obs != nil {
		obs.Observe(Event{Kind: EventDecision, Decision: o.d, DecidedBy: o.action, Latency: o.latency, Err: o.err})
	}
	switch o.action {
	case ActionFailOpen:
		return &Reservation{Decision: Decision{Allowed: true, Limit: rule.Limits[0]}, lim: l, estimate: estimate}, nil
	case ActionFailClosed:
		return nil, unavailable(o.err)
	}
	return l.reservation(o, key, rule, estimate), nil
}

// reservation is the reservation a reserving check o made.
func (l *Limiter) reservation(o outcome, key string, rule Rule, estimate int64) *Reservation {
	r := &Reservation{Decision: o.d, lim: l, key: key, rule: rule, charge: o.charge, estimate: estimate}
	switch {
	case !o.d.Allowed || o.action == ActionFailOpen:
	case o.action == ActionFallback:
		if fb := l.fallbackIfMade(); fb != nil {
			r.st = fb
		}
	default:
		r.st, _ = l.cfg.store.(QuotaStore)
	}
	return r
}

// OK reports whether the reservation was admitted and charged.
func (r *Reservation) OK() bool { return r.Decision.Allowed }

// Estimate is the cost the reservation charged (if OK).
func (r *Reservation) Estimate() int64 { return r.estimate }

// Settle settles the reservation to actual, from 0 to the estimate: the
// difference is given back, as far as the charge still counts (see
// Reservation), and the rest stays charged. A negative actual or one above
// the estimate is an error quoting both that changes nothing: the
// reservation stays open. A reservation settles once: then, or after
// Cancel, Settle fails with ErrReservationDone and gives back nothing. An
// error of the store is returned (and reported to the observer); the
// reservation is done all the same, for a refund that may have reached the
// store must not be made twice.
func (r *Reservation) Settle(ctx context.Context, actual int64) error {
	if actual < 0 || actual > r.estimate {
		return fmt.Errorf("limitkit: settle %d of a reservation of %d: the actual cost must be between 0 and the estimate", actual, r.estimate)
	}
	return r.finish(ctx, r.estimate-actual)
}

// Cancel gives the whole reservation back, as far as it still counts (see
// Reservation): Settle with an actual cost of zero. It fails as Settle does.
func (r *Reservation) Cancel(ctx context.Context) error {
	return r.finish(ctx, r.estimate)
}

func (r *Reservation) finish(ctx context.Context, refund int64) error {
	if !r.Decision.Allowed {
		return ErrNotReserved
	}
	if !r.done.CompareAndSwap(false, true) {
		return ErrReservationDone
	}
	if r.st == nil || refund == 0 {
		return nil
	}
	return r.lim.refund(ctx, r.st, r.key, r.rule, r.charge, refund)
}

// refund gives back amount of charge c in st under the limiter's deadline,
// turning a panic into an error; failures are reported as the store's.
func (l *Limiter) refund(ctx context.Context, st QuotaStore, key string, rule Rule, c Charge, amount int64) error {
	if l.closed.Load() {
		return errLimiterClosed
	}
	call := func(ctx context.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("limitkit: store panicked: %v", p)
			}
		}()
		return st.Refund(ctx, key, rule, c, amount)
	}
	var err error
	if _, mem := st.(*MemoryStore); mem {
		err = call(ctx)
	} else {
		tctx, cancel := context.WithTimeout(ctx, l.cfg.timeout)
		defer cancel()
		if l.keeper {
			err = call(tctx)
		} else {
			ch := make(chan error, 1)
			go func() { ch <- call(tctx) }()
			select {
			case err = <-ch:
			case <-tctx.Done():
				err = tctx.Err()
			}
		}
		if err != nil && errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			err = l.timedOut(err)
		}
	}
	if err != nil && !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("limitkit: refund %d under %q: %w", amount, key, err)
		l.emit(Event{Kind: EventStoreError, Err: err})
		l.logger().Warn("limitkit: rate limit store error", "action", "refund", "err", err)
	}
	return err
}
