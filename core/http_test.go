package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// stepClock is a clock the test moves by hand.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func newStepClock() *stepClock { return &stepClock{now: time.Unix(1_700_000_000, 0)} }

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// clockedLimiter returns a limiter on a memory store driven by a stepClock.
func clockedLimiter(t testing.TB, opts ...Option) (*Limiter, *stepClock) {
	t.Helper()
	clk := newStepClock()
	l := New(append([]Option{WithClock(clk.Now)}, opts...)...)
	t.Cleanup(func() { l.Close() })
	return l, clk
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })

// get sends one GET from remote with the header pairs given.
func get(h http.Handler, path, remote string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const client = "203.0.113.7:41000"

func TestMiddleware_setsHeadersOnEveryLimitedResponse(t *testing.T) {
	lim, clk := clockedLimiter(t)
	h := MustNewMiddleware("3/minute", WithLimiter(lim), WithAlgorithm(FixedWindow)).Handler(okHandler)
	// Align to a window start so that the reset is a whole minute.
	now := clk.Now()
	clk.Add(now.Truncate(time.Minute).Add(time.Minute).Sub(now))
	tests := []struct {
		advance                 time.Duration
		status                  int
		limit, remaining, reset string
		retryAfter              string
	}{
		{0, 200, "3", "2", "60", ""},
		{20 * time.Second, 200, "3", "1", "40", ""},
		{500 * time.Millisecond, 200, "3", "0", "40", ""}, // 39.5s rounds up
		{0, 429, "3", "0", "40", "40"},
		{39 * time.Second, 429, "3", "0", "1", "1"}, // 0.5s rounds up to 1
		{time.Second, 200, "3", "2", "60", ""},
	}
	for i, tt := range tests {
		clk.Add(tt.advance)
		w := get(h, "/", client)
		got := []string{w.Header().Get("X-RateLimit-Limit"), w.Header().Get("X-RateLimit-Remaining"), w.Header().Get("X-RateLimit-Reset"), w.Header().Get("Retry-After")}
		want := []string{tt.limit, tt.remaining, tt.reset, tt.retryAfter}
		if w.Code != tt.status || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("request %d: status %d headers %q; want %d %q", i, w.Code, got, tt.status, want)
		}
	}
}

func TestMiddleware_refusesWith429RetryAfterAndJSONBody(t *testing.T) {
	lim, _ := clockedLimiter(t)
	served := 0
	h := MustNewMiddleware("2/second", WithLimiter(lim), WithAlgorithm(TokenBucket)).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }))
	get(h, "/", client)
	get(h, "/", client)
	w := get(h, "/", client)
	if w.Code != http.StatusTooManyRequests || served != 2 {
		t.Fatalf("third request: status %d, handler ran %d times; want 429 and 2", w.Code, served)
	}
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q; want 1 (500ms rounded up)", got)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q; want JSON", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	if body["error"] != "rate limit exceeded" || body["limit"] != "2/second" || body["retry_after"] != 1.0 {
		t.Errorf("body = %v", body)
	}
}

// Waiting cannot admit a cost larger than the limit, so the refusal is not
// a 429, which retrying clients retry, but 413 without Retry-After: a
// client error that says the request, as sent, is too large, for good.
func TestMiddleware_costThatCanNeverFitIs413WithoutRetryAfter(t *testing.T) {
	lim, _ := clockedLimiter(t)
	h := MustNewMiddleware("5/minute", WithLimiter(lim), WithCost(func(*http.Request) int64 { return 6 })).Handler(okHandler)
	w := get(h, "/", client)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d; want 413", w.Code)
	}
	if got := w.Header().Get("X-RateLimit-Limit"); got != "5" {
		t.Errorf("X-RateLimit-Limit %q; want 5, so that the client can see what fits", got)
	}
	if _, ok := w.Header()["Retry-After"]; ok {
		t.Errorf("Retry-After %q sent for a request that can never be admitted", w.Header().Get("Retry-After"))
	}
	if !strings.Contains(w.Body.String(), "can never be admitted") || strings.Contains(w.Body.String(), "retry_after") {
		t.Errorf("body %q; want it to say the request can never be admitted, without retry_after", w.Body)
	}
}

