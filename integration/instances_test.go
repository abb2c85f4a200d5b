// Scenarios 1 and 2: several app instances, each with its own Redis client,
// store and limiter, share one budget through one Redis, exactly, whatever
// their framework and whatever their clocks say.
package integration_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/integration/internal/redisenv"
)

const (
	instances   = 3
	fanRequests = 1000
)

// exactAlgorithms admit exactly their count in one burst at 100/hour.
var exactAlgorithms = []core.Algorithm{core.FixedWindow, core.SlidingWindowLog, core.TokenBucket, core.SlidingWindowCounter}

func TestInstancesShareExactLimits(t *testing.T) {
	srv := redisenv.StartStandalone(t)
	t.Logf("redis image %s, redis %s", redisenv.Image(), srv.Version())
	client := newHTTPClient(t)

	for _, fw := range frameworks {
		t.Run(fw.name, func(t *testing.T) {
			for _, alg := range exactAlgorithms {
				t.Run(alg.String(), func(t *testing.T) {
					runExact(t, srv, client, fw, alg)
				})
			}
			t.Run("leaky-bucket", func(t *testing.T) { runLeaky(t, srv, client, fw) })
		})
	}
}

// runExact sends 1,000 concurrent requests from one client across three
// instances at 100/hour: exactly 100 must be admitted.
func runExact(t *testing.T, srv *redisenv.Standalone, client *http.Client, fw framework, alg core.Algorithm) {
	const limit = 100
	mw := []core.MiddlewareOption{core.WithName(uniq("s1-" + fw.name[:3] + "-" + alg.String())), core.WithAlgorithm(alg)}
	if alg == core.TokenBucket {
		mw = append(mw, core.WithBurst(limit))
	}
	insts := startInstances(t, srv, instances, instanceConfig{fw: fw, expr: "100/hour", mwOpts: mw, limOpts: exactLimiter})
	if alg == core.FixedWindow {
		clearOfBoundary(t, time.Hour, 30*time.Second)
	}

	start := time.Now()
	replies := fanOut(t, client, insts, fanRequests, "")
	elapsed := time.Since(start)
	tl := count(replies, instances)
	lat := summarize(latenciesOf(replies))
	t.Logf("%s %s 100/hour, %d concurrent requests over %d instances in %v: %v; latency %v",
		fw.name, alg, fanRequests, instances, elapsed.Round(time.Millisecond), tl, lat)

	if tl.admitted != limit || tl.denied != fanRequests-limit || tl.errs+tl.other+tl.unavailable != 0 {
		t.Errorf("admitted %d, denied %d, failed %d; want exactly %d admitted, %d denied, none failed (%s)",
			tl.admitted, tl.denied, tl.errs+tl.other+tl.unavailable, limit, fanRequests-limit, firstErrors(replies))
	}
	// The budget is shared when instances that each saw requests admitted
	// only the limit between them: on budgets of their own, every instance
	// given 100 requests would admit 100. Which instances did the admitting
	// is up to the scheduler (a loaded machine may let one win them all),
	// so it is not asserted.
	served := make([]int, instances)
	for _, r := range replies {
		served[r.inst]++
	}
	for i, n := range served {
		if n < limit {
			t.Fatalf("instance %d got %d of %d requests; each must get at least %d for the exact count to prove a shared budget", i, n, fanRequests, limit)
		}
	}
	for i, in := range insts {
		if n := in.obs.notStore(); n != 0 || in.obs.storeErrors.Load() != 0 {
			t.Errorf("instance %d: %d decisions by the failure policy, %d store errors; want every decision from Redis",
				i, n, in.obs.storeErrors.Load())
		}
	}
	// Each admission is one atomic step in Redis, so the admitted requests
	// saw every remaining count from 99 down to 0 exactly once. (The token
	// bucket refills a little during the burst, so its counts may repeat.)
	if alg != core.TokenBucket {
		want := make([]int, limit)
		for i := range want {
			want[i] = i
		}
		if got := remainingSet(replies); !slices.Equal(got, want) {
			t.Errorf("X-Ratelimit-Remaining of admitted requests = %v; want each of 0..99 once", got)
		}
	}
}

