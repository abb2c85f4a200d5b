package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher coalesces concurrent script runs into pipelines: one goroutine
// collects calls and sends a batch when its first call has waited the
// window or when it is full; each batch is sent from its own goroutine, so
// that collecting the next one does not wait for Redis.
type batcher struct {
	client  redis.UniversalClient
	window  time.Duration
	max     int
	timeout time.Duration
	calls   chan *call
	stop    chan struct{}
	done    chan struct{}
}

// call is one caller's script run, answered on res (buffered, so that a
// caller who gave up never blocks the batch).
type call struct {
	script *redis.Script
	keys   []string
	args   []any
	res    chan result
}

type result struct {
	v   any
	err error
}

func newBatcher(client redis.UniversalClient, window time.Duration, max int, timeout time.Duration) *batcher {
	b := &batcher{
		client:  client,
		window:  window,
		max:     max,
		timeout: timeout,
		calls:   make(chan *call),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go b.loop()
	return b
}

// do runs script in the next batch and waits for its result or ctx.
func (b *batcher) do(ctx context.Context, script *redis.Script, keys []string, args []any) (any, error) {
	c := &call{script: script, keys: keys, args: args, res: make(chan result, 1)}
	select {
	case b.calls <- c:
	case <-b.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-c.res:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *batcher) loop() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch []*call
	for {
		var due <-chan time.Time
		if len(batch) > 0 {
			due = timer.C
		}
		select {
		case c := <-b.calls:
			batch = append(batch, c)
			if len(batch) == 1 {
				timer.Reset(b.window)
			}
			if len(batch) < b.max {
				continue
			}
			timer.Stop()
		case <-due:
		case <-b.stop:
			if len(batch) > 0 {
				b.send(batch)
			}
			return
		}
		go b.send(batch)
		batch = nil
	}
}

// send runs a batch as one pipeline of EVALSHAs and answers every call.
// Scripts Redis does not know (after SCRIPT FLUSH or a restart) are sent
// again in full in a second pipeline, which also loads them.
func (b *batcher) send(batch []*call) {
	// The batch outlives any one caller's context: callers stop waiting at
	// their own deadlines, and the pipeline at the store's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	cmds := make([]*redis.Cmd, len(batch))
	pipe := b.client.Pipeline()
	for i, c := range batch {
		cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error

	var retry []int
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")) {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		pipe := b.client.Pipeline()
		for _, i := range retry {
			c := batch[i]
			cmds[i] = c.script.Eval(ctx, pipe, c.keys, c.args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	for i, c := range batch {
		v, err := cmds[i].Result()
		c.res <- result{v, err}
	}
}

func (b *batcher) close() {
	close(b.stop)
	<-b.done
}