func TestMiddleware_budgets(t *testing.T) {
	lim, _ := clockedLimiter(t)
	one := func(opts ...MiddlewareOption) *Middleware {
		return MustNewMiddleware("1/minute", append([]MiddlewareOption{WithLimiter(lim)}, opts...)...)
	}
	// Built in a loop: one line, one function, one expression.
	var looped []*Middleware
	for range 2 {
		looped = append(looped, one())
	}
	inner, outer := one(), one()
	tests := []struct {
		name  string
		a, b  http.Handler
		share bool
	}{
		{"two routes do not share", one().Handler(okHandler), one().Handler(okHandler), false},
		{"built in a loop are distinct", looped[0].Handler(okHandler), looped[1].Handler(okHandler), false},
		{"one name is one budget", one(WithName("api")).Handler(okHandler), one(WithName("api")).Handler(okHandler), true},
		{"different names are distinct", one(WithName("a")).Handler(okHandler), one(WithName("b")).Handler(okHandler), false},
		{"stacked limits are distinct", outer.Handler(okHandler), inner.Handler(okHandler), false},
	}
	if w := get(outer.Handler(inner.Handler(okHandler)), "/", "192.0.2.99:1"); w.Code != 200 {
		t.Errorf("first request through two stacked 1/minute limits: %d; want 200", w.Code)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote := fmt.Sprintf("198.51.100.%d:1", len(tt.name))
			if w := get(tt.a, "/", remote); w.Code != 200 {
				t.Fatalf("first request: %d", w.Code)
			}
			w := get(tt.b, "/", remote)
			if shared := w.Code == http.StatusTooManyRequests; shared != tt.share {
				t.Errorf("second handler answered %d; shared budget = %v, want %v", w.Code, shared, tt.share)
			}
		})
	}
}

func TestMiddleware_onAMuxIsOneBudgetForItsRoutes(t *testing.T) {
	lim, _ := clockedLimiter(t)
	mux := http.NewServeMux()
	mux.Handle("GET /a", okHandler)
	mux.Handle("GET /b", okHandler)
	h := MustNewMiddleware("2/minute", WithLimiter(lim)).Handler(mux)
	codes := []int{get(h, "/a", client).Code, get(h, "/b", client).Code, get(h, "/a", client).Code}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("codes %v; want the group to share 2/minute", codes)
	}
}

func TestMiddleware_perRouteKeyUnderOneMiddleware(t *testing.T) {
	lim, _ := clockedLimiter(t)
	mux := http.NewServeMux()
	mux.Handle("GET /a", okHandler)
	mux.Handle("GET /b/{id}", okHandler)
	// ServeMux sets r.Pattern only when it dispatches, so the limit sits
	// inside each route, keyed by route: one middleware, a budget per route.
	m := MustNewMiddleware("1/minute", WithLimiter(lim), WithKey(Combine(ByIP, ByRoute)))
	mux2 := http.NewServeMux()
	mux2.Handle("GET /a", m.Handler(okHandler))
	mux2.Handle("GET /b/{id}", m.Handler(okHandler))
	codes := []int{get(mux2, "/a", client).Code, get(mux2, "/b/1", client).Code, get(mux2, "/b/2", client).Code}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("codes %v; want /a and /b/{id} to have a budget each", codes)
	}
}

func TestMiddleware_forgedForwardedHeadersDoNotEscapeDefaultKey(t *testing.T) {
	lim, _ := clockedLimiter(t)
	h := MustNewMiddleware("3/minute", WithLimiter(lim)).Handler(okHandler)
	var codes []int
	for i := range 5 {
		fake := fmt.Sprintf("10.9.8.%d", i)
		w := get(h, "/", client, "X-Forwarded-For", fake, "X-Real-IP", fake, "Forwarded", "for="+fake)
		codes = append(codes, w.Code)
	}
	if fmt.Sprint(codes) != "[200 200 200 429 429]" {
		t.Errorf("codes %v; a new forged address per request must not reset the budget", codes)
	}
}

