package core

import (
	"context"
	"strconv"
	"testing"
)

// The memory store's hot path: one key, and many keys, each serial and
// parallel, every call admitted.
func BenchmarkMemoryStore(b *testing.B) {
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	for _, alg := range []Algorithm{FixedWindow, SlidingWindowLog, SlidingWindowCounter, TokenBucket, LeakyBucket} {
		rule := Rule{Limits: []Limit{{Count: 1 << 30, Period: 1 << 50}}, Algorithm: alg}
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
