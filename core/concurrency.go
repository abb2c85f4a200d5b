package core

// Concurrency limits: at most N requests in flight per key, held as leases
// that expire, so that the slots of an instance that crashed come back
// within the lease's TTL. The store contract, the limit's value type, and
// the Limiter's Acquire with its leases, which renew themselves while they
// are held.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ConcurrencyStore is implemented by stores that can limit how many
// requests are in flight per key: the memory store and the Redis store.
//
// Acquire admits lease under key if fewer than c.Limit leases of key are
// live, making it live until now + c.TTL by the store's clock, as one atomic
// step; a lease whose time has come (its expiry ≤ now) is no longer live and
// its slot is free again. Renew makes a live lease live until now + ttl.
// Release ends a live lease. Renew and Release of a lease that is not live
// under key (never acquired there, expired, or released) return an error
// wrapping ErrLeaseNotHeld and change nothing: a lease id names a slot of
// one key only. As for Take, any other error means the store failed.
//
// Lease ids are chosen by the caller; Limiter.Acquire makes them from 128
// random bits, so that no one can release a slot that is not theirs by
// naming it.
type ConcurrencyStore interface {
	Acquire(ctx context.Context, key, lease string, c Concurrency) (ConcurrencyDecision, error)
	Renew(ctx context.Context, key, lease string, ttl time.Duration) error
	Release(ctx context.Context, key, lease string) error
}

// ConcurrencyDecision is a store's answer to Acquire.
type ConcurrencyDecision struct {
	// Allowed reports whether the lease was admitted.
	Allowed bool
	// InFlight is how many leases of the key are live after the call.
	InFlight int64
	// NextExpiry is, for a refusal, how long until the key's earliest lease
	// expires if it is not renewed: the latest a slot comes back by
	// expiry, though one comes back as soon as any request ends.
	NextExpiry time.Duration
}

// ErrLeaseNotHeld is wrapped by the error of Renew and Release for a lease
// that is not live: never acquired under that key, expired, or already
// released. It is the caller's mistake or a lease lost to its TTL, not a
// failure of the store.
var ErrLeaseNotHeld = errors.New("limitkit: lease not held (unknown, expired or already released)")

// DefaultLeaseTTL is how long a lease lives unless renewed: a crashed
// instance's slots come back within it, and a lease held longer is renewed
// every third of it (see Lease).
const DefaultLeaseTTL = 10 * time.Second

// ConcurrencyRetryAfter is the Retry-After of a request refused because
// its key has no free slot: a slot frees the moment any request in flight
// ends, which no store can foresee, so the honest answer is the shortest
// the header can say.
const ConcurrencyRetryAfter = time.Second

// maxLeaseTTL bounds a lease's TTL: a year, far below the µs arithmetic's
// limit of 2^53 µs in both stores.
const maxLeaseTTL = 365 * 24 * time.Hour

// Concurrency is a concurrency limit: at most Limit requests in flight per
// key, each holding a lease that lives for TTL unless renewed. Make one
// with NewConcurrency, which checks it.
type Concurrency struct {
	Limit int64
	TTL   time.Duration
}

// NewConcurrency returns the limit of n requests in flight, with leases
// of ttl (DefaultLeaseTTL if ttl is zero). The error quotes n or ttl when
// n is not positive, or ttl is negative, under a millisecond or over a
// year.
func NewConcurrency(n int64, ttl time.Duration) (Concurrency, error) {
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	c := Concurrency{Limit: n, TTL: ttl}
	return c, c.Validate()
}

// Validate reports why c cannot be enforced, quoting the bad value.
func (c Concurrency) Validate() error {
	if c.Limit <= 0 {
		return fmt.Errorf("limitkit: concurrency limit %d: at least one request must be allowed in flight", c.Limit)
	}
	if c.TTL < time.Millisecond || c.TTL > maxLeaseTTL {
		return fmt.Errorf("limitkit: lease TTL %v: must be between 1ms and a year (leases are renewed every third of it)", c.TTL)
	}
	return nil
}

// String describes c, such as "10 concurrent".
func (c Concurrency) String() string { return fmt.Sprintf("%d concurrent", c.Limit) }

// decision is the Decision the limiter reports for a store's answer.
func (c Concurrency) decision(cd ConcurrencyDecision) Decision {
	d := Decision{Allowed: cd.Allowed, Limit: Limit{Count: c.Limit}, Remaining: max(c.Limit-cd.InFlight, 0), Concurrency: true}
	if !cd.Allowed {
		d.RetryAfter = ConcurrencyRetryAfter
	}
	return d
}

