// Helpers for the scenarios: application instances (each its own go-redis
// client, store, limiter and HTTP server on 127.0.0.1), the frameworks they
// are built with, load drivers and figures.
package integration_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
	"github.com/limitkit/limitkit/ginlimit"
	"github.com/limitkit/limitkit/integration/internal/redisenv"
	"github.com/limitkit/limitkit/redisstore"
	"github.com/redis/go-redis/v9"
)

// framework builds the handler of one instance: GET /items limited by expr
// with opts, serving ok.
type framework struct {
	name  string
	build func(expr string, ok http.HandlerFunc, opts ...core.MiddlewareOption) http.Handler
}

// frameworks are the ways an app mounts the limit: core's net/http
// middleware and the three adapters.
var frameworks = []framework{
	{"net-http", func(expr string, ok http.HandlerFunc, opts ...core.MiddlewareOption) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("GET /items", core.MustNewMiddleware(expr, opts...).Handler(ok))
		return mux
	}},
	{"chi", func(expr string, ok http.HandlerFunc, opts ...core.MiddlewareOption) http.Handler {
		r := chi.NewRouter()
		r.With(chilimit.Limit(expr, as[chilimit.Option](opts)...)).Get("/items", ok)
		return r
	}},
	{"gin", func(expr string, ok http.HandlerFunc, opts ...core.MiddlewareOption) http.Handler {
		r := gin.New()
		r.GET("/items", ginlimit.Limit(expr, as[ginlimit.Option](opts)...), gin.WrapF(ok))
		return r
	}},
	{"echo", func(expr string, ok http.HandlerFunc, opts ...core.MiddlewareOption) http.Handler {
		e := echo.New()
		e.GET("/items", echo.WrapHandler(ok), echolimit.Limit(expr, as[echolimit.Option](opts)...))
		return e
	}},
}

func init() { gin.SetMode(gin.ReleaseMode) }

// as is core's middleware options as an adapter's option type O, which
// every one of them satisfies.
func as[O core.AdapterOption](opts []core.MiddlewareOption) []O {
	out := make([]O, len(opts))
	for i, o := range opts {
		out[i] = any(o).(O)
	}
	return out
}

// okHandler answers 200 "ok".
func okHandler(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

// counters tallies what a limiter's observer heard. Besides the totals it
// keeps what the scenarios synchronise and classify on (see events_test.go):
// the store's down and up transitions, the failed store calls, and, per
// client, how its last request was decided.
type counters struct {
	decisions   atomic.Int64
	storeErrors atomic.Int64
	byAction    [4]atomic.Int64 // decisions by core.Action
	down, up    atomic.Int64
	hook        func(core.Event)

	mu      sync.Mutex
	errs    []storeError
	trans   []transition
	clients map[string]*heard // by identity
	changed signal            // a transition or a store error was heard
}

func (c *counters) Observe(e core.Event) {
	// Heard now, before any wait for c.mu: many decisions a second contend
	// for it, and a store-up stamped after that wait would move the end of
	// a down window past decisions Redis made once it was up.
	now := time.Now()
	switch e.Kind {
	case core.EventDecision:
		c.decisions.Add(1)
		if int(e.DecidedBy) < len(c.byAction) {
			c.byAction[e.DecidedBy].Add(1)
		}
		c.mu.Lock()
		h := c.client(e.Identity)
		h.decisions++
		h.action = e.DecidedBy
		c.mu.Unlock()
	case core.EventStoreError:
		c.storeErrors.Add(1)
		c.mu.Lock()
		c.errs = append(c.errs, storeError{at: now, err: e.Err, latency: e.Latency})
		c.client(e.Identity).storeErrors++
		c.changed.notify()
		c.mu.Unlock()
	case core.EventStoreDown, core.EventStoreUp:
		up := e.Kind == core.EventStoreUp
		if up {
			c.up.Add(1)
		} else {
			c.down.Add(1)
		}
		c.mu.Lock()
		c.trans = append(c.trans, transition{up: up, at: now})
		c.changed.notify()
		c.mu.Unlock()
	}
	if c.hook != nil {
		c.hook(e)
	}
}

// errorsAfter returns the store errors reported after t.
func (c *counters) errorsAfter(t time.Time) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.errs {
		if e.at.After(t) {
			out = append(out, fmt.Sprintf("+%v %v", e.at.Sub(t).Round(time.Millisecond), e.err))
		}
	}
	return out
}

