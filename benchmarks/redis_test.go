package benchmarks

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/redisstore"
	"github.com/redis/go-redis/v9"
	goredisstore "github.com/throttled/throttled/v2/store/goredisstore.v9"
	ulule "github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"
)

// The Redis family measures decisions against one local redis-server,
// made by redisCallers concurrent callers on redisKeys distinct keys, every
// one admitted under limits no run reaches. Rows:
//
//   - floor: an EVALSHA of a script that only INCRs the key, the least a
//     Redis rate limiter can do per decision (one round trip, one write);
//   - limitkit-<algorithm>: redisstore.Store.Take, one script per decision;
//   - limitkit-coalesced-<algorithm>: the same with WithCoalescing, which
//     sends a decision at once when it can and the decisions that arrive
//     meanwhile together; limitkit-window-token-bucket with WithBatching's
//     fixed window instead;
//   - the peers: go-redis/redis_rate (GCRA in one script), ulule/limiter's
//     Redis store (a fixed window in one script), throttled's GCRA over its
//     go-redis v9 store (goredisstore.v9: a read, then a compare-and-swap
//     script, two round trips).
//
// Each row reports decisions/s besides ns/op (wall time per decision with
// every caller busy, the inverse of the throughput), cpu-ns/op (this
// process's CPU per decision) and redis-cpu-ns/op (redis-server's, in 10ms
// ticks, so rough on short runs).
//
// BenchmarkRedisDeny measures a denied client: limitkit with WithDenyCache,
// which answers a recent denial in process, against the same denial asked
// of Redis.
func BenchmarkRedis(b *testing.B) {
	r := startRedis(b)
	rows := []redisContender{{"floor", onServer(redisFloor)}}
	for _, alg := range redisAlgorithms {
		rows = append(rows, redisContender{"limitkit-" + alg.String(), onServer(limitkitRedis(alg, nil))})
	}
	for _, alg := range redisAlgorithms {
		rows = append(rows, redisContender{"limitkit-coalesced-" + alg.String(), onServer(limitkitRedis(alg, redisstore.WithCoalescing(0, 0)))})
	}
	rows = append(rows, redisContender{"limitkit-window-" + core.TokenBucket.String(), onServer(limitkitRedis(core.TokenBucket, redisstore.WithBatching(redisBatchWindow, 0)))})
	rows = append(rows,
		redisContender{"redis_rate", onServer(redisRate)},
		redisContender{"ulule", onServer(ululeRedis)},
		redisContender{"throttled", onServer(throttledRedis)},
	)
	b.Run("keys="+strconv.Itoa(redisKeys), func(b *testing.B) {
		b.Run("mode="+redisMode, func(b *testing.B) {
			for _, c := range rows {
				b.Run("lib="+c.name, func(b *testing.B) {
					r.flush(b)
					take := c.setup(b, r)
					keys := benchKeys(redisKeys)
					warmRedis(b, take, keys, true)
					runRedis(b, r, take, keys, true)
				})
			}
		})
	})
}

var redisAlgorithms = []core.Algorithm{
	core.TokenBucket, core.FixedWindow, core.SlidingWindowCounter,
	core.SlidingWindowLog, core.LeakyBucket,
}

const (
	// redisCallers is how many callers wait on Redis at once: an API
	// instance serving 64 requests at a time.
	redisCallers = 64
	redisMode    = "parallel64"
	// redisKeys is the key space: enough that the 64 callers rarely meet
	// on a key, small enough to warm in a blink.
	redisKeys = 10_000
	// redisTimeout replaces redisstore's 100ms default: a loaded machine
	// can stall a caller that long, and one error ends the run. The
	// timeout's value costs nothing; the store pays for a context with a
	// deadline either way.
	redisTimeout = 5 * time.Second
	// redisBatchWindow is the batching rows' window, the one redisstore's
	// own benchmarks use; their batch bound is the default.
	redisBatchWindow = 50 * time.Microsecond
)

// redisContender is one row: setup builds the library on r's client.
type redisContender struct {
	name  string
	setup func(b *testing.B, r *benchRedis) takeFunc
}

