// Scenario 3: the Redis store on a Redis Cluster of 3 masters and 3
// replicas: the conformance suite, multi-limit rules across shards, and a
// master killed under load.
package integration_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/integration/internal/redisenv"
	"github.com/limitkit/limitkit/redisstore"
	"github.com/redis/go-redis/v9"
)

func TestCluster_Store(t *testing.T) {
	start := time.Now()
	cl := redisenv.StartCluster(t)
	t.Logf("redis image %s, redis %s, cluster of %d nodes ready in %v",
		redisenv.Image(), cl.Version(), len(cl.Addrs()), time.Since(start).Round(time.Millisecond))
	// Long timeouts while the cluster is healthy: the conformance suite
	// counts any error as a failure, and -race on two cores is slow.
	rdb := cl.NewClient(func(o *redis.ClusterOptions) {
		o.ContextTimeoutEnabled = true
		o.ReadTimeout = 10 * time.Second
		o.WriteTimeout = 10 * time.Second
	})

	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, clock core.Clock) core.Store {
			return redisstore.New(rdb, redisstore.WithClock(clock), redisstore.WithTimeout(10*time.Second))
		})
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Run("MultiLimitRulesOnEveryShard", func(t *testing.T) { runClusterMultiLimit(t, rdb) })

	// Failover: the store re-reads the slot map itself after a connection
	// failure (go-redis alone would wait for its periodic reload, a minute
	// by default), so decisions on the failed shard resume as soon as a
	// replica has taken over.
	t.Run("FailoverUnderLoad", func(t *testing.T) {
		runFailover(t, cl, 0, true)
	})
}

// runClusterMultiLimit checks rules of several limits, whose keys the hash
// tag keeps in one slot, on keys spread over all three masters, for every
// algorithm: each key admits exactly what its tightest limit allows, and the
// refusal names that limit.
func runClusterMultiLimit(t *testing.T, rdb *redis.ClusterClient) {
	st := redisstore.New(rdb, redisstore.WithTimeout(10*time.Second))
	ctx := t.Context()
	const keys = 30
	prefix := uniq("ml")
	cases := []struct {
		expr    string
		admit   int
		decider string
	}{
		{"3/minute;5/hour", 3, "3/minute"},
		{"10/minute;4/hour;50/day", 4, "4/hour"},
	}
	shards := map[int]int{}
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowLog, core.SlidingWindowCounter, core.TokenBucket, core.LeakyBucket} {
		for ci, c := range cases {
			rule := core.MustRule(c.expr, alg)
			if alg == core.FixedWindow || alg == core.SlidingWindowCounter {
				// A minute's boundary inside a key's takes opens a new window.
				clearOfBoundary(t, time.Minute, 10*time.Second)
			}
			admitted, wrongDecider := 0, 0
			for k := range keys {
				key := fmt.Sprintf("%s-%d-%d-%d", prefix, alg, ci, k)
				shards[slotShard(keySlot(key))]++
				for range c.admit + 3 {
					d, err := st.Take(ctx, key, rule, 1)
					if err != nil {
						t.Fatalf("%v %s key %s: %v", alg, c.expr, key, err)
					}
					if d.Allowed {
						admitted++
					} else if d.Limit.String() != c.decider {
						wrongDecider++
					}
				}
			}
			if admitted != keys*c.admit || wrongDecider != 0 {
				t.Errorf("%v %s on %d keys: admitted %d, refusals by the wrong limit %d; want %d admitted, all refused by %s",
					alg, c.expr, keys, admitted, wrongDecider, keys*c.admit, c.decider)
			}
		}
	}
	// The state is on every master, each key's limits together.
	perMaster := map[string]int{}
	var mu sync.Mutex
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		ks, err := m.Keys(ctx, "limitkit:{"+prefix+"-*").Result()
		mu.Lock()
		perMaster[m.Options().Addr] = len(ks)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatalf("KEYS on the masters: %v", err)
	}
	t.Logf("multi-limit rules, 5 algorithms × %d rules × %d keys: keys per shard %v, state keys per master %v",
		len(cases), keys, shards, perMaster)
	if len(perMaster) != redisenv.Masters {
		t.Errorf("state on %d masters; want all %d", len(perMaster), redisenv.Masters)
	}
	for addr, n := range perMaster {
		if n == 0 {
			t.Errorf("master %s holds no state; the keys should spread over every shard", addr)
		}
	}
}

