package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/limitkit/limitkit/core"
)

// stopped keeps the examples' output the same on every run.
func stopped() time.Time { return time.Unix(1_700_000_000, 0) }

// Take checks work outside HTTP: a job, a queue consumer, a gRPC call.
func ExampleLimiter_Take() {
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	rule := core.MustRule("2/minute", core.TokenBucket)

	for range 3 {
		d, err := limiter.Take(context.Background(), "tenant-42", rule, 1)
		if err != nil {
			fmt.Println(err) // the store failed; the limit was not reached
			return
		}
		fmt.Println(d.Allowed, d.Remaining, d.RetryAfter)
	}
	// Output:
	// true 1 0s
	// true 0 0s
	// false 0 30s
}

// A middleware wraps any net/http handler.
func ExampleMiddleware_Handler() {
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	m := core.MustNewMiddleware("1/minute", core.WithLimiter(limiter), core.WithAlgorithm(core.FixedWindow))
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "quote") }))

	for range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/quote", nil))
		fmt.Print(w.Code, " ", w.Header().Get("X-RateLimit-Remaining"), " ", w.Header().Get("Retry-After"), " ", w.Body.String())
	}
	// Output:
	// 200 0  quote
	// 429 0 40 {"error":"rate limit exceeded","limit":"1/minute","retry_after":40}
}

// An adapter for another framework calls Enforce, lets the framework run or
// refuse the request in its own idiom, and uses Refuse (or Result's Status
// and Body) for the response.
func ExampleMiddleware_Enforce() {
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	m := core.MustNewMiddleware("1/hour", core.WithLimiter(limiter))

	for range 2 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		w := httptest.NewRecorder()
		switch res := m.Enforce(r, w.Header()); res.Verdict {
		case core.Serve:
			fmt.Println("serve; remaining", w.Header().Get("X-RateLimit-Remaining"))
		case core.Refuse:
			fmt.Println("refuse with", res.Status, res.Message())
		case core.Gone:
			// the client left while its request was held: write nothing
		}
	}
	// Output:
	// serve; remaining 0
	// refuse with 429 rate limit exceeded
}

// An adapter whose users write key functions against the framework's own
// context (here a stand-in, *frameworkCtx) wraps each with NativeKey,
// builds the middleware with Adapt, and passes its context to EnforceWith.
func ExampleMiddleware_EnforceWith() {
	typedKey := func(c *frameworkCtx) (string, error) { return c.user, nil } // the user's function

	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	m := core.MustAdapt[*frameworkCtx]("myadapter.Limit", 1, "1/hour",
		[]core.AdapterOption{core.WithLimiter(limiter), core.NativeKey("myadapter.Key", typedKey)},
		func(m *core.Middleware) *core.Middleware { return m })

	for _, user := range []string{"ann", "bob", "ann"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		res := m.EnforceWith(r, http.Header{}, &frameworkCtx{user: user})
		fmt.Println(user, res.Verdict == core.Serve)
	}
	// Output:
	// ann true
	// bob true
	// ann false
}

type userKey struct{}

// Plans give signed-in users a limit by plan, parsed once at start-up,
// while anonymous clients are limited by IP.
func ExampleWithPlans() {
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	plans := map[string]string{"free": "100/minute", "pro": "1000/minute"}
	planOf := func(r *http.Request) string { return r.Header.Get("X-Plan") } // in real life: from the session
	m := core.MustNewMiddleware("100/minute", core.WithLimiter(limiter),
		core.WithKey(core.ByContextValue(userKey{})), // no user: by IP (core.KeyErrorPeerIP)
		core.WithPlans(plans, planOf))
	h := m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	for _, plan := range []string{"", "free", "pro"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Plan", plan)
		if plan != "" {
			r = r.WithContext(context.WithValue(r.Context(), userKey{}, "user-7"))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%q: limit %s\n", plan, w.Header().Get("X-RateLimit-Limit"))
	}
	// Output:
	// "": limit 100
	// "free": limit 100
	// "pro": limit 1000
}

// Behind a load balancer, name its addresses: forwarded headers from
// anyone else are ignored.
func ExampleByClientIP() {
	key, err := core.ByClientIP("10.0.0.0/8")
	if err != nil {
		panic(err)
	}
	for _, remote := range []string{"10.0.0.5:1234", "198.51.100.9:1234"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "203.0.113.7")
		id, _ := key(r)
		fmt.Println(remote, "->", id)
	}
	// Output:
	// 10.0.0.5:1234 -> 203.0.113.7
	// 198.51.100.9:1234 -> 198.51.100.9
}

// A key function that learns the client's address elsewhere, such as from
// a framework, counts clients as ByIP does with IPIdentity: IPv6 clients
// by their /64.
func ExampleIPIdentity() {
	for _, ip := range []string{"203.0.113.7", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		fmt.Println(ip, "->", core.IPIdentity(ip))
	}
	// Output:
	// 203.0.113.7 -> 203.0.113.7
	// 2001:db8:1:2::1 -> 2001:db8:1:2::/64
	// 2001:db8:1:2:ffff::9 -> 2001:db8:1:2::/64
}

// A limiter on a remote store chooses what happens when the store fails.
func ExampleWithFailurePolicy() {
	limiter := core.New(
		// core.WithStore(redisstore.New(rdb)),
		core.WithTimeout(50*time.Millisecond),
		core.WithFailurePolicy(core.FailClosed), // 503 rather than unlimited
	)
	defer limiter.Close()
	// core.SetDefault(limiter) makes every middleware without WithLimiter use it.
	fmt.Println(limiter.Store() != nil)
	// Output: true
}

// Limits declared in configuration: the app's own decoder fills a Config
// (encoding/json here; its fields carry yaml and toml tags too), and the
// errors name their place in it.
func ExampleNewLimitSet() {
	var cfg core.Config
	_ = json.Unmarshal([]byte(`{
		"default": {"limit": "100/minute"},
		"routes": {"/login": {"limit": "5/fortnight"}, "GET /healthz": {"exempt": true}},
		"limits": {"export": {"limit": "10/hour", "key": "header:X-API-Key", "algorithm": "token"}}
	}`), &cfg)
	_, err := core.NewLimitSet(cfg)
	fmt.Println(err)
	// Output:
	// routes["/login"].limit: invalid limit "5/fortnight" at offset 2: unknown unit "fortnight"; expected second, minute, hour, day, month or year
	// limits["export"].algorithm: unknown algorithm "token"; expected fixed-window, sliding-window-log (limits' moving-window), sliding-window-counter, token-bucket or leaky-bucket
}
