package core

import (
	"context"
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

// Clock tells the time. Stores take one so that tests can drive time.
type Clock func() time.Time
