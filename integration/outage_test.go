// Scenarios 4 and 5: standalone Redis paused, stopped and restarted empty
// under load, with each failure policy.
package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/integration/internal/redisenv"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

const (
	outageTimeout = 100 * time.Millisecond // core.WithTimeout of the outage scenarios
	// outageLimit is per hour, per client: a check of the exact limit that a
	// loaded machine stretches over seconds never meets the start of a new
	// window, in which the sliding window would admit a little more.
	outageLimit = 20
)

// leakOptions ignore goroutines of the Docker client, which the harness's
// fault injections start: idle keep-alive connections to the engine, and
// dockertest's self-destruction timers (Resource.Expire).
var leakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("github.com/ory/dockertest/v3.(*Resource).Expire.func1"),
}

// policyGroup is three instances under one failure policy.
type policyGroup struct {
	policy core.FailurePolicy
	insts  []*instance
}

// backgroundLoad sends requests from workers per group, each worker as its
// own client rotating over the group's instances, until stop or maxRequests.
type backgroundLoad struct {
	mu      sync.Mutex
	records []loadRecord
	added   signal
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startLoad(t *testing.T, c *http.Client, groups []*policyGroup, workers, maxRequests int) *backgroundLoad {
	l := &backgroundLoad{stop: make(chan struct{})}
	ctx := t.Context()
	var sent sync.Mutex
	n := 0
	for g, grp := range groups {
		for w := range workers {
			l.wg.Go(func() {
				client := uniq(fmt.Sprintf("bg-%d-%d", g, w))
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-l.stop:
						return
					case <-tick.C:
					}
					sent.Lock()
					n++
					over := n > maxRequests
					sent.Unlock()
					if over {
						return
					}
					r := send(ctx, c, grp.insts, (w+i)%len(grp.insts), client)
					r.group = g
					l.mu.Lock()
					l.records = append(l.records, r)
					l.added.notify()
					l.mu.Unlock()
				}
			})
		}
	}
	t.Cleanup(l.finish)
	return l
}

func (l *backgroundLoad) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// await waits until cond holds of the records so far (called with l.mu
// held, once per new record).
func (l *backgroundLoad) await(t *testing.T, what string, cond func(rs []loadRecord) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), awaitTimeout)
	defer cancel()
	if err := await(ctx, &l.mu, &l.added, func() bool { return cond(l.records) }); err != nil {
		t.Fatalf("waiting for the background load: %s: %v", what, err)
	}
}

// awaitEach waits until every group's load has n requests that match.
func (l *backgroundLoad) awaitEach(t *testing.T, groups int, n int, what string, match func(r loadRecord) bool) {
	t.Helper()
	l.await(t, fmt.Sprintf("%d requests per group %s", n, what), func(rs []loadRecord) bool {
		got := make([]int, groups)
		for _, r := range rs {
			if match(r) {
				got[r.group]++
			}
		}
		for _, k := range got {
			if k < n {
				return false
			}
		}
		return true
	})
}

// of returns the records of group g.
func (l *backgroundLoad) of(g int) []loadRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loadRecord
	for _, r := range l.records {
		if r.group == g {
			out = append(out, r)
		}
	}
	return out
}

// sequential sends n requests as one client, rotating over insts, one after
// another.
func sequential(t *testing.T, c *http.Client, insts []*instance, n int, client string) []loadRecord {
	out := make([]loadRecord, n)
	for k := range out {
		out[k] = send(t.Context(), c, insts, k%len(insts), client)
	}
	return out
}

// outageWindows are, per group and instance, the span in which the
// instance reported the store down during one outage.
type outageWindows [][]window

// awaitOutage waits until every instance of groups reports its store down,
// after Redis was taken down, and returns when the last did. An instance
// may have gone down a little earlier, on a deadline a loaded machine
// missed: it stays down, as no probe can succeed until Redis is back.
func awaitOutage(t *testing.T, groups []*policyGroup) time.Time {
	t.Helper()
	for _, g := range groups {
		awaitTransitions(t, g.insts, "the store down", func(trans []transition, _ []storeError) bool {
			return len(trans) > 0 && !trans[len(trans)-1].up
		})
	}
	return time.Now()
}