// tracked is one key of the failover load and what happened to it. Each key
// is driven by one worker, so its record is sequential and exact.
type tracked struct {
	key        string
	limit      int
	shard      int
	admitted   int
	denied     int
	errs       int
	wrongAdmit int // admitted beyond the limit
	wrongDeny  int // denied while fewer than the limit had been admitted
}

// runFailover runs a bounded load of Takes on many keys (hot ones with a
// limit of 3, exhausted before the fault, and cool ones with a limit of 100,
// never exhausted), kills the master of shard, and measures wrong
// admissions, wrong denials, errors, and the time until decisions resume.
// With reload, a store error makes the client reload its slot map.
func runFailover(t *testing.T, cl *redisenv.Cluster, shard int, reload bool) {
	const (
		workers       = 12
		keysPerWorker = 24 // half hot, half cool
		pace          = 10 * time.Millisecond
		maxTakes      = 60_000
		cleanFor      = 3 * time.Second // error-free operation that ends the run
		// timeout bounds a decision, and the client's reads: long enough
		// that 12 workers on 6 containers sharing 2 loaded cores do not
		// miss it on a healthy shard (which the test counts as wrong). A
		// call in flight to the killed master waits it out (its container's
		// network goes with it, so no reset comes); new dials fail in 1s.
		timeout = 3 * time.Second
	)
	reloadEvery := 60 * time.Second // go-redis's default
	if !reload {
		reloadEvery = 10 * time.Second // shorter, to keep the test short
	}
	maxRun := 25 * time.Second
	if !reload {
		maxRun = reloadEvery + 25*time.Second
	}
	rdb := cl.NewClient(func(o *redis.ClusterOptions) {
		o.ContextTimeoutEnabled = true
		o.ReadTimeout, o.WriteTimeout = timeout, timeout
		o.ClusterStateReloadInterval = reloadEvery
	})
	// Warm up: the first command loads the slot map, which may try a node
	// an earlier failover killed before it finds a live one.
	wctx, wcancel := context.WithTimeout(t.Context(), 30*time.Second)
	err := rdb.ForEachShard(wctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() })
	wcancel()
	if err != nil {
		t.Fatalf("cluster client warm-up: %v", err)
	}
	var reloads atomic.Int64
	obs := &counters{}
	// reload is what redisstore does for cluster clients itself; the test
	// only counts the errors that make it reload.
	obs.hook = func(e core.Event) {
		if e.Kind == core.EventStoreError {
			reloads.Add(1)
		}
	}
	lim := core.New(
		core.WithStore(redisstore.New(rdb)),
		core.WithFailurePolicy(core.FailClosed), // a failure is an error, not a guess
		core.WithProbeInterval(0),               // every check asks the store
		core.WithTimeout(timeout),
		core.WithObserver(obs),
		core.WithLogger(quietLogger()),
	)
	defer lim.Close()
	hot := core.MustRule("3/hour", core.TokenBucket)
	cool := core.MustRule("100/hour", core.TokenBucket)

	prefix := uniq(fmt.Sprintf("fo%d", shard))
	keys := make([][]*tracked, workers)
	for w := range keys {
		for k := range keysPerWorker {
			tr := &tracked{key: fmt.Sprintf("%s-%d-%d", prefix, w, k), limit: 3}
			if k%2 == 1 {
				tr.limit = 100
			}
			tr.shard = slotShard(keySlot(tr.key))
			keys[w] = append(keys[w], tr)
		}
	}

	// hotLeft counts the hot keys not yet denied; exhausted is closed when
	// the last of them is.
	hotLeft := atomic.Int64{}
	hotLeft.Store(workers * keysPerWorker / 2)
	exhausted := make(chan struct{})

	var kill time.Time
	var (
		takes       atomic.Int64
		lastErr     atomic.Int64 // UnixNano
		firstErr    atomic.Int64
		killedAt    atomic.Int64
		shardOK     = make([][]int64, workers) // times of successes on the shard after the kill
		stop        = make(chan struct{})
		wg          sync.WaitGroup
		errMu       sync.Mutex
		errSample   error
		notWrapped  int // errors that do not wrap core.ErrUnavailable
		otherSample error
		clusterDown int // CLUSTERDOWN answers, on any shard
		preKill     int // errors before the kill
		limiterDown int // refused by the limiter's own down state, not by Redis
		decisionLat = make([][]time.Duration, workers)
	)
	ctx := t.Context()
	loadStart := time.Now()
	for w := range workers {
		wg.Go(func() {
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if takes.Add(1) > maxTakes {
					return
				}
				tr := keys[w][i%keysPerWorker]
				rule := hot
				if tr.limit == 100 {
					rule = cool
				}
				t0 := time.Now()
				d, err := lim.Take(ctx, tr.key, rule, 1)
				decisionLat[w] = append(decisionLat[w], time.Since(t0))
				now := time.Now().UnixNano()
				switch {
				case err != nil:
					tr.errs++
					firstErr.CompareAndSwap(0, now)
					lastErr.Store(now)
					errMu.Lock()
					if errSample == nil {
						errSample = err
					}
					if killedAt.Load() == 0 {
						preKill++
					}
					switch {
					case strings.Contains(err.Error(), "CLUSTERDOWN"):
						clusterDown++
					case strings.Contains(err.Error(), "store is down"):
						// The limiter keeps one health state for the whole
						// store: checks that lose the race for the probe
						// are refused without asking Redis, whatever
						// their shard.
						limiterDown++
					case tr.shard != shard && otherSample == nil:
						otherSample = fmt.Errorf("shard %d, %v after the kill: %w", tr.shard, time.Since(kill), err)
					}
					if !errors.Is(err, core.ErrUnavailable) {
						notWrapped++
					}
					errMu.Unlock()
				case d.Allowed:
					tr.admitted++
					if tr.admitted > tr.limit {
						tr.wrongAdmit++
					}
				default:
					if tr.admitted < tr.limit {
						tr.wrongDeny++
					}
					if tr.denied == 0 && tr.limit == 3 && hotLeft.Add(-1) == 0 {
						close(exhausted)
					}
					tr.denied++
				}
				if err == nil && tr.shard == shard && killedAt.Load() != 0 {
					shardOK[w] = append(shardOK[w], now)
				}
			}
		})
	}

	// Once every hot key has run out (each has been denied) and the shard's
	// replica holds every write made so far, kill the master: the exhausted
	// keys must stay exhausted on the replica that takes over.
	wctx, wcancel = context.WithTimeout(ctx, 30*time.Second)
	select {
	case <-exhausted:
	case <-wctx.Done():
		wcancel()
		close(stop)
		wg.Wait()
		t.Fatalf("%d hot keys not yet denied after 30s of load", hotLeft.Load())
	}
	err = cl.WaitReplicated(wctx, shard)
	wcancel()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("waiting for the replica of shard %d: %v", shard, err)
	}
	before := takes.Load()
	kill = time.Now() // StopMaster returns once the engine reports the node dead
	killedAt.Store(kill.UnixNano())
	addr := cl.StopMaster(shard)
	t.Logf("killed the master of shard %d (%s) after %d takes", shard, addr, before)
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = cl.WaitFailover(fctx)
	cancel()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("failover: %v", err)
	}
	failedOver := time.Since(kill)

	// Run until the load has gone cleanFor without an error since the
	// failover, or the run's bound.
	deadline := kill.Add(maxRun)
	for time.Now().Before(deadline) && takes.Load() < maxTakes {
		le := time.Unix(0, lastErr.Load())
		if lastErr.Load() != 0 && time.Since(le) > cleanFor && time.Since(kill) > failedOver+cleanFor {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	end := time.Now()

	var sum struct{ admitted, denied, errs, wrongAdmit, wrongDeny, shardErrs, otherErrs int }
	for _, ws := range keys {
		for _, tr := range ws {
			sum.admitted += tr.admitted
			sum.denied += tr.denied
			sum.errs += tr.errs
			sum.wrongAdmit += tr.wrongAdmit
			sum.wrongDeny += tr.wrongDeny
			if tr.shard == shard {
				sum.shardErrs += tr.errs
			} else {
				sum.otherErrs += tr.errs
			}
		}
	}
	var all []time.Duration
	for _, l := range decisionLat {
		all = append(all, l...)
	}
	// Decisions on the shard resumed with the first success after its last
	// error.
	var resumed time.Duration
	for _, oks := range shardOK {
		for _, at := range oks {
			if d := time.Unix(0, at).Sub(kill); at > lastErr.Load() && (resumed == 0 || d < resumed) {
				resumed = d
			}
		}
	}
	errWindow := time.Duration(0)
	if le := lastErr.Load(); le != 0 {
		errWindow = time.Unix(0, le).Sub(time.Unix(0, firstErr.Load()))
	}
	label := "with the store's slot-map reload on connection errors"
	if !reload {
		label = fmt.Sprintf("without reload on errors (ClusterStateReloadInterval %v)", reloadEvery)
	}
	t.Logf("failover of shard %d %s: %d takes on %d keys (%d hot at 3/hour, %d cool at 100/hour) over %v; "+
		"cluster failed over after %v; decisions on the shard resumed %v after the kill; errors %d (%d on the shard, %d elsewhere; %d of all were CLUSTERDOWN, %d refused by the limiter's down state without asking Redis) over a window of %v; "+
		"admitted %d, denied %d, wrongly admitted %d, wrongly denied %d; store errors seen %d; decision latency %v",
		shard, label, takes.Load(), workers*keysPerWorker, workers*keysPerWorker/2, workers*keysPerWorker/2,
		end.Sub(loadStart).Round(time.Millisecond), failedOver.Round(time.Millisecond),
		resumed.Round(time.Millisecond), sum.errs, sum.shardErrs, sum.otherErrs, clusterDown, limiterDown, errWindow.Round(time.Millisecond),
		sum.admitted, sum.denied, sum.wrongAdmit, sum.wrongDeny, reloads.Load(), summarize(all))
	if errSample != nil {
		t.Logf("first error: %v", errSample)
	}
	if otherSample != nil {
		t.Logf("first error on another shard: %v", otherSample)
	}

	// Decisions resumed on the shard, and have since run error-free.
	if resumed == 0 {
		t.Fatalf("no decision on shard %d succeeded within %v of the kill", shard, maxRun)
	}
	limit := 20 * time.Second
	if !reload {
		limit = reloadEvery + 20*time.Second
	}
	if resumed > limit {
		t.Errorf("decisions on the shard resumed %v after the kill; want within %v", resumed, limit)
	}
	if since := end.Sub(time.Unix(0, lastErr.Load())); sum.errs > 0 && since < cleanFor {
		t.Errorf("the last error came %v before the end of the run; decisions never ran clean for %v", since, cleanFor)
	}
	// Only the dead master's keys may fail, but for CLUSTERDOWN: while a
	// slot range has no master (from the failure's detection to the
	// replica's promotion) every node refuses every query, as Redis does
	// by default (cluster-require-full-coverage yes); and but for checks the
	// limiter refused itself, because it keeps one down state for the whole
	// store (see limiterDown).
	if preKill > 0 {
		t.Errorf("%d errors before the kill", preKill)
	}
	if otherSample != nil {
		t.Errorf("errors on keys of the healthy shards other than CLUSTERDOWN; first: %v", otherSample)
	}
	// The replica had the state: the exhausted keys of the shard stay
	// exhausted. (Replication is asynchronous; the kill waited for the
	// replica to catch up with the writes that exhausted them.)
	if sum.wrongAdmit > 0 {
		t.Errorf("%d requests admitted beyond their limit after the failover", sum.wrongAdmit)
	}
	if sum.admitted == 0 || sum.denied == 0 {
		t.Errorf("admitted %d, denied %d: the load did not exercise both", sum.admitted, sum.denied)
	}
	// A request that timed out may still have been charged (its script ran,
	// the answer was lost), so a hot key may run out one error early; there
	// is no other way to be denied below the limit.
	if sum.wrongDeny > sum.shardErrs {
		t.Errorf("%d requests denied below their limit, more than the %d errors that may have been charged", sum.wrongDeny, sum.shardErrs)
	}
	if notWrapped > 0 {
		t.Errorf("%d errors do not wrap core.ErrUnavailable (first: %v)", notWrapped, errSample)
	}
}
