package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/redis/go-redis/v9"
)

// request is one decision's script run: its keys and its numeric arguments
// (see scripts.go). A command refers to the keys by pointer, which go-redis
// writes as it would the values, and to the numbers packed into packBuf as
// one *packed, so that building a command allocates no interface value per
// argument; rules of up to smallLimits limits without a calendar limit
// take a single allocation for all of it.
type request struct {
	script  *script
	keys    []string
	nums    []int64 // the script's numbers: see argNow and the constants after it
	clocked bool    // nums[argNow] is the time; else the script reads Redis's TIME
	res     chan result
	due     time.Time // under batching: when the caller stops waiting (zero: never)

	self    [1]*request // a batch of this request alone (see coalescer.do)
	keyBuf  [smallLimits]string
	numBuf  [argLimits + limitArgs*smallLimits]int64
	argv    packed          // nums packed for the script (see pack), once command made it
	reply   [replyLen]int64 // the script's reply, unpacked (see unpackReply)
	packBuf [8 * (argLimits + limitArgs*smallLimits)]byte
	argBuf  [cmdHead + smallLimits + 1]any
}

// The places of a request's arguments in nums, as the scripts unpack them
// from ARGV[1] (see lua/one.lua): the time, the cost, the TTL slack and the
// mode, then limitArgs numbers per limit, from argLimits on.
const (
	argNow    = iota // the time in µs, sent only when clocked
	argCost          // the request's cost
	argSlack         // ms added to every TTL
	argMode          // modeCharge or modePeek
	argLimits        // the first limit's count
)

// cmdHead is how many arguments of a command come before its keys:
// EVALSHA, the SHA-1 and the number of keys.
const cmdHead = 3

// limitArgs is how many numbers each limit adds to nums: its count, its
// window in µs and its burst.
const limitArgs = 3

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
		r.keys, r.nums = r.keyBuf[:0], r.numBuf[:argLimits+limitArgs*n]
	} else {
		r.keys, r.nums = make([]string, 0, n), make([]int64, argLimits+limitArgs*n)
	}
	return r
}

// setLimit sets the arguments of r's limit i.
func (r *request) setLimit(i int, count, windowMicros, burst int64) {
	num := r.nums[argLimits+limitArgs*i:]
	num[0], num[1], num[2] = count, windowMicros, burst
}

// limits is r's number of limits.
func (r *request) limits() int { return (len(r.nums) - argLimits) / limitArgs }

// appendKeys appends r's keys to dst, as pointers into r.
func (r *request) appendKeys(dst []any) []any {
	for i := range r.keys {
		dst = append(dst, &r.keys[i])
	}
	return dst
}

// pack appends r's arguments to dst as the scripts read them: each number
// of nums as a little-endian double (struct.unpack's 'd'), the time NaN
// when the script is to read Redis's TIME. One packed argument costs Redis
// a fraction of what a decimal argument per number does: each argument is
// parsed, made a string in Lua and turned into a number, about 1,600
// instructions, where unpacking costs about 150 a number. The scripts
// compute in doubles anyway (see scripts.go): core's validation keeps
// counts, periods and bursts below 2^52, and a time is exact up to 2^53 µs
// (the year 2255). A cost beyond 2^53 is rounded as Lua rounded its
// decimal, and is still more than any limit admits.
func (r *request) pack(dst []byte) []byte {
	now := math.NaN()
	if r.clocked {
		now = float64(r.nums[argNow])
	}
	dst = appendDouble(dst, now)
	for _, v := range r.nums[argNow+1:] {
		dst = appendDouble(dst, float64(v))
	}
	return dst
}