func TestMiddleware_trustedProxyHeadersSeparateClients(t *testing.T) {
	lim, _ := clockedLimiter(t)
	h := MustNewMiddleware("1/minute", WithLimiter(lim), WithKey(MustByClientIP("10.0.0.0/8"))).Handler(okHandler)
	proxy := "10.1.2.3:5555"
	codes := []int{
		get(h, "/", proxy, "X-Forwarded-For", "192.0.2.1").Code,
		get(h, "/", proxy, "X-Forwarded-For", "192.0.2.2").Code,
		get(h, "/", proxy, "X-Forwarded-For", "1.1.1.1, 192.0.2.1").Code, // forged left entry ignored
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("codes %v; want two clients behind the proxy, the third request being the first client's", codes)
	}
}

func TestMiddleware_denyHandlerSeesTheDecision(t *testing.T) {
	lim, _ := clockedLimiter(t)
	deny := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := DecisionFrom(r.Context())
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprintf(w, "ok=%v allowed=%v limit=%v retry=%v", ok, d.Allowed, d.Limit, w.Header().Get("Retry-After"))
	})
	h := MustNewMiddleware("1/hour", WithLimiter(lim), WithAlgorithm(FixedWindow), WithDenyHandler(deny)).Handler(okHandler)
	get(h, "/", client)
	w := get(h, "/", client)
	if w.Code != http.StatusTeapot || !strings.HasPrefix(w.Body.String(), "ok=true allowed=false limit=1/hour retry=") || strings.HasSuffix(w.Body.String(), "retry=") {
		t.Errorf("got %d %q; want the deny handler with the decision and Retry-After set", w.Code, w.Body)
	}
}

func TestMiddleware_exemptRequestsAreNotChargedOrHeadered(t *testing.T) {
	lim, _ := clockedLimiter(t)
	h := MustNewMiddleware("1/minute", WithLimiter(lim), WithExempt(func(r *http.Request) bool { return r.URL.Path == "/health" })).Handler(okHandler)
	for range 3 {
		if w := get(h, "/health", client); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("exempt request: %d with headers %v", w.Code, w.Header())
		}
	}
	if w := get(h, "/", client); w.Code != 200 {
		t.Errorf("first limited request after exempt ones: %d; exempt requests must not be charged", w.Code)
	}
}

// recorder is an Observer that keeps events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Observe(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) kinds() []EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []EventKind
	for _, e := range r.events {
		ks = append(ks, e.Kind)
	}
	return ks
}

func (r *recorder) last() Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[len(r.events)-1]
}

func TestMiddleware_shadowDecidesAndReportsButNeverRefuses(t *testing.T) {
	rec := &recorder{}
	lim, _ := clockedLimiter(t, WithObserver(rec))
	h := MustNewMiddleware("1/minute", WithLimiter(lim), WithShadow(), WithName("trial")).Handler(okHandler)
	for i := range 3 {
		w := get(h, "/", client)
		if w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "" {
			t.Fatalf("request %d: %d %v; shadow mode must serve without headers", i, w.Code, w.Header())
		}
	}
	e := rec.last()
	if e.Kind != EventDecision || e.Decision.Allowed || !e.Shadow || e.Scope != "trial" {
		t.Errorf("last event %+v; want a shadow denial in scope trial", e)
	}
}

func TestMiddleware_leakyBucketHoldsUntilTheSlot(t *testing.T) {
	lim, _ := clockedLimiter(t)
	var held []time.Duration
	wait := middlewareOption(func(c *middlewareConfig) {
		c.wait = func(ctx context.Context, d time.Duration) error { held = append(held, d); return nil }
	})
	h := MustNewMiddleware("2/second", WithLimiter(lim), WithAlgorithm(LeakyBucket), WithBurst(3), wait).Handler(okHandler)
	var codes []int
	for range 4 {
		codes = append(codes, get(h, "/", client).Code)
	}
	if fmt.Sprint(codes) != "[200 200 200 429]" || fmt.Sprint(held) != "[500ms 1s]" {
		t.Errorf("codes %v, held %v; want 3 admitted, the 2nd and 3rd held 500ms and 1s, the 4th refused", codes, held)
	}
}

