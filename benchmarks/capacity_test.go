package benchmarks

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/redisstore"
)

// BenchmarkCapacity measures what one limitkit decision costs Redis, for
// sizing a deployment (redisstore's TestCapacity measures the memory): for
// every algorithm, with a rule of one limit and of three, unbatched, with
// WithCoalescing and with WithBatching, redisCallers callers on redisKeys
// keys of one local redis-server. Besides the Redis family's decisions/s, cpu-ns/op and
// redis-cpu-ns/op (redis-server's whole CPU per decision: the scripts, and
// reading requests and writing replies) it reports redis-cmd-ns/op, the
// time Redis spent running the commands themselves, from INFO
// commandstats: the part that only Redis's one main thread can do, which
// io-threads cannot take off it.
//
//	go test -run '^$' -bench BenchmarkCapacity -benchtime 500ms -count 3 .
//
// It is not one of run.sh's families: there is no peer to compare with.
func BenchmarkCapacity(b *testing.B) {
	r := startRedis(b)
	if r.cmd == nil {
		b.Skip("BenchmarkCapacity reads and resets the server's statistics: it needs its own redis-server, not REDIS_URL")
	}
	for _, nlimits := range []int{1, 3} {
		b.Run("limits="+strconv.Itoa(nlimits), func(b *testing.B) {
			b.Run("keys="+strconv.Itoa(redisKeys), func(b *testing.B) {
				b.Run("mode="+redisMode, func(b *testing.B) {
					for _, mode := range capacityModes {
						for _, alg := range redisAlgorithms {
							b.Run("lib=limitkit-"+mode.name+alg.String(), func(b *testing.B) {
								r.flush(b)
								take := capacityTake(b, r, capacityRule(alg, nlimits), mode.sending)
								keys := benchKeys(redisKeys)
								warmRedis(b, take, keys, true)
								if err := r.client.ConfigResetStat(context.Background()).Err(); err != nil {
									b.Fatal(err)
								}
								runRedis(b, r, take, keys, true)
								reportCommandTime(b, r)
							})
						}
					}
				})
			})
		})
	}
}

// capacityModes are the ways a row's decisions travel, named as in the
// Redis family: unbatched, with WithCoalescing's defaults (the store's
// default) and with WithBatching's window. Each is an explicit option, so
// that a change of the store's default does not change a row.
var capacityModes = []struct {
	name    string // the row's name after "limitkit-"
	sending redisstore.Option
}{
	{"", redisstore.WithoutBatching()},
	{"coalesced-", redisstore.WithCoalescing(0, 0)},
	{"window-", redisstore.WithBatching(redisBatchWindow, 0)},
}

// capacityRule is limitkitRule's rule with nlimits limits, every one of
// them admitting every call of a run: the first is limitkitRule's, the
// others the same count over a half and a quarter of its period, so that
// each limit has a window of its own.
func capacityRule(alg core.Algorithm, nlimits int) core.Rule {
	rule := limitkitRule(alg, redisKeys)
	first := rule.Limits[0]
	for i := 1; i < nlimits; i++ {
		rule.Limits = append(rule.Limits, core.Limit{Count: first.Count, Period: first.Period >> i})
	}
	return rule
}

// capacityTake is redisstore's Take under rule, as the Redis family's
// limitkit rows call it, sending decisions as the option given says.
func capacityTake(b *testing.B, r *benchRedis, rule core.Rule, sending redisstore.Option) takeFunc {
	if err := rule.Validate(); err != nil {
		b.Fatal(err)
	}
	s := redisstore.New(r.client, redisstore.WithTimeout(redisTimeout), sending)
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	return func(key string) (bool, error) {
		d, err := s.Take(ctx, key, rule, 1)
		return d.Allowed, err
	}
}

// reportCommandTime reports as redis-cmd-ns/op the time Redis spent in
// scripts since the last CONFIG RESETSTAT, per decision: the usec of
// EVALSHA and EVAL in INFO commandstats, every command limitkit sends.
// Only those: the commands a script calls are counted again on their own
// lines, and already inside the script's time.
func reportCommandTime(b *testing.B, r *benchRedis) {
	info, err := r.client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var usec int64
	for _, line := range strings.Split(info, "\n") {
		// cmdstat_evalsha:calls=1000,usec=4321,usec_per_call=4.32,...
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		for _, f := range strings.Split(line[strings.IndexByte(line, ':')+1:], ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					b.Fatalf("INFO commandstats: %q: %v", line, err)
				}
				usec += n
			}
		}
	}
	if b.N > 0 {
		b.ReportMetric(float64(time.Duration(usec)*time.Microsecond)/float64(b.N), "redis-cmd-ns/op")
	}
}
