package httptestkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

// The checks below are the behaviours every adapter must show alike. Each
// adapter's test builds its own framework's app; the check sends the
// requests and asserts.

// FailurePolicies checks, for every failure policy, the statuses of three
// requests to GET / when the store always fails, and the last body. serve
// returns the app under test: GET / limited to 1/minute by a middleware on
// lim, answering "ok".
func FailurePolicies(t *testing.T, serve func(lim *core.Limiter) http.Handler) {
	t.Helper()
	tests := []struct {
		policy core.FailurePolicy
		codes  string
		body   string
	}{
		{core.FailOpen, "[200 200 200]", "ok"},
		{core.FailClosed, "[503 503 503]", `{"error":"rate limiter unavailable"}` + "\n"},
		{core.Fallback, "[200 429 429]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			lim, _ := NewLimiter(t, core.WithStore(FailingStore{}), core.WithFailurePolicy(tt.policy), core.WithLogger(slog.New(slog.DiscardHandler)))
			h := serve(lim)
			var codes []int
			var last string
			for range 3 {
				w := Do(h, "GET", "/", Client)
				codes = append(codes, w.Code)
				last = w.Body.String()
			}
			if fmt.Sprint(codes) != tt.codes {
				t.Errorf("codes %v; want %s", codes, tt.codes)
			}
			if tt.body != "" && last != tt.body {
				t.Errorf("body %q; want %q", last, tt.body)
			}
		})
	}
}

// LeakyBucketHold checks that h, which limits GET / by a leaky bucket of
// 20/second with a burst of 2 on a real clock, serves the first request at
// once, holds the second for its 50ms slot and refuses the third.
func LeakyBucketHold(t *testing.T, h http.Handler) {
	t.Helper()
	if w := Do(h, "GET", "/", Client); w.Code != http.StatusOK {
		t.Fatalf("first request: %d", w.Code)
	}
	start := time.Now()
	w := Do(h, "GET", "/", Client)
	if held := time.Since(start); w.Code != http.StatusOK || held < 40*time.Millisecond {
		t.Errorf("second request: %d after %v; want 200 after its 50ms slot", w.Code, held)
	}
	if w := Do(h, "GET", "/", Client); w.Code != http.StatusTooManyRequests {
		t.Errorf("third request: %d; want 429, the queue is full", w.Code)
	}
}

// ShadowMode checks that three requests to GET / are all served without
// rate limit headers and two shadow denials are reported. serve returns the
// app under test: GET / limited to 1/minute in shadow mode by a middleware on
// lim.
func ShadowMode(t *testing.T, serve func(lim *core.Limiter) http.Handler) {
	t.Helper()
	var mu sync.Mutex
	var shadowed int
	lim, _ := NewLimiter(t, core.WithObserver(core.ObserverFunc(func(e core.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Kind == core.EventDecision && e.Shadow {
			shadowed++
		}
	})))
	h := serve(lim)
	for i := range 3 {
		if w := Do(h, "GET", "/", Client); w.Code != http.StatusOK || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("request %d: %d %v; shadow mode serves without headers", i, w.Code, w.Header())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if shadowed != 2 {
		t.Errorf("%d shadow denials reported; want 2", shadowed)
	}
}

// HeadersBeforeHandler checks that a handler behind the middleware sees the
// rate limit headers of its own request. serve returns the app under test:
// GET /items limited to 3/minute by a fixed window on lim, its handler
// calling record with its response's headers, then answering 200.
func HeadersBeforeHandler(t *testing.T, serve func(lim *core.Limiter, record func(http.Header)) http.Handler) {
	t.Helper()
	lim, _ := NewLimiter(t)
	var seen []string
	h := serve(lim, func(h http.Header) {
		seen = append(seen, h.Get("X-RateLimit-Limit")+" "+h.Get("X-RateLimit-Remaining")+" "+h.Get("X-RateLimit-Reset"))
	})
	for range 3 {
		if w := Do(h, "GET", "/items", Client); w.Code != http.StatusOK || w.Header().Get("X-RateLimit-Limit") != "3" {
			t.Fatalf("status %d, headers %v; want 200 with X-RateLimit-Limit 3", w.Code, w.Header())
		}
	}
	want := []string{"3 2 60", "3 1 60", "3 0 60"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("the handler saw headers %q; want %q", seen, want)
	}
}

// RouteBudgets checks a limit of 1/minute per route and client: h routes
// /items/:id and /users/:id, answering 200, under one middleware keyed by
// route and IP.
func RouteBudgets(t *testing.T, h http.Handler) {
	t.Helper()
	var codes []int
	for _, q := range []struct{ path, remote string }{
		{"/items/1", Client}, {"/items/2", Client}, {"/users/1", Client}, {"/items/1", "198.51.100.9:1"},
		{"/nope/1", Client}, {"/nope/2", Client}, // unmatched paths share one budget
	} {
		codes = append(codes, Do(h, "GET", q.path, q.remote).Code)
	}
	if want := "[200 429 200 200 404 429]"; fmt.Sprint(codes) != want {
		t.Errorf("codes %v; want %s", codes, want)
	}
}

// PlanAdmissions checks that h, limiting GET / to 1/minute unless the plan
// read from the X-Plan header is "pro", which gets 3/minute, admits 1 of 5
// requests without a plan and 3 of 5 on pro.
func PlanAdmissions(t *testing.T, h http.Handler) {
	t.Helper()
	count := func(plan string) int {
		n := 0
		for range 5 {
			if Do(h, "GET", "/", Client, "X-Plan", plan).Code == http.StatusOK {
				n++
			}
		}
		return n
	}
	if free, pro := count(""), count("pro"); free != 1 || pro != 3 {
		t.Errorf("admitted %d without a plan and %d on pro; want 1 and 3", free, pro)
	}
}

// DenyHandlerRefusal checks the second request to h, which limits GET / to
// 1/minute by a fixed window with a deny handler that records its result in
// *got and answers 429 "slow down; retry in <Retry-After>s".
func DenyHandlerRefusal(t *testing.T, h http.Handler, got *core.Result) {
	t.Helper()
	Do(h, "GET", "/", Client)
	w := Do(h, "GET", "/", Client)
	if w.Code != http.StatusTooManyRequests || w.Body.String() != "slow down; retry in 60s" {
		t.Errorf("got %d %q; want 429 from the deny handler", w.Code, w.Body)
	}
	if got.Status != http.StatusTooManyRequests || got.Decision.Allowed || got.Decision.Limit != core.Per(1, time.Minute) {
		t.Errorf("deny handler got %+v; want the refusing decision of 1/minute", *got)
	}
}

// NotCharged checks that h, limiting GET / to 1/minute, serves requests
// carrying the header pair (name, value) without rate limit headers and
// without charging them to the client.
func NotCharged(t *testing.T, h http.Handler, name, value string) {
	t.Helper()
	for i := range 3 {
		if w := Do(h, "GET", "/", Client, name, value); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("passed-over request %d: %d %v; want 200 without headers", i, w.Code, w.Header())
		}
	}
	if codes := []int{Do(h, "GET", "/", Client).Code, Do(h, "GET", "/", Client).Code}; fmt.Sprint(codes) != "[200 429]" {
		t.Errorf("codes after passed-over requests %v; want [200 429]: they must not be charged", codes)
	}
}

