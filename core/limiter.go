package core

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Limiter answers rate-limit checks against a Store. It is safe for
// concurrent use. The HTTP middleware of every adapter uses one (the
// package default unless told otherwise); code outside HTTP (a job, a gRPC
// call) calls Take directly.
//
// The limiter owns what happens when its store fails: each check has a
// deadline (WithTimeout), a panicking store is recovered, and the failure
// policy (WithFailurePolicy) decides whether requests are served, refused or
// decided by a local memory store while the store is down. See FailurePolicy.
type Limiter struct {
	cfg config
	// mem is the store if it is a memory store, which never blocks on I/O:
	// it is called on the caller's goroutine without a deadline, which
	// costs nothing, and directly (memoryCall). keeper is set for stores
	// that promise to return by their context's deadline (DeadlineKeeper):
	// they are called on the caller's goroutine under the deadline. Other
	// stores are called under a deadline on a goroutine of their own, so
	// that one that ignores its context cannot hang a request.
	mem    *MemoryStore
	keeper bool
	quota  bool // the store is a QuotaStore
	now    func() time.Time
	health health

	// fallbackMu orders making the fallback store with Close, so that no
	// fallback (and its sweeper goroutine) is made after Close.
	fallbackMu sync.Mutex
	fallback   atomic.Pointer[MemoryStore]
	closed     atomic.Bool
	orphans    atomic.Int64 // leases being given back: concurrency.go
}

type config struct {
	store     Store
	algorithm Algorithm
	burst     int64
	clock     Clock
	timeout   time.Duration
	policy    FailurePolicy
	probe     time.Duration
	probeSet  bool
	logger    *slog.Logger
	observer  Observer

	// problems collects bad option values, which New reports (a panic).
	problems []error
}

// WithStore makes the limiter keep its state in store (default: a memory
// store of its own).
func WithStore(store Store) Option {
	return limiterOption(func(c *config) { c.store = store })
}

// WithAlgorithm sets the algorithm of rules that do not name one (default
// SlidingWindowCounter). Given to a middleware, it sets the algorithm of the
// middleware's rule.
func WithAlgorithm(alg Algorithm) RuleOption {
	return ruleOption(func(a *Algorithm, _ *int64) { *a = alg })
}

// WithBurst sets the capacity of TokenBucket and LeakyBucket rules that do not
// set one (default: each limit's count). Given to a middleware, it sets the
// burst of the middleware's rule.
func WithBurst(n int64) RuleOption {
	return ruleOption(func(_ *Algorithm, b *int64) { *b = n })
}

// WithClock sets the clock of the memory store the limiter makes for itself
// (and of its fallback store), and the clock that paces probes of a failed
// store. Stores that keep their own time, such as Redis, ignore it.
func WithClock(clock Clock) Option {
	return limiterOption(func(c *config) { c.clock = clock })
}

// DefaultTimeout is how long a check waits for the store by default: a
// Redis round trip in one data centre takes about a millisecond, so a store
// that has not answered in 100ms is in trouble, and the request should not
// wait for it.
const DefaultTimeout = 100 * time.Millisecond

// WithTimeout sets how long one check may wait for the store (default
// DefaultTimeout) before the failure policy takes over. The memory store
// never waits on I/O and is not timed.
func WithTimeout(d time.Duration) Option {
	return limiterOption(func(c *config) {
		if d <= 0 {
			c.problems = append(c.problems, fmt.Errorf("limitkit: WithTimeout(%v): the timeout must be positive", d))
			return
		}
		c.timeout = d
	})
}

// New returns a limiter. Without WithStore it keeps state in a new memory
// store; Close the limiter to stop that store's sweeper. New panics with a
// message naming the mistake if an option's value is invalid, such as a
// negative timeout: that is a bug in set-up code, found at start-up.
func New(opts ...Option) *Limiter {
	l := &Limiter{}
	for _, o := range opts {
		if o != nil {
			o.applyLimiter(&l.cfg)
		}
	}
	if len(l.cfg.problems) > 0 {
		panic(l.cfg.problems[0])
	}
	if l.cfg.timeout == 0 {
		l.cfg.timeout = DefaultTimeout
	}
	if !l.cfg.probeSet {
		l.cfg.probe = DefaultProbeInterval
	}
	if l.cfg.store == nil {
		l.cfg.store = NewMemoryStore(l.memoryOptions()...)
	}
	l.mem, _ = l.cfg.store.(*MemoryStore)
	_, l.quota = l.cfg.store.(QuotaStore)
	if k, ok := l.cfg.store.(DeadlineKeeper); ok {
		l.keeper = k.KeepsDeadlines()
	}
	l.now = time.Now
	if l.cfg.clock != nil {
		l.now = l.cfg.clock
	}
	return l
}