// clientSetup builds a library on a client of a standalone Redis or of the
// Cluster: the rows both families share.
type clientSetup func(b *testing.B, c redis.UniversalClient) takeFunc

// onServer is setup on the standalone server's client.
func onServer(setup clientSetup) func(*testing.B, *benchRedis) takeFunc {
	return func(b *testing.B, r *benchRedis) takeFunc { return setup(b, r.client) }
}

// redisFloor is one EVALSHA of a script that INCRs the key and returns the
// count: the round trip and the write, nothing else.
func redisFloor(b *testing.B, c redis.UniversalClient) takeFunc {
	ctx := context.Background()
	sha, err := c.ScriptLoad(ctx, "return redis.call('INCR', KEYS[1])").Result()
	if err != nil {
		b.Fatal(err)
	}
	return func(key string) (bool, error) {
		err := c.EvalSha(ctx, sha, []string{key}).Err()
		return err == nil, err
	}
}

// limitkitRedis is redisstore's Take, as the memory family calls
// MemoryStore.Take, with limitkitRule's limits: unbatched (batching nil)
// or with the batching option given.
func limitkitRedis(alg core.Algorithm, batching redisstore.Option) clientSetup {
	return func(b *testing.B, c redis.UniversalClient) takeFunc {
		rule := limitkitRule(alg, redisKeys)
		if err := rule.Validate(); err != nil {
			b.Fatal(err)
		}
		opts := []redisstore.Option{redisstore.WithTimeout(redisTimeout)}
		if batching == nil {
			batching = redisstore.WithoutBatching() // coalescing is the default
		}
		opts = append(opts, batching)
		s := redisstore.New(c, opts...)
		b.Cleanup(func() { s.Close() })
		ctx := context.Background()
		return func(key string) (bool, error) {
			d, err := s.Take(ctx, key, rule, 1)
			return d.Allowed, err
		}
	}
}

// redisRate is go-redis/redis_rate: GCRA in one Lua script.
func redisRate(b *testing.B, c redis.UniversalClient) takeFunc {
	lim := redis_rate.NewLimiter(c)
	limit := redis_rate.Limit{Rate: bigCount, Burst: bigCount, Period: time.Hour}
	ctx := context.Background()
	return func(key string) (bool, error) {
		res, err := lim.Allow(ctx, key, limit)
		if err != nil {
			return false, err
		}
		return res.Allowed > 0, nil
	}
}

// ululeRedis is ulule/limiter's Redis store: a fixed window in one script.
func ululeRedis(b *testing.B, c redis.UniversalClient) takeFunc {
	st, err := ulredis.NewStoreWithOptions(c, ulule.StoreOptions{Prefix: "ulule"})
	if err != nil {
		b.Fatal(err)
	}
	rt, err := ulule.NewRateFromFormatted("1000000000-H")
	if err != nil {
		b.Fatal(err)
	}
	lim := ulule.New(st, rt)
	ctx := context.Background()
	return func(key string) (bool, error) {
		c, err := lim.Get(ctx, key)
		return !c.Reached, err
	}
}

// throttledRedis is throttled's GCRA limiter over its store for go-redis v9.
// Its compare-and-swap rounds are unbounded, as in the memory family, so
// that a rare collision of two callers on one key costs time, not the run.
func throttledRedis(b *testing.B, c redis.UniversalClient) takeFunc {
	st, err := goredisstore.NewCtx(c, "throttled:")
	if err != nil {
		b.Fatal(err)
	}
	return throttledGCRA(b, st)
}