func TestMiddleware_leakyBucketHoldEndsWhenTheClientGoes(t *testing.T) {
	lim, _ := clockedLimiter(t)
	served := false
	m := MustNewMiddleware("1/second", WithLimiter(lim), WithAlgorithm(LeakyBucket), WithBurst(5))
	h := m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true }))
	get(h, "/", client) // the next one waits a second
	served = false
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	r.RemoteAddr = client
	done := make(chan Result)
	go func() { done <- m.Enforce(r, http.Header{}) }()
	cancel()
	select {
	case res := <-done:
		if res.Verdict != Gone || res.Status != StatusClientClosedRequest || !errors.Is(res.Err, context.Canceled) {
			t.Errorf("result %+v; want Gone with status 499 and context.Canceled", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hold did not end when the request's context was cancelled")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if served || w.Body.Len() != 0 {
		t.Errorf("handler ran (%v) or wrote %q for a client that had gone", served, w.Body)
	}
}

func TestMiddleware_keyErrorPolicies(t *testing.T) {
	tests := []struct {
		name   string
		policy MiddlewareOption
		codes  string
	}{
		{"peer IP by default", nil, "[200 429]"},
		{"refuse with 400", WithKeyErrorPolicy(KeyErrorRefuse), "[400 400]"},
		{"serve unchecked", WithKeyErrorPolicy(KeyErrorServe), "[200 200]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := clockedLimiter(t)
			opts := []MiddlewareOption{WithLimiter(lim), WithKey(ByHeader("X-API-Key"))}
			if tt.policy != nil {
				opts = append(opts, tt.policy)
			}
			h := MustNewMiddleware("1/minute", opts...).Handler(okHandler)
			codes := fmt.Sprint([]int{get(h, "/", client).Code, get(h, "/", client).Code})
			if codes != tt.codes {
				t.Errorf("codes %s; want %s", codes, tt.codes)
			}
		})
	}
}

func TestMiddleware_keyErrorFallbackIsApartFromIdentifiedClients(t *testing.T) {
	lim, _ := clockedLimiter(t)
	// A user id that happens to read like the peer's IP.
	type userKey struct{}
	h := MustNewMiddleware("1/minute", WithLimiter(lim), WithKey(ByContextValue(userKey{}))).Handler(okHandler)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = client
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, "203.0.113.7")))
	if w2 := get(h, "/", client); w.Code != 200 || w2.Code != 200 {
		t.Errorf("codes %d %d; an anonymous request by IP must not share the budget of user %q", w.Code, w2.Code, "203.0.113.7")
	}
}

func TestMiddleware_plansHaveTheirOwnRulesAndBudgets(t *testing.T) {
	lim, _ := clockedLimiter(t)
	planOf := func(r *http.Request) string { return r.Header.Get("X-Plan") }
	h := MustNewMiddleware("1/minute", WithLimiter(lim), WithPlans(map[string]string{"free": "2/minute", "pro": "3/minute"}, planOf)).Handler(okHandler)
	tests := []struct {
		plan  string
		limit string
		codes string
	}{
		{"", "1", "[200 429 429 429]"},
		{"unknown", "1", "[429 429 429 429]"}, // the default rule's budget, spent above
		{"free", "2", "[200 200 429 429]"},
		{"pro", "3", "[200 200 200 429]"},
	}
	for _, tt := range tests {
		var codes []int
		var limit string
		for range 4 {
			w := get(h, "/", client, "X-Plan", tt.plan)
			codes = append(codes, w.Code)
			limit = w.Header().Get("X-RateLimit-Limit")
		}
		if fmt.Sprint(codes) != tt.codes || limit != tt.limit {
			t.Errorf("plan %q: codes %v limit %s; want %s and %s", tt.plan, codes, limit, tt.codes, tt.limit)
		}
	}
}

