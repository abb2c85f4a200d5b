// Concurrency limits across instances: one budget of requests in flight,
// exact over instances sharing Redis, and the slots of an instance that
// dies, killed with SIGKILL in the middle of its requests, come back within
// the lease TTL.
package integration_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
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

// concFramework mounts a concurrency limit of n on GET /work.
type concFramework struct {
	name  string
	build func(n int64, h http.HandlerFunc, opts ...core.MiddlewareOption) http.Handler
}

var concFrameworks = []concFramework{
	{"net-http", func(n int64, h http.HandlerFunc, opts ...core.MiddlewareOption) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("GET /work", core.MustNewConcurrencyMiddleware(n, opts...).Handler(h))
		return mux
	}},
	{"chi", func(n int64, h http.HandlerFunc, opts ...core.MiddlewareOption) http.Handler {
		r := chi.NewRouter()
		r.With(chilimit.Concurrency(n, as[chilimit.Option](opts)...)).Get("/work", h)
		return r
	}},
	{"gin", func(n int64, h http.HandlerFunc, opts ...core.MiddlewareOption) http.Handler {
		r := gin.New()
		r.GET("/work", ginlimit.Concurrency(n, as[ginlimit.Option](opts)...), gin.WrapF(h))
		return r
	}},
	{"echo", func(n int64, h http.HandlerFunc, opts ...core.MiddlewareOption) http.Handler {
		e := echo.New()
		e.GET("/work", echo.WrapHandler(h), echolimit.Concurrency(n, as[echolimit.Option](opts)...))
		return e
	}},
}

func concFrameworkNamed(name string) concFramework {
	for _, f := range concFrameworks {
		if f.name == name {
			return f
		}
	}
	panic("no framework " + name)
}

// The crash scenario's parameters: a lease TTL long enough that a child
// process starved by a loaded machine for a moment still renews in time
// (every third of it: a stall of up to 2s is survived), and short enough
// to keep the test quick.
const (
	crashSlots = 3
	crashTTL   = 3 * time.Second
	// crashMargin is how late the slots may come back after the TTL: the
	// polling interval, a Redis round trip and a loaded machine's
	// scheduling. Generous, since only an upper bound is asserted.
	crashMargin = 3 * time.Second
)

// Environment of the holder process (TestConcurrencyHolderProcess).
const (
	holderRedisEnv = "LIMITKIT_HOLDER_REDIS"
	holderNameEnv  = "LIMITKIT_HOLDER_NAME"
	holderFWEnv    = "LIMITKIT_HOLDER_FRAMEWORK"
)

// TestConcurrencyHolderProcess is not a test: it is instance A of
// TestConcurrencySlotsOfAKilledInstanceComeBack, run by it as a separate
// process of this test binary, so that killing it (SIGKILL) is a real
// crash: no deferred release, no closing of connections by Go, no goodbye
// to Redis. It serves GET /work under the concurrency limit and holds
// every admitted request open after sending its headers.
func TestConcurrencyHolderProcess(t *testing.T) {
	addr := os.Getenv(holderRedisEnv)
	if addr == "" {
		t.Skip("run by TestConcurrencySlotsOfAKilledInstanceComeBack only")
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	lim := core.New(core.WithStore(redisstore.New(rdb)), core.WithTimeout(10*time.Second), core.WithFailurePolicy(core.FailClosed))
	h := concFrameworkNamed(os.Getenv(holderFWEnv)).build(crashSlots, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush() // the client learns it was admitted
		<-r.Context().Done()     // and the request stays in flight
	}, core.WithLimiter(lim), core.WithName(os.Getenv(holderNameEnv)), core.WithKey(core.Global), core.WithLeaseTTL(crashTTL))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr().String())
	_ = http.Serve(ln, h)
}

