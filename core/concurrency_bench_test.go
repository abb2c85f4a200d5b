package core

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// BenchmarkMemoryStore_concurrency is a concurrency limit's two store
// calls per request, beside BenchmarkMemoryStore's Take: acquire a lease
// and release it, on one key and on many.
func BenchmarkMemoryStore_concurrency(b *testing.B) {
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	c := Concurrency{Limit: 1 << 20, TTL: time.Minute}
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = newLeaseID()
	}
	for _, nkeys := range []int{1, len(keys)} {
		b.Run("keys="+strconv.Itoa(nkeys)+"/serial", func(b *testing.B) {
			s := NewMemoryStore()
			defer s.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k, id := keys[i%nkeys], ids[i%len(ids)]
				if _, err := s.Acquire(ctx, k, id, c); err != nil {
					b.Fatal(err)
				}
				if err := s.Release(ctx, k, id); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("keys="+strconv.Itoa(nkeys)+"/parallel", func(b *testing.B) {
			s := NewMemoryStore()
			defer s.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				id := newLeaseID()
				i := 0
				for pb.Next() {
					k := keys[i%nkeys]
					if _, err := s.Acquire(ctx, k, id, c); err != nil {
						b.Fatal(err)
					}
					if err := s.Release(ctx, k, id); err != nil {
						b.Fatal(err)
					}
					i += 7
				}
			})
		})
	}
}

// BenchmarkLimiter_acquire is Limiter.Acquire and Lease.Release on the
// memory store: the store calls, a random lease id and a renewal timer.
func BenchmarkLimiter_acquire(b *testing.B) {
	l := New()
	defer l.Close()
	c := Concurrency{Limit: 1 << 20, TTL: time.Minute}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, ls, err := l.Acquire(ctx, "k", c)
		if err != nil {
			b.Fatal(err)
		}
		if err := ls.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConcurrencyMiddleware is one request through the net/http
// concurrency middleware on the memory store.
func BenchmarkConcurrencyMiddleware(b *testing.B) {
	l := New()
	defer l.Close()
	h := MustNewConcurrencyMiddleware(1<<20, WithLimiter(l)).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