// awaitFailedProbe waits until the background load has, for every instance,
// a request sent after since (when every instance reported its store down)
// whose own call of the store failed: a probe, which left the limiter down.
func (l *backgroundLoad) awaitFailedProbe(t *testing.T, groups []*policyGroup, since time.Time) {
	t.Helper()
	l.await(t, "a failed probe on every instance", func(rs []loadRecord) bool {
		for gi, g := range groups {
			for i := range g.insts {
				found := false
				for _, r := range rs {
					if r.group == gi && r.inst == i && r.storeFailed && r.decided && r.action != core.ActionStore && !r.start.Before(since) {
						found = true
						break
					}
				}
				if !found {
					return false
				}
			}
		}
		return true
	})
}

// awaitUp waits until every instance has reported its store up after back
// (when Redis was being brought back: no probe can succeed before), and
// returns each instance's down window of the outage (from its last
// store-down before back to that store-up) and, per policy, the longest
// time from back to an instance's store-up event.
func awaitUp(t *testing.T, groups []*policyGroup, back time.Time) (outageWindows, map[core.FailurePolicy]time.Duration) {
	t.Helper()
	w := make(outageWindows, len(groups))
	rec := map[core.FailurePolicy]time.Duration{}
	for gi, g := range groups {
		for _, in := range g.insts {
			awaitTransitions(t, []*instance{in}, "the store up again", func(trans []transition, _ []storeError) bool {
				_, ok := upAfter(trans, back)
				return ok
			})
			var win window
			trans := in.obs.transitions()
			for _, tr := range trans {
				if !tr.up && tr.at.Before(back) {
					win.from = tr.at
				}
			}
			win.to, _ = upAfter(trans, back)
			w[gi] = append(w[gi], win)
			rec[g.policy] = max(rec[g.policy], win.to.Sub(back))
		}
	}
	return w, rec
}

// in reports whether r, of group g, lies in its instance's window.
func (w outageWindows) in(g int, r loadRecord) bool { return w[g][r.inst].holds(r) }

