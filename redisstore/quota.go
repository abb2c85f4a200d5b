package redisstore

import (
	"context"
	"fmt"

	"github.com/limitkit/limitkit/core"
	"github.com/redis/go-redis/v9"
)

var _ core.QuotaStore = (*Store)(nil)

// Refund implements core.QuotaStore: it gives back amount of charge c by
// the algorithm's refund script (lua/refund.lua), atomically, in one round
// trip, at Redis's time (or the driven clock's), keeping every key's TTL.
// It forgets the key's cached denials, which the refund may have ended.
func (s *Store) Refund(ctx context.Context, key string, rule core.Rule, c core.Charge, amount int64) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if amount < 0 || amount > c.Cost {
		return fmt.Errorf("redisstore: refund %d of a charge of %d: want between 0 and the charge", amount, c.Cost)
	}
	if err := rule.Validate(); err != nil {
		return err
	}
	if amount == 0 {
		return nil
	}
	alg := rule.Algorithm
	if alg == 0 {
		alg = core.DefaultAlgorithm
	}
	n := len(rule.Limits)
	keys := s.keys(make([]string, 0, n), key, rule.Shape(), n)
	sc := scripts[alg]
	args := make([]any, 0, cmdHead+n+3+limitArgs*n)
	args = append(args, "evalsha", sc.refundSHA, n)
	for _, k := range keys {
		args = append(args, k)
	}
	if s.clock != nil {
		args = append(args, s.now())
	} else {
		args = append(args, "")
	}
	args = append(args, c.At.UnixMicro(), amount)
	for i, l := range rule.Limits {
		args = append(args, l.Count, refundWindow(l, c.At), rule.Capacity(i))
	}
	v, err := s.bounded(ctx, func(ctx context.Context) ([]int64, error) {
		cmd := redis.NewIntSliceCmd(ctx, args...)
		process(ctx, s.client, onceInts{cmd})
		if err := cmd.Err(); isNoScript(err) {
			cmd = redis.NewIntSliceCmd(ctx, withSource(cmd.Args(), sc.refund)...)
			process(ctx, s.client, onceInts{cmd})
		}
		return cmd.Result()
	})
	if s.deny != nil {
		s.deny.forget(key)
	}
	if err != nil {
		s.noteFailure(err)
		return fmt.Errorf("redisstore: refund %q under %v %s: %w", key, alg, rule.String(), s.cause.explain(err))
	}
	switch {
	case len(v) == 2 && v[0] == 1:
		return nil
	case len(v) == 2 && v[0] == -1 && v[1] >= 0 && v[1] < int64(n):
		return fmt.Errorf("redisstore: refund %q: %w under %s", key, core.ErrCorruptState, keys[v[1]])
	}
	return fmt.Errorf("redisstore: refund %q: unexpected script reply %v", key, v)
}

// bounded runs call within the store's timeout, when ctx has no deadline,
// and returns by the deadline whatever the client does.
func (s *Store) bounded(ctx context.Context, call func(context.Context) ([]int64, error)) ([]int64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if s.ctxAware {
		return call(ctx)
	}
	done := make(chan result, 1)
	go func() {
		v, err := call(ctx)
		done <- result{v, err}
	}()
	select {
	case res := <-done:
		return res.v, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
