package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// coalescer sends each decision at once while fewer than inFlight batches
// are in flight, and otherwise queues it; when a batch comes back, whatever
// queued meanwhile (up to max) goes as the next batch. An idle store adds no
// wait and no goroutine hop: the caller sends its own decision on its own
// goroutine, as unbatched. Under load, batches grow with the load (the
// decisions that arrived during one round trip), where the batcher waits a
// fixed window whatever the load.
//
// Batches travel as the batcher's do (see sender.send): one script call per
// algorithm on a plain client, a pipeline of EVALSHAs on a Cluster client
// or Ring.
type coalescer struct {
	sender
	max      int
	inFlight int
	ctxAware bool // the client gives up at a context's deadline

	mu     sync.Mutex
	busy   int        // batches in flight
	queue  []*request // decisions waiting for a batch
	closed bool
}

// DefaultCoalesceInFlight is how many batches a coalescing store keeps in
// flight at once, each on its own connection: with two, Redis can start on
// the next batch as soon as it has answered one, while the client reads
// that answer. BenchmarkCoalescing compares 1, 2 and 4.
const DefaultCoalesceInFlight = 2

func newCoalescer(client redis.UniversalClient, max, inFlight int, timeout time.Duration, ctxAware bool) *coalescer {
	return &coalescer{sender: newSender(client, timeout), max: max, inFlight: inFlight, ctxAware: ctxAware}
}

// do decides r: at once, on the caller's goroutine, if a batch may start,
// else in the next batch. due is as for batcher.do.
func (c *coalescer) do(ctx context.Context, r *request, due time.Time) ([]int64, error) {
	r.res, r.due = make(chan result, 1), due
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if c.busy < c.inFlight {
		c.busy++
		c.mu.Unlock()
		// A batch of the caller's own decision: the caller's context may
		// end it, since it ends nobody else's.
		r.self[0] = r
		if !c.ctxAware {
			// The client would not stop at ctx's deadline: wait for it
			// elsewhere, as the store does unbatched.
			go func() {
				c.sendWithin(ctx, r.self[:])
				c.next()
			}()
			select {
			case res := <-r.res:
				return res.v, res.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		c.sendWithin(ctx, r.self[:])
		c.next()
		res := <-r.res
		return res.v, res.err
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case res := <-r.res:
		return res.v, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// next is called as a batch comes back: it starts the next batch, from
// another goroutine so that the caller that sent the last one may return,
// or frees the batch's place.
func (c *coalescer) next() {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.busy--
		c.mu.Unlock()
		return
	}
	batch := c.take()
	c.mu.Unlock()
	go c.drain(batch)
}

// take removes up to max waiting decisions from the queue. c.mu is held.
func (c *coalescer) take() []*request {
	batch := c.queue
	if len(batch) > c.max {
		batch = batch[:c.max:c.max]
		c.queue = append([]*request(nil), c.queue[c.max:]...)
	} else {
		c.queue = nil
	}
	return batch
}

// drain sends batches from the queue until it is empty.
func (c *coalescer) drain(batch []*request) {
	for {
		c.send(batch)
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.busy--
			c.mu.Unlock()
			return
		}
		batch = c.take()
		c.mu.Unlock()
	}
}

// close refuses new decisions; those queued or in flight are still decided.
func (c *coalescer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}