// BenchmarkRedisDeny: every call is a denial, of one of denyKeys clients
// that have spent their 1/hour. From one caller (serial: the latency of a
// denial) and from redisCallers at once.
func BenchmarkRedisDeny(b *testing.B) {
	r := startRedis(b)
	rows := []redisContender{
		{"limitkit-denycache", limitkitDeny(true)},
		{"limitkit-roundtrip", limitkitDeny(false)},
	}
	b.Run("keys="+strconv.Itoa(denyKeys), func(b *testing.B) {
		for _, mode := range []string{"serial", redisMode} {
			b.Run("mode="+mode, func(b *testing.B) {
				for _, c := range rows {
					b.Run("lib="+c.name, func(b *testing.B) {
						r.flush(b)
						take := c.setup(b, r)
						keys := benchKeys(denyKeys)
						warmRedis(b, take, keys, true)  // spends each budget
						warmRedis(b, take, keys, false) // the first denial, which fills the cache
						if mode == "serial" {
							runRedisSerial(b, r, take, keys)
						} else {
							runRedis(b, r, take, keys, false)
						}
					})
				}
			})
		}
	})
}

// denyKeys is how many denied clients the deny cells cycle through.
const denyKeys = 1000

func limitkitDeny(cache bool) func(*testing.B, *benchRedis) takeFunc {
	return func(b *testing.B, r *benchRedis) takeFunc {
		rule := core.MustRule("1/hour", 0)
		opts := []redisstore.Option{redisstore.WithTimeout(redisTimeout), redisstore.WithoutBatching()}
		if cache {
			opts = append(opts, redisstore.WithDenyCache(10*denyKeys))
		}
		s := redisstore.New(r.client, opts...)
		b.Cleanup(func() { s.Close() })
		ctx := context.Background()
		return func(key string) (bool, error) {
			d, err := s.Take(ctx, key, rule, 1)
			return d.Allowed, err
		}
	}
}

// warmRedis makes one call on every key from redisCallers goroutines and
// checks that each was admitted (or, with admitted false, denied).
func warmRedis(b *testing.B, take takeFunc, keys []string, admitted bool) {
	b.Helper()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Pointer[string]
	)
	for range redisCallers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) {
					return
				}
				if msg := checkTake(take, keys[i], admitted); msg != "" {
					failed.CompareAndSwap(nil, &msg)
					return
				}
			}
		})
	}
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		b.Fatalf("warm-up: %s", *msg)
	}
}

// checkTake makes one call and says what went wrong, if anything.
func checkTake(take takeFunc, key string, admitted bool) string {
	ok, err := take(key)
	switch {
	case err != nil:
		return "take " + strconv.Quote(key) + ": " + err.Error()
	case ok != admitted:
		return "take " + strconv.Quote(key) + ": admitted=" + strconv.FormatBool(ok) + ", want " + strconv.FormatBool(admitted)
	}
	return ""
}

// runRedis cycles redisCallers goroutines through keys, each from its own
// starting point, and checks every call's outcome.
func runRedis(b *testing.B, r *benchRedis, take takeFunc, keys []string, admitted bool) {
	p := (redisCallers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	b.SetParallelism(p)
	b.ReportAllocs()
	b.ResetTimer()
	cpu, rcpu := cpuTime(), r.serverCPU()
	failed := runWorkers(b, func(n int, pb *testing.PB) string {
		i := n * (len(keys)/redisCallers + 1) % len(keys)
		for pb.Next() {
			if msg := checkTake(take, keys[i], admitted); msg != "" {
				return msg
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
		return ""
	})
	reportRedis(b, r, cpu, rcpu)
	if failed != "" {
		b.Fatal(failed)
	}
}

// runRedisSerial is runRedis with one caller.
func runRedisSerial(b *testing.B, r *benchRedis, take takeFunc, keys []string) {
	b.ReportAllocs()
	i := 0
	cpu, rcpu := cpuTime(), r.serverCPU()
	for b.Loop() {
		if msg := checkTake(take, keys[i], false); msg != "" {
			b.Fatal(msg)
		}
		if i++; i == len(keys) {
			i = 0
		}
	}
	reportRedis(b, r, cpu, rcpu)
}

// reportRedis reports decisions/s, cpu-ns/op and redis-cpu-ns/op.
func reportRedis(b *testing.B, r *benchRedis, cpu, rcpu time.Duration) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "decisions/s")
	}
	reportCPU(b, cpu)
	if end := r.serverCPU(); rcpu >= 0 && end >= 0 && b.N > 0 {
		b.ReportMetric(float64(end-rcpu)/float64(b.N), "redis-cpu-ns/op")
	}
}