func (l *Limiter) memoryOptions() []MemoryOption {
	if l.cfg.clock != nil {
		return []MemoryOption{MemoryClock(l.cfg.clock)}
	}
	return nil
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
// so that every instance of an app shares its limits. Middlewares built
// without WithLimiter look the default up on every request, so SetDefault
// takes effect whether it is called before or after the routes are built;
// call it at start-up, before serving. Such a middleware's rule takes the
// new limiter's defaults (WithAlgorithm, WithBurst): if they cannot enforce
// it (a sliding log for 200000/minute), its requests are refused with 500,
// never served unlimited, and the mistake is logged at Error level and
// reported to the observer (EventConfigError) once.
func SetDefault(l *Limiter) {
	defaultLimiter.Store(l)
}

// Store returns the store the limiter decides with.
func (l *Limiter) Store() Store { return l.cfg.store }

// Take checks a request of the given cost under key against rule and charges
// it if every limit admits it.
//
// When the store fails or times out, the failure policy answers: FailOpen
// admits (Allowed, with the rule's first limit and nothing else known) and
// returns no error; FailClosed returns an error wrapping ErrUnavailable;
// Fallback returns the fallback store's decision. The failure itself goes to
// the observer and the logger either way. A bad cost or rule, or a context
// that is already done, is returned as an error without touching the store.
//
// After Close, Take returns an error wrapping ErrClosed without asking the
// store or the failure policy; so it does when the store answers ErrClosed
// (it was closed under the limiter). A closed store is the program's own
// doing, not an outage: it is not reported, and nothing is admitted.
func (l *Limiter) Take(ctx context.Context, key string, rule Rule, cost int64) (Decision, error) {
	if cost < 0 {
		return Decision{}, fmt.Errorf("limitkit: cost %d must not be negative", cost)
	}
	l.applyDefaults(&rule)
	if err := rule.Validate(); err != nil {
		return Decision{}, err
	}
	o := l.take(ctx, "", "", storeKey{id: key}, &rule, cost)
	if o.stopped() {
		return Decision{}, o.err
	}
	if obs := l.cfg.observer; obs != nil {
		obs.Observe(Event{Kind: EventDecision, Decision: o.d, DecidedBy: o.action, Latency: o.latency, Err: o.err})
	}
	switch {
	case o.action == ActionFailOpen:
		return Decision{Allowed: true, Limit: rule.Limits[0]}, nil
	case o.action == ActionFailClosed:
		return Decision{}, unavailable(o.err)
	}
	return o.d, nil
}

// Allow is Take with a cost of one.
func (l *Limiter) Allow(ctx context.Context, key string, rule Rule) (Decision, error) {
	return l.Take(ctx, key, rule, 1)
}

// Reset forgets key's state under rule, in the store and, if the limiter has
// fallen back to memory at some point, in the fallback store too. After
// Close it returns an error wrapping ErrClosed.
func (l *Limiter) Reset(ctx context.Context, key string, rule Rule) error {
	if l.closed.Load() {
		return errLimiterClosed
	}
	l.applyDefaults(&rule)
	if fb := l.fallbackIfMade(); fb != nil {
		_ = fb.Reset(ctx, key, rule)
	}
	return l.cfg.store.Reset(ctx, key, rule)
}

// Close closes the limiter's store, and its fallback store if it made one.
// From then on Take, Allow and Reset return an error wrapping ErrClosed, and
// the middlewares using the limiter refuse with 503. Closing again does
// nothing and returns nil.
func (l *Limiter) Close() error {
	l.fallbackMu.Lock()
	already := l.closed.Swap(true)
	fb := l.fallbackIfMade()
	l.fallbackMu.Unlock()
	if already {
		return nil
	}
	if fb != nil {
		_ = fb.Close()
	}
	return l.cfg.store.Close()
}

// errLimiterClosed is what a closed limiter answers.
var errLimiterClosed = fmt.Errorf("limitkit: the limiter is closed: %w", ErrClosed)

// applyDefaults fills the rule's algorithm and burst from the limiter.
func (l *Limiter) applyDefaults(rule *Rule) {
	if rule.Algorithm == 0 {
		rule.Algorithm = l.cfg.algorithm.orDefault()
	}
	if rule.Burst == 0 {
		rule.Burst = l.cfg.burst
	}
}

func (l *Limiter) logger() *slog.Logger {
	if l.cfg.logger != nil {
		return l.cfg.logger
	}
	return slog.Default()
}
