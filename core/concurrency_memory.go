package core

// The memory store's concurrency limits: per key, the live leases and
// their expiry, beside (never among) the rate-limit state.

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// leaseShards is how many locks the memory store's leases are spread over.
const leaseShards = 64

// leaseState is the memory store's concurrency state: keys spread by hash
// over shards, each a map behind one mutex. A key is there only while it
// has leases that may be live; the last release, or a sweep after the last
// expiry, removes it.
type leaseState struct {
	shards [leaseShards]leaseShard
	keys   atomic.Int64 // keys held over all shards, for the bound
	max    atomic.Int64 // the bound, once computed
}

type leaseShard struct {
	mu   sync.Mutex
	keys map[string]*leaseSet
	_    [40]byte // keep neighbouring shards' locks off one cache line
}

// leaseSet is one key's leases. A limit of N holds at most N, so a slice
// scanned whole is cheaper than a map for the limits concurrency is given
// (tens, rarely thousands).
type leaseSet struct {
	ids     []string
	expires []int64 // µs by the store's clock; live while > now
}

// dropExpired removes the leases whose time has come.
func (ls *leaseSet) dropExpired(now int64) {
	j := 0
	for i := range ls.ids {
		if ls.expires[i] > now {
			ls.ids[j], ls.expires[j] = ls.ids[i], ls.expires[i]
			j++
		}
	}
	clear(ls.ids[j:])
	ls.ids, ls.expires = ls.ids[:j], ls.expires[:j]
}

func (ls *leaseSet) index(id string) int {
	for i, x := range ls.ids {
		if x == id {
			return i
		}
	}
	return -1
}

func (s *MemoryStore) leaseShard(key string) *leaseShard {
	return &s.leases.shards[maphash.String(s.seed, key)%leaseShards]
}

// maxKeys is the store's bound, which holds for its rate-limit keys and,
// apart, for its concurrency keys.
func (s *MemoryStore) maxKeys() int64 {
	if n := s.leases.max.Load(); n > 0 {
		return n
	}
	n := int64(0)
	for i := range s.mask + 1 {
		n += int64(s.shards[i].max)
	}
	s.leases.max.Store(n)
	return n
}

// Acquire implements ConcurrencyStore. Concurrency keys are bounded apart
// from rate-limit keys, by the same MemoryMaxKeys: a key holds state while
// it has live leases, each a request in flight, and, while the store is
// under half its bound, after its last release until the next sweep (so
// that its next request finds it made). The bound is reached only by that
// many requests in flight at once; a new key is then refused, with a
// NextExpiry of zero, until leases end (released, or expired and swept),
// never admitted by evicting a key, which would free that key's slots.
func (s *MemoryStore) Acquire(ctx context.Context, key, lease string, c Concurrency) (ConcurrencyDecision, error) {
	if s.closed.Load() {
		return ConcurrencyDecision{}, ErrClosed
	}
	if err := c.Validate(); err != nil {
		return ConcurrencyDecision{}, err
	}
	sh := s.leaseShard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := s.now()
	set := sh.keys[key]
	if set == nil {
		if s.leases.keys.Load() >= s.maxKeys() {
			s.sweepShardLocked(sh, now)
			if s.leases.keys.Load() >= s.maxKeys() {
				return ConcurrencyDecision{}, nil
			}
		}
		if sh.keys == nil {
			sh.keys = make(map[string]*leaseSet)
		}
		set = &leaseSet{}
		sh.keys[key] = set
		s.leases.keys.Add(1)
	}
	set.dropExpired(now)
	n := int64(len(set.ids))
	if n >= c.Limit {
		next := set.expires[0]
		for _, e := range set.expires[1:] {
			next = min(next, e)
		}
		return ConcurrencyDecision{InFlight: n, NextExpiry: time.Duration(next-now) * time.Microsecond}, nil
	}
	if set.index(lease) >= 0 {
		return ConcurrencyDecision{}, fmt.Errorf("limitkit: lease %s of %q is already held", lease, key)
	}
	set.ids = append(set.ids, lease)
	set.expires = append(set.expires, now+int64(c.TTL/time.Microsecond))
	return ConcurrencyDecision{Allowed: true, InFlight: n + 1}, nil
}

// Renew implements ConcurrencyStore.
func (s *MemoryStore) Renew(ctx context.Context, key, lease string, ttl time.Duration) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := (Concurrency{Limit: 1, TTL: ttl}).Validate(); err != nil {
		return err
	}
	sh := s.leaseShard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := s.now()
	if set := sh.keys[key]; set != nil {
		set.dropExpired(now)
		if i := set.index(lease); i >= 0 {
			set.expires[i] = now + int64(ttl/time.Microsecond)
			return nil
		}
	}
	return fmt.Errorf("limitkit: renew of lease %s of %q: %w", lease, key, ErrLeaseNotHeld)
}

// Release implements ConcurrencyStore.
func (s *MemoryStore) Release(ctx context.Context, key, lease string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	sh := s.leaseShard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if set := sh.keys[key]; set != nil {
		set.dropExpired(s.now())
		if i := set.index(lease); i >= 0 {
			last := len(set.ids) - 1
			set.ids[i], set.expires[i] = set.ids[last], set.expires[last]
			set.ids[last] = ""
			set.ids, set.expires = set.ids[:last], set.expires[:last]
			if 2*s.leases.keys.Load() > s.maxKeys() {
				// Nearing the bound: make room now rather than at the
				// next sweep.
				s.dropIfEmptyLocked(sh, key, set)
			}
			return nil
		}
	}
	return fmt.Errorf("limitkit: release of lease %s of %q: %w", lease, key, ErrLeaseNotHeld)
}

func (s *MemoryStore) dropIfEmptyLocked(sh *leaseShard, key string, set *leaseSet) {
	if len(set.ids) == 0 {
		delete(sh.keys, key)
		s.leases.keys.Add(-1)
	}
}

// sweepLeases drops expired leases, and keys left with none. A key whose
// last lease is released stays until then, so that a client's next
// request, which usually comes soon, finds its state made.
func (s *MemoryStore) sweepLeases() {
	for i := range s.leases.shards {
		sh := &s.leases.shards[i]
		sh.mu.Lock()
		s.sweepShardLocked(sh, s.now())
		sh.mu.Unlock()
	}
}

func (s *MemoryStore) sweepShardLocked(sh *leaseShard, now int64) {
	for key, set := range sh.keys {
		set.dropExpired(now)
		s.dropIfEmptyLocked(sh, key, set)
	}
}

// Leases reports how many concurrency leases are live in the store, over
// all keys.
func (s *MemoryStore) Leases() int {
	n := 0
	for i := range s.leases.shards {
		sh := &s.leases.shards[i]
		sh.mu.Lock()
		now := s.now()
		for _, set := range sh.keys {
			for _, e := range set.expires {
				if e > now {
					n++
				}
			}
		}
		sh.mu.Unlock()
	}
	return n
}

var _ ConcurrencyStore = (*MemoryStore)(nil)
