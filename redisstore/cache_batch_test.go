package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// sameButRemaining compares decisions but Remaining, which a cached denial
// reports as Redis last said.
func sameButRemaining(want, got core.Decision) bool {
	got.Remaining = want.Remaining
	return want == got
}

func TestDenyCache_neverDeniesWhatRedisAdmits(t *testing.T) {
	c := redistest.Server(t)
	for seed := range uint64(3) {
		clk := storetest.NewClock()
		st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithDenyCache(1000), WithPrefix(fmt.Sprintf("deny%d:", seed)))
		// Denial-heavy traffic: the random ops, with most steps shortened.
		ops := randomOps(rand.New(rand.NewPCG(seed, 2)), 2000, false)
		for i := range ops {
			ops[i].advance /= 8
		}
		runDifferential(t, clk, st, ops, sameButRemaining)
	}
}

func TestDenyCache_answersRepeatedDenialsWithoutRedis(t *testing.T) {
	s := redistest.Start(t)
	c := s.Client()
	ctx := context.Background()
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithDenyCache(10))
	rule := core.MustRule("2/minute", core.FixedWindow)
	for range 2 {
		st.Take(ctx, "hammer", rule, 1)
	}
	first, err := st.Take(ctx, "hammer", rule, 1)
	if err != nil || first.Allowed {
		t.Fatalf("third request: %+v, %v; want denied", first, err)
	}
	// With Redis gone, the cache still answers the same cost...
	s.Stop()
	clk.Advance(10 * time.Second)
	d, err := st.Take(ctx, "hammer", rule, 1)
	if err != nil || d.Allowed || d.RetryAfter != first.RetryAfter-10*time.Second {
		t.Fatalf("the denied cost from the cache: %+v, %v; want denied, retry %v", d, err, first.RetryAfter-10*time.Second)
	}
	// ...but not another cost (a larger one waits longer, by how much only
	// Redis can say), a futile one, another rule, or once the denial has
	// run out: those must ask Redis, which is down.
	tests := []struct {
		name string
		rule core.Rule
		cost int64
		wait time.Duration
	}{
		{"smaller cost", rule, 0, 0},
		{"larger cost", rule, 2, 0},
		{"futile cost", rule, 3, 0},
		{"other rule", core.MustRule("3/minute", core.FixedWindow), 1, 0},
		{"after retry-after", rule, 1, first.RetryAfter},
	}
	for _, tt := range tests {
		clk.Advance(tt.wait)
		if d, err := st.Take(ctx, "hammer", tt.rule, tt.cost); err == nil {
			t.Fatalf("%s: answered %+v without Redis", tt.name, d)
		}
	}
	if n := st.deny.len(); n != 1 {
		t.Fatalf("cache holds %d keys, want 1", n)
	}
}

func TestDenyCache_isBounded(t *testing.T) {
	c := newDenyCache(8)
	d := core.Decision{RetryAfter: time.Hour}
	for i := range 100 {
		c.record(fmt.Sprint("k", i), 1000, 1, 0, d)
		for j := range 10 {
			c.record(fmt.Sprint("k", i), uint64(j), int64(j), 0, d)
		}
		if n := c.len(); n > 8 {
			t.Fatalf("after %d keys the cache holds %d, bound 8", i+1, n)
		}
		if n := len(c.entries[fmt.Sprint("k", i)]); n > maxRulesPerKey {
			t.Fatalf("key holds %d denials, bound %d", n, maxRulesPerKey)
		}
	}
}

// batchModes are the two ways a store sends decisions together, each as
// the tests below use it: a window long enough that concurrent callers
// meet in one batch, and coalescing with one batch in flight, so that
// callers queue behind it.
var batchModes = []struct {
	name string
	opt  func(window time.Duration, max int) Option
}{
	{"window", WithBatching},
	{"coalesce", func(_ time.Duration, max int) Option { return WithCoalescing(max, 1) }},
}

func TestBatching_decidesAsUnbatched(t *testing.T) {
	for _, m := range batchModes {
		t.Run(m.name, func(t *testing.T) {
			c := redistest.Server(t)
			clk := storetest.NewClock()
			st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), m.opt(200*time.Microsecond, 16))
			defer st.Close()
			runDifferential(t, clk, st, randomOps(rand.New(rand.NewPCG(11, 3)), 600, false), equal)
		})
	}
}

func TestBatching_concurrentCallersGetTheirOwnDecisions(t *testing.T) {
	for _, m := range batchModes {
		t.Run(m.name, func(t *testing.T) { concurrentCallers(t, m.opt(2*time.Millisecond, 8)) })
	}
}

