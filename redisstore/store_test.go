package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestTake_decidesAsTheMemoryStore(t *testing.T) {
	c := redistest.Server(t)
	for seed := range uint64(4) {
		clk := storetest.NewClock()
		st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithPrefix("diff"+string(rune('a'+seed))+":"))
		runDifferential(t, clk, st, randomOps(rand.New(rand.NewPCG(seed, 1)), 1500, false), equal)
	}
}

// Both stores keep one state per key, algorithm and number of limits, so a
// rule whose limits change (a new configuration) reads the state the old one
// left: they must read it alike.
func TestTake_decidesAsTheMemoryStoreWhenRulesShareAKey(t *testing.T) {
	c := redistest.Server(t)
	for seed := range uint64(4) {
		clk := storetest.NewClock()
		st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithPrefix("shared"+string(rune('a'+seed))+":"))
		runDifferential(t, clk, st, randomOps(rand.New(rand.NewPCG(seed, 5)), 1500, true), equal)
	}
}

func TestTake_decidesAsTheMemoryStoreOnCluster(t *testing.T) {
	c := redistest.Cluster(t)
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout))
	runDifferential(t, clk, st, randomOps(rand.New(rand.NewPCG(7, 7)), 1500, false), equal)
}

func TestTake_multiLimitRuleOnClusterIsAllOrNothing(t *testing.T) {
	c := redistest.Cluster(t)
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout))
	ctx := context.Background()
	rule := core.MustRule("3/second;4/minute", core.FixedWindow)
	// Keys whose tags fall in different slots, so the test crosses nodes.
	for _, key := range []string{"alice", "bob", "carol", "dave", "{odd}key", ""} {
		var allowed int
		for i := range 6 {
			d, err := st.Take(ctx, key, rule, 1)
			if err != nil {
				t.Fatalf("key %q request %d: %v", key, i, err)
			}
			if d.Allowed {
				allowed++
			}
		}
		if allowed != 3 {
			t.Fatalf("key %q: %d of 6 admitted in one second, want 3", key, allowed)
		}
		clk.Advance(time.Second)
		// The denied requests charged neither limit: one more fits the minute.
		d, err := st.Take(ctx, key, rule, 1)
		if err != nil || !d.Allowed || d.Remaining != 0 || d.Limit != rule.Limits[1] {
			t.Fatalf("key %q next second: %+v, %v; want admitted by the minute limit with 0 left", key, d, err)
		}
		d, err = st.Take(ctx, key, rule, 1)
		if err != nil || d.Allowed || d.Limit != rule.Limits[1] {
			t.Fatalf("key %q: %+v, %v; want denied by the minute limit", key, d, err)
		}
	}
}

func TestTake_keysExpireWhenTheirWindowsPass(t *testing.T) {
	c := redistest.Server(t)
	st := New(c) // Redis time: TTLs are real
	ctx := context.Background()
	const window = 200 * time.Millisecond
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		rule := core.Rule{Limits: []core.Limit{core.Per(2, window), core.Per(3, 2*window)}, Algorithm: alg}
		for range 4 {
			if _, err := st.Take(ctx, "ttl", rule, 1); err != nil {
				t.Fatalf("%v: %v", alg, err)
			}
		}
	}
	keys := dbKeys(t, c)
	if len(keys) == 0 {
		t.Fatal("no keys written")
	}
	for _, k := range keys {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl == -2 || ttl == 0 {
			// It expired after it was listed, or has under a millisecond
			// left (PTTL rounds that down to 0), as it should: only -1,
			// no TTL at all, is wrong. A loaded machine, slow between the
			// takes and the listing, showed the 0.
			continue
		}
		// The sliding counter keeps two windows of the longer limit.
		if ttl <= 0 || ttl > 4*window+time.Millisecond {
			t.Errorf("key %s has TTL %v, want a positive TTL of at most %v", k, ttl, 4*window)
		}
	}
	// Wait on Redis's clock, which the test cannot drive.
	deadline := time.Now().Add(4*window + 2*time.Second)
	for len(keys) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		keys = dbKeys(t, c)
	}
	if n, _ := c.DBSize(ctx).Result(); len(keys) > 0 || n != 0 {
		t.Fatalf("after the windows passed the DB still holds %d keys: %q", n, keys)
	}
}

