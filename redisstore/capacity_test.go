package redisstore

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestCapacity measures what the store's state costs Redis in memory, for
// sizing a deployment: per algorithm, for a rule of one limit and of three,
// the bytes one client's keys take, as the growth of INFO memory's
// used_memory over capacityClients clients (which counts the allocator's
// rounding, the key's entry in the keyspace and expiry dicts and their
// tables) and as MEMORY USAGE reports one key (the key and value only);
// and the sliding window log's cost at a full window. It logs a table and
// checks that the figures are sane, so that a change in the scripts' state
// that costs far more shows.
//
// It is slow and measures rather than tests, so it runs only when asked:
//
//	CAPACITY=1 go test -run TestCapacity -v ./redisstore
//
// It always starts its own redis-server, since used_memory is the whole
// server's: REDIS_URL is ignored. The store runs on a driven clock fixed at
// the start, so that no key reaches the end of its window (and expires)
// while it is being measured; the state and so its size are those of the
// same requests at Redis's own time.
func TestCapacity(t *testing.T) {
	if os.Getenv("CAPACITY") == "" {
		t.Skip("set CAPACITY=1 to measure Redis memory per key")
	}
	t.Setenv("REDIS_URL", "")
	rdb := redistest.Server(t)
	ctx := context.Background()
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("redis_version:%s, %d clients a row (%d for full logs), keys like %q",
		infoField(info, "redis_version"), capacityClients, capacityLogClients, capacityKey(0))

	t.Logf("%-24s %-34s %7s %9s %9s %9s %6s", "algorithm", "rule", "keys", "B/client", "B/key", "MEM USAGE", "keylen")
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		for _, expr := range []string{"100/minute", "100/minute;1000/hour;10000/day"} {
			m := measureCapacity(t, rdb, core.MustRule(expr, alg), capacityClients, 1, capacityKey)
			m.log(t, alg.String(), expr)
			m.check(t, 40, 400)
		}
	}
	// The identity's length is most of a key's: an IdentityHasher's
	// identity (32 hex digits) in place of an IPv4 address.
	m := measureCapacity(t, rdb, core.MustRule("100/minute", core.TokenBucket), capacityClients, 1, hashedKey)
	m.log(t, "token-bucket", "100/minute, hashed identity")
	m.check(t, 40, 400)

	// A full sliding window log: count entries a client, each request at a
	// time of its own (requests at one µs merge into one entry). One entry
	// is a time and a running total, two list elements.
	one := measureCapacity(t, rdb, core.MustRule("100/minute", core.SlidingWindowLog), capacityLogClients, 1, capacityKey)
	for _, full := range []struct {
		expr    string
		entries int
	}{{"100/minute", 100}, {"1000/hour", 1000}} {
		clients := capacityLogClients
		if full.entries > 100 {
			clients /= 10
		}
		m := measureCapacity(t, rdb, core.MustRule(full.expr, core.SlidingWindowLog), clients, full.entries, capacityKey)
		m.log(t, "sliding-window-log", fmt.Sprintf("%s, %d entries", full.expr, full.entries))
		perEntry := (m.perClient - one.perClient) / float64(full.entries-1)
		t.Logf("%-24s %-34s %43.1f", "", "  each entry past the first, B", perEntry)
		if perEntry < 4 || perEntry > 64 {
			t.Errorf("sliding-window-log %s: %.1f B an entry; want 4 to 64", full.expr, perEntry)
		}
	}
}

// capacityClients is how many clients a row measures: enough that the
// keyspace's tables are a realistic share of the total, few enough to fill
// in seconds. capacityLogClients is the same for the full logs, which take
// a request per entry.
const (
	capacityClients    = 100_000
	capacityLogClients = 2_000
)