// maxInWindow is the largest number of sorted times within any span of d.
func maxInWindow(times []time.Time, d time.Duration) int {
	most, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) > d {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

func latenciesOf(replies []reply) []time.Duration {
	ds := make([]time.Duration, len(replies))
	for i, r := range replies {
		ds[i] = r.latency
	}
	return ds
}

// runLeaky offers requests faster than a 20/second leaky bucket (burst 5)
// drains, across three instances: admitted requests must be released at the
// bucket's pace, at most burst of them waiting at a time.
func runLeaky(t *testing.T, srv *redisenv.Standalone, client *http.Client, fw framework) {
	const (
		rate     = 20
		burst    = 5
		step     = time.Second / rate
		offered  = 160
		interval = 12500 * time.Microsecond // 80 requests/second, four times the rate
		// tolerance for the spacing of releases: each is timed by the Go
		// timer of its instance, from a delay Redis computed one round trip
		// earlier.
		tolerance = 15 * time.Millisecond
	)
	var (
		mu       sync.Mutex
		releases []time.Time
		delays   []time.Duration
		// holds are when each admitted request was decided and when it was
		// due: decided plus the delay Redis gave it. Its instance starts
		// the hold's timer after the observer heard the decision, so it is
		// never served before it is due; but a loaded machine may serve it
		// later, next to the following one.
		holds []window
		// slots bound when Redis scheduled each admitted request: its
		// delay after the moment Redis decided, which lies within the
		// store call the observer timed (Event.Latency). The pace is
		// judged on these, so that a stall of this process, which
		// lengthens the call it lands in, cannot pass for a burst.
		slots []window
		// decided bounds when Redis made its first and its last decision,
		// refusals included: from the earliest start of a store call that
		// decided to the latest moment the observer heard one.
		decided window
		held    atomic.Int64
		maxHeld atomic.Int64
	)
	ok := func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		held.Add(-1)
		mu.Lock()
		releases = append(releases, now)
		mu.Unlock()
		okHandler(w, r)
	}
	hook := func(_ int, e core.Event) {
		if e.Kind != core.EventDecision || e.DecidedBy != core.ActionStore {
			return
		}
		heard := time.Now()
		mu.Lock()
		if from := heard.Add(-e.Latency); decided.from.IsZero() || from.Before(decided.from) {
			decided.from = from
		}
		decided.to = maxTime(decided.to, heard)
		mu.Unlock()
		if !e.Decision.Allowed {
			return
		}
		n := held.Add(1)
		for {
			m := maxHeld.Load()
			if n <= m || maxHeld.CompareAndSwap(m, n) {
				break
			}
		}
		now := time.Now()
		mu.Lock()
		delays = append(delays, e.Decision.Delay)
		holds = append(holds, window{from: now, to: now.Add(e.Decision.Delay)})
		slots = append(slots, window{from: now.Add(e.Decision.Delay - e.Latency), to: now.Add(e.Decision.Delay)})
		mu.Unlock()
	}
	mw := []core.MiddlewareOption{core.WithName(uniq("s1-" + fw.name[:3] + "-leaky")), core.WithAlgorithm(core.LeakyBucket), core.WithBurst(burst)}
	insts := startInstances(t, srv, instances, instanceConfig{
		fw: fw, expr: strconv.Itoa(rate) + "/second", mwOpts: mw, limOpts: exactLimiter, ok: ok, hook: hook,
	})

	replies := make([]reply, offered)
	var wg sync.WaitGroup
	tick := time.NewTicker(interval)
	start := time.Now()
	for k := range offered {
		if k > 0 {
			<-tick.C
		}
		wg.Go(func() { replies[k] = get(t.Context(), client, insts, k%instances, "") })
	}
	tick.Stop()
	offeredFor := time.Since(start)
	wg.Wait()
	tl := count(replies, instances)

	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(releases, func(a, b time.Time) int { return a.Compare(b) })
	var gaps []time.Duration
	for i := 1; i < len(releases); i++ {
		gaps = append(gaps, releases[i].Sub(releases[i-1]))
	}
	g := summarize(gaps)
	minGap := time.Duration(0)
	if len(gaps) > 0 {
		minGap = slices.Min(gaps)
	}
	var mean time.Duration
	if len(releases) > 1 {
		mean = releases[len(releases)-1].Sub(releases[0]) / time.Duration(len(releases)-1)
	}
	dues := make([]time.Time, len(holds))
	for i, h := range holds {
		dues[i] = h.to
	}
	slices.SortFunc(dues, func(a, b time.Time) int { return a.Compare(b) })
	// The mean spacing of the due times, at its most: from the earliest
	// Redis can have scheduled one to the latest, so that an answer slow to
	// reach its instance (which moves that due time later as the instance
	// sees it) cannot pass for a burst.
	var meanDue time.Duration
	if len(slots) > 1 {
		first, last := slots[0].from, slots[0].to
		for _, s := range slots[1:] {
			first, last = minTime(first, s.from), maxTime(last, s.to)
		}
		meanDue = last.Sub(first) / time.Duration(len(slots)-1)
	}
	// early is how many requests were released before they were due: the
	// k-th release must not come before the k-th due time.
	early := 0
	for k := range min(len(releases), len(dues)) {
		if releases[k].Before(dues[k]) {
			early++
		}
	}
	maxDelay := time.Duration(0)
	if len(delays) > 0 {
		maxDelay = slices.Max(delays)
	}
	t.Logf("%s leaky-bucket %d/second burst %d, %d requests offered over %v: %v; release spacing min %v mean %v (gaps %v), "+
		"at most %d released in any 500ms (%d due, %d surely scheduled by Redis), longest hold %v, most held at once %d (%d by their due times)",
		fw.name, rate, burst, offered, offeredFor.Round(time.Millisecond), tl, minGap.Round(10*time.Microsecond),
		mean.Round(10*time.Microsecond), g, maxInWindow(releases, 500*time.Millisecond), maxInWindow(dues, 500*time.Millisecond), maxWithin(slots, 500*time.Millisecond),
		maxDelay.Round(time.Millisecond), maxHeld.Load(), maxOverlap(holds))

	if tl.errs+tl.other+tl.unavailable != 0 || tl.admitted+tl.denied != offered {
		t.Fatalf("%d requests failed (%s)", tl.errs+tl.other+tl.unavailable, firstErrors(replies))
	}
	for i, in := range insts {
		if n := in.obs.notStore(); n != 0 {
			t.Errorf("instance %d: %d decisions by the failure policy; want every decision from Redis", i, n)
		}
	}
	// The bucket drains at rate: between Redis's first and last decision
	// (bounded as the instances timed them, since the last requests may
	// reach Redis well after the test sent them) it can have admitted at
	// most its burst plus what drained; and the load, four times the rate,
	// keeps it full, so it admits nearly what drained while it was offered.
	most := burst + int(decided.to.Sub(decided.from)/step) + 1
	least := int(offeredFor/step) * 8 / 10
	if tl.admitted > most || tl.admitted < least {
		t.Errorf("admitted %d in %v; want between %d and %d", tl.admitted, offeredFor.Round(time.Millisecond), least, most)
	}
	if len(releases) != tl.admitted {
		t.Errorf("%d handlers ran for %d admitted requests", len(releases), tl.admitted)
	}
	// Held, then served: no request is released before it is due.
	if early > 0 {
		t.Errorf("%d admitted requests were released before their delay was up", early)
	}
	// The pace: the median spacing of releases is the step (a release run
	// late moves two gaps, not the median), and no half second holds more
	// of Redis's schedule than the rate allows, give or take one: counted
	// are the requests whose slot surely lies in it, as bounded above.
	if g.p50 < step-tolerance || g.p50 > step+tolerance {
		t.Errorf("median spacing of releases %v; want %v ± %v", g.p50, step, tolerance)
	}
	const window = 500 * time.Millisecond
	if most, allowed := maxWithin(slots, window), int(window/step)+2; most > allowed {
		t.Errorf("%d requests scheduled by Redis within %v; the pace of %d/second allows %d (one of them jitter)", most, window, rate, allowed)
	}
	if meanDue < step*98/100 {
		t.Errorf("admitted requests were due every %v on average (at most); want at least %v", meanDue, step)
	}
	// The queue holds at most burst requests: the last of them waits for the
	// burst−1 before it. (How many this process held at once is only a
	// figure: each hold starts when the instance hears Redis's answer, so
	// one answer that is slow to arrive overlaps holds Redis had already
	// ended; the delays Redis gave are the queue.)
	if maxDelay > (burst-1)*step {
		t.Errorf("a request was held %v; the queue of %d allows at most %v", maxDelay, burst, (burst-1)*step)
	}
}