// startHolder runs instance A and returns its address and process.
func startHolder(t *testing.T, redisAddr, name, fw string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrencyHolderProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), holderRedisEnv+"="+redisAddr, holderNameEnv+"="+name, holderFWEnv+"="+fw)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return a, cmd
		}
	}
	t.Fatalf("the holder process ended before listening: %v", lines.Err())
	return "", nil
}

func TestConcurrencySlotsOfAKilledInstanceComeBack(t *testing.T) {
	srv := redisenv.StartStandalone(t)
	for _, fw := range concFrameworks {
		t.Run(fw.name, func(t *testing.T) { runCrash(t, srv, fw) })
	}
}

func runCrash(t *testing.T, srv *redisenv.Standalone, fw concFramework) {
	name := uniq("conc-" + fw.name)
	addrA, procA := startHolder(t, srv.Addr(), name, fw.name)

	// Instance B, in this process, shares the budget through Redis. Its
	// handler holds requests to /work?hold until release closes.
	release := make(chan struct{})
	entered := make(chan struct{}, 2*crashSlots)
	// The limiter's 10s deadline, not NewClient's 1s, bounds a reply.
	rdb := srv.NewClient(func(o *redis.Options) {
		o.ContextTimeoutEnabled, o.ReadTimeout, o.WriteTimeout = true, 10*time.Second, 10*time.Second
	})
	defer rdb.Close()
	obs := &counters{}
	lim := core.New(core.WithStore(redisstore.New(rdb)), core.WithObserver(obs), core.WithTimeout(10*time.Second), core.WithFailurePolicy(core.FailClosed))
	defer lim.Close()
	b := httptest.NewServer(fw.build(crashSlots, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("hold") {
			entered <- struct{}{}
			<-release
		}
	}, core.WithLimiter(lim), core.WithName(name), core.WithKey(core.Global), core.WithLeaseTTL(crashTTL)))
	defer b.Close()
	client := newHTTPClient(t)
	status := func(url string) int {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// A takes every slot: each of its requests is admitted and stays open.
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	for i := range crashSlots {
		req, _ := http.NewRequestWithContext(ctxA, http.MethodGet, "http://"+addrA+"/work", nil)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d to instance A: %v, %v; want admitted", i, resp, err)
		}
		defer resp.Body.Close()
	}
	held := time.Now()
	// B sees the slots taken, and they stay taken past the TTL while A
	// lives: A renews its leases.
	for n := 0; n == 0 || time.Since(held) < 2*crashTTL; n++ {
		if code := status(b.URL + "/work"); code != http.StatusTooManyRequests {
			t.Fatalf("instance B %v after A took all %d slots (request %d): %d, want 429", time.Since(held).Round(time.Millisecond), crashSlots, n, code)
		}
		time.Sleep(100 * time.Millisecond) // pacing the probe of a time-based property
	}

	// The crash: SIGKILL, no release.
	if err := procA.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = procA.Wait()
	// Polled until every slot is back: an admitted request then sees the
	// other crashSlots-1 free. A's leases were renewed at slightly
	// different moments, so they expire a little apart.
	var first time.Duration
	for {
		resp, err := client.Get(b.URL + "/work")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if first == 0 {
				first = time.Since(killed)
			}
			if resp.Header.Get("X-Ratelimit-Remaining") == fmt.Sprint(crashSlots-1) {
				break
			}
		}
		if time.Since(killed) > crashTTL+crashMargin {
			t.Fatalf("the killed instance's slots are not all back %v after the kill (lease TTL %v; the first after %v)", time.Since(killed).Round(time.Millisecond), crashTTL, first)
		}
		time.Sleep(20 * time.Millisecond) // polling: Redis expires leases by its clock, with no event to wait on
	}
	back := time.Since(killed)
	t.Logf("%s: slots of the instance killed with SIGKILL back %v (the first) and %v (all %d) after the kill (lease TTL %v, renewed every %v)",
		fw.name, first.Round(time.Millisecond), back.Round(time.Millisecond), crashSlots, crashTTL, crashTTL/3)

	// All of them: B now admits exactly crashSlots at once, and no more.
	var wg sync.WaitGroup
	codes := make(chan int, crashSlots)
	for range crashSlots {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- status(b.URL + "/work?hold") }()
	}
	for range crashSlots {
		select {
		case <-entered:
		case <-time.After(30 * time.Second): // a bound for a failure, not a synchronisation
			close(release)
			t.Fatalf("of %d requests at once on B with every slot free, not all were admitted", crashSlots)
		}
	}
	if code := status(b.URL + "/work"); code != http.StatusTooManyRequests {
		t.Errorf("with B holding all %d slots: %d, want 429", crashSlots, code)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("a held request on B: %d, want 200", c)
		}
	}
	if n := obs.storeErrors.Load(); n != 0 {
		t.Errorf("instance B saw %d store errors, want none", n)
	}
}

