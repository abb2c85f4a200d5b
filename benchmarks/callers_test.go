package benchmarks

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/redisstore"
	"github.com/redis/rueidis"
)

// BenchmarkRedisCallers measures how decisions travel to Redis, by the
// number of callers waiting at once (1, 8, 64 and 256), with p50 and p99
// latency per decision besides the Redis family's figures. Every limitkit
// row runs the token bucket's script on redisKeys keys; rows:
//
//   - limitkit: unbatched, one EVALSHA and round trip per decision;
//   - limitkit-coalesce: WithCoalescing's defaults (two batches in
//     flight), limitkit-coalesce-1 and -4 with one and four;
//   - limitkit-window: WithBatching(50µs), the fixed window;
//   - goredis-autopipeline: the same script's EVALSHA through go-redis's own
//     autopipeliner (Client.AutoPipeline, its blocking face and defaults),
//     which pipelines each decision as its own command;
//   - rueidis: the same EVALSHA through rueidis, which pipelines
//     concurrent commands on its own;
//   - ulule: ulule/limiter's Redis store, the fastest peer of the Redis
//     family, unbatched as it always is.
func BenchmarkRedisCallers(b *testing.B) {
	r := startRedis(b)
	rows := []redisContender{
		{"limitkit", limitkitMode(nil)},
		{"limitkit-coalesce", limitkitMode(redisstore.WithCoalescing(0, 0))},
		{"limitkit-coalesce-1", limitkitMode(redisstore.WithCoalescing(0, 1))},
		{"limitkit-coalesce-4", limitkitMode(redisstore.WithCoalescing(0, 4))},
		{"limitkit-window", limitkitMode(redisstore.WithBatching(redisBatchWindow, 0))},
		{"goredis-autopipeline", goredisAutoPipeline},
		{"rueidis", rueidisScript},
		{"ulule", onServer(ululeRedis)},
	}
	b.Run("keys="+strconv.Itoa(redisKeys), func(b *testing.B) {
		for _, callers := range []int{1, 8, 64, 256} {
			b.Run("mode=callers"+strconv.Itoa(callers), func(b *testing.B) {
				for _, c := range rows {
					b.Run("lib="+c.name, func(b *testing.B) {
						r.flush(b)
						take := c.setup(b, r)
						keys := benchKeys(redisKeys)
						warmRedis(b, take, keys, true)
						runCallers(b, r, callers, take, keys)
					})
				}
			})
		}
	})
}

// limitkitMode is redisstore's Take of the token bucket, unbatched or with
// the batching option given.
func limitkitMode(batching redisstore.Option) func(*testing.B, *benchRedis) takeFunc {
	return onServer(limitkitRedis(core.TokenBucket, batching))
}

// tokenBucketScript is redisstore's composed token bucket script, and its
// argument for limitkitRule's limit, packed as redisstore packs it (see
// redisstore/lua/one.lua): Redis's time (NaN), cost 1, no slack, charge,
// then count, window in µs and burst, each a little-endian double.
func tokenBucketScript(b *testing.B) (string, string) {
	src, err := os.ReadFile("../redisstore/testdata/token-bucket.lua")
	if err != nil {
		b.Fatal(err)
	}
	l := limitkitRule(core.TokenBucket, redisKeys).Limits[0]
	var argv []byte
	for _, v := range []float64{math.NaN(), 1, 0, 0, float64(l.Count), float64(l.Period.Microseconds()), float64(l.Count)} {
		argv = binary.LittleEndian.AppendUint64(argv, math.Float64bits(v))
	}
	return string(src), string(argv)
}

// admitted reports whether reply, the script's five packed doubles, admits
// the decision: its verdict, the first, is 1.
func admitted(reply string) bool {
	return len(reply) == 40 && math.Float64frombits(binary.LittleEndian.Uint64([]byte(reply[:8]))) == 1
}

// goredisAutoPipeline sends the token bucket's EVALSHA through go-redis's
// autopipeliner on the benchmark's client.
func goredisAutoPipeline(b *testing.B, r *benchRedis) takeFunc {
	src, args := tokenBucketScript(b)
	ctx := context.Background()
	sha, err := r.client.ScriptLoad(ctx, src).Result()
	if err != nil {
		b.Fatal(err)
	}
	ap, err := r.client.AutoPipeline()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ap.Close() })
	return func(key string) (bool, error) {
		v, err := ap.EvalSha(ctx, sha, []string{"ap:{" + key + "}"}, args).Text()
		return err == nil && admitted(v), err
	}
}

// rueidisScript sends the token bucket's EVALSHA through a rueidis client
// of its own, which pipelines the commands of concurrent callers by itself.
func rueidisScript(b *testing.B, r *benchRedis) takeFunc {
	src, args := tokenBucketScript(b)
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  []string{r.client.Options().Addr},
		DisableCache: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	script := rueidis.NewLuaScript(src)
	strArgs := []string{args}
	ctx := context.Background()
	return func(key string) (bool, error) {
		v, err := script.Exec(ctx, c, []string{"ru:{" + key + "}"}, strArgs).ToString()
		return err == nil && admitted(v), err
	}
}

// runCallers makes b.N decisions from exactly callers goroutines, each
// cycling through keys from its own starting point, checks each was
// admitted, and reports the Redis family's figures with the latency of a
// decision at the median and the 99th percentile.
func runCallers(b *testing.B, r *benchRedis, callers int, take takeFunc, keys []string) {
	b.ReportAllocs()
	var (
		next   atomic.Int64
		failed atomic.Pointer[string]
		wg     sync.WaitGroup
	)
	lat := make([][]time.Duration, callers)
	b.ResetTimer()
	cpu, rcpu := cpuTime(), r.serverCPU()
	for g := range callers {
		wg.Go(func() {
			l := make([]time.Duration, 0, b.N/callers+1)
			i := g * (len(keys)/callers + 1) % len(keys)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				msg := checkTake(take, keys[i], true)
				l = append(l, time.Since(t0))
				if msg != "" {
					failed.CompareAndSwap(nil, &msg)
					break
				}
				if i++; i == len(keys) {
					i = 0
				}
			}
			lat[g] = l
		})
	}
	wg.Wait()
	reportRedis(b, r, cpu, rcpu)
	if msg := failed.Load(); msg != nil {
		b.Fatal(*msg)
	}
	all := slices.Concat(lat...)
	if len(all) > 0 {
		slices.Sort(all)
		b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
}
