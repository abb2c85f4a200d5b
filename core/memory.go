package core

import (
	"context"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStore is the embedded Store: state in this process, exact under
// concurrency, bounded in size.
//
// A key's state belongs to one rule shape (Rule.Shape): a key checked under
// two rules keeps two states, which never reset or misread each other.
// Keys are spread by a seeded hash over up to 256 shards, each a map behind
// one mutex that also guards its keys' state: a check takes exactly one
// lock, held for a few dozen nanoseconds, and callers meet only when their
// keys share a shard. One sweeper goroutine (not a timer per key, which
// would cost a goroutine or a timer for every client) drops keys whose state
// has run out.
//
// The bound (MemoryMaxKeys) is exact: it is shared out among the shards, and
// Len never exceeds it. At the bound, a new key evicts the key whose loss
// gives back the least budget, the one closest to fully replenished, among
// a sample of 8 keys of its shard, widened to 72 when even the best of the 8
// has spent more than half its budget. So a flood of fresh keys evicts fresh
// keys, an exhausted client is freed only when 72 keys sampled from its shard
// have all spent more than half theirs, and no insert costs more than 72
// keys' reading.
//
// The zero MemoryStore is not usable: make one with NewMemoryStore.
type MemoryStore struct {
	shards     [maxShards]shard
	mask       uint64 // shards in use, minus one: a power of two
	seed       maphash.Seed
	clock      Clock     // nil: base and the monotonic clock
	base       time.Time // when the store was made, with its monotonic reading
	baseMicros int64     // base in µs since the epoch
	closed     atomic.Bool
	stop       chan struct{}
	done       chan struct{}
	closing    sync.Once
	leases     leaseState // concurrency limits: concurrency_memory.go
}

const maxShards = 256

type shard struct {
	mu sync.Mutex
	// keys is indexed by the 64-bit hash of the key and its rule's shape,
	// which is cheaper to look up than the string; the entry holds both to
	// confirm the match. Another entry with the same hash, which is
	// astronomically rare, lives in collided under its key and shape as text.
	keys     map[uint64]*entry
	collided map[string]*entry
	max      int      // this shard's share of the bound
	_        [64]byte // keep neighbouring shards' locks off one cache line
}

// entry is the state of one key under one rule shape; its shard's mutex
// guards it. A check of a one-limit rule, nearly every check, touches only
// the entry's first two cache lines: the fields are laid out for that,
// since with many keys a check costs mostly cache misses.
type entry struct {
	hash    uint64
	key     string
	expires int64 // µs: when the state has run out and the key may go
	alg     Algorithm
	one     cell        // the state of a one-limit rule
	shape   shape       // the one limit, prepared
	many    *manyLimits // the state of a rule of several limits, else nil
}

// manyLimits is the state of a key checked against a rule of several limits.
type manyLimits struct {
	cells  []cell
	shapes []shape
}

// isBucket reports whether burst is part of alg's shape.
func isBucket(alg Algorithm) bool { return alg == TokenBucket || alg == LeakyBucket }

// sameShape reports whether s is limit l of rule r under alg, as prepared.
func (s *shape) sameShape(alg Algorithm, r *Rule, l Limit) bool {
	return s.count == l.Count && s.window == int64(l.Period/time.Microsecond) &&
		(!isBucket(alg) || s.burst == r.burst(l)) && s.sameCalendar(l)
}

// matches reports whether the entry is key's state under rule r and alg.
func (e *entry) matches(key storeKey, alg Algorithm, r *Rule) bool {
	if e.alg != alg || !key.is(e.key) {
		return false
	}
	if e.many == nil {
		return len(r.Limits) == 1 && e.shape.sameShape(alg, r, r.Limits[0])
	}
	if len(e.many.shapes) != len(r.Limits) {
		return false
	}
	for i, l := range r.Limits {
		if !e.many.shapes[i].sameShape(alg, r, l) {
			return false
		}
	}
	return true
}

// shapes returns the entry's prepared limits.
func (e *entry) shapes() []shape {
	if e.many == nil {
		return []shape{e.shape}
	}
	return e.many.shapes
}

// collisionKey names an entry in a shard's collided map: its key and its
// shape as text. Only a collision of 64-bit hashes builds one.
func collisionKey(key string, alg Algorithm, shapes []shape) string {
	var b strings.Builder
	b.WriteString(key)
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(int(alg)))
	for _, s := range shapes {
		b.WriteByte(0)
		b.WriteString(strconv.FormatInt(s.count, 10))
		b.WriteByte('/')
		b.WriteString(strconv.FormatInt(s.window, 10))
		if isBucket(alg) {
			b.WriteByte('/')
			b.WriteString(strconv.FormatInt(s.burst, 10))
		}
		if s.zone != nil {
			b.WriteString("/calendar ")
			b.WriteString(s.zone.String())
		}
	}
	return b.String()
}