func concurrentCallers(t *testing.T, batching Option) {
	c := redistest.Server(t)
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), batching)
	defer st.Close()
	ctx := context.Background()
	// 32 callers on their own keys with their own rules: each sees exactly
	// its own limit, whichever batch its requests travel in.
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			limit := int64(g%5 + 1)
			rule := core.Rule{Limits: []core.Limit{core.Per(limit, time.Hour)}, Algorithm: core.Algorithm(g%5 + 1)}
			key := fmt.Sprint("caller", g)
			for i := range limit + 2 {
				d, err := st.Take(ctx, key, rule, 1)
				if err != nil {
					errs <- err
					return
				}
				if want := i < limit; d.Allowed != want || d.Limit != rule.Limits[0] {
					errs <- fmt.Errorf("caller %d request %d: %+v, want allowed %v", g, i, d, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestBatching_concurrentDecisionsDecideAsTheMemoryStore plays the random
// requests in groups on distinct keys at one time, each group at once, so
// that batches hold several decisions of one algorithm and travel in the
// batched scripts; the memory store plays them one by one.
func TestBatching_concurrentDecisionsDecideAsTheMemoryStore(t *testing.T) {
	s := redistest.Start(t)
	c := s.Client()
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithBatching(2*time.Millisecond, 0))
	defer st.Close()
	mem := core.NewMemoryStore(core.MemoryClock(clk.Now), core.MemorySweepInterval(time.Hour))
	defer mem.Close()
	ctx := context.Background()
	statsBefore := evalCalls(t, s.Client())
	ops := randomOps(rand.New(rand.NewPCG(5, 8)), 1500, false)
	decisions := 0
	for i, groups := 0, 0; i < len(ops); groups++ {
		if groups%50 == 49 {
			// Now and then Redis forgets the scripts, batched ones too.
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(ops[i].advance)
		seen := map[string]bool{}
		var group []op
		for ; i < len(ops) && len(group) < 12 && !seen[ops[i].key]; i++ {
			seen[ops[i].key] = true
			group = append(group, ops[i])
		}
		got := make([]core.Decision, len(group))
		errs := make([]error, len(group))
		var wg sync.WaitGroup
		for j, o := range group {
			wg.Go(func() { got[j], errs[j] = st.Take(ctx, o.key, diffRules[o.rule], o.cost) })
		}
		wg.Wait()
		for j, o := range group {
			rule := diffRules[o.rule]
			want, err := mem.Take(ctx, o.key, rule, o.cost)
			if err != nil {
				t.Fatal(err)
			}
			if errs[j] != nil || got[j] != want {
				t.Fatalf("op %d: Take(%q, %v %s, cost %d)\n got  %+v, %v\n want %+v", i-len(group)+j, o.key, rule.Algorithm, rule.String(), o.cost, got[j], errs[j], want)
			}
			decisions++
		}
	}
	if calls := evalCalls(t, s.Client()) - statsBefore; calls >= int64(decisions)*3/4 {
		t.Fatalf("%d decisions took %d script calls: the batches did not share them", decisions, calls)
	}
}

// evalCalls is how many EVALSHA and EVAL commands Redis has run.
func evalCalls(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for line := range strings.Lines(info) {
		for _, name := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
			if rest, ok := strings.CutPrefix(line, name); ok {
				n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
				total += n
			}
		}
	}
	return total
}

func TestBatching_corruptStateFailsOnlyItsOwnDecision(t *testing.T) {
	for _, m := range batchModes {
		t.Run(m.name, func(t *testing.T) { corruptStateInBatch(t, m.opt(20*time.Millisecond, 8)) })
	}
}

func corruptStateInBatch(t *testing.T, batching Option) {
	c := redistest.Server(t)
	ctx := context.Background()
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		st := New(c, WithTimeout(testTimeout), batching, WithPrefix(fmt.Sprintf("corrupt%d:", alg)))
		rule := core.MustRule("5/minute", alg)
		if err := c.HSet(ctx, st.keys(nil, "bad", rule.Shape(), 1)[0], "a", 1).Err(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for g := range 8 {
			wg.Go(func() {
				key := fmt.Sprint("good", g)
				if g == 3 {
					key = "bad"
				}
				d, err := st.Take(ctx, key, rule, 1)
				if err == nil && (!d.Allowed || d.Remaining != 4) {
					err = fmt.Errorf("decision %+v, want allowed with 4 left", d)
				}
				errs[g] = err
			})
		}
		wg.Wait()
		for g, err := range errs {
			if g == 3 {
				if !errors.Is(err, core.ErrCorruptState) {
					t.Errorf("%v: corrupt key: %v, want a corrupt-state error", alg, err)
				}
			} else if err != nil {
				t.Errorf("%v: caller %d: %v", alg, g, err)
			}
		}
		st.Close()
	}
}

// TestCoalescing_queuesBehindABatchInFlight holds a coalescing store's one
// batch in flight (Redis is paused for writes) while 20 more decisions
// arrive: they wait, then travel together as one script call, and each
// caller gets its own decision.
func TestCoalescing_queuesBehindABatchInFlight(t *testing.T) {
	s := redistest.Start(t)
	// A client that waits a minute for a reply, so that the decision in
	// flight stays there until the test ends the pause, however slowly a
	// loaded machine starts the callers.
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), ReadTimeout: time.Minute, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	st := New(c, WithTimeout(time.Minute), WithCoalescing(0, 1))
	defer st.Close()
	co := st.batch.(*coalescer)
	ctx := context.Background()
	rule := core.MustRule("5/minute", core.TokenBucket)
	if _, err := st.Take(ctx, "warm", rule, 1); err != nil { // loads the script
		t.Fatal(err)
	}
	if err := c.ScriptLoad(ctx, scripts[core.TokenBucket].many.(string)).Err(); err != nil {
		t.Fatal(err)
	}
	// The warm-up's caller returns before the goroutine that sent its
	// decision frees the batch's place: until it has, busy is still 1, the
	// decision below would queue behind it, and the 20 with it would leave
	// in one batch with it as the place came free (a CI run on a loaded
	// machine saw exactly that).
	waitFor(t, "the warm-up batch to come back", func() bool { return co.busy == 0 && len(co.queue) == 0 }, &co.mu)
	before := evalCalls(t, c)
	unpause := pauseWrites(t, c)
	defer unpause()

	const queued = 20
	var wg sync.WaitGroup
	errs := make([]error, queued+1)
	take := func(i int) {
		d, err := st.Take(ctx, fmt.Sprint("caller", i), rule, 1)
		if err == nil && (!d.Allowed || d.Remaining != 4) {
			err = fmt.Errorf("decision %+v, want allowed with 4 left", d)
		}
		errs[i] = err
	}
	wg.Go(func() { take(0) })
	waitFor(t, "the first decision to be in flight", func() bool { return co.busy == 1 }, &co.mu)
	for i := 1; i <= queued; i++ {
		wg.Go(func() { take(i) })
	}
	waitFor(t, "20 decisions to queue", func() bool { return len(co.queue) == queued }, &co.mu)
	unpause()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if calls := evalCalls(t, c) - before; calls != 2 {
		t.Fatalf("%d decisions took %d script calls, want 2: the one in flight, then the 20 queued behind it as one", queued+1, calls)
	}
}

// pauseWrites pauses c's server for write commands (scripts among them)
// for up to a minute, and returns what ends the pause; calling it again does
// nothing.
func pauseWrites(t *testing.T, c *redis.Client) (unpause func()) {
	t.Helper()
	ctx := context.Background()
	if err := c.Do(ctx, "CLIENT", "PAUSE", 60000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := c.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
				t.Error(err)
			}
		})
	}
}

