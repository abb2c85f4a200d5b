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
// A key's state belongs to one rule shape (Rule.Shape): a key checked under
// two rules keeps two states, which never reset or misread each other.
// Keys are spread by a seeded hash over up to 256 shards. A shard's index
// of its keys is read without a lock (see table), and each key's state has
// its own mutex: a check of a key the store holds finds it, writing
// nothing shared, and takes that one lock, held for a few dozen
// nanoseconds, so callers meet only when they check the same key. Adding
// and removing keys take the shard's lock as well. One sweeper goroutine
// (not a timer per key, which would cost a goroutine or a timer for every
// client) drops keys whose state has run out.
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
	rules      sharedRules // one-limit rules' entryRules, shared by their entries
	leases     leaseState  // concurrency limits: concurrency_memory.go
}

const maxShards = 256

type shard struct {
	// mu serialises adding and removing the shard's entries, which
	// replaces or changes its table; a check of an entry it holds takes
	// only the entry's lock. Lock order: a shard's, then an entry's.
	mu sync.Mutex
	// table indexes the entries by hashOf, the key's hash mixed with part
	// of its rule's shape, which is cheaper to find than the string; the
	// entry holds the key and the rule to confirm the match, and entries
	// under one hash (one key's states under rules that differ only where
	// the hash does not look, or a collision) lie one after the other on a
	// probe.
	table atomic.Pointer[table]
	n     int      // entries held; mu guards it
	max   int      // this shard's share of the bound
	_     [64]byte // keep neighbouring shards' locks off one cache line
}

// entry is the state of one key under one rule shape: 64 bytes, which the
// allocator places on one whole cache line, so that with many keys a check
// costs one cache miss for its entry. What it is kept under besides its key
// lies in its entryRule, which a one-limit rule's entries share and so find
// in the cache.
type entry struct {
	mu  sync.Mutex // guards one, and the state in rule
	key string
	// rule is fixed when the entry is made, before any other caller can see
	// it, and read without a lock. It is set to nil, under mu and the
	// shard's lock, when the entry leaves its shard: a caller that found
	// the entry without the shard's lock and then took mu looks for the key
	// again.
	rule atomic.Pointer[entryRule]
	one  cell // the state under a one-limit rule
}

// entryRule is what an entry is kept under besides its key: the algorithm
// and the rule's limits, prepared. The entries of a one-limit rule share
// one (see sharedRules); an entry of a rule of several limits has its own,
// which holds its state as well.
type entryRule struct {
	alg   Algorithm
	shape shape // the limit of a one-limit rule
	// A rule of several limits: the limits, their state, and the latest
	// expiry any of the cells has had; the entry's lock guards the last two.
	shapes  []shape
	cells   []cell
	expires int64
}

// sharedRules interns the entryRule of each one-limit rule the store has
// seen, so that the entries of a rule share one. An app has few rules; past
// maxSharedRules, which is not reached but by rules made per request, a
// new rule's entries have their own, which costs each a cache line.
type sharedRules struct {
	mu sync.Mutex
	m  map[sharedRule]*entryRule
}

type sharedRule struct {
	alg   Algorithm
	shape shape
}

const maxSharedRules = 1024

// get returns the entryRule of a one-limit rule of alg prepared as sp.
func (r *sharedRules) get(alg Algorithm, sp shape) *entryRule {
	k := sharedRule{alg, sp}
	r.mu.Lock()
	defer r.mu.Unlock()
	if er := r.m[k]; er != nil {
		return er
	}
	er := &entryRule{alg: alg, shape: sp}
	if len(r.m) < maxSharedRules {
		if r.m == nil {
			r.m = make(map[sharedRule]*entryRule)
		}
		r.m[k] = er
	}
	return er
}

// isBucket reports whether burst is part of alg's shape.
func isBucket(alg Algorithm) bool { return alg == TokenBucket || alg == LeakyBucket }

// sameShape reports whether s is limit l of rule r under alg, as prepared.
func (s *shape) sameShape(alg Algorithm, r *Rule, l *Limit) bool {
	return s.count == l.Count && s.window == int64(l.Period/time.Microsecond) &&
		(!isBucket(alg) || s.burst == r.burst(*l)) && s.sameCalendar(*l)
}

// sameRule reports whether er is rule r's, whose algorithm is er's.
func (er *entryRule) sameRule(r *Rule) bool {
	if er.shapes == nil {
		return len(r.Limits) == 1 && er.shape.sameShape(er.alg, r, &r.Limits[0])
	}
	if len(er.shapes) != len(r.Limits) {
		return false
	}
	for i := range r.Limits {
		if !er.shapes[i].sameShape(er.alg, r, &r.Limits[i]) {
			return false
		}
	}
	return true
}