// MemoryOption configures a MemoryStore.
type MemoryOption func(*memoryConfig)

type memoryConfig struct {
	clock    Clock
	maxKeys  int
	sweep    time.Duration
	problems []string
}

// DefaultMaxKeys is the memory store's default bound on keys. Measured
// (BenchmarkMemoryStore_heapPerKey, live heap after a flood), a key takes
// about 200 bytes under a one-limit rule (290 for the sliding log) and 475
// to 720 under three limits, so a store full at the default bound holds
// about 200 to 290 MB for one-limit rules.
const DefaultMaxKeys = 1_000_000

// MemoryMaxKeys bounds the number of keys the store holds (default
// DefaultMaxKeys), counting a key once per rule shape it is checked under.
// The bound is exact; n must be at least 1.
func MemoryMaxKeys(n int) MemoryOption {
	return func(c *memoryConfig) {
		if n < 1 {
			c.problems = append(c.problems, fmt.Sprintf("limitkit: MemoryMaxKeys(%d): the bound must be at least 1", n))
		}
		c.maxKeys = n
	}
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
// It panics, naming the mistake, if an option's value is invalid.
func NewMemoryStore(opts ...MemoryOption) *MemoryStore {
	cfg := memoryConfig{maxKeys: DefaultMaxKeys, sweep: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.problems) > 0 {
		panic(cfg.problems[0])
	}
	if cfg.sweep <= 0 {
		cfg.sweep = 10 * time.Second
	}
	s := &MemoryStore{
		seed: maphash.MakeSeed(),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	// As many shards as the bound allows each at least one key, a power of
	// two, so that the bound shared out among them is exact.
	n := maxShards
	for n > cfg.maxKeys {
		n /= 2
	}
	s.mask = uint64(n - 1)
	for i := range n {
		sh := &s.shards[i]
		sh.keys = make(map[uint64]*entry)
		sh.max = cfg.maxKeys / n
		if i < cfg.maxKeys%n {
			sh.max++
		}
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

// hashOf is the hash under which key's state under rule lives: that of
// the key whole, however it is split (maphash.Hash hashes the bytes
// written, not the writes).
func (s *MemoryStore) hashOf(key storeKey, rule *Rule, alg Algorithm) uint64 {
	var kh uint64
	var buf [128]byte
	switch n := len(key.prefix) + len(key.id); {
	case key.prefix == "":
		kh = maphash.String(s.seed, key.id)
	case n <= len(buf):
		// Joined on the stack: hashing the bytes at once costs half of
		// streaming them through a maphash.Hash.
		copy(buf[copy(buf[:], key.prefix):], key.id)
		kh = maphash.Bytes(s.seed, buf[:n])
	default:
		var h maphash.Hash
		h.SetSeed(s.seed)
		h.WriteString(key.prefix)
		h.WriteString(key.id)
		kh = h.Sum64()
	}
	return mix64(kh ^ rule.shapeHash(alg))
}

// Take implements Store.
func (s *MemoryStore) Take(ctx context.Context, key string, rule Rule, cost int64) (d Decision, err error) {
	_, err = s.take(storeKey{id: key}, &rule, cost, &d)
	return d, err
}

// Reserve implements QuotaStore: Take, with the store's time of the charge.
func (s *MemoryStore) Reserve(ctx context.Context, key string, rule Rule, cost int64) (Decision, Charge, error) {
	return s.reserve(storeKey{id: key}, rule, cost)
}

func (s *MemoryStore) reserve(key storeKey, rule Rule, cost int64) (d Decision, c Charge, err error) {
	err = s.reserveTo(key, &rule, cost, &d, &c)
	return d, c, err
}

// reserveTo is reserve writing to d and c, which are zero.
func (s *MemoryStore) reserveTo(key storeKey, rule *Rule, cost int64, d *Decision, c *Charge) error {
	now, err := s.take(key, rule, cost, d)
	if err == nil && d.Allowed {
		*c = Charge{At: time.UnixMicro(now), Cost: cost}
	}
	return err
}

// call is storeCall on the memory store, with the key in its parts.
func (s *MemoryStore) call(op op, key storeKey, rule Rule, cost int64) (d Decision, c Charge, err error) {
	err = s.callTo(op, key, &rule, cost, &d, &c)
	return d, c, err
}

// callTo is call writing the decision and the charge to d and c, which are
// zero: the memory store is called from the middleware with pointers into
// the outcome, so that the decision is not copied at every call on its way
// back up, as it was at five.
func (s *MemoryStore) callTo(op op, key storeKey, rule *Rule, cost int64, d *Decision, c *Charge) (err error) {
	switch op {
	case opPeek:
		*d, err = s.peek(key, *rule, cost)
		return err
	case opReserve:
		return s.reserveTo(key, rule, cost, d, c)
	}
	_, err = s.take(key, rule, cost, d)
	return err
}

// take is Take writing the decision to d, which is zero, and returning the
// time it decided at.
func (s *MemoryStore) take(key storeKey, rule *Rule, cost int64, d *Decision) (now int64, err error) {
	if cost < 0 {
		return 0, fmt.Errorf("limitkit: cost %d must not be negative", cost)
	}
	if s.closed.Load() {
		return 0, ErrClosed
	}
	alg := rule.Algorithm.orDefault()
	h := s.hashOf(key, rule, alg)
	sh := &s.shards[h&s.mask]
	// The clock is read before the lock, to keep the time the lock is held
	// short when callers share a key; every algorithm accepts readings that
	// arrive slightly out of order.
	now = s.now()
	sh.mu.Lock()
	e := sh.lookup(h, key, alg, rule)
	if e == nil {
		// A new key or shape: the rule is validated once, here.
		var buf [maxInlineLimits]shape
		shapes, err := rule.shapes(alg, &buf)
		if err != nil {
			sh.mu.Unlock()
			return 0, err
		}
		e = s.insertLocked(sh, h, key, alg, shapes, now)
	}
	if e.many == nil {
		e.decideOne(d, rule.Limits[0], now, cost)
	} else {
		*d = decide(rule, alg, e.many.shapes, e.many.cells, now, cost, true)
		if d.Allowed {
			for i, sp := range e.many.shapes {
				e.expires = max(e.expires, e.many.cells[i].expires(alg, sp))
			}
		}
	}
	sh.mu.Unlock()
	return now, nil
}

// Peek implements QuotaStore: the decision Take would return now, charging
// nothing. A key the store does not hold is not added.
func (s *MemoryStore) Peek(ctx context.Context, key string, rule Rule, cost int64) (d Decision, err error) {
	return s.peek(storeKey{id: key}, rule, cost)
}

func (s *MemoryStore) peek(key storeKey, rule Rule, cost int64) (d Decision, err error) {
	if cost < 0 {
		return d, fmt.Errorf("limitkit: cost %d must not be negative", cost)
	}
	if s.closed.Load() {
		return d, ErrClosed
	}
	alg := rule.Algorithm.orDefault()
	h := s.hashOf(key, &rule, alg)
	sh := &s.shards[h&s.mask]
	now := s.now()
	var one [1]cell
	// The cells are copied: a peek writes nothing (a log's expired entries
	// are dropped from the shared log, which changes no decision).
	sh.mu.Lock()
	if e := sh.lookup(h, key, alg, &rule); e != nil {
		if e.many == nil {
			one[0] = e.one
			d = decide(&rule, alg, []shape{e.shape}, one[:], now, cost, false)
		} else {
			cells := append([]cell(nil), e.many.cells...)
			d = decide(&rule, alg, e.many.shapes, cells, now, cost, false)
		}
		sh.mu.Unlock()
		return d, nil
	}
	sh.mu.Unlock()
	// A key the store does not hold: fresh cells, which need no lock; the
	// rule is validated here, as Take validates it for a new key.
	var buf [maxInlineLimits]shape
	shapes, err := rule.shapes(alg, &buf)
	if err != nil {
		return d, err
	}
	cells := one[:]
	if len(shapes) > 1 {
		cells = make([]cell, len(shapes))
	}
	return decide(&rule, alg, shapes, cells, now, cost, false), nil
}

// Refund implements QuotaStore: it gives back amount of charge c, as far as
// the charge still counts at the store's time (see Reservation).
func (s *MemoryStore) Refund(ctx context.Context, key string, rule Rule, c Charge, amount int64) error {
	if amount < 0 || amount > c.Cost {
		return fmt.Errorf("limitkit: refund %d of a charge of %d: want between 0 and the charge", amount, c.Cost)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if amount == 0 {
		return nil
	}
	alg := rule.Algorithm.orDefault()
	k := storeKey{id: key}
	h := s.hashOf(k, &rule, alg)
	sh := &s.shards[h&s.mask]
	now, at := s.now(), c.At.UnixMicro()
	sh.mu.Lock()
	if e := sh.lookup(h, k, alg, &rule); e != nil {
		if e.many == nil {
			e.one.refund(alg, e.shape, now, at, amount)
		} else {
			for i, sp := range e.many.shapes {
				e.many.cells[i].refund(alg, sp, now, at, amount)
			}
		}
	}
	sh.mu.Unlock()
	return nil
}

// lookup finds key's state under rule; the shard's lock is held.
func (sh *shard) lookup(h uint64, key storeKey, alg Algorithm, rule *Rule) *entry {
	e := sh.keys[h]
	if e == nil || e.matches(key, alg, rule) {
		return e
	}
	if len(sh.collided) == 0 {
		return nil
	}
	var buf [maxInlineLimits]shape
	shapes, err := rule.shapes(alg, &buf)
	if err != nil {
		return nil
	}
	return sh.collided[collisionKey(key.String(), alg, shapes)]
}

// insertLocked adds key's state under a rule of alg prepared as shapes,
// which is not there; the shard's lock is held. Here, once per key, the
// key is made whole.
func (s *MemoryStore) insertLocked(sh *shard, h uint64, key storeKey, alg Algorithm, shapes []shape, now int64) *entry {
	if len(sh.keys)+len(sh.collided) >= sh.max {
		sh.evictLocked(now)
	}
	e := &entry{key: key.String(), hash: h, alg: alg}
	if len(shapes) == 1 {
		e.shape = shapes[0]
	} else {
		e.many = &manyLimits{cells: make([]cell, len(shapes)), shapes: append([]shape(nil), shapes...)}
	}
	if sh.keys[h] == nil {
		sh.keys[h] = e
	} else {
		if sh.collided == nil {
			sh.collided = make(map[string]*entry)
		}
		sh.collided[collisionKey(e.key, alg, shapes)] = e
	}
	return e
}

// evictSample is how many keys are compared to choose one to evict, and
// evictWider how many more when even the best of those has spent more than
// half its budget. The wider search is bounded, not the whole shard: a flood
// of keys that one request exhausts (under 1/minute, say) would otherwise
// make every insert scan its shard, about 430µs under the lock at the
// default bound.
const (
	evictSample = 8
	evictWider  = 64
)

// loss is the share of its budget the entry has spent at now, from 0 (as
// good as new) to 1 (exhausted), by its tightest limit: what evicting it
// would give back to its client.
func (e *entry) loss(now int64) float64 {
	if e.expires <= now {
		return 0
	}
	if e.many == nil {
		return e.one.loss(e.alg, e.shape, now)
	}
	worst := 0.0
	for i, sp := range e.many.shapes {
		worst = max(worst, e.many.cells[i].loss(e.alg, sp, now))
	}
	return worst
}

// evictLocked drops the entry of the shard whose loss gives back the least
// budget, of a sample, widened when even the best of the sample has spent
// more than half its budget. Go's map iteration starts at a random place,
// so clients cannot choose the sample.
func (sh *shard) evictLocked(now int64) {
	var victim *entry
	best := 2.0
	seen := 0
	for _, e := range sh.keys {
		if l := e.loss(now); victim == nil || l < best || l == best && e.expires < victim.expires {
			victim, best = e, l
		}
		if seen++; seen == evictSample && best <= 0.5 || seen == evictSample+evictWider {
			break
		}
	}
	if victim == nil {
		for _, e := range sh.collided { // only collided entries are left
			victim = e
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
		delete(sh.collided, collisionKey(e.key, e.alg, e.shapes()))
		return
	}
	delete(sh.keys, e.hash)
	// Promote a collided entry with this hash, if there is one.
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
	for i := range s.mask + 1 {
		sh := &s.shards[i]
		sh.mu.Lock()
		now := s.now()
		// The collided entries first: removing an entry of keys promotes
		// its collided twin into keys while keys is being ranged over, where
		// it may be missed, so only a live one may be promoted.
		for _, e := range sh.collided {
			if e.expires <= now {
				sh.removeLocked(e)
			}
		}
		for _, e := range sh.keys {
			if e.expires <= now {
				sh.removeLocked(e)
			}
		}
		sh.mu.Unlock()
	}
	s.sweepLeases()
}

// Len reports how many keys the store holds.
func (s *MemoryStore) Len() int {
	n := 0
	for i := range s.mask + 1 {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.keys) + len(sh.collided)
		sh.mu.Unlock()
	}
	return n
}

// Reset implements Store: it forgets key's state under rule's shape.
func (s *MemoryStore) Reset(ctx context.Context, key string, rule Rule) error {
	if s.closed.Load() {
		return ErrClosed
	}
	alg := rule.Algorithm.orDefault()
	k := storeKey{id: key}
	h := s.hashOf(k, &rule, alg)
	sh := &s.shards[h&s.mask]
	sh.mu.Lock()
	if e := sh.lookup(h, k, alg, &rule); e != nil {
		sh.removeLocked(e)
	}
	sh.mu.Unlock()
	return nil
}

// Close stops the sweeper and waits for it; Take and Reset then return
// ErrClosed. Closing twice is harmless.
func (s *MemoryStore) Close() error {
	s.closed.Store(true)
	s.closing.Do(func() { close(s.stop) })
	<-s.done
	return nil
}