// waitFor waits until cond, read under mu, holds.
func waitFor(t *testing.T, what string, cond func() bool, mu *sync.Mutex) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		ok := cond()
		mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBatching_keepsEachCallersDeadline pauses Redis for longer than the
// store's timeout while callers with deadlines of their own, longer still,
// wait in one batch: the batch lasts as long as they do, so every one is
// decided, as it would be alone.
func TestBatching_keepsEachCallersDeadline(t *testing.T) {
	for _, m := range batchModes {
		t.Run(m.name, func(t *testing.T) {
			c := redistest.Server(t)
			st := New(c, WithTimeout(100*time.Millisecond), m.opt(time.Millisecond, 0))
			defer st.Close()
			rule := core.MustRule("5/minute", core.FixedWindow)
			if _, err := st.Take(context.Background(), "warm", rule, 1); err != nil {
				t.Fatal(err)
			}
			if err := c.Do(context.Background(), "CLIENT", "PAUSE", 400, "WRITE").Err(); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_, errs[i] = st.Take(ctx, fmt.Sprint("caller", i), rule, 1)
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("caller %d, with 10s to wait, failed while Redis paused for 400ms: %v", i, err)
				}
			}
		})
	}
}

// TestNew_coalescesByDefaultPerMasterOnCluster: a store coalesces by
// default on a plain client and on a Cluster client, there per master, so
// that a failing master holds up no other's decisions; a Ring, whose
// batches would span its shards, sends each decision alone unless asked;
// an option chooses either way.
func TestNew_coalescesByDefaultPerMasterOnCluster(t *testing.T) {
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer plain.Close()
	defer cluster.Close()
	defer ring.Close()
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		opts   []Option
		want   string // the batch runner's type, "" for none
	}{
		{"plain", plain, nil, "*redisstore.coalescer"},
		{"plain, WithoutBatching", plain, []Option{WithoutBatching()}, ""},
		{"Cluster", cluster, nil, "*redisstore.perMaster"},
		{"Cluster, WithCoalescing", cluster, []Option{WithCoalescing(0, 0)}, "*redisstore.perMaster"},
		{"Cluster, WithoutBatching", cluster, []Option{WithoutBatching()}, ""},
		{"Ring", ring, nil, ""},
		{"Ring, WithCoalescing", ring, []Option{WithCoalescing(0, 0)}, "*redisstore.coalescer"},
	} {
		st := New(tc.client, tc.opts...)
		got := ""
		if st.batch != nil {
			got = fmt.Sprintf("%T", st.batch)
		}
		if got != tc.want {
			t.Errorf("%s: batch runner %q, want %q", tc.name, got, tc.want)
		}
		st.Close()
	}
}

