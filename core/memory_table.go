package core

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// table is one shard's index of entries: open addressing with linear
// probing over slots that readers load atomically, so that finding an
// existing key takes no lock and writes nothing (a check then locks only
// its entry; see MemoryStore). The shard's mutex serialises every change.
//
// A slot goes from empty to holding an entry, and from holding one to
// removed (its entry nil, its tag kept, so that probes still pass it), and
// may then be refilled; a tag is never cleared. So a reader that probes
// while the table changes still finds every entry that was there the whole
// time; an entry inserted meanwhile it may miss, and an entry removed
// meanwhile it may find, which is why a reader that misses looks again
// under the shard's lock and one that finds checks entry.rule under the
// entry's lock. When too many slots have been used the shard builds a new
// table of the live entries and publishes it, leaving the old one to the
// readers still probing it.
type table struct {
	slots []slot
	mask  uint64 // len(slots)-1, a power of two minus one
	used  int    // slots that hold or held an entry; the shard's lock guards it
}

// slot is one place of a table: tag is the hash of its entry with the low
// bit set (0: never used), so that a probe compares hashes without reading
// an entry, which with many keys is a cache miss.
type slot struct {
	tag atomic.Uint64
	e   atomic.Pointer[entry]
}

// minTableSlots is the size of a new shard's table.
const minTableSlots = 8

func newTable(n int) *table {
	return &table{slots: make([]slot, n), mask: uint64(n - 1)}
}

// tagOf is the tag of the entries under hash h. The bit it sets is one of
// those that chose the shard (unless there is only one), which are the same
// for all of a shard's entries.
func tagOf(h uint64) uint64 { return h | 1 }

// start is where the probe of hash or tag h begins. The low bits of h
// chose the shard, so the table takes the bits above them, which an
// entry's tag keeps: the tag is all a table needs to place the entry.
func (t *table) start(h uint64) uint64 { return (h >> 8) & t.mask }

// find returns key's entry under rule, or nil, without a lock, and the
// slot that holds it. A caller without the shard's lock must check that
// the entry is not removed.
func (t *table) find(h uint64, key storeKey, alg Algorithm, rule *Rule) (*entry, *slot) {
	tag := tagOf(h)
	for i := t.start(h); ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		switch sl.tag.Load() {
		case 0:
			return nil, nil
		case tag:
			e := sl.e.Load()
			if e == nil {
				continue
			}
			er := e.rule.Load()
			if er == nil || er.alg != alg || !key.is(e.key) {
				continue // the other states under this tag lie further on
			}
			// The usual rule, of one limit and no calendar, is compared
			// here, without a call: this runs on every check.
			if er.shapes == nil && len(rule.Limits) == 1 && er.shape.zone == nil {
				sp, l := &er.shape, &rule.Limits[0]
				if sp.count == l.Count && sp.window == int64(l.Period/time.Microsecond) &&
					l.Calendar == 0 && l.TimeZone == nil && (!isBucket(alg) || sp.burst == rule.burst(*l)) {
					return e, sl
				}
			} else if er.sameRule(rule) {
				return e, sl
			}
		}
	}
}

// find is table.find on the shard's current table.
func (sh *shard) find(h uint64, key storeKey, alg Algorithm, rule *Rule) (*entry, *slot) {
	return sh.table.Load().find(h, key, alg, rule)
}

// insertLocked adds e, which is not there, under hash h; the shard's lock
// is held. It fills the first removed slot of e's probe, else the empty
// one that ends it, and builds a larger table first if that would fill
// more than 3/4 of the slots, so that probes stay short.
func (sh *shard) insertLocked(h uint64, e *entry) {
	t := sh.table.Load()
	if (t.used+1)*4 > len(t.slots)*3 {
		t = sh.rebuildLocked(sh.n + 1)
	}
	t.put(tagOf(h), e)
	sh.n++
}

// put stores e under tag in the first slot of its probe that holds no
// entry; the shard's lock is held.
func (t *table) put(tag uint64, e *entry) {
	for i := t.start(tag); ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		old := sl.tag.Load()
		if old != 0 && sl.e.Load() != nil {
			continue
		}
		if old == 0 {
			t.used++
		}
		// The tag first: a reader that sees the entry then finds it under
		// its tag. One that reads the old tag and the new entry confirms
		// the entry's key and rule, and so passes it.
		sl.tag.Store(tag)
		sl.e.Store(e)
		return
	}
}

// removeLocked unlinks e from sl, the slot of the shard's table that holds
// it; the shard's lock and e's are held.
func (sh *shard) removeLocked(sl *slot, e *entry) {
	sl.e.Store(nil)
	e.rule.Store(nil)
	sh.n--
}

// rebuildLocked publishes a new table holding the shard's live entries,
// sized so that room for live entries fills at most half of it, and
// returns it; the shard's lock is held.
func (sh *shard) rebuildLocked(live int) *table {
	n := minTableSlots
	for n < 2*live {
		n *= 2
	}
	old, t := sh.table.Load(), newTable(n)
	for i := range old.slots {
		if sl := &old.slots[i]; sl.e.Load() != nil {
			t.put(sl.tag.Load(), sl.e.Load())
		}
	}
	sh.table.Store(t)
	return t
}

// each calls f on every live entry of the shard and its slot, starting at
// a random slot, until f returns false; the shard's lock is held. The
// random start makes eviction's sample one clients cannot choose.
func (sh *shard) each(f func(sl *slot, e *entry) bool) {
	t := sh.table.Load()
	n := uint64(len(t.slots))
	start := rand.Uint64() & t.mask
	for k := range n {
		sl := &t.slots[(start+k)&t.mask]
		if e := sl.e.Load(); e != nil && !f(sl, e) {
			return
		}
	}
}
