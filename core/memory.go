package core

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStore is the embedded Store: state in this process, exact under
// concurrency, bounded in size.
//
// Keys are spread over shards by a seeded hash, each shard a map behind a
// read-write lock, so lookups of existing keys share the lock and callers on
// different keys rarely meet; each key has its own mutex, so callers contend
// only when they share a key. One sweeper goroutine (not a timer per key,
// which would cost a goroutine or a timer for every client) drops keys whose
// state has run out.
//
// At the bound, a new key evicts the key that will expire soonest among a
// sample of its shard: memory never exceeds the bound, a flood of distinct
// keys can only make the quietest clients' budgets start over early, and the
// keys spending their budgets right now are the last to go.
type MemoryStore struct {
	shards   [shardCount]shard
	seed     maphash.Seed
	shardMax int // keys per shard
	now      func() int64
	stop     chan struct{}
	done     chan struct{}
	closing  sync.Once
}

const shardCount = 256

type shard struct {
	mu sync.RWMutex
	// keys is indexed by the key's 64-bit hash, which is cheaper to look up
	// than the string; the entry holds the string to confirm the match.
	// Another key with the same hash, which is astronomically rare, lives in
	// collided.
	keys     map[uint64]*entry
	collided map[string]*entry
	_        [64]byte // keep neighbouring shards' locks off one cache line
}

type entry struct {
	key     string
	hash    uint64
	mu      sync.Mutex
	dead    bool // swept or evicted: the caller must look the key up again
	alg     Algorithm
	cells   []cell
	inline  [2]cell      // cells for rules of up to two limits, without another allocation
	expires atomic.Int64 // µs; read by the sweeper and eviction without the lock
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
	if cfg.clock != nil {
		clock := cfg.clock
		s.now = func() int64 { return clock().UnixMicro() }
	} else {
		// Wall time read once, then advanced by the monotonic clock:
		// time.Since reads only the monotonic clock, which costs half of
		// time.Now and never jumps when the wall clock is set.
		base := time.Now()
		baseMicro := base.UnixMicro()
		s.now = func() int64 { return baseMicro + int64(time.Since(base)/time.Microsecond) }
	}
	go s.sweeper(cfg.sweep)
	return s
}

// Take implements Store.
func (s *MemoryStore) Take(ctx context.Context, key string, rule Rule, cost int64) (Decision, error) {
	if cost < 0 {
		return Decision{}, fmt.Errorf("limitkit: cost %d must not be negative", cost)
	}
	alg := rule.Algorithm.orDefault()
	var buf [maxInlineLimits]shape
	shapes, err := rule.shapes(alg, &buf)
	if err != nil {
		return Decision{}, err
	}
	h := maphash.String(s.seed, key)
	sh := &s.shards[h%shardCount]
	for {
		e := sh.lookup(h, key)
		if e == nil {
			e = s.insert(sh, h, key)
		}
		e.mu.Lock()
		if e.dead {
			e.mu.Unlock()
			continue
		}
		if e.alg != alg || len(e.cells) != len(shapes) {
			e.reset(alg, len(shapes))
		}
		d := decide(&rule, alg, shapes, e.cells, s.now(), cost)
		if d.Allowed {
			var exp int64
			for i, sp := range shapes {
				exp = max(exp, e.cells[i].expires(alg, sp))
			}
			e.expires.Store(exp)
		}
		e.mu.Unlock()
		return d, nil
	}
}

func (e *entry) reset(alg Algorithm, n int) {
	e.alg = alg
	if n <= len(e.inline) {
		e.inline = [2]cell{}
		e.cells = e.inline[:n]
	} else {
		e.cells = make([]cell, n)
	}
}

func (sh *shard) lookup(h uint64, key string) *entry {
	sh.mu.RLock()
	e := sh.keys[h]
	if e != nil && e.key != key {
		e = sh.collided[key]
	}
	sh.mu.RUnlock()
	return e
}

func (s *MemoryStore) insert(sh *shard, h uint64, key string) *entry {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.keys[h]
	if e != nil && e.key != key {
		e = sh.collided[key]
	}
	if e != nil {
		return e
	}
	if len(sh.keys)+len(sh.collided) >= s.shardMax {
		sh.evictLocked()
	}
	e = &entry{key: key, hash: h}
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
		if victim == nil || e.expires.Load() < victim.expires.Load() {
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

// removeLocked unlinks e; the shard's write lock is held. Marking e dead
// under its own lock makes any caller that already holds e look again, so no
// decision is made on state that is no longer in the map.
func (sh *shard) removeLocked(e *entry) {
	e.mu.Lock()
	e.dead = true
	e.mu.Unlock()
	if sh.keys[e.hash] == e {
		delete(sh.keys, e.hash)
		// Promote a collided key with this hash, if there is one.
		for k, c := range sh.collided {
			if c.hash == e.hash {
				delete(sh.collided, k)
				sh.keys[e.hash] = c
				break
			}
		}
	} else {
		delete(sh.collided, e.key)
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
	now := s.now()
	var idle []*entry
	for i := range s.shards {
		sh := &s.shards[i]
		idle = idle[:0]
		sh.mu.RLock()
		for _, e := range sh.keys {
			if e.expires.Load() <= now {
				idle = append(idle, e)
			}
		}
		for _, e := range sh.collided {
			if e.expires.Load() <= now {
				idle = append(idle, e)
			}
		}
		sh.mu.RUnlock()
		if len(idle) == 0 {
			continue
		}
		sh.mu.Lock()
		for _, e := range idle {
			// Only if it is still idle: a request may have come meanwhile.
			if e.expires.Load() <= now {
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
		sh.mu.RLock()
		n += len(sh.keys) + len(sh.collided)
		sh.mu.RUnlock()
	}
	return n
}

// Reset implements Store.
func (s *MemoryStore) Reset(ctx context.Context, key string, rule Rule) error {
	h := maphash.String(s.seed, key)
	sh := &s.shards[h%shardCount]
	if e := sh.lookup(h, key); e != nil {
		sh.mu.Lock()
		if !e.isDead() {
			sh.removeLocked(e)
		}
		sh.mu.Unlock()
	}
	return nil
}

func (e *entry) isDead() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dead
}

// Close stops the sweeper and waits for it. The store still answers, but
// nothing is swept any more.
func (s *MemoryStore) Close() error {
	s.closing.Do(func() { close(s.stop) })
	<-s.done
	return nil
}