// TestCoalescing_aPausedMasterHoldsUpOnlyItsOwnKeys pauses one master of a
// Cluster for writes while decisions on its keys fill its batches in flight
// and queue behind them: a decision on another master's key is answered
// all the same, before any of the paused master's. One coalescer over the
// whole cluster would have queued it behind the paused master's batches.
func TestCoalescing_aPausedMasterHoldsUpOnlyItsOwnKeys(t *testing.T) {
	// A client that waits a minute for a reply, so that the pause, however
	// long a loaded machine makes it, never times a batch out into a retry.
	opts := redistest.Cluster(t).Options()
	opts.ReadTimeout, opts.WriteTimeout = time.Minute, time.Minute
	cc := redis.NewClusterClient(opts)
	defer cc.Close()
	st := New(cc, WithTimeout(time.Minute))
	defer st.Close()
	pm := st.batch.(*perMaster)
	ctx := context.Background()
	rule := core.MustRule("100/hour", core.TokenBucket) // no refill within the test
	// One key on the master to pause, one on another master.
	var paused, other string
	var pausedNode *redis.Client
	var pausedAddr string
	for i := 0; paused == "" || other == ""; i++ {
		key := fmt.Sprint("k", i)
		node, err := cc.MasterForKey(ctx, st.prefix+"{"+key+"}")
		if err != nil {
			t.Fatal(err)
		}
		switch addr := node.Options().Addr; {
		case paused == "":
			paused, pausedNode, pausedAddr = key, node, addr
		case addr != pausedAddr:
			other = key
		}
	}
	// Until the store has seen the client's slot map, decisions go through
	// the coalescer of unknown masters; take until the paused master has
	// its own.
	charged := 0
	deadline := time.Now().Add(10 * time.Second)
	for (*pm.by.Load())[pausedAddr] == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no coalescer for the master %s of key %q within 10s", pausedAddr, paused)
		}
		if _, err := st.Take(ctx, paused, rule, 1); err != nil {
			t.Fatal(err)
		}
		charged++
	}
	co := (*pm.by.Load())[pausedAddr]
	// A caller may return before the goroutine that sent its decision has
	// freed the batch's place: wait for every place to be free, so that the
	// decisions below fill them.
	waitFor(t, "the warm-up batches to come back", func() bool { return co.busy == 0 && len(co.queue) == 0 }, &co.mu)
	unpause := pauseWrites(t, pausedNode)
	defer unpause()

	const held = DefaultCoalesceInFlight + 3 // fills the batches in flight, and queues
	var answered atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, held)
	for i := range held {
		wg.Go(func() {
			_, errs[i] = st.Take(ctx, paused, rule, 1)
			answered.Add(1)
		})
	}
	waitFor(t, "the paused master's batches to fill and queue", func() bool {
		return co.busy == DefaultCoalesceInFlight && len(co.queue) == held-DefaultCoalesceInFlight
	}, &co.mu)
	octx, cancel := context.WithTimeout(ctx, 30*time.Second) // a bound for a failure
	d, err := st.Take(octx, other, rule, 1)
	cancel()
	if err != nil || !d.Allowed {
		t.Fatalf("a decision on another master while one is paused: %+v, %v; want it answered", d, err)
	}
	if n := answered.Load(); n != 0 {
		t.Fatalf("%d of the paused master's decisions were answered while it was paused", n)
	}
	unpause()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("decision %d on the paused master, once unpaused: %v", i, err)
		}
	}
	want := int64(100 - charged - held - 1)
	if d, err := st.Peek(ctx, paused, rule, 1); err != nil || d.Remaining != want {
		t.Errorf("the paused master's key after its decisions: remaining %d, %v; want %d", d.Remaining, err, want)
	}
}