// expires is the time, in µs, after which the entry's state under er, its
// rule, holds nothing a fresh one would not, so that it may go; e's lock is
// held. A one-limit entry's is its cell's, computed when asked, which keeps
// it out of the check's path; a rule of several limits keeps the latest of
// its cells'.
func (e *entry) expires(er *entryRule) int64 {
	if er.shapes == nil {
		return e.one.expires(er.alg, er.shape)
	}
	return er.expires
}

// shapes returns er's prepared limits.
func (er *entryRule) limits() []shape {
	if er.shapes == nil {
		return []shape{er.shape}
	}
	return er.shapes
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
// about 140 bytes under a one-limit rule (200 for the sliding log) and 490
// to 680 under three limits, so a store full at the default bound holds
// about 140 to 200 MB for one-limit rules.
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
		sh.table.Store(newTable(minTableSlots))
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

// hashOf is the hash under which key's state under rule lives: the key's
// whole, however it is split (maphash.Hash hashes the bytes written, not
// the writes), by a seeded hash, mixed with the algorithm and the first
// limit's count, so that a key's states under the rules an app has usually
// lie apart. It need not tell every shape apart (periods, bursts, zones and
// further limits are left out, to keep it cheap on every check): the table
// confirms each match in full, and states of one key under one hash lie
// one after another on its probe.
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
	x := uint64(alg) << 56
	if len(rule.Limits) > 0 { // else the rule is refused, on insert
		x ^= uint64(rule.Limits[0].Count)
	}
	return kh ^ x*0x9e3779b97f4a7c15
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
		return s.peekTo(key, rule, cost, d)
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
	// The clock is read before any lock, to keep the time a lock is held
	// short when callers share a key; every algorithm accepts readings that
	// arrive slightly out of order.
	now = s.now()
	if e, _ := sh.find(h, key, alg, rule); e != nil {
		e.mu.Lock()
		if er := e.rule.Load(); er != nil {
			if er.shapes == nil {
				e.decideOne(d, er, rule.Limits[0], now, cost, true)
			} else {
				e.decide(d, er, rule, now, cost)
			}
			e.mu.Unlock()
			return now, nil
		}
		e.mu.Unlock()
	}
	return now, s.takeLocked(sh, h, key, alg, rule, now, cost, d)
}

// takeLocked is take for a key the store does not hold, or one evicted or
// reset since it was found: under the shard's lock the table holds exactly
// the live entries. It is apart from take to keep the usual path's frame
// small.
func (s *MemoryStore) takeLocked(sh *shard, h uint64, key storeKey, alg Algorithm, rule *Rule, now, cost int64, d *Decision) error {
	sh.mu.Lock()
	if e, _ := sh.find(h, key, alg, rule); e != nil {
		e.mu.Lock()
		sh.mu.Unlock()
		e.decide(d, e.rule.Load(), rule, now, cost)
		e.mu.Unlock()
		return nil
	}
	// A new key or shape: the rule is validated once, here, the key made
	// whole, and the entry decided on before any other caller can find it.
	var buf [maxInlineLimits]shape
	shapes, err := rule.shapes(alg, &buf)
	if err != nil {
		sh.mu.Unlock()
		return err
	}
	if sh.n >= sh.max {
		sh.evictLocked(now)
	}
	e, er := &entry{key: key.String()}, s.entryRule(alg, shapes)
	e.rule.Store(er)
	e.decide(d, er, rule, now, cost)
	sh.insertLocked(h, e)
	sh.mu.Unlock()
	return nil
}

// entryRule is what an entry of a rule of alg prepared as shapes is kept
// under: a one-limit rule's shared one, else the entry's own.
func (s *MemoryStore) entryRule(alg Algorithm, shapes []shape) *entryRule {
	if len(shapes) == 1 {
		return s.rules.get(alg, shapes[0])
	}
	return &entryRule{alg: alg, shapes: append([]shape(nil), shapes...), cells: make([]cell, len(shapes))}
}

// decide charges the entry, kept under er, for a request of cost at now if
// rule admits it, writing the decision to d, which is zero; e's lock is
// held, or no other caller can see e yet.
func (e *entry) decide(d *Decision, er *entryRule, rule *Rule, now, cost int64) {
	if er.shapes == nil {
		e.decideOne(d, er, rule.Limits[0], now, cost, true)
		return
	}
	*d = decide(rule, er.alg, er.shapes, er.cells, now, cost, true)
	if d.Allowed {
		for i, sp := range er.shapes {
			er.expires = max(er.expires, er.cells[i].expires(er.alg, sp))
		}
	}
}

// lockEntry finds key's state under rule and returns it locked, with the
// entryRule it is kept under, or nil if the store does not hold it.
func (sh *shard) lockEntry(h uint64, key storeKey, alg Algorithm, rule *Rule) (*entry, *entryRule) {
	if e, _ := sh.find(h, key, alg, rule); e != nil {
		e.mu.Lock()
		if er := e.rule.Load(); er != nil {
			return e, er
		}
		e.mu.Unlock()
	}
	// Missed, or found it as it left: under the shard's lock the table
	// holds exactly the live entries, and once e's lock is held e cannot
	// leave.
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, _ := sh.find(h, key, alg, rule); e != nil {
		e.mu.Lock()
		return e, e.rule.Load()
	}
	return nil, nil
}