// Lease is a slot of a concurrency limit, held from Limiter.Acquire until
// Release. While held, it renews itself in its store every third of its
// TTL, so that a request may run as long as it needs; if the process dies,
// renewals stop and the slot comes back within the TTL. Release it exactly
// once, usually deferred. It is safe for concurrent use.
type Lease struct {
	l     *Limiter
	store ConcurrencyStore // nil when the failure policy admitted it (FailOpen)
	key   string
	id    string
	ttl   time.Duration
	scope string

	mu       sync.Mutex
	released bool
	timer    *time.Timer
}

// ID returns the lease's id: 32 hex digits of random bits.
func (ls *Lease) ID() string { return ls.id }

// Key returns the store key the lease holds a slot of.
func (ls *Lease) Key() string { return ls.key }

// Release gives the lease's slot back. It is meant to be called once: a
// second call, or one after the lease expired in the store (its renewals
// failed for a whole TTL), returns an error wrapping ErrLeaseNotHeld. A
// store that fails to release is reported as for Take and the error
// returned; the slot then comes back when the lease expires. ctx bounds the
// call together with the limiter's timeout; a cancelled ctx is replaced by
// one that is not, for a slot must be given back also when the client left.
func (ls *Lease) Release(ctx context.Context) error {
	ls.mu.Lock()
	if ls.released {
		ls.mu.Unlock()
		return fmt.Errorf("limitkit: release of lease %s of %q: %w", ls.id, ls.key, ErrLeaseNotHeld)
	}
	ls.released = true
	if ls.timer != nil {
		ls.timer.Stop()
	}
	ls.mu.Unlock()
	if ls.store == nil {
		return nil
	}
	err := ls.l.leaseCall(context.WithoutCancel(ctx), ls.store, func(ctx context.Context) error {
		return ls.store.Release(ctx, ls.key, ls.id)
	})
	if err != nil && !errors.Is(err, ErrLeaseNotHeld) && !errors.Is(err, ErrClosed) {
		ls.l.leaseFailed(ls.scope, "release", err)
	}
	return err
}

// renewEvery is how often a held lease is renewed: a third of its TTL, so
// that two renewals in a row may fail (a store that blinks) before the
// lease is lost.
func (ls *Lease) renewEvery() time.Duration { return max(ls.ttl/3, time.Millisecond) }

func (ls *Lease) schedule() {
	if ls.store == nil {
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.released {
		return
	}
	ls.timer = time.AfterFunc(ls.renewEvery(), ls.renew)
}

// renew runs on the lease's timer: it renews the lease and schedules the
// next renewal, unless the lease was released or lost.
func (ls *Lease) renew() {
	ls.mu.Lock()
	if ls.released {
		ls.mu.Unlock()
		return
	}
	ls.mu.Unlock()
	err := ls.l.leaseCall(context.Background(), ls.store, func(ctx context.Context) error {
		return ls.store.Renew(ctx, ls.key, ls.id, ls.ttl)
	})
	if errors.Is(err, ErrClosed) {
		return // the store went with its limiter: nothing left to renew in
	}
	if errors.Is(err, ErrLeaseNotHeld) {
		ls.mu.Lock()
		released := ls.released
		ls.mu.Unlock()
		if !released {
			ls.l.emit(Event{Kind: EventLeaseLost, Scope: ls.scope, Err: err})
			ls.l.logger().Warn("limitkit: a lease expired before it could be renewed; its request now runs beyond the concurrency limit",
				"scope", ls.scope, "err", err)
		}
		return
	}
	if err != nil {
		// Tried again at the next tick: the lease lives a TTL from its
		// last renewal, so one failure costs nothing.
		ls.l.leaseFailed(ls.scope, "renew", err)
	}
	ls.schedule()
}

// newLeaseID returns 128 random bits in hex: a lease id that no one can
// guess, so no caller can release a slot that is not its own.
func newLeaseID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand's contract since Go 1.24)
	return hex.EncodeToString(b[:])
}

// concurrencyStore is the limiter's store as a ConcurrencyStore, or an
// error saying it is none.
func (l *Limiter) concurrencyStore() (ConcurrencyStore, error) {
	cs, ok := l.cfg.store.(ConcurrencyStore)
	if !ok {
		return nil, fmt.Errorf("limitkit: the limiter's store %T cannot limit concurrency (it does not implement core.ConcurrencyStore)", l.cfg.store)
	}
	return cs, nil
}

