package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/redis/go-redis/v9"
)

// Store is a core.Store that keeps its state in Redis, so that every
// instance of an application shares its limits. It is safe for concurrent
// use. See the package documentation.
type Store struct {
	client   redis.UniversalClient
	prefix   string
	timeout  time.Duration
	clock    core.Clock
	slack    int64 // ms added to every TTL; nonzero only under WithClock
	ctxAware bool  // the client itself gives up at the context's deadline
	epoch    time.Time
	deny     *denyCache
	batch    batchRunner // nil unbatched
	closed   atomic.Bool
	closing  sync.Once
	cluster  *redis.ClusterClient // the client, if it is one: see noteFailure
	cause    *dialCause           // names a failed connection in errors: see cause.go

	// calendarClock, set only by tests, is the time calendar boundaries
	// are computed from in place of the clock (see calendar.go).
	calendarClock core.Clock
	calendars     calendarCache
}

// ErrClosed is returned by calls on a Store after Close. It is core.ErrClosed,
// which every store of this module returns.
var ErrClosed = core.ErrClosed

// clockSlack is how much longer keys live under WithClock: Redis expires
// keys in its own time, which a driven clock does not move, so a test that
// runs slowly in real time must not see its state vanish.
const clockSlack = time.Minute

// New returns a store on client: a *redis.Client (also from
// redis.NewFailoverClient for Sentinel), a *redis.ClusterClient or a
// *redis.Ring. The store does not own the client: Close leaves it open.
//
// New adds a hook to the client (to its nodes, for a Cluster client or a
// Ring) that remembers the last failed connection attempt, so that an
// error the store returns names it, "context deadline exceeded (last
// connection attempt: dial tcp ...: connect: connection refused)", where
// go-redis gives only the deadline that passed meanwhile; errors.Is finds
// both. Stores on one client share the hook. Build a Cluster client's
// first Store before its first command: the hook reaches the nodes it
// makes from then on.
//
// New panics, naming the mistake, if an option cannot work, such as a prefix
// with a brace in it: that is a programming error found at start-up.
func New(client redis.UniversalClient, opts ...Option) *Store {
	if client == nil {
		panic("redisstore: New(nil): a Redis client is required")
	}
	cfg := config{prefix: DefaultPrefix, timeout: DefaultTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if !cfg.sending {
		// Coalesce by default, on a Cluster per master; see WithCoalescing.
		switch client.(type) {
		case *redis.Client, *redis.ClusterClient:
			cfg.coalesce = true
		}
	}
	if err := cfg.check(); err != nil {
		panic(err.Error())
	}
	s := &Store{
		client:   client,
		prefix:   cfg.prefix,
		timeout:  cfg.timeout,
		clock:    cfg.clock,
		ctxAware: honoursContext(client),
		epoch:    time.Now(),
	}
	s.cluster, _ = client.(*redis.ClusterClient)
	s.cause = causeOf(client)
	if s.clock != nil {
		s.slack = clockSlack.Milliseconds()
	}
	if cfg.denyMaxKeys > 0 {
		s.deny = newDenyCache(cfg.denyMaxKeys)
	}
	max := cfg.batchMax
	if max == 0 {
		max = DefaultBatchMax
	}
	switch {
	case cfg.batch:
		s.batch = newBatcher(client, cfg.batchWindow, max, s.timeout)
	case cfg.coalesce:
		inFlight := cfg.inFlight
		if inFlight == 0 {
			inFlight = DefaultCoalesceInFlight
		}
		if cc, ok := client.(*redis.ClusterClient); ok {
			s.batch = newPerMaster(cc, max, inFlight, s.timeout, s.ctxAware)
		} else {
			s.batch = newCoalescer(client, max, inFlight, s.timeout, s.ctxAware)
		}
	}
	return s
}

// batchRunner decides requests together with others: a batcher or a
// coalescer.
type batchRunner interface {
	// do decides r and waits for its result or ctx; due is when a
	// caller without a deadline of its own stops waiting.
	do(ctx context.Context, r *request, due time.Time) ([]int64, error)
	close()
}

// honoursContext reports whether the client stops waiting for Redis at the
// context's deadline. go-redis does so only with ContextTimeoutEnabled; any
// other client is waited for in another goroutine, so that the caller still
// returns at its deadline.
func honoursContext(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// now is the time the deny cache works in, in µs: the driven clock under
// WithClock, else the process's monotonic clock. It never decides a
// request; only Redis's TIME does.
func (s *Store) now() int64 {
	if s.clock != nil {
		return s.clock().UnixMicro()
	}
	return int64(time.Since(s.epoch) / time.Microsecond)
}

// The modes of a decision (ARGV's mode, see lua/one.lua).
const (
	modeCharge = 0 // decide and charge: Take and Reserve
	modePeek   = 1 // decide, charge nothing
)

// Take implements core.Store: one script, one round trip.
func (s *Store) Take(ctx context.Context, key string, rule core.Rule, cost int64) (core.Decision, error) {
	d, _, err := s.decide(ctx, "take", key, rule, cost, modeCharge)
	return d, err
}

// Peek implements core.QuotaStore: the decision Take would return, by the
// same script in its peek mode, which charges nothing; one round trip.
func (s *Store) Peek(ctx context.Context, key string, rule core.Rule, cost int64) (core.Decision, error) {
	d, _, err := s.decide(ctx, "peek", key, rule, cost, modePeek)
	return d, err
}

// Reserve implements core.QuotaStore: Take, with Redis's time of the
// charge, which the script returns; one round trip.
func (s *Store) Reserve(ctx context.Context, key string, rule core.Rule, cost int64) (core.Decision, core.Charge, error) {
	d, at, err := s.decide(ctx, "reserve", key, rule, cost, modeCharge)
	if err != nil || !d.Allowed {
		return d, core.Charge{}, err
	}
	return d, core.Charge{At: time.UnixMicro(at), Cost: cost}, nil
}

// decide runs a decision in mode: the decision and the time, by Redis or
// the driven clock, that it was made at. A peek neither reads nor feeds
// the deny cache: it must see what Redis holds, and it decides no request.
func (s *Store) decide(ctx context.Context, opName, key string, rule core.Rule, cost int64, mode int64) (core.Decision, int64, error) {
	if s.closed.Load() {
		return core.Decision{}, 0, ErrClosed
	}
	if cost < 0 {
		return core.Decision{}, 0, fmt.Errorf("redisstore: cost %d must not be negative", cost)
	}
	alg := rule.Algorithm
	if alg == 0 {
		alg = core.DefaultAlgorithm
	}
	if err := rule.Validate(); err != nil {
		return core.Decision{}, 0, err
	}

	n := len(rule.Limits)
	r := newRequest(alg, n)
	// Keep the time a request left in the deny cache's clock: Redis decided
	// later, so a denial's end computed from it is never too late.
	sent := int64(0)
	if s.clock != nil {
		sent = s.now()
		r.nums[argNow], r.clocked = sent, true
	} else if s.deny != nil {
		sent = s.now()
	}
	r.nums[argCost], r.nums[argSlack], r.nums[argMode] = cost, s.slack, mode
	futile := false // some limit can never admit cost: Redis says Never
	for i, l := range rule.Limits {
		// The buckets' burst is the capacity; the windows ignore it.
		capacity := rule.Capacity(i)
		futile = futile || cost > capacity
		r.setLimit(i, l.Count, int64(l.Period/time.Microsecond), capacity)
	}
	s.setCalendar(r, &rule)

	shape := rule.Shape()
	cached := s.deny != nil && !futile && mode == modeCharge
	if cached {
		if d, ok := s.deny.lookup(key, shape, cost, sent); ok {
			return d, 0, nil
		}
	}

	r.keys = s.keys(r.keys, key, shape, n)
	v, err := s.run(ctx, r)
	if err != nil {
		s.noteFailure(err)
		err = s.cause.explain(err)
		return core.Decision{}, 0, fmt.Errorf("redisstore: %s %q under %v %s: %w", opName, key, alg, rule.String(), err)
	}
	d, err := decision(v, &rule, r.keys)
	if err != nil {
		return core.Decision{}, 0, fmt.Errorf("redisstore: %s %q under %v %s: %w", opName, key, alg, rule.String(), err)
	}
	if cached {
		s.deny.record(key, shape, cost, sent, d)
	}
	return d, v[4], nil
}

// KeepsDeadlines reports that Take returns by its context's deadline (or the
// store's timeout) whatever Redis does, so that a core.Limiter may call it
// on the caller's goroutine: see core.DeadlineKeeper.
func (s *Store) KeepsDeadlines() bool { return true }

var _ core.DeadlineKeeper = (*Store)(nil)

// noteFailure asks a Cluster client to re-read the slot map after a failure
// at the connection level (refused, reset, timed out) or CLUSTERDOWN: go-redis
// re-reads it by itself only on MOVED or ASK replies and once a minute, so
// without this, keys on a failed master would keep failing for up to a
// minute after a replica took over. go-redis coalesces these reloads.
func (s *Store) noteFailure(err error) {
	if s.cluster == nil || errors.Is(err, context.Canceled) {
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !strings.HasPrefix(rerr.Error(), "CLUSTERDOWN") {
		return // Redis answered: the connection is fine
	}
	s.cluster.ReloadState(context.Background())
}

// run runs r's script on Redis within the call's deadline.
func (s *Store) run(ctx context.Context, r *request) ([]int64, error) {
	if _, ok := ctx.Deadline(); !ok {
		if s.batch != nil && s.ctxAware {
			// The batch's own deadline is no later than the store's
			// timeout from now, and the client keeps to it.
			return s.batch.do(ctx, r, time.Now().Add(s.timeout))
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if s.batch != nil {
		v, err := s.batch.do(ctx, r, time.Time{})
		if err != nil {
			settle(ctx)
		}
		return v, err
	}
	if s.ctxAware {
		return r.run(ctx, s.client)
	}
	done := make(chan result, 1)
	go func() {
		v, err := r.run(ctx, s.client)
		done <- result{v, err}
	}()
	select {
	case res := <-done:
		return res.v, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// settle waits, after a failed call, for ctx to end if its deadline has
// passed: the batch the call went in may give up at that same instant by a
// timer of its own, and the caller (core's limiter) tells a store that did
// not answer in time by its context's error, which its timer may not have
// set yet.
func settle(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		<-ctx.Done()
	}
}

// replyLen is the length of a script's reply; see lua/one.lua.
const replyLen = 5

// decision reads a script's reply to a decision on keys, refusing anything
// that is not exactly what the scripts return: {verdict, remaining, reset,
// wait, time}, the verdict being allowed + 2·never + 4·limit index and the
// wait the delay of an admission or the retry-after of a refusal; or
// {-1, key index, 0, 0, 0} for corrupt state and {-2, limit index, 0, 0, 0}
// for a clock too far from Redis's.
func decision(r []int64, rule *core.Rule, keys []string) (core.Decision, error) {
	if len(r) != replyLen {
		return core.Decision{}, fmt.Errorf("unexpected script reply %v", r)
	}
	verdict := r[0]
	switch {
	case verdict == -1 && r[1] >= 0 && r[1] < int64(len(keys)):
		return core.Decision{}, fmt.Errorf("%w under %s", core.ErrCorruptState, keys[r[1]])
	case verdict == -2:
		return core.Decision{}, clockSkew(rule, r[1])
	}
	allowed, never, idx := verdict&1 == 1, verdict&2 == 2, verdict>>2
	if verdict < 0 || allowed && never || idx >= int64(len(rule.Limits)) {
		return core.Decision{}, fmt.Errorf("unexpected script reply %v", r)
	}
	d := core.Decision{
		Allowed:    allowed,
		Limit:      rule.Limits[idx],
		Index:      int(idx),
		Remaining:  r[1],
		ResetAfter: time.Duration(r[2]) * time.Microsecond,
		Never:      never,
	}
	if allowed {
		d.Delay = time.Duration(r[3]) * time.Microsecond
	} else {
		d.RetryAfter = time.Duration(r[3]) * time.Microsecond
	}
	return d, nil
}

// Reset implements core.Store: it deletes key's state under rule's shape,
// as the memory store does, and forgets the key's cached denials.
func (s *Store) Reset(ctx context.Context, key string, rule core.Rule) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.deny != nil {
		s.deny.forget(key)
	}
	keys := s.keys(nil, key, rule.Shape(), len(rule.Limits))
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	var err error
	if s.ctxAware {
		err = s.client.Del(ctx, keys...).Err()
	} else {
		done := make(chan error, 1)
		go func() { done <- s.client.Del(ctx, keys...).Err() }()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("redisstore: reset %q: %w", key, s.cause.explain(err))
	}
	// A denial recorded while the DEL was in flight would outlive it.
	if s.deny != nil {
		s.deny.forget(key)
	}
	return nil
}

// Close stops the batching goroutine, if any; later calls return ErrClosed.
// It does not close the Redis client, which belongs to the caller.
func (s *Store) Close() error {
	s.closing.Do(func() {
		s.closed.Store(true)
		if s.batch != nil {
			s.batch.close()
		}
	})
	return nil
}