// TestConcurrencyIsExactAcrossInstances sends 60 requests at once over
// three instances sharing a limit of 7 in flight, all held until the end:
// exactly 7 are admitted, whichever instances they reach.
func TestConcurrencyIsExactAcrossInstances(t *testing.T) {
	const n, offered, insts = 7, 60, 3
	srv := redisenv.StartStandalone(t)
	client := newHTTPClient(t)
	for _, fw := range concFrameworks {
		t.Run(fw.name, func(t *testing.T) {
			name := uniq("conc-exact-" + fw.name)
			release := make(chan struct{})
			urls := make([]string, insts)
			for i := range urls {
				rdb := srv.NewClient(func(o *redis.Options) {
					o.ContextTimeoutEnabled, o.PoolSize = true, 64
					o.ReadTimeout, o.WriteTimeout = 10*time.Second, 10*time.Second // the limiter's deadline bounds a reply
				})
				lim := core.New(core.WithStore(redisstore.New(rdb)), core.WithTimeout(10*time.Second), core.WithFailurePolicy(core.FailClosed))
				hs := httptest.NewServer(fw.build(n, func(http.ResponseWriter, *http.Request) { <-release },
					core.WithLimiter(lim), core.WithName(name), core.WithKey(core.Global)))
				t.Cleanup(func() { hs.Close(); lim.Close(); rdb.Close() })
				urls[i] = hs.URL + "/work"
			}
			var wg sync.WaitGroup
			codes := make(chan int, offered)
			for i := range offered {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := client.Get(urls[i%insts])
					if err != nil {
						codes <- 0
						return
					}
					resp.Body.Close()
					codes <- resp.StatusCode
				}()
			}
			// The refusals come back while the admitted are held.
			tally := map[int]int{}
			for range offered - n {
				select {
				case c := <-codes:
					tally[c]++
				case <-time.After(time.Minute): // more than n admitted: they are held
					close(release)
					t.Fatalf("only %v answered while the admitted are held; want %d refusals", tally, offered-n)
				}
			}
			close(release)
			wg.Wait()
			close(codes)
			for c := range codes {
				tally[c]++
			}
			if tally[http.StatusOK] != n || tally[http.StatusTooManyRequests] != offered-n {
				t.Fatalf("%d requests at once over %d instances, limit %d in flight: %v; want exactly %d admitted", offered, insts, n, tally, n)
			}
		})
	}
}