func TestTake_followsRedisTimeNotTheAppClock(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	hour := core.MustRule("10/hour", core.FixedWindow)

	redisNow := func() time.Time {
		now, err := c.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return now
	}
	// The window's end as Redis sees it; the app cannot tell the store
	// otherwise, whatever its own clock says.
	before := redisNow()
	d, err := New(c).Take(ctx, "redis-time", hour, 1)
	after := redisNow()
	if err != nil {
		t.Fatal(err)
	}
	end := before.Truncate(time.Hour).Add(time.Hour)
	if lo, hi := end.Sub(after), end.Sub(before); d.ResetAfter < lo || d.ResetAfter > hi {
		t.Fatalf("ResetAfter %v, want Redis's window end: between %v and %v", d.ResetAfter, lo, hi)
	}

	// Under WithClock, the same rule follows the driven clock instead: the
	// driven clock sits 10 minutes into its hour.
	clk := storetest.NewClock()
	clk.Advance(10 * time.Minute)
	d, err = New(c, WithClock(clk.Now), WithTimeout(testTimeout)).Take(ctx, "driven-time", hour, 1)
	if err != nil || d.ResetAfter != 50*time.Minute {
		t.Fatalf("under WithClock: %+v, %v; want ResetAfter 50m", d, err)
	}
}

func TestTake_recoversWhenRedisForgetsTheScripts(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	for _, batching := range []bool{false, true} {
		var opts []Option
		if batching {
			opts = append(opts, WithBatching(100*time.Microsecond, 0))
		}
		st := New(c, opts...)
		defer st.Close()
		for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
			rule := core.MustRule("5/minute", alg)
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if d, err := st.Take(ctx, "noscript", rule, 1); err != nil || !d.Allowed {
				t.Fatalf("batching %v, %v after SCRIPT FLUSH: %+v, %v", batching, alg, d, err)
			}
		}
	}
}

func TestTake_failsFastWhenRedisIsDown(t *testing.T) {
	s := redistest.Start(t)
	c := s.Client()
	if !s.Local() {
		t.Skip("needs a local server to stop")
	}
	s.Stop()
	for _, opts := range [][]Option{nil, {WithBatching(time.Millisecond, 0)}} {
		st := New(c, opts...)
		start := time.Now()
		_, err := st.Take(context.Background(), "down", core.MustRule("5/minute", 0), 1)
		if err == nil {
			t.Fatal("Take succeeded with Redis stopped")
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Take took %v to fail", took)
		}
		if !strings.Contains(err.Error(), `"down"`) {
			t.Fatalf("error %q does not name the key", err)
		}
		if err := st.Reset(context.Background(), "down", core.MustRule("5/minute", 0)); err == nil {
			t.Fatal("Reset succeeded with Redis stopped")
		}
		st.Close()
	}
}

func TestTake_returnsAtTheDeadlineWhenRedisHangs(t *testing.T) {
	s := redistest.Start(t)
	plain := s.Client()
	// go-redis gives up at the deadline itself only with
	// ContextTimeoutEnabled; without it the store waits in a goroutine.
	aware := redis.NewClient(&redis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { aware.Close() })
	ctx := context.Background()
	rule := core.MustRule("5/minute", 0)
	stores := map[string]*Store{
		"plain client":          New(plain, WithTimeout(150*time.Millisecond)),
		"context-aware client":  New(aware, WithTimeout(150*time.Millisecond)),
		"batching plain client": New(plain, WithTimeout(150*time.Millisecond), WithBatching(time.Millisecond, 0)),
	}
	for _, st := range stores {
		defer st.Close()
		// Warm the pool and the script, so that only the paused call is
		// measured.
		if _, err := st.Take(ctx, "warm", rule, 1); err != nil {
			t.Fatal(err)
		}
	}
	// Every command waits until the pause ends; the store must not. The
	// pause outlasts the subtests by far, even on a loaded machine, and a
	// store that waited for it would take seconds longer than its limit.
	if err := plain.Do(ctx, "CLIENT", "PAUSE", 10000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		ctx   func() (context.Context, context.CancelFunc)
		limit time.Duration
	}{
		{"store timeout applies without a deadline", func() (context.Context, context.CancelFunc) { return ctx, func() {} }, 150 * time.Millisecond},
		{"the caller's deadline wins", func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 50*time.Millisecond) }, 50 * time.Millisecond},
	}
	for name, st := range stores {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				cctx, cancel := tt.ctx()
				defer cancel()
				start := time.Now()
				d, err := st.Take(cctx, "paused", rule, 1)
				took := time.Since(start)
				if err == nil {
					t.Fatalf("Take answered %+v while Redis was paused", d)
				}
				if took < tt.limit-10*time.Millisecond || took > tt.limit+2*time.Second {
					t.Fatalf("returned after %v (%v), want about %v", took, err, tt.limit)
				}
			})
		}
	}
}