// GoneWhileHeld sends GET / to h from Client and cancels the request's
// context once decided has a value, as a client that goes away while the
// middleware holds its request; it returns the response once h has.
func GoneWhileHeld(t *testing.T, h http.Handler, decided <-chan struct{}) *httptest.ResponseRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	req.RemoteAddr = Client
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { h.ServeHTTP(w, req); close(done) }()
	<-decided // admitted and about to be held
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the hold did not end when the client went away")
	}
	return w
}

// BenchmarkParallel serves GET / on h from every benchmark goroutine,
// reusing one header map per goroutine as a server does.
func BenchmarkParallel(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = Client
		w := NewReusedWriter()
		for pb.Next() {
			clear(w.H)
			h.ServeHTTP(w, req)
		}
	})
}

// PanicNaming checks that f panics with an error that names call, such as
// `ginlimit.Limit("10/minnute")`, and wraps the *core.SyntaxError of the
// bad expression expr, quoting it.
func PanicNaming(t *testing.T, call, expr string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		err, _ := p.(error)
		if err == nil || !strings.Contains(err.Error(), call) {
			t.Fatalf("panic %v; want an error naming %s", p, call)
		}
		checkSyntaxError(t, err, expr)
	}()
	f()
}

// checkSyntaxError reports through t unless err wraps a *core.SyntaxError
// of expr whose message quotes it.
func checkSyntaxError(t *testing.T, err error, expr string) {
	t.Helper()
	var se *core.SyntaxError
	if !errors.As(err, &se) || se.Expr != expr || !strings.Contains(err.Error(), strconv.Quote(expr)) {
		t.Errorf("error %v; want one wrapping the *core.SyntaxError of %q, quoting it", err, expr)
	}
}

// Misuse is an option given wrongly, and what the constructor's error
// must say of it.
type Misuse[O core.AdapterOption] struct {
	Name string
	Opt  O      // none for a bad expression
	Want string // in the error: the option's name as the user wrote it, and the mistake
	// Syntax, if set, is the bad limit expression whose *core.SyntaxError
	// the error must wrap.
	Syntax string
}

