package core

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// MemoryStore is the embedded Store: state in this process, exact under
// concurrency, bounded in size.
//
// Keys are spread by a seeded hash over 256 shards, each a map behind one
// mutex that also guards its keys' state: a check takes exactly one lock,
// held for a few dozen nanoseconds, and callers meet only when their keys
// share a shard. One sweeper goroutine (not a timer per key, which would
// cost a goroutine or a timer for every client) drops keys whose state has
// run out.
//
// At the bound, a new key evicts the key that will expire soonest among a
// sample of its shard: memory never exceeds the bound, a flood of distinct
// keys can only make the quietest clients' budgets start over early, and the
// keys spending their budgets right now are the last to go.
type MemoryStore struct {
	shards     [shardCount]shard
	seed       maphash.Seed
	shardMax   int       // keys per shard
	clock      Clock     // nil: base and the monotonic clock
	base       time.Time // when the store was made, with its monotonic reading
	baseMicros int64     // base in µs since the epoch
	stop       chan struct{}
	done       chan struct{}
	closing    sync.Once
}

const shardCount = 256

type shard struct {
	mu sync.Mutex
	// keys is indexed by the key's 64-bit hash, which is cheaper to look up
	// than the string; the entry holds the string to confirm the match.
	// Another key with the same hash, which is astronomically rare, lives in
	// collided.
	keys     map[uint64]*entry
	collided map[string]*entry
	_        [64]byte // keep neighbouring shards' locks off one cache line
}

// entry is one key's state; its shard's mutex guards it. A check of a
// one-limit rule, nearly every check, touches only the first two cache
// lines: the fields are laid out for that, since with many keys a check
// costs mostly cache misses.
type entry struct {
	hash    uint64
	key     string
	expires int64 // µs: when the state has run out and the key may go
	alg     Algorithm
	// aligned says the windows start where the cached shapes' do, which the
	// fast paths rely on; a change of rule can break it.
	aligned bool
	// cached says limit and shape hold the one-limit rule the cell was last
	// used with, prepared: a key is nearly always checked against the same
	// rule, and this spares validating and dividing on every check.
	cached bool
	one    cell
	shape  shape
	limit  Limit
	many   *manyLimits // the state of a rule of several limits
}

// manyLimits is the state of a key checked against a rule of several limits.
type manyLimits struct {
	cells []cell
	// The rule the cells were last used with, prepared, as entry caches a
	// one-limit rule.
	burst  int64
	limits []Limit
	shapes []shape
}

// cachedShapes returns the prepared shapes if rule is the cached one.
func (m *manyLimits) cachedShapes(rule *Rule) []shape {
	if m.burst != rule.Burst || len(m.limits) != len(rule.Limits) {
		return nil
	}
	for i, l := range rule.Limits {
		if l != m.limits[i] {
			return nil
		}
	}
	return m.shapes
}

// MemoryOption configures a MemoryStore.
type MemoryOption func(*memoryConfig)

type memoryConfig struct {
	clock   Clock
	maxKeys int
	sweep   time.Duration
}

// DefaultMaxKeys is the memory store's default bound on keys: about 200 MB at
// worst for single-limit rules, far less in practice.
const DefaultMaxKeys = 1_000_000

// MemoryMaxKeys bounds the number of keys the store holds (default
// DefaultMaxKeys). At the bound, a new key evicts the soonest-expiring key of
// a sample.
func MemoryMaxKeys(n int) MemoryOption {
	return func(c *memoryConfig) { c.maxKeys = n }
}

// MemoryClock makes the store read time from clock instead of the system's
// monotonic clock; tests use it to drive time.
func MemoryClock(clock Clock) MemoryOption {
	return func(c *memoryConfig) { c.clock = clock }
}

// MemorySweepInterval sets how often idle keys are dropped (default 10s).
func MemorySweepInterval(d time.Duration) MemoryOption {
	return func(c *memoryConfig) { c.sweep = d }
}