func TestMiddleware_headerOptions(t *testing.T) {
	tests := []struct {
		name string
		expr string
		opts []MiddlewareOption
		want map[string]string
	}{
		{"IETF fields", "10/minute", []MiddlewareOption{WithIETFHeaders(), WithAlgorithm(TokenBucket), WithName("quotes")}, map[string]string{
			"RateLimit-Policy": `"quotes";q=10;w=60`, "RateLimit": `"quotes";r=9;t=6`, "X-RateLimit-Limit": "10",
		}},
		{"IETF fields by name, every limit in the policy", "10/second;100/hour", []MiddlewareOption{WithIETFHeaders(), WithName("api")}, map[string]string{
			"RateLimit-Policy": `"api-1";q=10;w=1, "api-2";q=100;w=3600`, "RateLimit": `"api-1";r=9;t=2`,
		}},
		{"renamed", "10/minute", []MiddlewareOption{WithHeaderNames("RateLimit-Limit", "RateLimit-Remaining", "")}, map[string]string{
			"RateLimit-Limit": "10", "RateLimit-Remaining": "9", "X-RateLimit-Limit": "", "X-RateLimit-Reset": "",
		}},
		{"none", "10/minute", []MiddlewareOption{WithHeaderNames("", "", "")}, map[string]string{
			"X-RateLimit-Limit": "", "X-RateLimit-Remaining": "", "X-RateLimit-Reset": "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := clockedLimiter(t)
			h := MustNewMiddleware(tt.expr, append([]MiddlewareOption{WithLimiter(lim)}, tt.opts...)...).Handler(okHandler)
			w := get(h, "/", client)
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q; want %q", k, got, v)
				}
			}
		})
	}
}

func TestMiddleware_stackedLimitsShowTheTighterHeaders(t *testing.T) {
	lim, _ := clockedLimiter(t)
	tight := MustNewMiddleware("2/minute", WithLimiter(lim))
	loose := MustNewMiddleware("100/minute", WithLimiter(lim))
	for i, h := range []http.Handler{tight.Handler(loose.Handler(okHandler)), loose.Handler(tight.Handler(okHandler))} {
		w := get(h, "/", fmt.Sprintf("192.0.2.%d:1", i))
		if got := w.Header().Get("X-RateLimit-Limit"); got != "2" {
			t.Errorf("X-RateLimit-Limit = %q; want the tighter limit, 2", got)
		}
	}
}

// The tighter decision wins also when the headers are renamed away, and the
// IETF field then names the tighter limit: without a remaining header to
// mark as their own, the middlewares pass the count in a private entry.
func TestMiddleware_stackedLimitsAgreeWithoutTheirHeaders(t *testing.T) {
	lim, _ := clockedLimiter(t)
	opts := []MiddlewareOption{WithLimiter(lim), WithHeaderNames("", "", ""), WithIETFHeaders()}
	tight := MustNewMiddleware("2/minute", append(opts, WithName("tight"))...)
	loose := MustNewMiddleware("100/minute", append(opts, WithName("loose"))...)
	for i, h := range []http.Handler{tight.Handler(loose.Handler(okHandler)), loose.Handler(tight.Handler(okHandler))} {
		w := get(h, "/", fmt.Sprintf("192.0.2.%d:1", i))
		if got := w.Header().Get(HeaderRateLimit); !strings.HasPrefix(got, `"tight";r=1;`) {
			t.Errorf("order %d: RateLimit = %q; want the tighter limit's, \"tight\";r=1", i, got)
		}
	}
}

// The private entry never reaches the client.
func TestMiddleware_stackedLimitsSendNoPrivateHeader(t *testing.T) {
	lim, _ := clockedLimiter(t)
	h := MustNewMiddleware("2/minute", WithLimiter(lim)).Handler(MustNewMiddleware("5/minute", WithLimiter(lim)).Handler(okHandler))
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for name := range res.Header {
		if strings.Contains(strings.ToLower(name), "tightest") {
			t.Errorf("the response carries %q: %v", name, res.Header)
		}
	}
	if res.Header.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("X-RateLimit-Remaining = %q; want the tighter, 1", res.Header.Get("X-RateLimit-Remaining"))
	}
}

