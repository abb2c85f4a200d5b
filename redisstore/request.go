package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/redis/go-redis/v9"
)

// request is one decision's script run: its keys and its numeric arguments
// (see scripts.go). A command refers to them by pointer, which go-redis
// writes as it would the values, so that building a command allocates no
// interface value per argument; rules of up to smallLimits limits take a
// single allocation for all of it.
type request struct {
	script  *script
	keys    []string
	nums    []int64 // now, cost, slack, then count, window, burst per limit
	clocked bool    // nums[0] is the time; else the script reads Redis's TIME
	res     chan result
	due     time.Time // under batching: when the caller stops waiting, if it has no deadline of its own

	keyBuf [smallLimits]string
	numBuf [3 + 3*smallLimits]int64
	argBuf [3 + smallLimits + 3 + 3*smallLimits]any
}

// smallLimits is the most limits a request holds without further
// allocations.
const smallLimits = 2

type result struct {
	v   []int64
	err error
}

func newRequest(alg core.Algorithm, n int) *request {
	r := &request{script: scripts[alg]}
	if n <= smallLimits {
		r.keys, r.nums = r.keyBuf[:0], r.numBuf[:3+3*n]
	} else {
		r.keys, r.nums = make([]string, 0, n), make([]int64, 3+3*n)
	}
	return r
}

// appendKeys appends r's keys to dst, as pointers into r.
func (r *request) appendKeys(dst []any) []any {
	for i := range r.keys {
		dst = append(dst, &r.keys[i])
	}
	return dst
}

// appendNums appends r's arguments to dst, as pointers into r.
func (r *request) appendNums(dst []any) []any {
	if r.clocked {
		dst = append(dst, &r.nums[0])
	} else {
		dst = append(dst, "")
	}
	for i := 1; i < len(r.nums); i++ {
		dst = append(dst, &r.nums[i])
	}
	return dst
}

// command returns r's EVALSHA.
func (r *request) command(ctx context.Context) *redis.IntSliceCmd {
	var args []any
	if n := 3 + len(r.keys) + len(r.nums); n <= len(r.argBuf) {
		args = r.argBuf[:3]
	} else {
		args = make([]any, 3, n)
	}
	args[0], args[1], args[2] = "evalsha", r.script.oneSHA, len(r.keys)
	args = r.appendNums(r.appendKeys(args))
	return redis.NewIntSliceCmd(ctx, args...)
}

// run runs r's script on c: EVALSHA, then EVAL should Redis not know the
// script.
func (r *request) run(ctx context.Context, c redis.UniversalClient) ([]int64, error) {
	cmd := r.command(ctx)
	_ = c.Process(ctx, cmd)
	if err := cmd.Err(); isNoScript(err) {
		cmd = withSource(ctx, cmd, r.script.one)
		_ = c.Process(ctx, cmd)
	}
	return cmd.Result()
}

// withSource returns cmd, an EVALSHA, as an EVAL of src, which also loads
// the script.
func withSource(ctx context.Context, cmd *redis.IntSliceCmd, src any) *redis.IntSliceCmd {
	args := cmd.Args()
	args[0], args[1] = "eval", src
	return redis.NewIntSliceCmd(ctx, args...)
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}