// NewMemoryStore returns a memory store. Close it to stop its sweeper.
func NewMemoryStore(opts ...MemoryOption) *MemoryStore {
	cfg := memoryConfig{maxKeys: DefaultMaxKeys, sweep: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.sweep <= 0 {
		cfg.sweep = 10 * time.Second
	}
	s := &MemoryStore{
		seed:     maphash.MakeSeed(),
		shardMax: max((cfg.maxKeys+shardCount-1)/shardCount, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].keys = make(map[uint64]*entry)
	}
	s.clock = cfg.clock
	s.base = time.Now()
	s.baseMicros = s.base.UnixMicro()
	go s.sweeper(cfg.sweep)
	return s
}

// now reads the store's clock in µs since the epoch. Without a Clock it is
// the wall time at the store's birth advanced by the monotonic clock:
// time.Since reads only the monotonic clock, which costs half of time.Now and
// never jumps when the wall clock is set.
func (s *MemoryStore) now() int64 {
	if s.clock != nil {
		return s.clock().UnixMicro()
	}
	return s.baseMicros + int64(time.Since(s.base)/time.Microsecond)
}

// Take implements Store.
func (s *MemoryStore) Take(ctx context.Context, key string, rule Rule, cost int64) (d Decision, err error) {
	if cost < 0 {
		return d, fmt.Errorf("limitkit: cost %d must not be negative", cost)
	}
	alg := rule.Algorithm.orDefault()
	h := maphash.String(s.seed, key)
	sh := &s.shards[h%shardCount]
	// The clock is read before the lock, to keep the time the lock is held
	// short when callers share a key; every algorithm accepts readings that
	// arrive slightly out of order.
	now := s.now()
	sh.mu.Lock()
	e := sh.lookup(h, key)
	if e != nil && e.cached && len(rule.Limits) == 1 && e.alg == alg && e.limit == rule.Limits[0] && e.shape.burst == rule.burst(rule.Limits[0]) {
		decideOne(&d, alg, e.limit, &e.shape, &e.one, now, cost, e.aligned, &e.expires)
		if !e.aligned {
			e.aligned = e.one.aligned(alg, e.shape)
		}
		sh.mu.Unlock()
		return d, nil
	}
	var (
		shapes []shape
		cells  []cell
	)
	if e != nil && e.alg == alg && e.many != nil {
		shapes = e.many.cachedShapes(&rule)
		cells = e.many.cells
	}
	if shapes == nil {
		var buf [maxInlineLimits]shape
		if shapes, err = rule.shapes(alg, &buf); err != nil {
			sh.mu.Unlock()
			return d, err
		}
		if e == nil {
			e = s.insertLocked(sh, h, key)
		}
		cells = e.prepare(&rule, alg, shapes)
	}
	if len(shapes) == 1 {
		decideOne(&d, alg, e.limit, &e.shape, &e.one, now, cost, e.aligned, &e.expires)
		e.aligned = e.one.aligned(alg, e.shape)
	} else {
		d = decide(&rule, alg, shapes, cells, now, cost)
		if d.Allowed {
			for i, sp := range shapes {
				e.expires = max(e.expires, cells[i].expires(alg, sp))
			}
		}
	}
	sh.mu.Unlock()
	return d, nil
}

// prepare makes the entry fit rule and returns its cells: state is kept
// when only counts or periods changed, as when a client moves to another
// plan, and started afresh when the algorithm or the number of limits did.
func (e *entry) prepare(rule *Rule, alg Algorithm, shapes []shape) []cell {
	n := len(shapes)
	fresh := e.alg != alg || (n == 1) != (e.many == nil) || (e.many != nil && len(e.many.cells) != n)
	e.alg = alg
	if n == 1 {
		e.many = nil
		if fresh {
			e.one = cell{}
		}
		e.cached, e.limit, e.shape = true, rule.Limits[0], shapes[0]
		e.aligned = fresh
		return nil // the caller uses e.one
	}
	e.cached = false
	if fresh {
		e.many = &manyLimits{cells: make([]cell, n), limits: make([]Limit, n), shapes: make([]shape, n)}
	}
	e.many.burst = rule.Burst
	copy(e.many.limits, rule.Limits)
	copy(e.many.shapes, shapes)
	return e.many.cells
}

// lookup finds key; the shard's lock is held.
func (sh *shard) lookup(h uint64, key string) *entry {
	e := sh.keys[h]
	if e != nil && e.key != key {
		e = sh.collided[key]
	}
	return e
}

// insertLocked adds key, which is not there; the shard's lock is held.
func (s *MemoryStore) insertLocked(sh *shard, h uint64, key string) *entry {
	if len(sh.keys)+len(sh.collided) >= s.shardMax {
		sh.evictLocked()
	}
	e := &entry{key: key, hash: h}
	if sh.keys[h] == nil {
		sh.keys[h] = e
	} else {
		if sh.collided == nil {
			sh.collided = make(map[string]*entry)
		}
		sh.collided[key] = e
	}
	return e
}

// evictSample is how many keys are compared to choose one to evict.
const evictSample = 8

// evictLocked drops the soonest-expiring of a few keys of the shard. Go's map
// iteration starts at a random place, so clients cannot choose the sample.
func (sh *shard) evictLocked() {
	var victim *entry
	seen := 0
	for _, e := range sh.keys {
		if victim == nil || e.expires < victim.expires {
			victim = e
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if victim != nil {
		sh.removeLocked(victim)
	}
}

// removeLocked unlinks e; the shard's lock is held.
func (sh *shard) removeLocked(e *entry) {
	if sh.keys[e.hash] != e {
		delete(sh.collided, e.key)
		return
	}
	delete(sh.keys, e.hash)
	// Promote a collided key with this hash, if there is one.
	for k, c := range sh.collided {
		if c.hash == e.hash {
			delete(sh.collided, k)
			sh.keys[e.hash] = c
			break
		}
	}
}

func (s *MemoryStore) sweeper(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep drops every key whose state has run out. The sweeper calls it
// periodically; tests that drive the clock call it directly.
func (s *MemoryStore) Sweep() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		now := s.now()
		for _, e := range sh.keys {
			if e.expires <= now {
				sh.removeLocked(e)
			}
		}
		for _, e := range sh.collided {
			if e.expires <= now {
				sh.removeLocked(e)
			}
		}
		sh.mu.Unlock()
	}
}

// Len reports how many keys the store holds.
func (s *MemoryStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.keys) + len(sh.collided)
		sh.mu.Unlock()
	}
	return n
}

// Reset implements Store.
func (s *MemoryStore) Reset(ctx context.Context, key string, rule Rule) error {
	h := maphash.String(s.seed, key)
	sh := &s.shards[h%shardCount]
	sh.mu.Lock()
	if e := sh.lookup(h, key); e != nil {
		sh.removeLocked(e)
	}
	sh.mu.Unlock()
	return nil
}

// Close stops the sweeper and waits for it. The store still answers, but
// nothing is swept any more.
func (s *MemoryStore) Close() error {
	s.closing.Do(func() { close(s.stop) })
	<-s.done
	return nil
}