// TestConcurrencyWhileRedisHangs pauses Redis (connections open, no
// answers) under an instance whose limiter waits 200ms: each request is
// answered by the failure policy within a bounded time, never hangs, and
// under Fallback the instance limits on its own memory store; once Redis
// answers again, decisions are Redis's.
func TestConcurrencyWhileRedisHangs(t *testing.T) {
	srv := redisenv.StartStandalone(t)
	client := newHTTPClient(t)
	for _, tc := range []struct {
		policy core.FailurePolicy
		want   int // the status of a request while Redis hangs
	}{
		{core.Fallback, http.StatusOK},
		{core.FailClosed, http.StatusServiceUnavailable},
		{core.FailOpen, http.StatusOK},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			rdb := srv.NewClient(func(o *redis.Options) { o.ContextTimeoutEnabled = true; o.MaxRetries = -1 })
			defer rdb.Close()
			obs := &counters{}
			lim := core.New(core.WithStore(redisstore.New(rdb)), core.WithObserver(obs), core.WithLogger(quietLogger()),
				core.WithTimeout(200*time.Millisecond), core.WithFailurePolicy(tc.policy), core.WithProbeInterval(50*time.Millisecond))
			defer lim.Close()
			release := make(chan struct{})
			entered := make(chan struct{}, 4)
			hs := httptest.NewServer(core.MustNewConcurrencyMiddleware(1, core.WithLimiter(lim), core.WithName(uniq("conc-hang")), core.WithKey(core.Global)).
				Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Query().Has("hold") {
						entered <- struct{}{}
						<-release
					}
				})))
			defer hs.Close()
			get := func(q string) (int, time.Duration) {
				start := time.Now()
				resp, err := client.Get(hs.URL + "/" + q)
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				resp.Body.Close()
				return resp.StatusCode, time.Since(start)
			}
			if code, _ := get(""); code != http.StatusOK {
				t.Fatalf("before the pause: %d, want 200", code)
			}
			srv.Pause()
			paused := true
			defer func() {
				if paused {
					srv.Unpause()
				}
			}()
			var wg sync.WaitGroup
			wg.Add(1)
			heldCode := 0
			go func() { defer wg.Done(); heldCode, _ = get("?hold") }()
			var code int
			var took time.Duration
			if tc.policy == core.FailClosed {
				// The held request is refused too: nothing to wait for.
				if code, took = get(""); code != tc.want {
					t.Fatalf("while Redis hangs: %d, want %d", code, tc.want)
				}
			} else {
				// The other request goes only once the held one has its
				// slot from the policy: sent at once, the two would time
				// out together, and under the fallback's limit of one the
				// held request could find the other's slot still taken.
				select {
				case <-entered: // the held request got a slot from the policy
				case <-time.After(30 * time.Second): // a bound for a failure, not a synchronisation
					close(release)
					wg.Wait()
					t.Fatalf("while Redis hangs, the held request was not served (it was answered %d)", heldCode)
				}
				code, took = get("")
				want := tc.want
				if tc.policy == core.Fallback {
					want = http.StatusTooManyRequests // the fallback's one slot is held
				}
				if code != want {
					t.Fatalf("while Redis hangs, with one request held: %d, want %d", code, want)
				}
			}
			if took > 5*time.Second {
				t.Fatalf("a request while Redis hangs took %v; the limiter's timeout is 200ms", took)
			}
			close(release)
			wg.Wait()
			if tc.policy != core.FailClosed && heldCode != http.StatusOK {
				t.Fatalf("the held request: %d, want 200", heldCode)
			}
			unpause := time.Now()
			srv.Unpause()
			paused = false
			// Back on Redis: a probe brings the store up, then Redis decides,
			// and admits: the acquire that timed out during the pause may
			// have taken a slot in Redis when Redis resumed, which the
			// limiter gives back (well before that lease's TTL of 10s).
			deadline := time.Now().Add(core.DefaultLeaseTTL / 2)
			for {
				before := obs.byAction[core.ActionStore].Load()
				code, _ := get("")
				if code == http.StatusOK && obs.byAction[core.ActionStore].Load() > before {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%v after Redis answers again, requests are still not admitted by Redis (last %d): a slot taken by an acquire that timed out was not given back", core.DefaultLeaseTTL/2, code)
				}
				time.Sleep(50 * time.Millisecond) // waiting for the probe interval
			}
			t.Logf("%v: while Redis hung, a request was answered in %v; admitted by Redis again %v after the unpause", tc.policy, took.Round(time.Millisecond), time.Since(unpause).Round(time.Millisecond))
		})
	}
}