// NewErrors checks that an adapter's New, called constructor (such as
// "ginlimit.New"), refuses a bad expression and each misuse with no middleware and an error that names the call and its
// expression, then the mistake, and that wraps core's error, so that
// errors.As finds a *core.SyntaxError for a bad expression. newMiddleware
// is that New.
func NewErrors[H any, O core.AdapterOption](t *testing.T, constructor string, newMiddleware func(expr string, opts ...O) (H, error), misuses ...Misuse[O]) {
	t.Helper()
	tests := append([]Misuse[O]{
		{Name: "bad expression", Want: "limitkit: invalid limit", Syntax: "five/minute"},
	}, misuses...)
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			expr := "5/minute"
			var opts []O
			if any(tt.Opt) == nil {
				expr = tt.Syntax
			} else {
				opts = append(opts, tt.Opt)
			}
			mw, err := newMiddleware(expr, opts...)
			made := !reflect.ValueOf(&mw).Elem().IsZero()
			call := fmt.Sprintf("%s(%q): ", constructor, expr)
			if err == nil || made || !strings.HasPrefix(err.Error(), call) || !strings.Contains(err.Error(), tt.Want) {
				t.Fatalf("%s = %v, %v; want no middleware and an error beginning %q and containing %q", call, made, err, call, tt.Want)
			}
			if tt.Syntax != "" {
				checkSyntaxError(t, err, tt.Syntax)
			}
		})
	}
}

// NativeMisuses are the misuses of an adapter's framework-typed Key and
// Plans (of package pkg, such as "ginlimit"), whose errors must name them:
// no key, a nil key, a nil key among others, a nil plan function, a plan
// name WithName would refuse and a plan expression that does not parse.
// aKey is any key function of the adapter's.
func NativeMisuses[C any, F ~func(C) (string, error), O core.AdapterOption](pkg string, key func(...F) O, plans func(map[string]string, func(C) string) O, aKey F) []Misuse[O] {
	planOf := func(C) string { return "" }
	return []Misuse[O]{
		{Name: "no key", Opt: key(), Want: pkg + ".Key(): give at least one key function"},
		{Name: "a nil key", Opt: key(nil), Want: pkg + ".Key(nil): give a key function"},
		{Name: "a nil key among others", Opt: key(aKey, nil), Want: pkg + ".Key: key function 2 of 2 is nil"},
		{Name: "a nil plan function", Opt: plans(map[string]string{"pro": "5/minute"}, nil), Want: pkg + ".Plans: the planOf function is nil"},
		{Name: "a bad plan name", Opt: plans(map[string]string{"pro plan": "5/minute"}, planOf), Want: pkg + `.Plans: limitkit: plan "pro plan": use printable ASCII`},
		{Name: "a bad plan expression", Opt: plans(map[string]string{"pro": "5/minnute"}, planOf), Want: pkg + `.Plans: plan "pro": limitkit: invalid limit`, Syntax: "5/minnute"},
	}
}

// NewLoggedLimiter is NewLimiter with a logger at debug level writing into
// the buffer returned.
func NewLoggedLimiter(t testing.TB) (*core.Limiter, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	lim, _ := NewLimiter(t, core.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	return lim, &logs
}

// ScopesNamedBy checks that logs tell of two scopes, of Limit and New,
// derived from the function fn (package path and name).
func ScopesNamedBy(t *testing.T, logs *bytes.Buffer, fn string) {
	t.Helper()
	if n := strings.Count(logs.String(), "func="+fn); n != 2 {
		t.Errorf("%d scopes derived from the test function; want 2 (Limit and New). Logs:\n%s", n, logs.String())
	}
}

// AllocsPerRequest is the average number of allocations of a GET of path
// on h, once the client's key exists, writing to a ReusedWriter.
func AllocsPerRequest(h http.Handler, path string) float64 {
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = Client
	w := NewReusedWriter()
	return AllocsPerCall(func() {
		clear(w.H)
		h.ServeHTTP(w, req)
	})
}

// AllocsPerCall is the average number of allocations of f, once a first
// call has made what the first makes (the client's key). It averages
// allocRuns calls.
func AllocsPerCall(f func()) float64 {
	f()
	return testing.AllocsPerRun(allocRuns, f)
}

// allocRuns is how many calls AllocsPerCall averages: few enough that a
// client stays within 100/minute, so that every request of the
// allocation tests is admitted. Without -race the counts are the same on
// every run; AllocsPerRun rounds the average down.
const allocRuns = 50

// AllocLimits are the limits the allocation tests hold each adapter to:
// one whose header values have at most three digits, and one whose have
// ten (X-RateLimit-Limit: 1000000000).
var AllocLimits = []string{"100/minute", "1000000000/hour"}

// MaxAddedAllocs is the most allocations limitkit may add to a request on
// a known key, with the default headers or the IETF fields (issue 12):
// the block the headers are written to, and on Echo, which applies a
// route's middlewares anew on every request, the closure the middleware
// returns.
const MaxAddedAllocs = 2

// CheckLimitHeaders reports through t unless h carries the
// X-RateLimit-Limit of expr (its count) and a remaining count with at most
// as many digits, so that an allocation test measured the digits it says.
func CheckLimitHeaders(t testing.TB, h http.Header, expr string) {
	t.Helper()
	count, _, _ := strings.Cut(expr, "/")
	if got := h.Get("X-RateLimit-Limit"); got != count {
		t.Errorf("X-RateLimit-Limit %q; want %s", got, count)
	}
	if got := h.Get("X-RateLimit-Remaining"); got == "" || len(got) > len(count) {
		t.Errorf("X-RateLimit-Remaining %q; want at most %d digits", got, len(count))
	}
}
