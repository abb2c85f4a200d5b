package redisstore

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
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

	used atomic.Bool // a decision came since perMaster last pruned
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
	r.due = dueOf(ctx, due)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if c.busy < c.inFlight {
		c.busy++
		c.mu.Unlock()
		// The caller's own decision, alone: the caller's context may end
		// it, since it ends nobody else's.
		if !c.ctxAware {
			r.res, r.self[0] = make(chan result, 1), r
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
		// Alone, the decision is the unbatched call: no batch to build,
		// no channel to pass its reply through.
		// (own, not ctx reassigned: the goroutine above captures ctx, which
		// would then move to the heap on every call.)
		// A context that ends by r.due already is the call's deadline, as
		// a request's usually is: deriving one would cost a timer.
		own := ctx
		if d, ok := ctx.Deadline(); !r.due.IsZero() && (!ok || d.After(r.due)) {
			var cancel context.CancelFunc
			own, cancel = context.WithDeadline(ctx, r.due)
			defer cancel()
		}
		v, err := r.run(own, c.client)
		c.next()
		return v, err
	}
	r.res = make(chan result, 1)
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

// perMaster coalesces a Cluster client's decisions per master: each master
// has a coalescer of its own, so that a batch is a pipeline to one master
// and a master that stalls or fails holds up only the decisions on its own
// slots. One coalescer over the whole cluster would send pipelines spanning
// masters, each of whose decisions waits for the slowest master's.
type perMaster struct {
	cc    *redis.ClusterClient
	spawn func() *coalescer

	// by maps a master's address to its coalescer. It is replaced, never
	// changed, under mu, so that a decision reads it without a lock; a
	// cluster has few masters.
	by     atomic.Pointer[map[string]*coalescer]
	mu     sync.Mutex
	closed bool

	// mapped is set once the client holds the cluster's slot map: from
	// then on MasterForKey answers from memory (go-redis reloads the map
	// in the background), where before it loads the map on its caller's
	// goroutine, bounded by go-redis's own timeouts rather than by the
	// caller's deadline. mapping is set while a load runs in the
	// background, so that there is at most one.
	mapped, mapping atomic.Bool
	timeout         time.Duration
	pruned          time.Time // the last pruning (see add); mu guards it
}

func newPerMaster(cc *redis.ClusterClient, max, inFlight int, timeout time.Duration, ctxAware bool) *perMaster {
	p := &perMaster{cc: cc, timeout: timeout, spawn: func() *coalescer { return newCoalescer(cc, max, inFlight, timeout, ctxAware) }}
	p.by.Store(&map[string]*coalescer{})
	return p
}

// do decides r in the coalescer of the master that serves its keys (one
// slot: they share a hash tag), as the client's slot map has it now. Until
// the client holds a slot map, and for a key the map gives no master, r
// goes through the coalescer of decisions whose master is unknown, whose
// pipelines span masters and keep every caller's deadline as any batch
// does, and the map is loaded in the background. A decision grouped by a
// map that has changed still reaches the right master: the client follows
// Redis's redirections.
func (p *perMaster) do(ctx context.Context, r *request, due time.Time) ([]int64, error) {
	addr := ""
	if !p.mapped.Load() {
		p.loadMap()
	} else if node, err := p.cc.MasterForKey(ctx, r.keys[0]); err == nil {
		addr = node.Options().Addr
	}
	c := (*p.by.Load())[addr]
	if c == nil {
		var err error
		if c, err = p.add(addr); err != nil {
			return nil, err
		}
	}
	if !c.used.Load() {
		c.used.Store(true)
	}
	return c.do(ctx, r, due)
}

// loadMap has the client load the cluster's slot map in the background,
// unless a load is running, and sets mapped once it holds one.
func (p *perMaster) loadMap() {
	if !p.mapping.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.mapping.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		defer cancel()
		if _, err := p.cc.MasterForKey(ctx, ""); err == nil {
			p.mapped.Store(true)
		}
	}()
}

// add returns addr's coalescer, making it if no other caller has.
func (p *perMaster) add(addr string) (*coalescer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	old := *p.by.Load()
	if c := old[addr]; c != nil {
		return c, nil
	}
	by := maps.Clone(old)
	if now := time.Now(); now.Sub(p.pruned) >= pruneEvery {
		// Masters come and go (failovers, new hosts), and a map that only
		// grew would keep every address a cluster ever had: drop the
		// coalescers no decision used since the last pruning, at least
		// pruneEvery ago, and that have nothing in flight. One dropped
		// for a master still in use is made again at its next decision; a
		// caller that found it before it was dropped still uses it.
		p.pruned = now
		for a, c := range by {
			c.mu.Lock()
			idle := c.busy == 0 && len(c.queue) == 0
			c.mu.Unlock()
			if !c.used.Swap(false) && idle {
				delete(by, a)
			}
		}
	}
	c := p.spawn()
	by[addr] = c
	p.by.Store(&by)
	return c, nil
}

// pruneEvery is how often, at most, perMaster drops the coalescers of
// masters no decision used meanwhile.
const pruneEvery = time.Minute

// close refuses new decisions on every master; those queued or in flight
// are still decided.
func (p *perMaster) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range *p.by.Load() {
		c.close()
	}
}
