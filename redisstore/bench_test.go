package redisstore

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// benchCallers is how many goroutines call at once: b.SetParallelism
// multiplies GOMAXPROCS.
const benchCallers = 64

func benchClient(b *testing.B, ctxTimeout bool) *redis.Client {
	s := redistest.Start(b)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), PoolSize: benchCallers, ContextTimeoutEnabled: ctxTimeout})
	b.Cleanup(func() { c.Close() })
	return c
}

// runParallel runs take from benchCallers goroutines, each on keys of its
// own, and reports decisions per second.
func runParallel(b *testing.B, take func(ctx context.Context, key string) error) {
	var next atomic.Int64
	b.SetParallelism(max(1, benchCallers/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		g := strconv.FormatInt(next.Add(1), 10)
		ctx := context.Background()
		i := 0
		for pb.Next() {
			if err := take(ctx, "bench:"+g+":"+strconv.Itoa(i%1000)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
}

func BenchmarkTake(b *testing.B) {
	for _, ctxTimeout := range []bool{true, false} {
		c := benchClient(b, ctxTimeout)
		for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
			rule := core.MustRule("100000/hour", alg)
			for _, mode := range []struct {
				name string
				opt  Option
			}{
				{"", WithoutBatching()},
				{"/coalesced", WithCoalescing(0, 0)},
				{"/batched", WithBatching(50*time.Microsecond, 0)},
			} {
				name := alg.String() + mode.name
				if !ctxTimeout {
					name += "/goroutine-deadline"
				}
				b.Run(name, func(b *testing.B) {
					st := New(c, WithTimeout(time.Second), mode.opt)
					defer st.Close()
					runParallel(b, func(ctx context.Context, key string) error {
						_, err := st.Take(ctx, key, rule, 1)
						return err
					})
				})
			}
		}
		if !ctxTimeout {
			continue
		}
		// The floor: the cheapest script one round trip can run.
		incr := redis.NewScript(`return redis.call('INCR', KEYS[1])`)
		b.Run("floor-evalsha-incr", func(b *testing.B) {
			runParallel(b, func(ctx context.Context, key string) error {
				return incr.Run(ctx, c, []string{key}).Err()
			})
		})
	}
}

// BenchmarkConcurrency is a concurrency limit's two round trips per
// request, beside Take: acquire a lease and release it.
func BenchmarkConcurrency(b *testing.B) {
	c := benchClient(b, true)
	st := New(c, WithTimeout(time.Second))
	defer st.Close()
	lim := core.Concurrency{Limit: 1000, TTL: 10 * time.Second}
	var n atomic.Int64
	cpu := redisCPU(b, c)
	runParallel(b, func(ctx context.Context, key string) error {
		id := strconv.FormatInt(n.Add(1), 16)
		if _, err := st.Acquire(ctx, key, id, lim); err != nil {
			return err
		}
		return st.Release(ctx, key, id)
	})
	b.ReportMetric((redisCPU(b, c)-cpu)/float64(b.N)*1e6, "redis-µs/op")
}

// redisCPU is the CPU time, in seconds, the Redis server has used so far.
func redisCPU(b *testing.B, c *redis.Client) float64 {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		name, v, ok := strings.Cut(line, ":")
		if ok && (name == "used_cpu_sys" || name == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu: %q: %v", line, err)
			}
			total += f
		}
	}
	return total
}

// BenchmarkQuota measures Peek and Reserve followed by its Settle (a
// refund of half, a second round trip) beside Take, from benchCallers
// goroutines, for every algorithm, and reports the Redis server's CPU time per
// operation (redis-µs/op) beside the wall time.
func BenchmarkQuota(b *testing.B) {
	c := benchClient(b, true)
	measure := func(b *testing.B, op func(ctx context.Context, key string) error) {
		cpu := redisCPU(b, c)
		runParallel(b, op)
		b.ReportMetric((redisCPU(b, c)-cpu)/float64(b.N)*1e6, "redis-µs/op")
	}
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		rule := core.MustRule("100000/hour", alg)
		st := New(c, WithTimeout(time.Second))
		b.Run(alg.String()+"/Take", func(b *testing.B) {
			measure(b, func(ctx context.Context, key string) error {
				_, err := st.Take(ctx, key, rule, 2)
				return err
			})
		})
		b.Run(alg.String()+"/Peek", func(b *testing.B) {
			measure(b, func(ctx context.Context, key string) error {
				_, err := st.Peek(ctx, key, rule, 1)
				return err
			})
		})
		b.Run(alg.String()+"/Reserve+Settle", func(b *testing.B) {
			measure(b, func(ctx context.Context, key string) error {
				d, ch, err := st.Reserve(ctx, key, rule, 2)
				if err != nil || !d.Allowed {
					return err
				}
				return st.Refund(ctx, key, rule, ch, 1)
			})
		})
		st.Close()
	}
}