// TestCoalescing_keepsDeadlinesBeforeTheSlotMapLoads: a Cluster store whose
// client cannot load the slot map (its seed accepts connections and never
// answers) still returns by the caller's deadline, or by the store's timeout
// for a caller without one, with or without the client's
// ContextTimeoutEnabled: looking up a key's master must not load the map
// on the caller's goroutine, where go-redis would wait its own ten-second
// read timeout.
func TestCoalescing_keepsDeadlinesBeforeTheSlotMapLoads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup // the accepting loop and each connection it holds
	defer func() { ln.Close(); held.Wait() }()
	held.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held.Go(func() { _, _ = io.Copy(io.Discard, conn); conn.Close() })
		}
	})
	const bound = 3 * time.Second // far below the client's 10s, far above 200ms
	rule := core.MustRule("5/minute", core.TokenBucket)
	for _, ctxAware := range []bool{false, true} {
		cc := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 []string{ln.Addr().String()},
			ReadTimeout:           10 * time.Second,
			WriteTimeout:          10 * time.Second,
			MaxRedirects:          -1,
			ContextTimeoutEnabled: ctxAware,
		})
		st := New(cc, WithTimeout(200*time.Millisecond))
		if _, ok := st.batch.(*perMaster); !ok {
			t.Fatalf("batch runner %T, want per master", st.batch)
		}
		for _, withDeadline := range []bool{true, false} {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if withDeadline {
				ctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
			}
			start := time.Now()
			_, err := st.Take(ctx, "k", rule, 1)
			took := time.Since(start)
			cancel()
			if err == nil || took > bound {
				t.Errorf("ContextTimeoutEnabled %v, caller's deadline %v: Take returned %v after %v; want an error within %v",
					ctxAware, withDeadline, err, took.Round(time.Millisecond), bound)
			}
		}
		st.Close()
		cc.Close() // ends the client's connections to the listener
	}
}

// TestPerMaster_dropsTheCoalescersOfMastersNoLongerUsed: when a new master
// appears, at most once per pruneEvery, the coalescers that no decision used
// since the last pruning and that have nothing in flight are dropped, so
// that the addresses of masters long gone do not pile up; one in use or
// busy stays.
func TestPerMaster_dropsTheCoalescersOfMastersNoLongerUsed(t *testing.T) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cc.Close()
	p := newPerMaster(cc, 0, 1, time.Second, true)
	defer p.close()
	mustAdd := func(addr string) *coalescer {
		t.Helper()
		c, err := p.add(addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	agePruning := func() {
		p.mu.Lock()
		p.pruned = p.pruned.Add(-pruneEvery)
		p.mu.Unlock()
	}
	has := func(want map[string]bool) {
		t.Helper()
		by := *p.by.Load()
		for addr, kept := range want {
			if (by[addr] != nil) != kept {
				t.Errorf("coalescer of %q held: %v, want %v (map %v)", addr, by[addr] != nil, kept, by)
			}
		}
	}
	a := mustAdd("a")
	a.used.Store(true)
	mustAdd("b") // within pruneEvery of the first: nothing is pruned
	has(map[string]bool{"a": true, "b": true})

	agePruning()
	c := mustAdd("c") // prunes b, unused; keeps a, used, and forgets that it was
	has(map[string]bool{"a": true, "b": false, "c": true})
	if a.used.Load() {
		t.Error("a pruning left a's use marked; the next pruning could not tell it idle")
	}

	agePruning()
	c.mu.Lock()
	c.busy = 1 // a batch in flight: kept, used or not
	c.mu.Unlock()
	mustAdd("d") // prunes a, unused since the last pruning
	has(map[string]bool{"a": false, "c": true, "d": true})
	c.mu.Lock()
	c.busy = 0
	c.mu.Unlock()
	if got := mustAdd("a"); got == a {
		t.Error("a master's coalescer, once dropped, came back as the same one")
	}
}