func TestTake_startsAfreshAfterRedisLosesItsData(t *testing.T) {
	s := redistest.Start(t)
	c := s.Client()
	if !s.Local() {
		t.Skip("needs a local server to restart")
	}
	ctx := context.Background()
	st := New(c)
	rule := core.MustRule("2/hour", core.FixedWindow)
	for range 3 {
		if _, err := st.Take(ctx, "restart", rule, 1); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := st.Take(ctx, "restart", rule, 1); d.Allowed {
		t.Fatal("limit not reached before the restart")
	}
	s.Restart()
	// The first command after a restart may meet the dead connection; a
	// client that retries nothing reports it once, then reconnects.
	d, err := st.Take(ctx, "restart", rule, 1)
	if err != nil {
		d, err = st.Take(ctx, "restart", rule, 1)
	}
	if err != nil || !d.Allowed || d.Remaining != 1 {
		t.Fatalf("after restart: %+v, %v; want a fresh limit with 1 left", d, err)
	}
}

func TestTake_corruptStateIsAnError(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	st := New(c)
	tests := []struct {
		alg   core.Algorithm
		plant func(key string) error
	}{
		{core.FixedWindow, func(k string) error { return c.HSet(ctx, k, "a", 1).Err() }},
		{core.FixedWindow, func(k string) error { return c.Set(ctx, k, "garbage", 0).Err() }},
		{core.SlidingWindowCounter, func(k string) error { return c.Set(ctx, k, "1,2", 0).Err() }},
		{core.TokenBucket, func(k string) error { return c.Set(ctx, k, "soon", 0).Err() }},
		{core.LeakyBucket, func(k string) error { return c.LPush(ctx, k, 1).Err() }},
		{core.SlidingWindowLog, func(k string) error { return c.Set(ctx, k, "x", 0).Err() }},
		{core.SlidingWindowLog, func(k string) error { return c.RPush(ctx, k, 1).Err() }},
		{core.SlidingWindowLog, func(k string) error { return c.RPush(ctx, k, "x", 1).Err() }},
		{core.SlidingWindowLog, func(k string) error { return c.RPush(ctx, k, 0, "x", 1).Err() }},
		{core.SlidingWindowLog, func(k string) error { return c.RPush(ctx, k, "x", 1, 1).Err() }},
	}
	for i, tt := range tests {
		rule := core.MustRule("5/second", tt.alg)
		key := "corrupt" + string(rune('a'+i))
		if err := tt.plant(st.keys(nil, key, rule.Shape(), 1)[0]); err != nil {
			t.Fatal(err)
		}
		d, err := st.Take(ctx, key, rule, 1)
		if !errors.Is(err, core.ErrCorruptState) {
			t.Errorf("case %d (%v): corrupt state gave %+v, %v; want an error wrapping core.ErrCorruptState", i, tt.alg, d, err)
		}
	}
}

func TestDecision_rejectsMalformedReplies(t *testing.T) {
	rule := core.MustRule("1/second;2/minute", 0)
	keys := []string{"a", "b"}
	tests := []struct {
		name  string
		reply []int64
	}{
		{"nil", nil},
		{"too short", []int64{1, 0}},
		{"too long", []int64{1, 0, 0, 0, 0, 0}},
		{"allowed and never", []int64{3, 0, 0, 0, 0}},
		{"limit index out of range", []int64{1 + 4*2, 0, 0, 0, 0}},
		{"negative verdict", []int64{-3, 0, 0, 0, 0}},
		{"corrupt key out of range", []int64{-1, 2, 0, 0, 0}},
		{"corrupt key negative", []int64{-1, -1, 0, 0, 0}},
		{"corrupt state", []int64{-1, 1, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := decision(tt.reply, &rule, keys); err == nil {
				t.Fatalf("decision(%v) = %+v and no error", tt.reply, d)
			}
		})
	}
}

func TestReset_forgetsTheKey(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithDenyCache(100))
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		rule := core.MustRule("1/hour;2/day", alg)
		st.Take(ctx, "reset", rule, 1)
		if d, err := st.Take(ctx, "reset", rule, 1); err != nil || d.Allowed {
			t.Fatalf("%v: second request %+v, %v; want denied", alg, d, err)
		}
		if err := st.Reset(ctx, "reset", rule); err != nil {
			t.Fatal(err)
		}
		if d, err := st.Take(ctx, "reset", rule, 1); err != nil || !d.Allowed {
			t.Fatalf("%v: after Reset %+v, %v; want admitted", alg, d, err)
		}
	}
}