// TestOutage pauses, then stops and restarts, a standalone Redis under load
// through three instances for each failure policy (chi routes): while an
// instance reports its store down, every request is decided by the policy
// (no 5xx under Fallback and FailOpen, 503 under FailClosed); every request
// at any time gets what its decision calls for; while Redis is frozen, the
// check's deadline ends every call of the store (the clients have no
// timeout of their own); shared state again once the instances report the
// store up; no goroutine left.
//
// Nothing here is timed: the scenario waits for the instances' store-down
// and store-up events, a failed probe and enough requests of the load, and
// it judges each request by how its limiter decided it.
func TestOutage(t *testing.T) {
	srv := redisenv.StartStandalone(t)
	t.Logf("redis image %s, redis %s", redisenv.Image(), srv.Version())
	// Taken with the server up: what the harness started so far stays.
	ignore := append([]goleak.Option{goleak.IgnoreCurrent()}, leakOptions...)
	client := newHTTPClient(t)

	policies := []core.FailurePolicy{core.Fallback, core.FailOpen, core.FailClosed}
	var groups []*policyGroup
	for _, p := range policies {
		groups = append(groups, &policyGroup{policy: p, insts: startInstances(t, srv, instances, instanceConfig{
			fw:     frameworks[1], // chi
			expr:   fmt.Sprintf("%d/hour", outageLimit),
			mwOpts: []core.MiddlewareOption{core.WithName(uniq("s4-" + p.String())), byClient},
			limOpts: []core.Option{
				core.WithFailurePolicy(p), core.WithTimeout(outageTimeout), core.WithLogger(quietLogger()),
			},
			// No timeouts of the client's own: only the check's deadline
			// can end a call of a frozen Redis, so that every instance
			// reporting the store down while it is frozen shows the
			// deadline held; without it they would wait for the unpause.
			redisOpts: func(o *redis.Options) { o.PoolSize, o.ReadTimeout, o.WriteTimeout = 16, -1, -1 },
		})})
	}

	load := startLoad(t, client, groups, 2, 40_000)
	// restore brings Redis back if the scenario ends while it is down, so
	// that the instances' servers, whose handlers may be waiting for it,
	// can close (cleanups run in reverse, this one before theirs).
	var restore func()
	t.Cleanup(func() {
		if restore != nil {
			restore()
		}
	})
	anyRecord := func(loadRecord) bool { return true }
	load.awaitEach(t, len(groups), 30, "before the outage", anyRecord)

	// checks holds the requests of the checks below, judged with the load's.
	checks := make([][]loadRecord, len(groups))
	// checkFresh sends requests of a new client until 3×limit were decided
	// by the store: shared state admits exactly the limit. On a -race build
	// sharing two cores, a healthy Redis can still miss the 100ms deadline
	// now and then; the policy decides that request, and the check waits
	// for the instance to report the store up again and goes on.
	checkFresh := func(when string) {
		t.Helper()
		for gi, g := range groups {
			rs := untilStoreDecided(t, client, g.insts, 3*outageLimit, uniq("fresh-"+when))
			checks[gi] = append(checks[gi], rs...)
			st := tallyStore(rs)
			t.Logf("%s, %v: a new client's %d requests: %v; %v", when, g.policy, len(rs), count(replies(rs), instances), st)
			if msg := st.exactly(outageLimit); msg != "" {
				t.Errorf("%s, %v: %s", when, g.policy, msg)
			}
		}
	}
	// checkDown sends 5×limit requests of a new client while Redis is down
	// and every instance has reported so: the policy decides them all.
	checkDown := func(when string) {
		t.Helper()
		for gi, g := range groups {
			rs := sequential(t, client, g.insts, 5*outageLimit, uniq("hot-"+when))
			checks[gi] = append(checks[gi], rs...)
			tl := count(replies(rs), instances)
			t.Logf("%s, %v: a new client's %d requests: %v", when, g.policy, len(rs), tl)
			for _, r := range rs {
				if r.decided && r.action == core.ActionStore {
					t.Errorf("%s, %v: a request was decided by the store while Redis was down", when, g.policy)
					break
				}
			}
			switch g.policy {
			case core.Fallback: // each instance limits on its own
				for i, n := range tl.perInstance {
					if n > outageLimit {
						t.Errorf("%s, fallback: instance %d admitted %d; its local limit is %d", when, i, n, outageLimit)
					}
				}
				if tl.admitted < outageLimit || tl.admitted > instances*outageLimit || tl.unavailable+tl.other+tl.errs > 0 {
					t.Errorf("%s, fallback: %v; want %d to %d admitted, the rest 429", when, tl, outageLimit, instances*outageLimit)
				}
			case core.FailOpen:
				if tl.admitted != len(rs) {
					t.Errorf("%s, fail-open: %v; want every request served", when, tl)
				}
			case core.FailClosed:
				if tl.unavailable != len(rs) {
					t.Errorf("%s, fail-closed: %v; want every request refused with 503", when, tl)
				}
			}
		}
	}
	checkFresh("before the outage")

	// outage takes Redis down with down and waits until every instance has
	// reported its store down; checks the instances; waits until each has
	// had a probe fail (the store stays down) while the load ran into it;
	// brings Redis back with up, and waits until every instance has
	// reported its store up again.
	type outageTimes struct {
		downing, down, upping, up time.Time // before and after down(), before and after up()
		win                       outageWindows
		rec                       map[core.FailurePolicy]time.Duration
	}
	outage := func(name string, down, up func()) outageTimes {
		t.Helper()
		var o outageTimes
		o.downing = time.Now()
		restore = up
		down()
		o.down = time.Now()
		allDown := awaitOutage(t, groups)
		checkDown(name)
		load.awaitFailedProbe(t, groups, allDown)
		o.upping = time.Now()
		restore = nil
		up()
		o.up = time.Now()
		o.win, o.rec = awaitUp(t, groups, o.upping)
		return o
	}

	// Paused: connections stay open, nothing answers.
	pause := outage("paused", srv.Pause, srv.Unpause)
	t.Logf("after unpause, instances back on Redis (observer's store-up) within: %v", pause.rec)
	recoveredPause := time.Now()
	checkFresh("after unpause")
	load.awaitEach(t, len(groups), 30, "after the pause", func(r loadRecord) bool { return r.start.After(recoveredPause) })

	// Stopped: connections break, dials time out; the restart loses state.
	stop := outage("stopped", srv.Stop, srv.Start)
	t.Logf("Start took %v (container start and PING); instances back on Redis within %v of calling it", stop.up.Sub(stop.upping).Round(time.Millisecond), stop.rec)
	recoveredStart := time.Now()
	checkFresh("after restart")
	load.awaitEach(t, len(groups), 30, "after the restart", func(r loadRecord) bool { return r.start.After(recoveredStart) })
	load.finish()

	// The phases only sort the figures; the verdicts below do not depend on
	// them. A request is in "paused" or "stopped" if it lay inside its
	// instance's down window of that outage; the rest by when it started.
	type phase struct {
		name string
		in   func(g int, r loadRecord) bool
		down bool // inside a down window: decided by the policy
	}
	started := func(from, to time.Time) func(int, loadRecord) bool {
		return func(_ int, r loadRecord) bool {
			return !r.start.Before(from) && (to.IsZero() || r.start.Before(to))
		}
	}
	phases := []phase{
		{"paused", pause.win.in, true},
		{"stopped", stop.win.in, true},
		{"healthy", started(time.Time{}, pause.downing), false},
		{"recovering from pause", started(pause.downing, recoveredPause), false},
		{"healthy again", started(recoveredPause, stop.downing), false},
		{"recovering from restart", started(stop.downing, recoveredStart), false},
		{"after restart", started(recoveredStart, time.Time{}), false},
	}
	for gi, g := range groups {
		all := load.of(gi)
		byPhase := make([][]loadRecord, len(phases))
		for _, r := range all {
			for pi, ph := range phases {
				if ph.in(gi, r) {
					byPhase[pi] = append(byPhase[pi], r)
					break
				}
			}
		}
		var lat []time.Duration
		for _, r := range all {
			lat = append(lat, r.latency)
		}
		t.Logf("%v: %d background requests: %v; latency %v", g.policy, len(all), count(replies(all), instances), summarize(lat))
		for _, pi := range []int{2, 0, 3, 4, 1, 5, 6} { // in the order they happened
			ph, rs := phases[pi], byPhase[pi]
			var pl []time.Duration
			for _, r := range rs {
				pl = append(pl, r.latency)
			}
			t.Logf("  %-24s %v; %v; latency %v", ph.name+":", count(replies(rs), instances), tallyStore(rs), summarize(pl))
			if len(rs) == 0 && ph.name != "recovering from pause" && ph.name != "recovering from restart" {
				t.Errorf("%v, %s: no requests", g.policy, ph.name)
			}
			if !ph.down {
				continue
			}
			// Inside the window the store cannot have decided; so every
			// request got the policy's answer.
			tl := count(replies(rs), instances)
			for _, r := range rs {
				if r.decided && r.action == core.ActionStore {
					t.Errorf("%v, %s: a request inside the instance's down window was decided by the store", g.policy, ph.name)
					break
				}
			}
			switch g.policy {
			case core.Fallback:
				if tl.unavailable+tl.other+tl.errs > 0 {
					t.Errorf("fallback, %s: %v; want every request 200 or 429", ph.name, tl)
				}
			case core.FailOpen:
				if tl.admitted != len(rs) {
					t.Errorf("fail-open, %s: %v; want every request served", ph.name, tl)
				}
			case core.FailClosed:
				if tl.unavailable != len(rs) {
					t.Errorf("fail-closed, %s: %v; want every request 503", ph.name, tl)
				}
			}
		}
		// Every request, background or check, at any time, got what its
		// decision calls for under the group's policy; and none lay inside
		// any down window of its instance (an outage or a deadline a loaded
		// machine missed) and was decided by the store.
		windows := make([][]window, len(g.insts))
		for i, in := range g.insts {
			windows[i] = downWindows(in.obs.transitions())
		}
		breaches := 0
		for _, r := range append(all, checks[gi]...) {
			msg := breach(g.policy, r)
			if msg == "" && r.action == core.ActionStore {
				for _, w := range windows[r.inst] {
					if w.holds(r) {
						msg = "decided by the store inside a down window"
					}
				}
			}
			if msg != "" {
				if breaches++; breaches <= 3 {
					t.Errorf("%v: instance %d, request at %v from the pause: %s", g.policy, r.inst, r.start.Sub(pause.downing).Round(time.Millisecond), msg)
				}
			}
		}
		if breaches > 3 {
			t.Errorf("%v: %d requests in all broke the policy's contract", g.policy, breaches)
		}
		for i, in := range g.insts {
			t.Logf("  instance %d: store errors %d, down %d, up %d, decisions by policy %d of %d",
				i, in.obs.storeErrors.Load(), in.obs.down.Load(), in.obs.up.Load(), in.obs.notStore(), in.obs.decisions.Load())
			// While Redis was frozen every call of the store ended at the
			// check's deadline (WithTimeout, and redisstore's own), the
			// only one the client has.
			frozen := in.obs.storeErrorsBetween(pause.downing, pause.upping)
			var longest time.Duration
			for _, e := range frozen {
				longest = max(longest, e.latency)
				if !timedOut(e.err) {
					t.Errorf("%v instance %d: a call of the frozen store did not end at the %v deadline: %v", g.policy, i, outageTimeout, e.err)
					break
				}
			}
			t.Logf("  instance %d: %d store calls failed while Redis was paused (longest %v)", i, len(frozen), longest.Round(time.Millisecond))
			if len(frozen) == 0 {
				t.Errorf("%v instance %d: no call of the store failed while Redis was paused", g.policy, i)
			}
			// Once every instance is back, failures, if any, are deadlines a
			// loaded machine missed, never a connection the restart broke.
			for _, e := range in.obs.storeErrorsBetween(recoveredStart, time.Now()) {
				if !timedOut(e.err) {
					t.Errorf("%v instance %d: a store error after it recovered from the restart: %v", g.policy, i, e.err)
				}
			}
			if errs := in.obs.errorsAfter(recoveredPause); len(errs) > 0 && in.obs.down.Load() > 2 {
				t.Logf("  instance %d: store errors after recovering from the pause: %v", i, errs)
			}
			if in.obs.down.Load() < 2 || in.obs.up.Load() < 2 {
				t.Errorf("%v instance %d: store down %d times, up %d times; want both outages seen and left",
					g.policy, i, in.obs.down.Load(), in.obs.up.Load())
			}
		}
	}

	// Everything the scenario started is gone once it is closed.
	for _, g := range groups {
		for _, in := range g.insts {
			in.close()
		}
	}
	client.CloseIdleConnections()
	if err := goleak.Find(ignore...); err != nil {
		t.Errorf("goroutines left after closing the instances: %v", err)
	}
}

