package redisstore

import (
	"sync"
	"time"

	"github.com/limitkit/limitkit/core"
)

// denyCache remembers Redis's recent denials so that a client hammering a
// limit it has hit is answered in process. Each denial is kept only until
// its retry-after runs out, and only answers requests of the same key, rule
// and cost; see the package documentation for why that never denies what
// Redis would admit, and gives Redis's RetryAfter.
type denyCache struct {
	mu      sync.Mutex
	max     int
	entries map[string][]denial // by key; a few rules each
}

// denial is one remembered denial, in the store's cache clock (µs).
type denial struct {
	shape uint64 // which rule: core.Rule.Shape, which also names its state
	cost  int64
	at    int64 // when the denied request was sent
	until int64 // at + retry-after: Redis admits no earlier
	d     core.Decision
}

// maxRulesPerKey bounds the denials kept for one key: a key is limited by a
// handful of rules at most.
const maxRulesPerKey = 4

// evictScan is how many keys a full cache looks at for expired ones before
// it drops one at random.
const evictScan = 16

func newDenyCache(max int) *denyCache {
	return &denyCache{max: max, entries: make(map[string][]denial)}
}

// lookup answers a request from a remembered denial, if one still holds.
// The answer's RetryAfter counts down from Redis's and its ResetAfter with
// it; Remaining is as Redis last said, though it may have grown since.
func (c *denyCache) lookup(key string, shape uint64, cost, now int64) (core.Decision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.entries[key] {
		// Only the cost that was denied: a larger one is denied too, but
		// for longer, which only Redis can say.
		if x.shape != shape || cost != x.cost || now < x.at || now >= x.until {
			continue
		}
		d := x.d
		elapsed := time.Duration(now-x.at) * time.Microsecond
		d.RetryAfter = time.Duration(x.until-now) * time.Microsecond
		d.ResetAfter = max(d.ResetAfter-elapsed, d.RetryAfter)
		return d, true
	}
	return core.Decision{}, false
}

// record learns from Redis's decision on a request sent at now: a denial
// that a retry would change is remembered, and an admission drops the
// denials it proves stale (something, such as a Reset elsewhere, freed
// room).
func (c *denyCache) record(key string, shape uint64, cost, now int64, d core.Decision) {
	if d.Allowed {
		c.mu.Lock()
		defer c.mu.Unlock()
		xs, ok := c.entries[key]
		if !ok {
			return
		}
		kept := xs[:0]
		for _, x := range xs {
			if x.shape != shape || x.cost > cost {
				kept = append(kept, x)
			}
		}
		if len(kept) == 0 {
			delete(c.entries, key)
		} else {
			c.entries[key] = kept
		}
		return
	}
	if d.Never || d.RetryAfter <= 0 {
		return
	}
	x := denial{shape: shape, cost: cost, at: now, until: now + int64(d.RetryAfter/time.Microsecond), d: d}
	c.mu.Lock()
	defer c.mu.Unlock()
	xs, ok := c.entries[key]
	if !ok && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	for i := range xs {
		if xs[i].shape == shape && xs[i].cost == cost {
			xs[i] = x
			return
		}
	}
	if len(xs) < maxRulesPerKey {
		c.entries[key] = append(xs, x)
		return
	}
	// Replace the denial that ends soonest.
	j := 0
	for i := range xs {
		if xs[i].until < xs[j].until {
			j = i
		}
	}
	xs[j] = x
}

// evictLocked makes room for one key: expired keys among a few first, else
// whichever key map iteration, which starts at random, yields first.
func (c *denyCache) evictLocked(now int64) {
	var first string
	seen := 0
	for k, xs := range c.entries {
		if seen == 0 {
			first = k
		}
		live := false
		for _, x := range xs {
			live = live || now < x.until
		}
		if !live {
			delete(c.entries, k)
		}
		if seen++; seen == evictScan {
			break
		}
	}
	if len(c.entries) >= c.max {
		delete(c.entries, first)
	}
}

// forget drops every denial of key, for Reset.
func (c *denyCache) forget(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// len reports how many keys the cache holds.
func (c *denyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