// Acquire takes a slot of concurrency limit c under key, for one request
// in flight. If the key has a free slot, the decision is Allowed and the
// lease holds the slot until its Release; otherwise the decision says so
// (RetryAfter is ConcurrencyRetryAfter) and the lease is nil.
//
// A store that fails or times out is answered by the failure policy, as
// for Take: FailOpen admits with a lease that holds nothing; FailClosed
// returns an error wrapping ErrUnavailable; Fallback acquires in the
// limiter's fallback memory store, which counts this instance's requests
// alone, so N instances admit up to N times the limit until the store is
// back (a lease remembers its store, and is released there). A call that
// failed after it reached the store (a timeout, or a client that left
// mid-call) may have taken a slot there all the same: the limiter gives it
// back in the background once the store answers again, so it does not
// stay taken for a whole TTL (best effort, for up to 1024 such leases at
// once; the others expire by their TTL). A bad c, a
// store that cannot limit concurrency, a closed limiter or a ctx already
// done is an error without a lease.
func (l *Limiter) Acquire(ctx context.Context, key string, c Concurrency) (Decision, *Lease, error) {
	if err := c.Validate(); err != nil {
		return Decision{}, nil, err
	}
	o, ls := l.acquire(ctx, "", "", key, c)
	if o.stopped() {
		return Decision{}, nil, o.err
	}
	l.emit(Event{Kind: EventDecision, Decision: o.d, DecidedBy: o.action, Latency: o.latency, Err: o.err})
	if o.action == ActionFailClosed {
		return Decision{}, nil, unavailable(o.err)
	}
	return o.d, ls, nil
}

// acquire runs one Acquire through the failure policy, as take runs Take.
// c must be valid; scope and identity label events and leases.
func (l *Limiter) acquire(ctx context.Context, scope, identity, key string, c Concurrency) (outcome, *Lease) {
	if err := ctx.Err(); err != nil {
		return outcome{err: err, gone: true}, nil
	}
	if l.closed.Load() {
		return outcome{err: errLimiterClosed, closed: true}, nil
	}
	cs, err := l.concurrencyStore()
	if err != nil {
		return outcome{err: err, invalid: true}, nil
	}
	id := newLeaseID()
	probing := l.health.down.Load()
	if probing && !l.claimProbe() {
		return l.acquireDegraded(ctx, scope, key, id, c, errStoreDown)
	}
	var start time.Time
	if l.cfg.observer != nil {
		start = time.Now()
	}
	var cd ConcurrencyDecision
	err = l.leaseCall(ctx, cs, func(ctx context.Context) (err error) {
		cd, err = cs.Acquire(ctx, key, id, c)
		return err
	})
	var lat time.Duration
	if l.cfg.observer != nil {
		lat = time.Since(start)
	}
	if err == nil {
		if probing {
			l.answered(scope, lat)
		}
		return l.admitted(outcome{d: c.decision(cd), latency: lat}, cs, scope, key, id, c)
	}
	if errors.Is(err, ErrClosed) {
		return outcome{err: err, closed: true}, nil
	}
	corrupt, gone := errors.Is(err, ErrCorruptState), ctx.Err() != nil
	switch {
	case gone:
	case corrupt:
		if probing {
			l.answered(scope, lat)
		}
	case !probing && l.health.down.CompareAndSwap(false, true):
		l.health.nextProbe.Store(l.now().UnixNano() + int64(l.cfg.probe))
		l.emit(Event{Kind: EventStoreDown, Scope: scope, Err: err, DecidedBy: l.policyAction()})
		l.logger().Warn("limitkit: rate limit store failed; applying the failure policy until it answers again",
			"policy", l.cfg.policy.String(), "probe_interval", l.cfg.probe, "err", err)
	}
	// The store is marked down before the orphan starts, so that it waits
	// for the store to answer again instead of racing the marking.
	if !corrupt {
		l.orphan(cs, scope, key, id, c.TTL)
	}
	if gone {
		return outcome{err: ctx.Err(), gone: true}, nil
	}
	o, ls := l.acquireDegraded(ctx, scope, key, id, c, err)
	o.latency = lat
	l.storeFailed(scope, identity, o, lat)
	return o, ls
}

// admitted adds the lease to an outcome that admits, and starts its
// renewals.
func (l *Limiter) admitted(o outcome, cs ConcurrencyStore, scope, key, id string, c Concurrency) (outcome, *Lease) {
	if !o.d.Allowed {
		return o, nil
	}
	ls := &Lease{l: l, store: cs, key: key, id: id, ttl: c.TTL, scope: scope}
	ls.schedule()
	return o, ls
}

