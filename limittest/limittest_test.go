package limittest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

// fakeTB records what an assertion reports, so that a test can check that
// it fails when it should. Methods it does not override panic (the
// embedded TB is nil): the assertions must not call them.
type fakeTB struct {
	testing.TB
	errs []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

var ok = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

func get(h http.Handler) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	return rec
}

// respond returns a recorder with status and headers as given, name then
// value.
func respond(status int, kv ...string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	for i := 0; i < len(kv); i += 2 {
		rec.Header().Add(kv[i], kv[i+1])
	}
	rec.WriteHeader(status)
	return rec
}

// The assertions pass what the middleware really sends.
func TestAssertions_passTheMiddlewaresResponses(t *testing.T) {
	lim, clock := NewLimiter(t)
	h := core.MustNewMiddleware("2/minute", core.WithLimiter(lim), core.WithName("quotes"), core.WithIETFHeaders(), core.WithAlgorithm(core.FixedWindow)).Handler(ok)
	var f fakeTB
	passed := AssertAllowed(&f, get(h), Limit(2), Remaining(1), Reset(time.Minute),
		Param("RateLimit-Policy", "quotes", "q", 2), Param("RateLimit-Policy", "quotes", "w", 60), Param("RateLimit", "quotes", "r", 1))
	clock.Advance(30 * time.Second)
	passed = AssertAllowed(&f, get(h).Result(), Remaining(0)) && passed
	passed = AssertLimited(&f, get(h), Limit(2), Remaining(0), RetryAfter(30*time.Second), Param("RateLimit", "quotes", "r", 0)) && passed
	passed = AssertHeaders(&f, get(h), Header("X-RateLimit-Limit", "2"), NoHeader("X-Other")) && passed
	if !passed || len(f.errs) > 0 {
		t.Errorf("assertions failed on good responses (returned %v): %q", passed, f.errs)
	}
}