func TestTake_rejectsBadInput(t *testing.T) {
	c := redistest.Server(t)
	st := New(c)
	ctx := context.Background()
	tests := []struct {
		name string
		rule core.Rule
		cost int64
		want string
	}{
		{"negative cost", core.MustRule("1/second", 0), -1, "-1"},
		{"no limits", core.Rule{}, 1, "no limits"},
		{"zero count", core.Rule{Limits: []core.Limit{{Count: 0, Period: time.Second}}}, 1, "count"},
		{"log too large", core.Rule{Limits: []core.Limit{core.Per(core.MaxLogCount+1, time.Hour)}, Algorithm: core.SlidingWindowLog}, 1, "sliding window log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.Take(ctx, "bad", tt.rule, tt.cost)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestNew_panicsOnOptionsThatCannotWork(t *testing.T) {
	c := redistest.Server(t)
	tests := []struct {
		name string
		opt  Option
		want string
	}{
		{"prefix with a brace", WithPrefix("app{1}:"), `"app{1}:"`},
		{"zero timeout", WithTimeout(0), "WithTimeout(0s)"},
		{"negative deny cache", WithDenyCache(-1), "WithDenyCache(-1)"},
		{"zero batch window", WithBatching(0, 10), "WithBatching(0s, 10)"},
		{"negative batch size", WithBatching(time.Millisecond, -1), "WithBatching(1ms, -1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tt.want) {
					t.Fatalf("panic %v, want one quoting %s", r, tt.want)
				}
			}()
			New(c, tt.opt)
		})
	}
}

func TestClose_laterCallsFail(t *testing.T) {
	c := redistest.Server(t)
	st := New(c, WithBatching(time.Millisecond, 0))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := st.Take(context.Background(), "k", core.MustRule("1/second", 0), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Take after Close: %v, want ErrClosed", err)
	}
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Close closed the caller's client: %v", err)
	}
}

func TestTake_decidesAsTheMemoryStoreOnARing(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	if !a.Local() {
		t.Skip("a ring needs two servers; REDIS_URL names one")
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": a.Addr(), "b": b.Addr()}})
	t.Cleanup(func() { ring.Close() })
	clk := storetest.NewClock()
	st := New(ring, WithClock(clk.Now), WithTimeout(testTimeout))
	runDifferential(t, clk, st, randomOps(rand.New(rand.NewPCG(3, 9)), 800, false), equal)
	// The ring shards by hash tag, so both servers hold some keys.
	for _, s := range []*redistest.Standalone{a, b} {
		if n, err := s.Client().DBSize(context.Background()).Result(); err != nil || n == 0 {
			t.Fatalf("server %s holds %d keys (%v); want the ring to use both", s.Addr(), n, err)
		}
	}
}

// A key's fixed window state left by a rule of another period is read in the
// new rule's windows, which are aligned to the epoch: hand-worked, and
// checked on both stores.
func TestFixedWindow_ruleOfAnotherPeriodReadsItsOwnWindows(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	perSecond := core.MustRule("5/second", core.FixedWindow)
	perTwo := core.MustRule("3/2 seconds", core.FixedWindow)
	want := core.Decision{Allowed: true, Limit: perTwo.Limits[0], Remaining: 2, ResetAfter: 1950 * time.Millisecond}
	clk := storetest.NewClock()
	stores := map[string]core.Store{
		"memory": core.NewMemoryStore(core.MemoryClock(clk.Now)),
		"redis":  New(c, WithClock(clk.Now), WithTimeout(testTimeout)),
	}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) {
			defer st.Close()
			clk.Set(11500 * time.Millisecond)
			// Charged to the window [11s, 12s).
			if _, err := st.Take(ctx, "changed", perSecond, 1); err != nil {
				t.Fatal(err)
			}
			// The two-second windows are [10s, 12s) and [12s, 14s): at 12.05s
			// nothing has been charged to the current one.
			clk.Advance(550 * time.Millisecond)
			got, err := st.Take(ctx, "changed", perTwo, 1)
			if err != nil || got != want {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, want)
			}
		})
	}
}