// The default headers of an admitted request are the three X-RateLimit
// entries and nothing else (README, Performance): the tightest count rides
// in the remaining header's own value, not in a private entry of its own.
func TestMiddleware_defaultHeadersWriteThreeEntries(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("5/minute", WithLimiter(lim))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.40:1"
	h := http.Header{}
	if res := m.Enforce(r, h); res.Verdict != Serve {
		t.Fatalf("verdict %v; want Serve", res.Verdict)
	}
	if len(h) != 3 || h.Get("X-RateLimit-Limit") != "5" || h.Get("X-RateLimit-Remaining") != "4" || h.Get("X-RateLimit-Reset") == "" {
		t.Errorf("headers %q; want exactly X-RateLimit-Limit 5, -Remaining 4 and -Reset", h)
	}
}

// With only the remaining count sent, under a name of the app's, the count
// still travels in it, marked, and the tighter limit's shows; the other
// headers stay unsent.
func TestMiddleware_stackedLimitsShowTheTighterRenamedRemaining(t *testing.T) {
	lim, _ := clockedLimiter(t)
	opts := []MiddlewareOption{WithLimiter(lim), WithHeaderNames("", "X-Left", "")}
	tight := MustNewMiddleware("2/minute", opts...)
	loose := MustNewMiddleware("100/minute", opts...)
	for i, h := range []http.Handler{tight.Handler(loose.Handler(okHandler)), loose.Handler(tight.Handler(okHandler))} {
		w := get(h, "/", fmt.Sprintf("192.0.2.%d:1", 30+i))
		if got := w.Header().Values("X-Left"); len(got) != 1 || got[0] != "1" {
			t.Errorf("order %d: X-Left = %q; want the tighter limit's 1", i, got)
		}
		if got := w.Header().Get("X-RateLimit-Limit") + w.Header().Get("X-RateLimit-Remaining"); got != "" {
			t.Errorf("order %d: unnamed headers sent: %v", i, w.Header())
		}
	}
}

// The RateLimit field has one name whatever a middleware calls its other
// headers, so stacked middlewares with the IETF fields keep the tighter
// decision in it also when one of them renames or drops the X-RateLimit
// headers, in either order.
func TestMiddleware_stackedMixedNamesKeepTheTighterIETFField(t *testing.T) {
	ip := 0
	for _, names := range [][3]string{{"", "", ""}, {"", "X-Left", ""}, {"X-A-Limit", "X-A-Remaining", "X-A-Reset"}} {
		for _, tightRenamed := range []bool{false, true} {
			lim, _ := clockedLimiter(t)
			renamed := WithHeaderNames(names[0], names[1], names[2])
			var tightOpts, looseOpts []MiddlewareOption
			if tightRenamed {
				tightOpts = append(tightOpts, renamed)
			} else {
				looseOpts = append(looseOpts, renamed)
			}
			tight := MustNewMiddleware("2/minute", append(tightOpts, WithLimiter(lim), WithIETFHeaders(), WithName("tight"))...)
			loose := MustNewMiddleware("100/minute", append(looseOpts, WithLimiter(lim), WithIETFHeaders(), WithName("loose"))...)
			for order, h := range []http.Handler{tight.Handler(loose.Handler(okHandler)), loose.Handler(tight.Handler(okHandler))} {
				ip++
				w := get(h, "/", fmt.Sprintf("192.0.2.%d:1", ip))
				if got := w.Header().Get(HeaderRateLimit); !strings.HasPrefix(got, `"tight";r=1`) {
					t.Errorf("names %q, tight renamed %v, order %d: RateLimit = %q; want the tighter limit's \"tight\";r=1", names, tightRenamed, order, got)
				}
			}
		}
	}
}