// Each assertion fails, and says why, when the response is wrong.
func TestAssertions_failWhenTheyShould(t *testing.T) {
	good := []string{"X-Ratelimit-Limit", "5", "X-Ratelimit-Remaining", "4", "X-Ratelimit-Reset", "60"}
	denied := []string{"X-Ratelimit-Limit", "5", "X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "60", "Retry-After", "12"}
	ietf := append(good[:len(good):len(good)], "Ratelimit-Policy", `"api";q=5;w=60`, "Ratelimit", `"api";r=4;t=60`)
	tests := []struct {
		name   string
		rec    *httptest.ResponseRecorder
		assert func(testing.TB, *httptest.ResponseRecorder) bool
		says   string
	}{
		{"wrong limit", respond(200, good...), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertHeaders(t, r, Limit(6)) },
			`X-Ratelimit-Limit is "5", want 6`},
		{"wrong remaining", respond(200, good...), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertHeaders(t, r, Remaining(3)) },
			`X-Ratelimit-Remaining is "4", want 3`},
		{"missing remaining", respond(200, "X-Ratelimit-Limit", "5"), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertHeaders(t, r, Remaining(4)) },
			`X-Ratelimit-Remaining is missing, want 4`},
		{"wrong reset", respond(200, good...), func(t testing.TB, r *httptest.ResponseRecorder) bool {
			return AssertHeaders(t, r, Reset(59*time.Second))
		},
			`X-Ratelimit-Reset is "60", want 59`},
		{"wrong retry-after", respond(429, denied...), func(t testing.TB, r *httptest.ResponseRecorder) bool {
			return AssertLimited(t, r, RetryAfter(11*time.Second))
		},
			`Retry-After is "12", want 11`},
		{"allowed, but 429", respond(429, denied...), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertAllowed(t, r) },
			`status 429 Too Many Requests, want the request admitted`},
		{"allowed, but 503", respond(503, "Retry-After", "1"), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertAllowed(t, r) },
			`status 503 Service Unavailable`},
		{"allowed with Retry-After", respond(200, append(good, "Retry-After", "3")...), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertAllowed(t, r) },
			`Retry-After is "3", want none`},
		{"allowed without headers", respond(200), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertAllowed(t, r) },
			`X-Ratelimit-Limit is missing`},
		{"limited, but 200", respond(200, good...), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertLimited(t, r) },
			`status 200 OK, want 429 Too Many Requests`},
		{"limited without Retry-After", respond(429, good...), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertLimited(t, r) },
			`Retry-After is missing`},
		{"negative remaining", respond(200, "X-Ratelimit-Limit", "5", "X-Ratelimit-Remaining", "-1"), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertHeaders(t, r) },
			`X-Ratelimit-Remaining is "-1", want an integer of at least 0`},
		{"remaining above the limit", respond(200, "X-Ratelimit-Limit", "5", "X-Ratelimit-Remaining", "6"), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertHeaders(t, r) },
			`X-Ratelimit-Remaining is 6, more than X-Ratelimit-Limit 5`},
		{"limit not a number", respond(200, "X-Ratelimit-Limit", "5/minute"), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertHeaders(t, r) },
			`X-Ratelimit-Limit is "5/minute", want an integer of at least 1`},
		{"limit sent twice", respond(200, "X-Ratelimit-Limit", "5", "X-Ratelimit-Limit", "10"), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertHeaders(t, r) },
			`X-Ratelimit-Limit is ["5" "10"], want one value`},
		{"retry-after of zero", respond(429, "Retry-After", "0"), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertHeaders(t, r) },
			`Retry-After is "0", want an integer of at least 1`},
		{"retry-after a date", respond(429, "Retry-After", "Fri, 31 Dec 1999 23:59:59 GMT"), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertLimited(t, r) },
			`want an integer of at least 1`},
		{"wrong header", respond(200, good...), func(t testing.TB, r *httptest.ResponseRecorder) bool {
			return AssertHeaders(t, r, Header("x-ratelimit-reset", "6"))
		},
			`X-Ratelimit-Reset is "60", want "6"`},
		{"unwanted header", respond(200, good...), func(t testing.TB, r *httptest.ResponseRecorder) bool {
			return AssertHeaders(t, r, NoHeader("X-RateLimit-Limit"))
		},
			`X-Ratelimit-Limit is "5", want none`},
		{"field missing", respond(200, good...), func(t testing.TB, r *httptest.ResponseRecorder) bool {
			return AssertHeaders(t, r, Param("RateLimit", "api", "r", 4))
		}, `Ratelimit is missing, want an item "api" with r=4`},
		{"no such item", respond(200, ietf...), func(t testing.TB, r *httptest.ResponseRecorder) bool {
			return AssertHeaders(t, r, Param("RateLimit", "default", "r", 4))
		}, `no item "default"`},
		{"wrong parameter", respond(200, ietf...), func(t testing.TB, r *httptest.ResponseRecorder) bool {
			return AssertHeaders(t, r, Param("RateLimit-Policy", "api", "q", 6))
		}, `item "api" has q=5, want 6`},
		{"missing parameter", respond(200, ietf...), func(t testing.TB, r *httptest.ResponseRecorder) bool {
			return AssertHeaders(t, r, Param("RateLimit", "api", "pk", 1))
		}, `item "api" has pk=(none), want 1`},
		{"malformed field", respond(200, "Ratelimit", `"api;r=4`), func(t testing.TB, r *httptest.ResponseRecorder) bool { return AssertHeaders(t, r) },
			`structured field "\"api;r=4": at 8: unterminated string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f fakeTB
			if tt.assert(&f, tt.rec) {
				t.Error("the assertion returned true")
			}
			if len(f.errs) == 0 {
				t.Fatalf("the assertion reported nothing; want %q", tt.says)
			}
			if !strings.Contains(strings.Join(f.errs, "\n"), tt.says) {
				t.Errorf("reported %q; want it to say %q", f.errs, tt.says)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		in   string
		want string // items as value{k=v,...}; "error" for a refusal
	}{
		{``, ``},
		{`"quotes";q=100;w=60`, `quotes{q=100,w=60}`},
		{`"a-1";q=5;w=1, "a-2";q=100;w=3600`, `a-1{q=5,w=1} a-2{q=100,w=3600}`},
		{`"x";r=0;t=30;pk=:YWJj:`, `x{r=0,t=30,pk=:YWJj:}`},
		{`default;q=1;qu="concurrent-requests";flag`, `default{q=1,qu=concurrent-requests,flag=?1}`},
		{"\"esc\\\"aped\";q=-2.5 ,\t tok/en;b=?0", `esc"aped{q=-2.5} tok/en{b=?0}`},
		{`"a";q=1,`, `error`},
		{`"a" "b"`, `error`},
		{`"a";Q=1`, `error`},
		{`("a" "b")`, `error`},
		{`"a";q=1234567890123456`, `error`},
		{`"a";q=1.`, `error`},
		{`"a\q"`, `error`},
		{`"a";q=?2`, `error`},
	}
	for _, tt := range tests {
		items, err := ParseList(tt.in)
		var got []string
		for _, it := range items {
			var ps []string
			for _, k := range it.Keys {
				ps = append(ps, k+"="+it.Params[k])
			}
			got = append(got, it.Value+"{"+strings.Join(ps, ",")+"}")
		}
		g := strings.Join(got, " ")
		if err != nil {
			g = "error"
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
				t.Errorf("ParseList(%q): error %q does not quote the input", tt.in, err)
			}
		}
		if g != tt.want {
			t.Errorf("ParseList(%q) = %q (err %v), want %q", tt.in, g, err, tt.want)
		}
	}
}

