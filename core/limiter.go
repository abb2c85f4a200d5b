package core

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Limiter answers rate-limit checks against a Store. It is safe for
// concurrent use. The HTTP middleware of every adapter uses one (the
// package default unless told otherwise); code outside HTTP (a job, a gRPC
// call) calls Take directly.
type Limiter struct {
	cfg config
}

// Option configures a Limiter or, in the adapters, one middleware.
type Option func(*config)

type config struct {
	store     Store
	algorithm Algorithm
	burst     int64
	clock     Clock
}

// WithStore makes the limiter keep its state in store (default: a memory
// store of its own).
func WithStore(store Store) Option {
	return func(c *config) { c.store = store }
}

// WithAlgorithm sets the algorithm of rules that do not name one (default
// SlidingWindowCounter).
func WithAlgorithm(alg Algorithm) Option {
	return func(c *config) { c.algorithm = alg }
}

// WithBurst sets the capacity of TokenBucket and LeakyBucket rules that do not
// set one (default: each limit's count).
func WithBurst(n int64) Option {
	return func(c *config) { c.burst = n }
}

// WithClock sets the clock of the memory store the limiter makes for itself.
// Stores that keep their own time, such as Redis, ignore it.
func WithClock(clock Clock) Option {
	return func(c *config) { c.clock = clock }
}

// New returns a limiter. Without WithStore it keeps state in a new memory
// store; Close the limiter to stop that store's sweeper.
func New(opts ...Option) *Limiter {
	l := &Limiter{}
	for _, o := range opts {
		o(&l.cfg)
	}
	if l.cfg.store == nil {
		var mo []MemoryOption
		if l.cfg.clock != nil {
			mo = append(mo, MemoryClock(l.cfg.clock))
		}
		l.cfg.store = NewMemoryStore(mo...)
	}
	return l
}

var defaultLimiter atomic.Pointer[Limiter]

// Default returns the package's limiter, which the adapters use unless told
// otherwise. It keeps state in memory until SetDefault replaces it.
func Default() *Limiter {
	if l := defaultLimiter.Load(); l != nil {
		return l
	}
	defaultLimiter.CompareAndSwap(nil, New())
	return defaultLimiter.Load()
}

// SetDefault makes l the package's limiter, for example one on a Redis store
// so that every instance of an app shares its limits. Call it at start-up,
// before serving.
func SetDefault(l *Limiter) {
	defaultLimiter.Store(l)
}

// Store returns the store the limiter decides with.
func (l *Limiter) Store() Store { return l.cfg.store }

// Take checks a request of the given cost under key against rule and charges
// it if every limit admits it. The error is the store's, never "limit
// reached".
func (l *Limiter) Take(ctx context.Context, key string, rule Rule, cost int64) (Decision, error) {
	if cost < 0 {
		return Decision{}, fmt.Errorf("limitkit: cost %d must not be negative", cost)
	}
	if rule.Algorithm == 0 {
		rule.Algorithm = l.cfg.algorithm.orDefault()
	}
	if rule.Burst == 0 {
		rule.Burst = l.cfg.burst
	}
	return l.cfg.store.Take(ctx, key, rule, cost)
}

// Allow is Take with a cost of one.
func (l *Limiter) Allow(ctx context.Context, key string, rule Rule) (Decision, error) {
	return l.Take(ctx, key, rule, 1)
}

// Reset forgets key's state under rule.
func (l *Limiter) Reset(ctx context.Context, key string, rule Rule) error {
	if rule.Algorithm == 0 {
		rule.Algorithm = l.cfg.algorithm.orDefault()
	}
	return l.cfg.store.Reset(ctx, key, rule)
}

// Close closes the limiter's store.
func (l *Limiter) Close() error { return l.cfg.store.Close() }
