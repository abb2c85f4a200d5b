package benchmarks

import (
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/redisstore"
)

// The RedisCluster family is the Redis family's cell on a local Redis
// Cluster of three masters (startCluster) through a *redis.ClusterClient:
// redisCallers concurrent callers on redisKeys distinct keys, every call
// admitted, with the same limits. Rows: floor, limitkit-<algorithm>,
// limitkit-coalesced-<algorithm> (WithCoalescing's defaults),
// limitkit-window-<algorithm> (WithBatching's 50µs window; every algorithm
// here, since a Cluster batch travels differently), redis_rate, ulule,
// throttled. Each row reports what the Redis family does (decisions/s,
// cpu-ns/op, redis-cpu-ns/op, now the three masters' CPU together) and
// the latency of one decision as a caller sees it, p50-µs and p99-µs: the
// time from calling the library to its answer, with 63 other callers
// waiting at once, so it includes the wait for a core and, in the batched
// rows, for the batch.
//
// On a two-core machine the three masters, the benchmark and its 64
// callers share the two cores, so decisions/s measures how well each
// library uses a machine that is the bottleneck, not what a cluster of
// real hosts serves; dec/cpu-s in benchsum (decisions per second of CPU,
// client and servers together) and redis-cpu-ns/op are what carry over.
func BenchmarkRedisCluster(b *testing.B) {
	c := startCluster(b)
	rows := []clusterContender{{"floor", redisFloor}}
	for _, alg := range redisAlgorithms {
		rows = append(rows, clusterContender{"limitkit-" + alg.String(), limitkitRedis(alg, redisstore.WithoutBatching())})
	}
	for _, alg := range redisAlgorithms {
		rows = append(rows, clusterContender{"limitkit-coalesced-" + alg.String(),
			limitkitRedis(alg, redisstore.WithCoalescing(0, 0))})
	}
	for _, alg := range redisAlgorithms {
		rows = append(rows, clusterContender{"limitkit-window-" + alg.String(),
			limitkitRedis(alg, redisstore.WithBatching(redisBatchWindow, 0))})
	}
	rows = append(rows,
		clusterContender{"redis_rate", redisRate},
		clusterContender{"ulule", ululeRedis},
		clusterContender{"throttled", throttledRedis},
	)
	b.Run("keys="+strconv.Itoa(redisKeys), func(b *testing.B) {
		b.Run("mode="+redisMode, func(b *testing.B) {
			for _, r := range rows {
				b.Run("lib="+r.name, func(b *testing.B) {
					c.flush(b)
					take := r.setup(b, c.client)
					keys := benchKeys(redisKeys)
					warmRedis(b, take, keys, true)
					runCluster(b, c, take, keys)
				})
			}
		})
	})
}

// clusterContender is one row: setup builds the library on the cluster's
// client, as the Redis family builds it on the server's.
type clusterContender struct {
	name  string
	setup clientSetup
}

// runCluster is runRedis that also times every call. The calls' latencies
// go into one slice of b.N entries, made before the timer starts, at an
// index each call takes from one atomic counter: b.RunParallel makes
// exactly b.N calls in all, however it shares them among the callers, so
// every latency is kept and the percentiles are exact. The counter costs a
// few tens of ns a call, under a thousandth of a round trip.
func runCluster(b *testing.B, c *benchCluster, take takeFunc, keys []string) {
	p := (redisCallers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	b.SetParallelism(p)
	b.ReportAllocs()
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	b.ResetTimer()
	cpu, rcpu := cpuTime(), c.serverCPU()
	failed := runWorkers(b, func(n int, pb *testing.PB) string {
		i := n * (len(keys)/redisCallers + 1) % len(keys)
		for pb.Next() {
			start := time.Now()
			msg := checkTake(take, keys[i], true)
			d := time.Since(start)
			if msg != "" {
				return msg
			}
			if j := next.Add(1) - 1; j < int64(len(lat)) {
				lat[j] = d
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
		return ""
	})
	b.StopTimer()
	if failed != "" {
		b.Fatal(failed)
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "decisions/s")
	}
	reportCPU(b, cpu)
	if end := c.serverCPU(); rcpu >= 0 && end >= 0 && b.N > 0 {
		b.ReportMetric(float64(end-rcpu)/float64(b.N), "redis-cpu-ns/op")
	}
	reportLatency(b, lat[:min(int(next.Load()), len(lat))])
}

// reportLatency reports the median and 99th percentile of lat, in µs, as
// p50-µs and p99-µs. It sorts lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(percentile(lat, 50).Seconds()*1e6, "p50-µs")
	b.ReportMetric(percentile(lat, 99).Seconds()*1e6, "p99-µs")
}

// percentile is the nearest-rank p-th percentile of sorted: the smallest
// value that at least p% of the values do not exceed.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100 // ceil(len·p/100), at least 1 for p > 0
	return sorted[max(rank, 1)-1]
}
