package core

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The memory store's hot path: one key, and many keys, each serial and
// parallel, every call admitted.
func BenchmarkMemoryStore(b *testing.B) {
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	for _, alg := range []Algorithm{FixedWindow, SlidingWindowLog, SlidingWindowCounter, TokenBucket, LeakyBucket} {
		// 2^30 per 2^30 ms: every call admitted, and a whole number of
		// microseconds per token, as the buckets require.
		rule := Rule{Limits: []Limit{{Count: 1 << 30, Period: (1 << 30) * time.Millisecond}}, Algorithm: alg}
		if alg == SlidingWindowLog {
			rule.Limits[0].Count = MaxLogCount
		}
		for _, nkeys := range []int{1, len(keys)} {
			name := alg.String() + "/keys=" + strconv.Itoa(nkeys)
			b.Run(name+"/serial", func(b *testing.B) {
				s := NewMemoryStore()
				defer s.Close()
				ctx := context.Background()
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, err := s.Take(ctx, keys[i%nkeys], rule, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				s := NewMemoryStore()
				defer s.Close()
				ctx := context.Background()
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if _, err := s.Take(ctx, keys[i%nkeys], rule, 1); err != nil {
							b.Fatal(err)
						}
						i += 7
					}
				})
			})
		}
	}
}

// BenchmarkMemoryStore_prefixedKeysAtRandom checks 100,000 keys as a
// middleware sends them, a scope before an IPv4 address, in an order no
// prefetcher follows: each check finds its slot, its entry and the key's
// text out of the cache, three misses. (Keeping a short key's text in its
// entry's allocation saved about 8% here, but put most entries off a cache
// line and neighbours' locks on shared lines, so it was taken back.)
func BenchmarkMemoryStore_prefixedKeysAtRandom(b *testing.B) {
	const n = 100_000
	s := NewMemoryStore()
	defer s.Close()
	rule := Rule{Limits: []Limit{{Count: 1 << 30, Period: (1 << 30) * time.Millisecond}}, Algorithm: FixedWindow}
	ids := make([]string, n)
	var d Decision
	for i := range ids {
		ids[i] = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
		if _, err := s.take(storeKey{"GET /items:", ids[i]}, &rule, 1, &d); err != nil {
			b.Fatal(err)
		}
	}
	walk := make([]int32, n) // a fixed pseudo-random walk, the same every run
	x := uint32(1)
	for i := range walk {
		x = x*1664525 + 1013904223
		walk[i] = int32(x % n)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d = Decision{}
		if _, err := s.take(storeKey{"GET /items:", ids[walk[i%n]]}, &rule, 1, &d); err != nil || !d.Allowed {
			b.Fatalf("take: %+v, %v", d, err)
		}
	}
}

// BenchmarkMemoryStore_heapPerKey measures what a key costs the memory
// store at a bound of 100,000 keys (the maps' cost per key is the same at the
// default bound, ten times larger), under a one-limit and a three-limit
// rule: the live heap after a flood of three times the bound, with keys such as a
// middleware writes (a 12-character scope, a colon, an IPv4 address). It
// reports bytes per key held and the most keys ever held.
func BenchmarkMemoryStore_heapPerKey(b *testing.B) {
	for _, expr := range []string{"100/minute", "10/second;100/minute;1000/hour"} {
		for _, alg := range []Algorithm{SlidingWindowCounter, TokenBucket, SlidingWindowLog} {
			b.Run(alg.String()+"/limits="+strconv.Itoa(len(MustParseLimits(expr))), func(b *testing.B) {
				rule := MustRule(expr, alg)
				ctx := context.Background()
				for b.Loop() {
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					const bound = 100_000
					s := NewMemoryStore(MemoryMaxKeys(bound))
					most := 0
					for i := range 3 * bound {
						key := "a1b2c3d4e5f6:" + strconv.Itoa(10+i>>24&255) + "." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
						if _, err := s.Take(ctx, key, rule, 1); err != nil {
							b.Fatal(err)
						}
						if i%10_000 == 0 {
							most = max(most, s.Len())
						}
					}
					most = max(most, s.Len())
					runtime.GC()
					runtime.ReadMemStats(&after)
					b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(s.Len()), "bytes/key")
					b.ReportMetric(float64(most), "max-keys")
					s.Close()
				}
			})
		}
	}
}

// BenchmarkMemoryStore_floodOfExhaustedKeys is the worst case of eviction:
// a store full at its default bound of keys that one request exhausted
// (1/minute, under a clock that stands still), where every new key must
// evict one. It reports the cost of such an insert: about 430µs when the
// widened search read the whole shard, about 10µs with it bounded.
func BenchmarkMemoryStore_floodOfExhaustedKeys(b *testing.B) {
	rule := MustRule("1/minute", FixedWindow)
	ctx := context.Background()
	at := time.Unix(1_700_000_010, 0)
	s := exhaustedStore.get(func() *MemoryStore {
		s := NewMemoryStore(MemoryClock(func() time.Time { return at }), MemorySweepInterval(time.Hour))
		for i := range DefaultMaxKeys {
			s.Take(ctx, "fill"+strconv.Itoa(i), rule, 1)
		}
		return s
	})
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = "flood" + strconv.Itoa(b.N) + ":" + strconv.Itoa(i)
	}
	b.ResetTimer()
	for i := range b.N {
		s.Take(ctx, keys[i], rule, 1)
	}
}

// exhaustedStore is built once per process: filling it takes seconds.
var exhaustedStore lazyStore

type lazyStore struct {
	once sync.Once
	s    *MemoryStore
}

func (l *lazyStore) get(make func() *MemoryStore) *MemoryStore {
	l.once.Do(func() { l.s = make() })
	return l.s
}

// BenchmarkMemoryStore_quota measures Peek and a Reserve followed by its
// Settle (giving back half) beside Take, on one key, serially, for every
// algorithm: what a GET /usage and a request charged by outcome cost.
func BenchmarkMemoryStore_quota(b *testing.B) {
	for _, alg := range []Algorithm{FixedWindow, SlidingWindowLog, SlidingWindowCounter, TokenBucket, LeakyBucket} {
		rule := Rule{Limits: []Limit{{Count: 1 << 30, Period: (1 << 30) * time.Millisecond}}, Algorithm: alg}
		if alg == SlidingWindowLog {
			rule.Limits[0].Count = MaxLogCount
		}
		ctx := context.Background()
		b.Run(alg.String()+"/Take", func(b *testing.B) {
			s := NewMemoryStore()
			defer s.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Take(ctx, "k", rule, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg.String()+"/Peek", func(b *testing.B) {
			s := NewMemoryStore()
			defer s.Close()
			_, _ = s.Take(ctx, "k", rule, 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Peek(ctx, "k", rule, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg.String()+"/Reserve+Settle", func(b *testing.B) {
			s := NewMemoryStore()
			defer s.Close()
			b.ReportAllocs()
			for b.Loop() {
				d, c, err := s.Reserve(ctx, "k", rule, 2)
				if err != nil {
					b.Fatal(err)
				}
				if !d.Allowed {
					continue // the log is full
				}
				if err := s.Refund(ctx, "k", rule, c, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