// capacityKey is the key the middleware gives client i under ByIP: its
// scope, 12 hex digits, and an IPv4 address.
func capacityKey(i int) string {
	return fmt.Sprintf("5e8b1c2d3f4a:10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
}

// hashedKey is the key the middleware gives client i under an
// IdentityHasher: its scope and 32 hex digits.
func hashedKey(i int) string {
	return fmt.Sprintf("5e8b1c2d3f4a:%032x", uint64(i)*0x9e3779b97f4a7c15)
}

// capacity is one row's figures.
type capacity struct {
	rule        core.Rule
	keys        int     // Redis keys written
	perClient   float64 // used_memory growth per client, B
	perKey      float64 // the same per Redis key
	memoryUsage float64 // MEMORY USAGE of a key, mean of a sample, B
	keyLen      float64 // length of a Redis key's name, mean of the sample
}

func (c capacity) log(t *testing.T, alg, rule string) {
	t.Helper()
	t.Logf("%-24s %-34s %7d %9.0f %9.0f %9.0f %6.1f", alg, rule, c.keys, c.perClient, c.perKey, c.memoryUsage, c.keyLen)
}

// check fails the test if a key costs outside [lo, hi] bytes, by either
// measure.
func (c capacity) check(t *testing.T, lo, hi float64) {
	t.Helper()
	for _, v := range []float64{c.perKey, c.memoryUsage} {
		if v < lo || v > hi {
			t.Errorf("%v %v: %.0f B a key (used_memory %.0f, MEMORY USAGE %.0f); want %.0f to %.0f",
				c.rule.Algorithm, c.rule, v, c.perKey, c.memoryUsage, lo, hi)
		}
	}
}

// measureCapacity empties Redis, makes requests admitted requests for each
// of clients clients under rule, and measures what their keys take.
func measureCapacity(t *testing.T, rdb *redis.Client, rule core.Rule, clients, requests int, key func(int) string) capacity {
	t.Helper()
	ctx := context.Background()
	// A driven clock that ticks a µs a reading, so that every request of a
	// log is an entry of its own; the clock is the store's only, and every
	// read of it is one request's time.
	var now atomic.Int64
	now.Store(time.Now().UnixMicro())
	clock := func() time.Time { return time.UnixMicro(now.Add(1)) }
	s := New(rdb, WithClock(clock), WithTimeout(testTimeout))
	t.Cleanup(func() { s.Close() })

	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// Load the scripts and open the pool's connections before the first
	// reading, so that it is only the keys that the readings tell apart.
	fill(t, capacityWorkers, func(i int) error {
		_, err := s.Take(ctx, "warm-up:"+strconv.Itoa(i), rule, 1)
		return err
	})
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	before := usedMemory(t, rdb)
	fill(t, clients, func(i int) error {
		k := key(i)
		for range requests {
			d, err := s.Take(ctx, k, rule, 1)
			if err != nil {
				return err
			}
			if !d.Allowed {
				return fmt.Errorf("take %q: denied", k)
			}
		}
		return nil
	})
	after := usedMemory(t, rdb)

	n, err := rdb.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(clients * len(rule.Limits)); n != want {
		t.Fatalf("%v %v: %d keys in Redis; want %d", rule.Algorithm, rule, n, want)
	}
	c := capacity{rule: rule, keys: int(n)}
	c.perClient = float64(after-before) / float64(clients)
	c.perKey = float64(after-before) / float64(n)
	const sample = 100
	var usage, keyLen int64
	for i := range sample {
		ks := s.keys(nil, key(i*(clients/sample)), rule.Shape(), len(rule.Limits))
		for _, k := range ks {
			u, err := rdb.MemoryUsage(ctx, k, 0).Result()
			if err != nil {
				t.Fatalf("MEMORY USAGE %s: %v", k, err)
			}
			usage += u
			keyLen += int64(len(k))
		}
	}
	c.memoryUsage = float64(usage) / float64(sample*len(rule.Limits))
	c.keyLen = float64(keyLen) / float64(sample*len(rule.Limits))
	return c
}

// capacityWorkers is how many requests are in flight at once while filling.
const capacityWorkers = 32

// fill calls f(i) for every i below n from capacityWorkers goroutines and
// fails t with the first error.
func fill(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
	)
	for range capacityWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if failed == nil {
						failed = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
}

// usedMemory is INFO memory's used_memory once it has settled: Redis grows
// its keyspace tables by rehashing a little at a time, in the background
// too, so a reading taken at once may count both the old and the new table.
func usedMemory(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	read := func() int64 {
		info, err := rdb.Info(context.Background(), "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
		if err != nil {
			t.Fatalf("INFO memory: used_memory: %v", err)
		}
		return v
	}
	last := read()
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		v := read()
		if v == last {
			return v
		}
		last = v
	}
	return last
}

// infoField is the value of field in an INFO reply, or "".
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
