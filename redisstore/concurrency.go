package redisstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/redis/go-redis/v9"
)

// The concurrency scripts run as they are in lua/: each is one round trip
// (EVALSHA, and EVAL once after Redis lost its script cache).
var (
	acquireScript = newLeaseScript("concurrency-acquire.lua")
	renewScript   = newLeaseScript("concurrency-renew.lua")
	releaseScript = newLeaseScript("concurrency-release.lua")
)

// leaseScript is a concurrency script: its SHA and its source.
type leaseScript struct {
	sha, src string
}

func newLeaseScript(name string) *leaseScript {
	src := luaFile(name)
	return &leaseScript{sha: redis.NewScript(src).Hash(), src: src}
}

// leaseKey is the Redis key of key's concurrency leases:
// prefix{tag}:concurrency, in the key's Cluster slot like its rate-limit
// state, and never one of those keys, whose suffix is a shape in hex.
func (s *Store) leaseKey(key string) string {
	t := tag(key)
	var b strings.Builder
	b.Grow(len(s.prefix) + len(t) + 14)
	b.WriteString(s.prefix)
	b.WriteByte('{')
	b.WriteString(t)
	b.WriteString("}:concurrency")
	return b.String()
}

// nowArg is the time the scripts decide at: "" for Redis's TIME, or the
// driven clock in µs under WithClock.
func (s *Store) nowArg() any {
	if s.clock != nil {
		return s.clock().UnixMicro()
	}
	return ""
}

// eval runs a concurrency script within the call's deadline (the store's
// timeout if ctx has none), as Take runs its scripts.
func (s *Store) eval(ctx context.Context, sc *leaseScript, key string, args ...any) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if s.ctxAware {
		return s.runLease(ctx, sc, key, args)
	}
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := s.runLease(ctx, sc, key, args)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runLease runs sc on key with args: EVALSHA, then EVAL should Redis not
// know the script, each sent once (see once): a resent acquire whose first
// run took the slot would find the limit full of its own lease and refuse
// its caller, who would then never release it.
func (s *Store) runLease(ctx context.Context, sc *leaseScript, key string, vals []any) (any, error) {
	args := make([]any, 0, 4+len(vals))
	args = append(args, "evalsha", sc.sha, 1, key)
	args = append(args, vals...)
	cmd := redis.NewCmd(ctx, args...)
	process(ctx, s.client, onceAny{cmd})
	if isNoScript(cmd.Err()) {
		args[0], args[1] = "eval", sc.src
		cmd = redis.NewCmd(ctx, args...)
		process(ctx, s.client, onceAny{cmd})
	}
	return cmd.Result()
}

// Acquire implements core.ConcurrencyStore: one script, one round trip.
// The key's leases are a sorted set of lease ids scored by expiry, whose
// expired members the script drops before counting, and whose TTL covers
// its latest lease; time is Redis's TIME, so instances with skewed clocks
// agree on when a lease expires.
func (s *Store) Acquire(ctx context.Context, key, lease string, c core.Concurrency) (core.ConcurrencyDecision, error) {
	if s.closed.Load() {
		return core.ConcurrencyDecision{}, ErrClosed
	}
	if err := c.Validate(); err != nil {
		return core.ConcurrencyDecision{}, err
	}
	k := s.leaseKey(key)
	v, err := s.eval(ctx, acquireScript, k, s.nowArg(), lease, c.Limit, int64(c.TTL/time.Microsecond), s.slack)
	if err != nil {
		s.noteFailure(err)
		return core.ConcurrencyDecision{}, fmt.Errorf("redisstore: acquire %q under %v: %w", key, c, s.cause.explain(err))
	}
	r, ok := ints(v, 3)
	switch {
	case ok && r[0] == -1:
		return core.ConcurrencyDecision{}, fmt.Errorf("redisstore: acquire %q: %w under %s", key, core.ErrCorruptState, k)
	case !ok || r[0] < 0 || r[0] > 1 || r[1] < 0 || r[2] < 0:
		return core.ConcurrencyDecision{}, fmt.Errorf("redisstore: acquire %q: unexpected script reply %v", key, v)
	}
	return core.ConcurrencyDecision{Allowed: r[0] == 1, InFlight: r[1], NextExpiry: time.Duration(r[2]) * time.Microsecond}, nil
}

// Renew implements core.ConcurrencyStore: one round trip.
func (s *Store) Renew(ctx context.Context, key, lease string, ttl time.Duration) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := (core.Concurrency{Limit: 1, TTL: ttl}).Validate(); err != nil {
		return err
	}
	return s.leaseOp(ctx, "renew", renewScript, key, lease, int64(ttl/time.Microsecond), s.slack)
}

// Release implements core.ConcurrencyStore: one round trip.
func (s *Store) Release(ctx context.Context, key, lease string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.leaseOp(ctx, "release", releaseScript, key, lease)
}

// leaseOp runs the renew or release script, whose reply is 1 done, 0 not
// held, -1 corrupt.
func (s *Store) leaseOp(ctx context.Context, op string, sc *leaseScript, key, lease string, args ...any) error {
	k := s.leaseKey(key)
	v, err := s.eval(ctx, sc, k, append([]any{s.nowArg(), lease}, args...)...)
	if err != nil {
		s.noteFailure(err)
		return fmt.Errorf("redisstore: %s lease %s of %q: %w", op, lease, key, s.cause.explain(err))
	}
	switch n, _ := v.(int64); {
	case v == int64(1):
		return nil
	case v == int64(0):
		return fmt.Errorf("redisstore: %s lease %s of %q: %w", op, lease, key, core.ErrLeaseNotHeld)
	case v == int64(-1):
		return fmt.Errorf("redisstore: %s lease %s of %q: %w under %s", op, lease, key, core.ErrCorruptState, k)
	default:
		return fmt.Errorf("redisstore: %s lease %s of %q: unexpected script reply %v", op, lease, key, n)
	}
}

// ints reads a script's reply of n integers.
func ints(v any, n int) ([]int64, bool) {
	a, ok := v.([]any)
	if !ok || len(a) != n {
		return nil, false
	}
	out := make([]int64, n)
	for i, x := range a {
		if out[i], ok = x.(int64); !ok {
			return nil, false
		}
	}
	return out, true
}

var _ core.ConcurrencyStore = (*Store)(nil)