// notStore is the number of decisions the failure policy made.
func (c *counters) notStore() int64 { return c.decisions.Load() - c.byAction[core.ActionStore].Load() }

// instance is one process of the application.
type instance struct {
	rdb *redis.Client
	lim *core.Limiter
	srv *httptest.Server
	obs *counters
}

// instanceConfig says how to build the instances of one scenario.
type instanceConfig struct {
	fw      framework
	expr    string
	mwOpts  []core.MiddlewareOption // middleware options, besides WithLimiter
	limOpts []core.Option           // limiter options, besides WithStore and WithObserver
	// limOptsAt, if set, adds options for instance i (a clock).
	limOptsAt func(i int) []core.Option
	redisOpts func(*redis.Options)
	ok        http.HandlerFunc // default okHandler
	hook      func(i int, e core.Event)
}

// exactLimiter are the limiter options of the exactness scenarios: a deadline
// far above any round trip on a loaded CI machine, so that every decision is
// Redis's (the observer proves it) rather than the fallback's.
var exactLimiter = []core.Option{core.WithTimeout(10 * time.Second)}

// startInstances starts n instances on srv, each with its own client, store,
// limiter and server; everything is closed when the test ends.
func startInstances(t *testing.T, srv *redisenv.Standalone, n int, cfg instanceConfig) []*instance {
	t.Helper()
	if cfg.ok == nil {
		cfg.ok = okHandler
	}
	insts := make([]*instance, n)
	for i := range insts {
		rdb := srv.NewClient(func(o *redis.Options) {
			o.ContextTimeoutEnabled = true
			o.PoolSize = 64
			// A reply gets the limiter's deadline (exactLimiter's 10s), not
			// NewClient's 1s: go-redis waits for the earlier of its read
			// timeout and the context's.
			o.ReadTimeout, o.WriteTimeout = 10*time.Second, 10*time.Second
			if cfg.redisOpts != nil {
				cfg.redisOpts(o)
			}
		})
		obs := &counters{}
		if cfg.hook != nil {
			obs.hook = func(e core.Event) { cfg.hook(i, e) }
		}
		opts := append([]core.Option{core.WithStore(redisstore.New(rdb)), core.WithObserver(obs)}, cfg.limOpts...)
		if cfg.limOptsAt != nil {
			opts = append(opts, cfg.limOptsAt(i)...)
		}
		lim := core.New(opts...)
		mw := append([]core.MiddlewareOption{core.WithLimiter(lim)}, cfg.mwOpts...)
		hs := httptest.NewServer(cfg.fw.build(cfg.expr, cfg.ok, mw...))
		inst := &instance{rdb: rdb, lim: lim, srv: hs, obs: obs}
		t.Cleanup(inst.close)
		insts[i] = inst
	}
	return insts
}

// close stops the server, the limiter and the client; it may be called more
// than once.
func (in *instance) close() {
	in.srv.Close()
	_ = in.lim.Close()
	_ = in.rdb.Close()
}

// newHTTPClient returns a client for the load, its idle connections closed
// when the test ends.
func newHTTPClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxConnsPerHost: 100, MaxIdleConnsPerHost: 100, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// reply is one request's outcome as the client saw it.
type reply struct {
	inst      int
	status    int // 0: transport error
	err       error
	start     time.Time
	latency   time.Duration
	remaining string // X-Ratelimit-Remaining
	reset     string // X-Ratelimit-Reset
}