// TestRestartWithoutPersistence stops Redis and starts it again empty under
// load (FailClosed, so that every failure is visible as a 503): limits start
// afresh, and once the instances have reconnected no request fails but by a
// deadline a loaded machine missed.
func TestRestartWithoutPersistence(t *testing.T) {
	srv := redisenv.StartStandalone(t)
	t.Logf("redis image %s, redis %s", redisenv.Image(), srv.Version())
	client := newHTTPClient(t)
	g := &policyGroup{policy: core.FailClosed, insts: startInstances(t, srv, instances, instanceConfig{
		fw:     frameworks[0],
		expr:   fmt.Sprintf("%d/hour", outageLimit),
		mwOpts: []core.MiddlewareOption{core.WithName(uniq("s5")), byClient},
		limOpts: []core.Option{
			core.WithFailurePolicy(core.FailClosed), core.WithTimeout(outageTimeout), core.WithLogger(quietLogger()),
		},
		// A busy app's pool holds many connections; the restart breaks
		// them all.
		// NewClient's short timeouts, under the scenario's own deadline.
		redisOpts: func(o *redis.Options) { o.MinIdleConns, o.ReadTimeout, o.WriteTimeout = 16, time.Second, time.Second },
	})}
	groups := []*policyGroup{g}

	// The load runs from the start: its requests are what probes an
	// instance whose store is down while the check waits for it.
	load := startLoad(t, client, groups, 4, 20_000)
	var checks []loadRecord
	// exhaust sends the client's requests until 2×limit were decided by the
	// store: exactly limit admitted (less what failed calls may have charged).
	restartClient := uniq("restart-client")
	exhaust := func(when string) {
		t.Helper()
		rs := untilStoreDecided(t, client, g.insts, 2*outageLimit, restartClient)
		checks = append(checks, rs...)
		st := tallyStore(rs)
		t.Logf("%s: one client's %d requests: %v; %v", when, len(rs), count(replies(rs), instances), st)
		if msg := st.exactly(outageLimit); msg != "" {
			t.Errorf("%s: %s", when, msg)
		}
	}
	exhaust("before the restart")
	load.awaitEach(t, 1, 50, "before the restart", func(loadRecord) bool { return true })

	stopping := time.Now()
	stopped := true
	t.Cleanup(func() { // before the instances close; see TestOutage
		if stopped {
			srv.Start()
		}
	})
	srv.Stop()
	allDown := awaitOutage(t, groups)
	load.awaitFailedProbe(t, groups, allDown)
	starting := time.Now()
	stopped = false
	srv.Start()
	started := time.Now()
	win, rec := awaitUp(t, groups, starting)
	reconnected := time.Now()
	// The same client, exhausted before, starts afresh: Redis lost it.
	exhaust("after the restart")
	// Enough requests after the reconnect to go through every connection
	// of the pools the restart broke.
	load.awaitEach(t, 1, 400, "after the reconnect", func(r loadRecord) bool { return r.start.After(reconnected) })
	load.finish()

	all := load.of(0)
	var window, down, after []loadRecord
	for _, r := range all {
		switch {
		case win.in(0, r):
			down = append(down, r)
			window = append(window, r)
		case !r.start.Before(stopping) && r.start.Before(reconnected):
			window = append(window, r)
		case !r.start.Before(reconnected):
			after = append(after, r)
		}
	}
	var first, last time.Time
	for _, r := range window {
		if r.status != http.StatusOK && r.status != http.StatusTooManyRequests {
			if first.IsZero() {
				first = r.start
			}
			last = r.start
		}
	}
	tw, td, ta := count(replies(window), instances), count(replies(down), instances), count(replies(after), instances)
	var lat []time.Duration
	for _, r := range after {
		lat = append(lat, r.latency)
	}
	t.Logf("stop at 0, start called at +%v, Redis answering at +%v, every instance reconnected at +%v (store-up after Start: %v)",
		starting.Sub(stopping).Round(time.Millisecond), started.Sub(stopping).Round(time.Millisecond),
		reconnected.Sub(stopping).Round(time.Millisecond), rec)
	failedSpan := "none failed"
	if !first.IsZero() {
		failedSpan = fmt.Sprintf("failed requests from +%v to +%v", first.Sub(stopping).Round(time.Millisecond), last.Sub(stopping).Round(time.Millisecond))
	}
	t.Logf("during the restart: %v; %s; inside the instances' down windows: %v", tw, failedSpan, td)
	t.Logf("after the reconnect: %v; %v; latency %v", ta, tallyStore(after), summarize(lat))
	for i, in := range g.insts {
		st := in.rdb.PoolStats()
		t.Logf("instance %d: store down %d times, up %d times; pool now %d connections; store errors after Start: %v",
			i, in.obs.down.Load(), in.obs.up.Load(), st.TotalConns, in.obs.errorsAfter(starting))
		for _, e := range in.obs.storeErrorsBetween(reconnected, time.Now()) {
			if !timedOut(e.err) {
				t.Errorf("instance %d: after the reconnect, a store error that is not a missed deadline: %v", i, e.err)
			}
		}
	}
	if len(down) == 0 || td.unavailable != len(down) {
		t.Errorf("inside the instances' down windows: %v; want requests, every one 503", td)
	}
	if len(after) == 0 {
		t.Errorf("no requests after the reconnect")
	}
	breaches := 0
	for _, r := range append(all, checks...) {
		if msg := breach(g.policy, r); msg != "" {
			if breaches++; breaches <= 3 {
				t.Errorf("instance %d, request at %v from the stop: %s", r.inst, r.start.Sub(stopping).Round(time.Millisecond), msg)
			}
		}
	}
	if breaches > 3 {
		t.Errorf("%d requests in all broke the policy's contract", breaches)
	}
}