// appendDouble appends v to dst as struct.unpack's '<d' reads it.
func appendDouble(dst []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

// packed is a script's packed arguments. go-redis sends a value that
// implements encoding.BinaryMarshaler as its bytes, so a *packed in a
// command's arguments costs no allocation, where a []byte would.
type packed []byte

// MarshalBinary returns p's bytes.
func (p *packed) MarshalBinary() ([]byte, error) { return *p, nil }

// command returns r's EVALSHA.
func (r *request) command(ctx context.Context) *redis.StringCmd {
	var args []any
	if n := cmdHead + len(r.keys) + 1; n <= len(r.argBuf) {
		args = r.argBuf[:cmdHead]
	} else {
		args = make([]any, cmdHead, n)
	}
	args[0], args[1], args[2] = "evalsha", r.script.oneSHA, len(r.keys)
	r.argv = r.pack(r.packBuf[:0])
	args = append(r.appendKeys(args), &r.argv)
	return redis.NewStringCmd(ctx, args...)
}

// run runs r's script on c: EVALSHA, then EVAL should Redis not know the
// script.
func (r *request) run(ctx context.Context, c redis.UniversalClient) ([]int64, error) {
	cmd := r.command(ctx)
	process(ctx, c, once{cmd})
	if err := cmd.Err(); isNoScript(err) {
		cmd = redis.NewStringCmd(ctx, withSource(cmd.Args(), r.script.one)...)
		process(ctx, c, once{cmd})
	}
	reply, err := cmd.Result()
	if err != nil {
		return nil, err
	}
	return r.unpackReply(reply)
}

// unpackReply reads r's decision from reply, the script's five doubles
// (see lua/one.lua), into r.reply, and returns it. Anything else, such as a
// number that is no integer, is an error that quotes the reply.
func (r *request) unpackReply(reply string) ([]int64, error) {
	if len(reply) != 8*replyLen {
		return nil, fmt.Errorf("unexpected script reply %q", reply)
	}
	for i := range r.reply {
		u := binary.LittleEndian.Uint64([]byte(reply[8*i : 8*i+8]))
		// Every number a script replies is an integer: the time decided at
		// too, which a driven clock can set beyond 2^53 µs, so the bound is
		// int64's.
		f := math.Float64frombits(u)
		if f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
			return nil, fmt.Errorf("unexpected script reply %q", reply)
		}
		r.reply[i] = int64(f)
	}
	return r.reply[:], nil
}

// once is a script call that go-redis must not send again once it may have
// reached Redis. By default go-redis resends a command whose reply it lost
// (a read that timed out, a connection reset after the write), up to
// MaxRetries times, which for a decision would run its script again and
// charge it twice, or refund twice. go-redis still follows MOVED and ASK;
// the refusals that prove a call did not run (see unrun) the store resends
// itself; every other failure, such as a failed dial, comes back at once,
// for the limiter's failure policy.
//
// Each wraps one pointer, so that it goes into a Cmder without an
// allocation, as a struct of an embedded interface would not.
type once struct{ *redis.StringCmd }

// NoRetry tells go-redis not to resend the call.
func (once) NoRetry() bool { return true }

// onceInts is once for a script that replies with a list of integers.
type onceInts struct{ *redis.IntSliceCmd }

// NoRetry tells go-redis not to resend the call.
func (onceInts) NoRetry() bool { return true }

// onceAny is once for a script whose reply is of any other kind.
type onceAny struct{ *redis.Cmd }

// NoRetry tells go-redis not to resend the call.
func (onceAny) NoRetry() bool { return true }

// resends is how many times, at most, the store sends a call again that
// Redis refused without running it, each after a backoff of 8ms doubling,
// within the call's deadline.
const resends = 3

// unrun reports whether err proves that the call did not run, so that
// sending it again cannot charge twice: the pool had no connection for it
// in time, or Redis refused it before running it (loading its data, a
// replica, a slot being migrated, the cluster down, no master, no room for
// another client). go-redis resends these itself, but not a NoRetry call.
func unrun(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	for _, p := range [...]string{"LOADING ", "READONLY ", "TRYAGAIN ", "CLUSTERDOWN ", "MASTERDOWN ", "ERR max number of clients reached"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// backoff waits before the n-th resend (from 0), and reports false if ctx
// ended first.
func backoff(ctx context.Context, n int) bool {
	t := time.NewTimer(8 * time.Millisecond << n)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// process sends cmd on c, and again while Redis refuses it without
// running it (see unrun), up to resends times.
func process(ctx context.Context, c redis.UniversalClient, cmd redis.Cmder) {
	_ = c.Process(ctx, cmd)
	for n := 0; n < resends && unrun(cmd.Err()) && backoff(ctx, n); n++ {
		_ = c.Process(ctx, cmd)
	}
}

// withSource returns args, an EVALSHA's, as an EVAL's of src, which also
// loads the script.
func withSource(args []any, src any) []any {
	args[0], args[1] = "eval", src
	return args
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}