// limited is built once, as an app's routes are, and counts against the
// default limiter: without Isolate, what one test spends the next finds
// spent.
var limited = core.MustNewMiddleware("1/minute", core.WithName("limittest-isolate"), core.WithAlgorithm(core.FixedWindow)).Handler(ok)

func TestIsolate_givesEachTestFreshBudgetsAndPutsTheDefaultBack(t *testing.T) {
	before := core.Default()
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			clock := Isolate(t)
			AssertAllowed(t, get(limited), Remaining(0))
			AssertLimited(t, get(limited), RetryAfter(time.Minute))
			clock.Advance(time.Minute)
			AssertAllowed(t, get(limited))
		})
	}
	if core.Default() != before {
		t.Error("the default limiter is not the one before the tests")
	}
}

// Isolate's limiter is the test's, and closed when the test ends.
func TestIsolate_closesItsLimiter(t *testing.T) {
	var lim *core.Limiter
	t.Run("isolated", func(t *testing.T) {
		Isolate(t)
		lim = core.Default()
	})
	if lim == core.Default() {
		t.Fatal("the isolated limiter is still the default")
	}
	if _, err := lim.Allow(t.Context(), "k", core.MustRule("1/minute", 0)); err == nil {
		t.Error("the isolated limiter still answers after its test")
	}
}

// The default limiter is one per process: Isolate refuses a parallel test
// rather than let two tests share, and reset, each other's budgets.
func TestIsolate_refusesAParallelTest(t *testing.T) {
	t.Run("parallel", func(t *testing.T) {
		t.Parallel()
		defer func() {
			if p := recover(); p == nil {
				t.Error("Isolate in a parallel test did not panic")
			}
		}()
		Isolate(t)
	})
}

func TestDisable_admitsEverythingWithSaneHeaders(t *testing.T) {
	Disable(t)
	h := core.MustNewMiddleware("1/minute", core.WithIETFHeaders(), core.WithName("off"),
		core.WithCost(func(*http.Request) int64 { return 5 })).Handler(ok)
	for range 5 {
		AssertAllowed(t, get(h), Limit(1), Remaining(1), Reset(0), Param("RateLimit", "off", "r", 1))
	}
}

// Unlimited serves a limiter of the test's own, and every algorithm.
func TestUnlimited_admitsEveryAlgorithm(t *testing.T) {
	lim, _ := NewLimiter(t, core.WithStore(Unlimited()))
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowLog, core.SlidingWindowCounter, core.TokenBucket, core.LeakyBucket} {
		h := core.MustNewMiddleware("2/second;10/minute", core.WithLimiter(lim), core.WithAlgorithm(alg), core.WithName("u-"+alg.String())).Handler(ok)
		for range 20 {
			if !AssertAllowed(t, get(h), Limit(2), Remaining(2)) {
				t.Fatalf("%v: refused", alg)
			}
		}
	}
}

// Limits that charge by outcome, and peeks, work with limiting off too.
func TestDisable_coversChargeByOutcomeAndPeek(t *testing.T) {
	Disable(t)
	failed := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	m := core.MustNewMiddleware("1/minute", core.WithName("login-off"),
		core.WithChargeWhen(func(status int) bool { return status == http.StatusUnauthorized }))
	h := m.Handler(failed)
	for range 5 {
		rec := get(h)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("status %d; want the handler's 401", rec.Code)
		}
		AssertHeaders(t, rec, NoHeader("Retry-After"))
	}
	u, err := m.Peek(httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	if u.Remaining() != 1 {
		t.Errorf("Peek: %+v; want the full budget, 1", u)
	}
}
