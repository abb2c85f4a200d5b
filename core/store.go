package core

import (
	"context"
	"errors"
	"time"
)

// Store keeps rate-limit state and makes decisions atomically.
//
// Take decides whether a request of the given cost under key is admitted by
// every limit of rule, charging all of them if so and none if not, as one
// atomic step. An error means the store failed (unreachable, timed out,
// corrupt reply); it never means "limit reached", which is a Decision with
// Allowed false. Take must not retain rule.Limits after it returns.
//
// Reset forgets the state of key under rule, as if it had never been seen.
// Close releases the store's resources and stops its goroutines.
//
// Every Store must pass the conformance suite in core/storetest, which proves
// it decides exactly as the memory store does.
type Store interface {
	Take(ctx context.Context, key string, rule Rule, cost int64) (Decision, error)
	Reset(ctx context.Context, key string, rule Rule) error
	Close() error
}

// ErrClosed is returned by a Store's Take and Reset after its Close, by
// every store of this module. A Limiter whose store is closed returns it as
// it is: a closed store is the program's own doing, not an outage, so no
// failure policy applies.
var ErrClosed = errors.New("limitkit: store is closed")

// ErrCorruptState is wrapped by the error a Store returns when one key holds
// state the store cannot read (foreign data under its name). It concerns that
// key alone: a Limiter answers that request by its failure policy but does
// not mark the store down, so every other key goes on being decided by it.
var ErrCorruptState = errors.New("limitkit: corrupt rate-limit state")

// Clock tells the time. Stores take one so that tests can drive time.
type Clock func() time.Time

// QuotaStore is implemented by stores that can also look without charging
// and give back part of a charge: what Limiter.Peek, Limiter.Reserve and the
// middleware's charging by outcome (WithChargeWhen) need. Both stores of
// this module implement it; a Limiter on a store that does not answers
// those calls with an error wrapping ErrNoQuota.
//
// Peek returns the decision Take would return for the same request now,
// charging nothing: the same Allowed, Remaining (what would be left after
// the request), ResetAfter, RetryAfter, Delay and Never.
//
// Reserve is Take that also returns the charge it made, with the store's
// own time of it, which Refund needs to find the charge again; a denied
// request returns the zero Charge.
//
// Refund gives back amount (at most c.Cost) of a charge Reserve made under
// key and rule, as one atomic step, and only as far as the charge still
// counts: what that means for each algorithm is written at Reservation.
// It never leaves a key with more budget than a fresh one. Refunding twice
// is the caller's mistake, which Reservation prevents.
type QuotaStore interface {
	Store
	Peek(ctx context.Context, key string, rule Rule, cost int64) (Decision, error)
	Reserve(ctx context.Context, key string, rule Rule, cost int64) (Decision, Charge, error)
	Refund(ctx context.Context, key string, rule Rule, c Charge, amount int64) error
}

// Charge is what a store's Reserve charged: the cost, at the store's own
// time (Redis's TIME for the Redis store, with microsecond precision).
type Charge struct {
	At   time.Time
	Cost int64
}

// ErrNoQuota is wrapped by the error of Limiter.Peek and Limiter.Reserve
// on a store that does not implement QuotaStore, and by NewMiddleware's for
// WithChargeWhen on a limiter whose store does not.
var ErrNoQuota = errors.New("limitkit: the store cannot peek, reserve or refund (it does not implement core.QuotaStore)")

var _ QuotaStore = (*MemoryStore)(nil)

// storeKey is a store key in its two parts, a scope's prefix (scope + ":",
// or "" for a key a caller gave whole) and an identity, so that a request's
// key is made into one string only where a string is needed: the memory
// store hashes and compares the parts, and joins them only to keep a key it
// has not seen, so that a check of a known key through the middleware
// allocates nothing for its key. Other stores get String.
type storeKey struct {
	prefix, id string
}

// String is the key whole. It allocates only if both parts are non-empty:
// a key given whole is returned as it is.
func (k storeKey) String() string { return k.prefix + k.id }

// is reports whether s is the key whole, without joining it.
func (k storeKey) is(s string) bool {
	return len(s) == len(k.prefix)+len(k.id) && s[:len(k.prefix)] == k.prefix && s[len(k.prefix):] == k.id
}