// Stacked middlewares pass the tightest count in their own remaining
// header's value, marked as theirs; a value set before them by anything
// else, however it is shaped, is not one of theirs and must not quiet
// their headers, even when it claims that nothing is left.
func TestMiddleware_aForeignRemainingHeaderNeverQuietsOurs(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("5/minute", WithLimiter(lim))
	forged := make([]string, 1, 2)
	forged[0], forged[:2][1] = "0", "\x00" // the mark's text, not the mark
	for i, foreign := range [][]string{{"0"}, forged} {
		h := http.Header{"X-Ratelimit-Remaining": foreign}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = fmt.Sprintf("192.0.2.%d:1", 20+i)
		if res := m.Enforce(r, h); res.Verdict != Serve {
			t.Fatalf("case %d: verdict %v; want Serve", i, res.Verdict)
		}
		if got, lim := h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Limit"); got != "4" || lim != "5" {
			t.Errorf("case %d: X-RateLimit-Remaining %q, -Limit %q after a foreign \"0\"; want our 4 of 5", i, got, lim)
		}
	}
}

func TestMiddleware_costIsCharged(t *testing.T) {
	lim, _ := clockedLimiter(t)
	h := MustNewMiddleware("10/minute", WithLimiter(lim), WithCost(func(r *http.Request) int64 {
		if r.URL.Path == "/bulk" {
			return 4
		}
		return -3 // negative counts as zero
	})).Handler(okHandler)
	rem := []string{
		get(h, "/bulk", client).Header().Get("X-RateLimit-Remaining"),
		get(h, "/free", client).Header().Get("X-RateLimit-Remaining"),
		get(h, "/bulk", client).Header().Get("X-RateLimit-Remaining"),
	}
	if fmt.Sprint(rem) != "[6 6 2]" {
		t.Errorf("remaining %v; want [6 6 2]", rem)
	}
}

func TestMiddleware_followsSetDefaultMadeAfterConstruction(t *testing.T) {
	old := defaultLimiter.Load()
	t.Cleanup(func() { defaultLimiter.Store(old) })
	h := MustNewMiddleware("1/minute").Handler(okHandler)
	lim, _ := clockedLimiter(t)
	SetDefault(lim)
	get(h, "/", client)
	if w := get(h, "/", client); w.Code != 429 {
		t.Fatalf("second request %d; want 429", w.Code)
	}
	fresh, _ := clockedLimiter(t)
	SetDefault(fresh)
	if w := get(h, "/", client); w.Code != 200 {
		t.Errorf("after SetDefault with a fresh limiter: %d; want 200", w.Code)
	}
}

func TestNewMiddleware_rejectsBadConfiguration(t *testing.T) {
	store := NewMemoryStore()
	t.Cleanup(func() { store.Close() })
	tests := []struct {
		name string
		expr string
		opts []MiddlewareOption
		want string
	}{
		{"bad expression", "5 per fortnight", nil, `"5 per fortnight"`},
		{"empty expression", "", nil, `invalid limit ""`},
		{"bad name", "5/minute", []MiddlewareOption{WithName("my api")}, `WithName "my api"`},
		{"bad plan expression", "5/minute", []MiddlewareOption{WithPlans(map[string]string{"pro": "lots"}, func(*http.Request) string { return "" })}, `plan "pro": limitkit: invalid limit "lots"`},
		{"log too large", "200000/minute", []MiddlewareOption{WithAlgorithm(SlidingWindowLog)}, "at most 100000"},
		{"nil key", "5/minute", []MiddlewareOption{WithKey(nil)}, "WithKey(nil)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMiddleware(tt.expr, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one containing %s", err, tt.want)
			}
		})
	}
}

func TestMustNewMiddleware_panicsQuotingTheExpression(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), `"10/minnute"`) {
			t.Errorf("panic %v; want one quoting the expression", p)
		}
	}()
	MustNewMiddleware("10/minnute")
}

// keyRecorder is a Store that remembers the keys it is asked about.
type keyRecorder struct {
	*MemoryStore
	mu   sync.Mutex
	keys []string
}