// get sends GET /items to inst with header X-Client: client (if not empty).
func get(ctx context.Context, c *http.Client, insts []*instance, i int, client string) reply {
	r := reply{inst: i, start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, insts[i].srv.URL+"/items", nil)
	if err != nil {
		r.err = err
		return r
	}
	if client != "" {
		req.Header.Set("X-Client", client)
	}
	resp, err := c.Do(req)
	if err != nil {
		r.err, r.latency = err, time.Since(r.start)
		return r
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	r.latency = time.Since(r.start)
	r.status = resp.StatusCode
	r.remaining = resp.Header.Get(core.HeaderRemaining)
	r.reset = resp.Header.Get(core.HeaderReset)
	return r
}

// fanOut sends n requests at once, request k to instance k mod len(insts),
// each from its own goroutine released together, and returns the replies.
func fanOut(t *testing.T, c *http.Client, insts []*instance, n int, client string) []reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	replies := make([]reply, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() {
			<-start
			replies[k] = get(ctx, c, insts, k%len(insts), client)
		})
	}
	close(start)
	wg.Wait()
	return replies
}

// tally counts replies: admitted (200), denied (429), 503s, other statuses
// and transport errors.
type tally struct {
	admitted, denied, unavailable, other, errs int
	perInstance                                []int // admitted per instance
}

func count(replies []reply, instances int) tally {
	tl := tally{perInstance: make([]int, instances)}
	for _, r := range replies {
		switch {
		case r.err != nil:
			tl.errs++
		case r.status == http.StatusOK:
			tl.admitted++
			tl.perInstance[r.inst]++
		case r.status == http.StatusTooManyRequests:
			tl.denied++
		case r.status == http.StatusServiceUnavailable:
			tl.unavailable++
		default:
			tl.other++
		}
	}
	return tl
}

func (tl tally) String() string {
	return fmt.Sprintf("admitted %d (per instance %v), denied %d, 503 %d, other %d, errors %d",
		tl.admitted, tl.perInstance, tl.denied, tl.unavailable, tl.other, tl.errs)
}

// firstErrors describes up to three failed replies.
func firstErrors(replies []reply) string {
	var out []string
	for _, r := range replies {
		if r.err != nil || (r.status != http.StatusOK && r.status != http.StatusTooManyRequests) {
			out = append(out, fmt.Sprintf("instance %d: status %d err %v", r.inst, r.status, r.err))
			if len(out) == 3 {
				break
			}
		}
	}
	return fmt.Sprint(out)
}

// latencies summarises durations.
type latencies struct {
	n             int
	p50, p99, max time.Duration
}

func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return latencies{n: len(s), p50: at(0.50), p99: at(0.99), max: s[len(s)-1]}
}

func (l latencies) String() string {
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", l.n, l.p50.Round(10*time.Microsecond),
		l.p99.Round(10*time.Microsecond), l.max.Round(10*time.Microsecond))
}

// remainingSet returns the X-Ratelimit-Remaining values of admitted replies,
// sorted.
func remainingSet(replies []reply) []int {
	var out []int
	for _, r := range replies {
		if r.status == http.StatusOK {
			n, err := strconv.Atoi(r.remaining)
			if err != nil {
				n = -1
			}
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// clearOfBoundary waits, if needed, so that the next `need` of wall time does
// not cross a boundary of epoch-aligned windows of period: a fixed window
// admits its count again in a new window, which an exactness check must not
// mistake for over-admission. Redis runs on this host, so its clock is ours.
func clearOfBoundary(t *testing.T, period, need time.Duration) {
	t.Helper()
	now := time.Now()
	next := now.Truncate(period).Add(period)
	if left := next.Sub(now); left < need {
		t.Logf("waiting %v for the next %v window to start", left.Round(time.Millisecond), period)
		select {
		case <-time.After(left + 50*time.Millisecond):
		case <-t.Context().Done():
		}
	}
}

// uniq returns a name unique to this run, so that -count=N never meets its
// own earlier keys.
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000_000)
}

// quietLogger drops the limiter's logs: the scenarios that break the store
// count failures through the observer, and a warning per failed request
// would bury the figures.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