// Peek implements QuotaStore: the decision Take would return now, charging
// nothing. A key the store does not hold is not added.
func (s *MemoryStore) Peek(ctx context.Context, key string, rule Rule, cost int64) (d Decision, err error) {
	return s.peek(storeKey{id: key}, rule, cost)
}

func (s *MemoryStore) peek(key storeKey, rule Rule, cost int64) (d Decision, err error) {
	err = s.peekTo(key, &rule, cost, &d)
	return d, err
}

// peekTo is peek writing the decision to d, which is zero.
func (s *MemoryStore) peekTo(key storeKey, rule *Rule, cost int64, d *Decision) error {
	if cost < 0 {
		return fmt.Errorf("limitkit: cost %d must not be negative", cost)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	alg := rule.Algorithm.orDefault()
	h := s.hashOf(key, rule, alg)
	sh := &s.shards[h&s.mask]
	now := s.now()
	if e, er := sh.lockEntry(h, key, alg, rule); e != nil {
		e.peek(d, er, rule, now, cost)
		e.mu.Unlock()
		return nil
	}
	// A key the store does not hold: fresh cells, which need no lock; the
	// rule is validated here, as Take validates it for a new key.
	var buf [maxInlineLimits]shape
	shapes, err := rule.shapes(alg, &buf)
	if err != nil {
		return err
	}
	var one [1]cell
	cells := one[:]
	if len(shapes) > 1 {
		cells = make([]cell, len(shapes))
	}
	*d = decide(rule, alg, shapes, cells, now, cost, false)
	return nil
}

// peek writes to d, which is zero, the decision decide would make at now
// on the entry, kept under er, charging nothing; e's lock is held. A rule
// of several limits is decided on a copy of its cells, so that nothing is
// written (a log's expired entries are dropped from the shared log, which
// changes no decision).
func (e *entry) peek(d *Decision, er *entryRule, rule *Rule, now, cost int64) {
	if er.shapes == nil {
		e.decideOne(d, er, rule.Limits[0], now, cost, false)
		return
	}
	cells := append([]cell(nil), er.cells...)
	*d = decide(rule, er.alg, er.shapes, cells, now, cost, false)
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
	if e, er := sh.lockEntry(h, k, alg, &rule); e != nil {
		if er.shapes == nil {
			e.one.refund(alg, er.shape, now, at, amount)
		} else {
			for i, sp := range er.shapes {
				er.cells[i].refund(alg, sp, now, at, amount)
			}
		}
		e.mu.Unlock()
	}
	return nil
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

// loss is the share of its budget the entry, kept under er, has spent at
// now, from 0 (as good as new) to 1 (exhausted), by its tightest limit:
// what evicting it would give back to its client. e's lock is held.
func (e *entry) loss(er *entryRule, now int64) float64 {
	if e.expires(er) <= now {
		return 0
	}
	if er.shapes == nil {
		return e.one.loss(er.alg, er.shape, now)
	}
	worst := 0.0
	for i, sp := range er.shapes {
		worst = max(worst, er.cells[i].loss(er.alg, sp, now))
	}
	return worst
}

// evictLocked drops the entry of the shard whose loss gives back the least
// budget, of a sample, widened when even the best of the sample has spent
// more than half its budget; the shard's lock is held. The sample starts at
// a random slot, so clients cannot choose it.
func (sh *shard) evictLocked(now int64) {
	var victim *entry
	var victimSlot *slot
	var best float64
	var expires int64
	seen := 0
	sh.each(func(sl *slot, e *entry) bool {
		e.mu.Lock()
		er := e.rule.Load()
		l, x := e.loss(er, now), e.expires(er)
		e.mu.Unlock()
		if victim == nil || l < best || l == best && x < expires {
			victim, victimSlot, best, expires = e, sl, l, x
		}
		seen++
		return !(seen == evictSample && best <= 0.5 || seen == evictSample+evictWider)
	})
	if victim != nil {
		victim.mu.Lock()
		sh.removeLocked(victimSlot, victim)
		victim.mu.Unlock()
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
		sh.each(func(sl *slot, e *entry) bool {
			e.mu.Lock()
			if e.expires(e.rule.Load()) <= now {
				sh.removeLocked(sl, e)
			}
			e.mu.Unlock()
			return true
		})
		// A table left mostly empty is rebuilt smaller, so that a burst of
		// keys does not keep its memory once they are gone.
		if t := sh.table.Load(); len(t.slots) > minTableSlots && sh.n*8 < len(t.slots) {
			sh.rebuildLocked(sh.n)
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
		n += sh.n
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
	if e, sl := sh.find(h, k, alg, &rule); e != nil {
		e.mu.Lock()
		sh.removeLocked(sl, e)
		e.mu.Unlock()
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