func (s *keyRecorder) Take(ctx context.Context, key string, rule Rule, cost int64) (Decision, error) {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
	return s.MemoryStore.Take(ctx, key, rule, cost)
}

// The store owns namespacing (the Redis store adds "limitkit:"), so the
// middleware's key is the scope and the identity, and nothing else.
func TestMiddleware_storeKeyIsScopeColonIdentity(t *testing.T) {
	store := &keyRecorder{MemoryStore: NewMemoryStore()}
	lim := New(WithStore(store))
	t.Cleanup(func() { lim.Close() })
	planOf := func(r *http.Request) string { return r.Header.Get("X-Plan") }
	named := MustNewMiddleware("5/minute", WithLimiter(lim), WithName("quotes"), WithPlans(map[string]string{"pro": "9/minute"}, planOf)).Handler(okHandler)
	keyed := MustNewMiddleware("5/minute", WithLimiter(lim), WithName("keyed"), WithKey(ByHeader("X-API-Key"))).Handler(okHandler)
	derived := MustNewMiddleware("5/minute", WithLimiter(lim))
	get(named, "/", client)
	get(named, "/", client, "X-Plan", "pro")
	get(keyed, "/", client, "X-API-Key", "secret")
	get(keyed, "/", client) // no key: counted by peer IP
	get(derived.Handler(okHandler), "/", client)
	want := []string{
		"quotes:203.0.113.7",
		"quotes/pro:203.0.113.7",
		"keyed:" + HashIdentity("secret"),
		"keyed:ip:203.0.113.7",
		derived.Scope() + ":203.0.113.7",
	}
	if got := fmt.Sprint(store.keys); got != fmt.Sprint(want) {
		t.Errorf("store keys %v; want %v", got, want)
	}
}

// reusedWriter is a ResponseWriter whose header map survives between
// requests, as a server's does between a handler's writes, so that the
// allocation count is the middleware's own.
type reusedWriter struct{ h http.Header }

func (w *reusedWriter) Header() http.Header         { return w.h }
func (w *reusedWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *reusedWriter) WriteHeader(int)             {}

// The one: the block the headers are written to, their value slices and
// their numbers' text (see writeHeaders). The store key costs none on a
// known key (see storeKey), with header values of three digits or ten.
func TestMiddleware_allocatesOncePerRequest(t *testing.T) {
	tests := []struct {
		name string
		opts []MiddlewareOption
	}{
		{"default headers", nil},
		{"with IETF headers and an observer", []MiddlewareOption{WithIETFHeaders()}},
	}
	for _, expr := range []string{"100/minute", "1000000000/hour"} {
		for _, tt := range tests {
			t.Run(expr+"/"+tt.name, func(t *testing.T) {
				lim, _ := clockedLimiter(t, WithObserver(ObserverFunc(func(Event) {})))
				h := MustNewMiddleware(expr, append([]MiddlewareOption{WithLimiter(lim), WithName("allocs")}, tt.opts...)...).Handler(okHandler)
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = client
				w := &reusedWriter{h: http.Header{}}
				h.ServeHTTP(w, r) // the key exists from here on
				// 50 runs and AllocsPerRun's warm-up keep the client within
				// 100/minute: every request is admitted.
				allocs := testing.AllocsPerRun(50, func() {
					clear(w.h)
					h.ServeHTTP(w, r)
				})
				if allocs > 1 {
					t.Errorf("%v allocations per request; want 1", allocs)
				}
				if count, _, _ := strings.Cut(expr, "/"); w.h.Get("X-RateLimit-Limit") != count || w.h.Get("X-RateLimit-Remaining") == "" {
					t.Errorf("headers %v; want the limit's", w.h)
				}
			})
		}
	}
}

func BenchmarkMiddleware(b *testing.B) {
	lim := New() // the system clock: a stepClock's mutex would be the bottleneck
	b.Cleanup(func() { lim.Close() })
	h := MustNewMiddleware("1000000000/hour", WithLimiter(lim)).Handler(okHandler)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = client
		w := &reusedWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}