// maxWithin is the largest number of spans that lie wholly inside one span
// of d.
func maxWithin(ws []window, d time.Duration) int {
	most := 0
	for _, w := range ws { // some best span starts where one of them does
		n := 0
		for _, v := range ws {
			if !v.from.Before(w.from) && !v.to.After(w.from.Add(d)) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// maxOverlap is the largest number of spans that hold at one instant.
func maxOverlap(ws []window) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var es []edge
	for _, w := range ws {
		es = append(es, edge{w.from, 1}, edge{w.to, -1})
	}
	// Ends before starts at the same instant: a span is [from, to).
	slices.SortFunc(es, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	most, n := 0, 0
	for _, e := range es {
		n += e.delta
		most = max(most, n)
	}
	return most
}

// TestClockSkewDoesNotMatter runs three instances whose clocks disagree by
// minutes: only Redis's clock counts, so together they admit exactly the
// limit, and they agree on when it resets.
func TestClockSkewDoesNotMatter(t *testing.T) {
	srv := redisenv.StartStandalone(t)
	t.Logf("redis image %s, redis %s", redisenv.Image(), srv.Version())
	client := newHTTPClient(t)
	skews := []time.Duration{-5 * time.Minute, 0, 7 * time.Minute}
	const (
		limit    = 20
		requests = 300
	)
	for _, alg := range exactAlgorithms {
		t.Run(alg.String(), func(t *testing.T) {
			mw := []core.MiddlewareOption{core.WithName(uniq("s2-" + alg.String())), core.WithAlgorithm(alg)}
			// A bucket of 20/minute gains a token every 3s, which a slow
			// fan-out on a loaded machine outlasts: the buckets get an hour,
			// in which their reset (the time to full) is the one figure that
			// shows a clock, theirs being relative.
			period, maxReset := "minute", 60
			if alg == core.TokenBucket || alg == core.LeakyBucket {
				period, maxReset = "hour", 3600
			}
			insts := startInstances(t, srv, len(skews), instanceConfig{
				fw: frameworks[0], expr: fmt.Sprintf("%d/%s", limit, period), mwOpts: mw, limOpts: exactLimiter,
				limOptsAt: func(i int) []core.Option {
					skew := skews[i]
					return []core.Option{core.WithClock(func() time.Time { return time.Now().Add(skew) })}
				},
			})
			if alg == core.FixedWindow || alg == core.SlidingWindowCounter {
				// Across a boundary the new window (for the counter, as the
				// old one's weight falls) admits again.
				clearOfBoundary(t, time.Minute, 15*time.Second)
			}
			replies := fanOut(t, client, insts, requests, "")
			tl := count(replies, len(insts))
			resets := map[string]int{}
			for _, r := range replies {
				if r.status == http.StatusOK {
					resets[r.reset]++
				}
			}
			t.Logf("%s %d/%s, clocks skewed %v, %d concurrent requests: %v; X-Ratelimit-Reset of admitted: %v",
				alg, limit, period, skews, requests, tl, resets)

			if tl.admitted != limit || tl.denied != requests-limit {
				t.Errorf("admitted %d, denied %d (%s); want exactly %d admitted", tl.admitted, tl.denied, firstErrors(replies), limit)
			}
			// Reset comes from Redis's clock too: within the window (two for
			// the sliding counter, whose previous window counts), and, for
			// the windowed algorithms, the same on every instance.
			if alg == core.SlidingWindowCounter {
				maxReset = 120
			}
			var seen []int
			for r := range resets {
				n, err := strconv.Atoi(r)
				if err != nil || n < 0 || n > maxReset {
					t.Errorf("X-Ratelimit-Reset %q; want 0..%d seconds whatever the instance's clock", r, maxReset)
				}
				seen = append(seen, n)
			}
			if (alg == core.FixedWindow || alg == core.SlidingWindowCounter) && len(seen) > 0 && slices.Max(seen)-slices.Min(seen) > 1 {
				t.Errorf("instances disagree on X-Ratelimit-Reset: %v", resets)
			}
			for i, in := range insts {
				if n := in.obs.notStore(); n != 0 {
					t.Errorf("instance %d: %d decisions by the failure policy", i, n)
				}
			}
		})
	}
}
