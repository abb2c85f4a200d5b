package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher coalesces concurrent decisions: one goroutine collects calls and
// sends a batch when its first call has waited the window or when it is
// full; each batch is sent from its own goroutine, so that collecting the
// next one does not wait for Redis.
//
// On a plain client (standalone or Sentinel), which sends everything to one
// server, the decisions of a batch that share an algorithm travel as one
// call of that algorithm's batched script, so that Redis parses, looks up
// and runs one command for them all. Cluster clients and Rings spread keys
// over servers, which one script cannot span: there each decision is its
// own EVALSHA, in one pipeline.
type batcher struct {
	sender
	window time.Duration
	max    int
	calls  chan *request
	stop   chan struct{}
	done   chan struct{}
}

// sender sends batches of decisions, for the batcher and the coalescer.
type sender struct {
	client  redis.UniversalClient
	joint   bool // one script call per algorithm and batch
	timeout time.Duration
}

func newSender(client redis.UniversalClient, timeout time.Duration) sender {
	_, joint := client.(*redis.Client)
	return sender{client: client, joint: joint, timeout: timeout}
}

func newBatcher(client redis.UniversalClient, window time.Duration, max int, timeout time.Duration) *batcher {
	b := &batcher{
		sender: newSender(client, timeout),
		window: window,
		max:    max,
		calls:  make(chan *request),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go b.loop()
	return b
}

// do runs r in the next batch and waits for its result or ctx. A caller
// without a deadline of its own passes when it stops waiting as due: the
// batch's deadline is then no later.
func (b *batcher) do(ctx context.Context, r *request, due time.Time) ([]int64, error) {
	r.res, r.due = make(chan result, 1), dueOf(ctx, due)
	select {
	case b.calls <- r:
	case <-b.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-r.res:
		return res.v, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *batcher) loop() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch []*request
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

// part is one command of a batch and the requests it decides.
type part struct {
	cmd  *redis.StringCmd
	reqs []*request
	src  any // the script's source, should Redis not know it
}

// send runs a batch and answers every call: as one pipeline of one command
// per algorithm (joint) or per decision. Scripts Redis does not know (after
// SCRIPT FLUSH or a restart) are sent again in full in a second pipeline,
// which also loads them.
func (b *sender) send(batch []*request) { b.sendWithin(context.Background(), batch) }

// sendWithin is send under parent, which only a batch of one caller's own
// decision has: everyone else's batch must outlive any one caller.
func (b *sender) sendWithin(parent context.Context, batch []*request) {
	// The batch outlives any one caller's context: each caller stops
	// waiting at its own deadline, and the batch at the last of theirs, so
	// that no caller is failed sooner than it would be alone. A request
	// without a deadline (none comes from a store's own calls) gets the
	// store's timeout.
	var deadline time.Time
	for _, r := range batch {
		due := r.due
		if due.IsZero() {
			due = time.Now().Add(b.timeout)
		}
		if due.After(deadline) {
			deadline = due
		}
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()

	var parts []part
	if b.joint {
		parts = jointParts(ctx, batch)
	} else {
		parts = make([]part, len(batch))
		for i, r := range batch {
			parts[i] = part{cmd: r.command(ctx), reqs: batch[i : i+1], src: r.script.one}
		}
	}
	b.exec(ctx, parts)
	var retry []part
	for i, p := range parts {
		if isNoScript(p.cmd.Err()) {
			parts[i].cmd = redis.NewStringCmd(ctx, withSource(p.cmd.Args(), p.src)...)
			retry = append(retry, parts[i])
		}
	}
	if len(retry) > 0 {
		b.exec(ctx, retry)
	}
	for _, p := range parts {
		reply, err := p.cmd.Result()
		if err == nil && len(reply) != 8*replyLen*len(p.reqs) {
			err = fmt.Errorf("unexpected script reply %q to %d decisions", reply, len(p.reqs))
		}
		for i, r := range p.reqs {
			if err != nil {
				r.res <- result{nil, err}
			} else {
				v, err := r.unpackReply(reply[i*8*replyLen : (i+1)*8*replyLen])
				r.res <- result{v, err}
			}
		}
	}
}

// jointParts groups a batch by script: one command for each script used by
// two or more decisions (the batched script, with their keys and
// arguments one decision after another), the decision's own command for
// the others.
func jointParts(ctx context.Context, batch []*request) []part {
	var groups [len(scripts)][]*request
	var parts []part
	for _, r := range batch {
		if r.calendarArgs() {
			parts = append(parts, part{cmd: r.command(ctx), reqs: []*request{r}, src: r.script.one})
			continue
		}
		for i, s := range scripts {
			if s == r.script {
				groups[i] = append(groups[i], r)
				break
			}
		}
	}
	for i, g := range groups {
		switch len(g) {
		case 0:
			continue
		case 1:
			parts = append(parts, part{cmd: g[0].command(ctx), reqs: g, src: g[0].script.one})
			continue
		}
		s := scripts[i]
		nkeys, size := 0, 0
		for _, r := range g {
			nkeys += len(r.keys)
			size += 8 * (1 + len(r.nums)) // n, then its own arguments
		}
		args := make([]any, cmdHead, cmdHead+nkeys+1)
		args[0], args[1], args[2] = "evalsha", s.manySHA, nkeys
		for _, r := range g {
			args = r.appendKeys(args)
		}
		argv := make(packed, 0, size)
		for _, r := range g {
			argv = r.pack(appendDouble(argv, float64(r.limits())))
		}
		args = append(args, &argv)
		parts = append(parts, part{cmd: redis.NewStringCmd(ctx, args...), reqs: g, src: s.many})
	}
	return parts
}

// dueOf is when a caller waiting on ctx stops: due if set (a caller without
// a deadline of its own), else ctx's deadline, else never (zero).
func dueOf(ctx context.Context, due time.Time) time.Time {
	if due.IsZero() {
		due, _ = ctx.Deadline()
	}
	return due
}

// exec sends the parts' commands, one alone or else in one pipeline, and
// sends again those that Redis refused without running them (see unrun),
// up to resends times.
func (b *sender) exec(ctx context.Context, parts []part) {
	for n := 0; ; n++ {
		if len(parts) == 1 {
			_ = b.client.Process(ctx, once{parts[0].cmd})
		} else {
			pipe := b.client.Pipeline()
			for _, p := range parts {
				_ = pipe.Process(ctx, once{p.cmd})
			}
			_, _ = pipe.Exec(ctx) // each command carries its own error
		}
		if n == resends {
			return
		}
		var again []part
		for _, p := range parts {
			if unrun(p.cmd.Err()) {
				again = append(again, p)
			}
		}
		if len(again) == 0 || !backoff(ctx, n) {
			return
		}
		parts = again
	}
}

func (b *batcher) close() {
	close(b.stop)
	<-b.done
}