// Under maxmemory, Redis may evict a log's key; the log must then start
// afresh, not fail or stick.
func TestSlidingWindowLog_survivesEvictionOfItsKey(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout))
	rule := core.MustRule("3/minute", core.SlidingWindowLog)
	tests := []struct {
		name    string
		evict   func(list string) error
		allowed int // of 5 requests after the eviction
	}{
		{"list evicted: the log starts afresh", func(list string) error { return c.Del(ctx, list).Err() }, 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprint("evicted", i)
			for range 2 {
				if _, err := st.Take(ctx, key, rule, 1); err != nil {
					t.Fatal(err)
				}
			}
			ks := st.keys(nil, key, rule.Shape(), 1)
			if err := tt.evict(ks[0]); err != nil {
				t.Fatal(err)
			}
			allowed := 0
			for range 5 {
				d, err := st.Take(ctx, key, rule, 1)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					allowed++
				}
			}
			if allowed != tt.allowed {
				t.Fatalf("%d of 5 admitted, want %d", allowed, tt.allowed)
			}
		})
	}
}

// redisWork is what Redis has done so far: commands run (inside scripts
// too) and the µs spent in script calls.
func redisWork(t *testing.T, c *redis.Client) (cmds, scriptUsec int64) {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		calls, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
		_, us, _ := strings.Cut(rest, "usec=")
		usec, _ := strconv.ParseInt(us[:strings.IndexByte(us, ',')], 10, 64)
		switch name {
		case "evalsha", "eval":
			scriptUsec += usec
		case "info":
		default:
			cmds += calls
		}
	}
	return cmds, scriptUsec
}

// A decision on a full log reads a few entries, however long the log and
// whatever the cost: a refused cost of the whole count on a full
// 100000/hour log used to walk all 100,000 entries (about 25ms of Redis's
// time, holding up every other client). The memory store, which keeps its
// log the same way, must agree on every decision.
func TestSlidingWindowLog_workPerDecisionIsBounded(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout))
	mem := core.NewMemoryStore(core.MemoryClock(clk.Now))
	defer mem.Close()
	const n = 100_000
	rule := core.MustRule("100000/hour", core.SlidingWindowLog)
	// Fill both logs with one request every 10ms: Redis's directly, in the
	// layout the script keeps (base, then time and running total per
	// request), the memory store's by its own checks.
	key := st.keys(nil, "full", rule.Shape(), 1)[0]
	args := []any{"0"}
	for i := range n {
		at := storetest.Epoch.Add(time.Duration(i) * 10 * time.Millisecond).UnixMicro()
		args = append(args, at, i+1)
		if len(args) >= 2000 || i == n-1 {
			if err := c.RPush(ctx, key, args...).Err(); err != nil {
				t.Fatal(err)
			}
			args = args[:0]
		}
		clk.Set(time.Duration(i) * 10 * time.Millisecond)
		if d, err := mem.Take(ctx, "full", rule, 1); err != nil || !d.Allowed {
			t.Fatalf("filling the memory log at %d: %+v, %v", i, d, err)
		}
	}
	if err := c.PExpire(ctx, key, 2*time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		at   time.Duration
		cost int64
	}{
		{"refused: the whole count on a full log", 1000 * time.Second, n},
		{"refused: one more on a full log", 1000 * time.Second, 1},
		{"refused: half the count", 1000 * time.Second, n / 2},
		{"admitted: most of the log left the window at once", time.Hour + 900*time.Second, 1},
		{"refused: a cost that needs the newest to leave", time.Hour + 900*time.Second, n},
	}
	worstCmds, worstUsec := int64(0), int64(0)
	for _, s := range steps {
		clk.Set(s.at)
		cmds0, us0 := redisWork(t, c)
		got, err := st.Take(ctx, "full", rule, s.cost)
		if err != nil {
			t.Fatal(err)
		}
		cmds1, us1 := redisWork(t, c)
		want, _ := mem.Take(ctx, "full", rule, s.cost)
		if got != want {
			t.Errorf("%s: Redis %+v, memory %+v", s.name, got, want)
		}
		t.Logf("%s: %d Redis commands, %dµs of Redis time", s.name, cmds1-cmds0, us1-us0)
		worstCmds, worstUsec = max(worstCmds, cmds1-cmds0), max(worstUsec, us1-us0)
	}
	// Two binary searches over 100,000 entries take about 2·17 reads.
	if worstCmds > 60 {
		t.Errorf("a decision ran up to %d Redis commands on a log of %d; want a bounded few", worstCmds, n)
	}
	t.Logf("worst decision: %d commands, %dµs of Redis time", worstCmds, worstUsec)
}
