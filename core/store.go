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