// acquireDegraded answers an Acquire the store could not, by the policy.
func (l *Limiter) acquireDegraded(ctx context.Context, scope, key, id string, c Concurrency, cause error) (outcome, *Lease) {
	switch a := l.policyAction(); a {
	case ActionFallback:
		fb := l.fallbackStore()
		if fb == nil {
			return outcome{err: errLimiterClosed, closed: true}, nil
		}
		cd, err := fb.Acquire(ctx, key, id, c)
		if errors.Is(err, ErrClosed) {
			return outcome{err: errLimiterClosed, closed: true}, nil
		}
		if err != nil {
			return outcome{err: errors.Join(cause, err), invalid: true}, nil
		}
		return l.admitted(outcome{d: c.decision(cd), action: ActionFallback, err: cause}, fb, scope, key, id, c)
	case ActionFailOpen:
		return outcome{d: Decision{Allowed: true, Limit: Limit{Count: c.Limit}, Concurrency: true}, action: a, err: cause},
			&Lease{l: l, key: key, id: id, ttl: c.TTL, scope: scope}
	default:
		return outcome{action: a, err: cause}, nil
	}
}

// leaseCall calls one operation of a concurrency store under the limiter's
// deadline, as ask calls Take: directly for the memory store, on the
// caller's goroutine for a DeadlineKeeper, else on a goroutine of its own;
// a panic becomes an error.
func (l *Limiter) leaseCall(ctx context.Context, cs ConcurrencyStore, op func(context.Context) error) error {
	call := func(ctx context.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("limitkit: store panicked: %v", p)
			}
		}()
		return op(ctx)
	}
	_, direct := cs.(*MemoryStore)
	if direct {
		return call(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.timeout)
	defer cancel()
	keeper := false
	if k, ok := cs.(DeadlineKeeper); ok {
		keeper = k.KeepsDeadlines()
	}
	if keeper {
		err := call(ctx)
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = l.timedOut(err)
		}
		return err
	}
	ch := make(chan error, 1)
	go func() { ch <- call(ctx) }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return l.timedOut(nil)
		}
		return ctx.Err()
	}
}

// leaseFailed reports a failed renewal or release.
func (l *Limiter) leaseFailed(scope, op string, err error) {
	l.emit(Event{Kind: EventStoreError, Scope: scope, Err: err})
	l.logger().Warn("limitkit: rate limit store error on a lease "+op+"; the lease expires by its TTL if the store stays down", "scope", scope, "err", err)
}

// maxOrphans bounds the leases a limiter gives back in the background at
// once (see orphan); past it, such a lease is left to expire by its TTL.
const maxOrphans = 1024

// orphan gives back, in the background, the lease of an Acquire that
// failed or was abandoned (its client left): the store may have taken it
// all the same, its reply lost to a timeout or its call cancelled after it
// was sent, and that slot would then stay taken, unrenewed, for a whole
// TTL, which a client cancelling requests mid-call could repeat at will.
// It waits until the store is up, releases the lease, and if the store
// does not hold it, looks again a few times (the acquire may still be
// queued behind a stalled connection); it stops at the lease's TTL, by
// which any such slot has expired, or when the limiter closes. The memory
// store never needs it: its calls never fail half way.
func (l *Limiter) orphan(cs ConcurrencyStore, scope, key, id string, ttl time.Duration) {
	if _, direct := cs.(*MemoryStore); direct {
		return
	}
	if l.orphans.Add(1) > maxOrphans {
		l.orphans.Add(-1)
		return
	}
	go func() {
		defer l.orphans.Add(-1)
		deadline := time.Now().Add(ttl)
		wait, misses := 10*time.Millisecond, 0
		for time.Now().Before(deadline) && !l.closed.Load() {
			if !l.health.down.Load() {
				err := l.leaseCall(context.Background(), cs, func(ctx context.Context) error { return cs.Release(ctx, key, id) })
				switch {
				case err == nil:
					l.logger().Debug("limitkit: gave back the slot of an acquire that failed", "scope", scope)
					return
				case errors.Is(err, ErrClosed):
					return
				case errors.Is(err, ErrLeaseNotHeld):
					if misses++; misses >= 3 {
						return // never taken
					}
				}
			}
			time.Sleep(wait) // a background retry: nothing to wait on
			wait = min(2*wait, time.Second)
		}
	}()
}
