package httptestkit

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/limitkit/limitkit/core"
)

// RoutesSet is the LimitSet RoutesBudgets mounts: a default of 2/minute,
// POST /login with 1/minute of its own, GET /healthz exempt, on a limiter
// of its own. itemsPattern is the framework's pattern of /items/<id>, for
// the route table, whose entry for it (GET only) is a 3/minute override
// when override is set.
func RoutesSet(t testing.TB, itemsPattern string, override bool) *core.LimitSet {
	t.Helper()
	lim, _ := NewLimiter(t)
	cfg := core.Config{
		Default: &core.LimitConfig{Limit: "2/minute"},
		Routes: map[string]core.LimitConfig{
			"POST /login":  {Limit: "1/minute"},
			"GET /healthz": {Exempt: true},
		},
	}
	if override {
		cfg.Routes["GET "+itemsPattern] = core.LimitConfig{Limit: "3/minute"}
	}
	set, err := core.NewLimitSet(cfg, core.ConfigMiddleware(core.WithLimiter(lim)))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// RoutesBudgets checks an app mounted with an adapter's Routes over
// RoutesSet(t, pattern, false), serving GET /items/<id>, GET /users/<id>,
// POST /login and GET /healthz, each answering its own name: every route
// gets its own default budget; a route's own limit replaces the default;
// an exempt route is neither checked nor charged; and a client can neither
// escape nor multiply its budget by varying the path (trailing slash,
// case, a doubled slash, a query), the method, or by asking for routes
// that do not exist, which share one budget.
func RoutesBudgets(t *testing.T, h http.Handler) {
	t.Helper()
	const (
		a = "203.0.113.10:1" // the client whose budgets are checked
		b = "203.0.113.11:1" // the client that probes unknown routes
	)
	seq := func(remote string, reqs ...string) string {
		var out []string
		for _, q := range reqs {
			method, path, _ := strings.Cut(q, " ")
			w := Do(h, method, path, remote)
			out = append(out, fmt.Sprint(w.Code))
		}
		return strings.Join(out, " ")
	}
	// One budget per route under the default, not per path.
	if got := seq(a, "GET /items/1", "GET /items/2", "GET /items/3"); got != "200 200 429" {
		t.Errorf("GET /items/1, /items/2, /items/3: %s; want 200 200 429 (one 2/minute budget for the route)", got)
	}
	if got := seq(a, "GET /users/1", "GET /users/2", "GET /users/3"); got != "200 200 429" {
		t.Errorf("GET /users/...: %s; want 200 200 429 (a budget of its own, apart from /items)", got)
	}
	// A route's own limit replaces the default: 1/minute, and its headers say so.
	w := Do(h, "POST", "/login", a)
	if w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "1" {
		t.Errorf("POST /login: %d, X-RateLimit-Limit %q; want 200 under its own limit of 1", w.Code, w.Header().Get("X-RateLimit-Limit"))
	}
	if got := seq(a, "POST /login"); got != "429" {
		t.Errorf("second POST /login: %s; want 429 (1/minute, its own)", got)
	}
	// Exempt: never checked, never charged, no headers.
	for range 5 {
		if w := Do(h, "GET", "/healthz", a); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("GET /healthz: %d, headers %v; want 200 without rate-limit headers", w.Code, w.Header())
		}
	}
	// The exhausted route cannot be reached by another spelling.
	for _, q := range []string{
		"GET /items/3/", "GET /ITEMS/3", "GET /Items/3", "GET //items/3", "GET /items//3", "GET /items/3?x=1",
		"GET /items/3#f", "HEAD /items/3", "FOO /items/3", "get /items/3", "GET /items/%33",
	} {
		method, path, _ := strings.Cut(q, " ")
		if w := Do(h, method, path, a); w.Code == 200 && strings.Contains(w.Body.String(), "items") {
			t.Errorf("%s: served by the items handler (%d %q) after its budget was spent", q, w.Code, w.Body)
		}
	}
	// Unknown routes, whatever their path or method, share one budget.
	got := seq(b, "GET /nope1", "GET /nope2", "DELETE /nope3", "GET /nope4/x", "FOO /nope5", "GET /HEALTHZ")
	if got != "404 404 429 429 429 429" {
		t.Errorf("unknown routes: %s; want 404 404 then 429: one 2/minute budget for every route that does not exist", got)
	}
	// They are apart from the real routes' budgets, which are still whole.
	if got := seq(b, "GET /items/1"); got != "200" {
		t.Errorf("GET /items/1 after unknown routes: %s; want 200", got)
	}
}

// RoutesOverride checks, on an app mounted over RoutesSet(t, pattern,
// true), that a route named by method and pattern gets its own 3/minute
// budget, shared by all its paths, in place of the default's 2/minute.
func RoutesOverride(t *testing.T, h http.Handler) {
	t.Helper()
	got := Codes(h, Client, "/items/1", "/items/2", "/items/3", "/items/4")
	if fmt.Sprint(got) != "[200 200 200 429]" {
		t.Errorf("GET /items/<id> under its own 3/minute: %v; want [200 200 200 429]", got)
	}
}

// CheckedRoutes checks an adapter's CheckRoutes, which check calls on the
// app of RoutesBudgets built over set: with every entry of the route table
// registered it reports nothing; with misspelt entries, it names each of
// them and none of the others; and from then on Reload refuses a Config
// with one.
func CheckedRoutes(t *testing.T, itemsPattern string, check func(set *core.LimitSet) error) {
	t.Helper()
	if err := check(RoutesSet(t, itemsPattern, true)); err != nil {
		t.Errorf("every entry registered: %v; want no error", err)
	}
	cfg := core.Config{Default: &core.LimitConfig{Limit: "2/minute"}, Routes: map[string]core.LimitConfig{
		"POST /login": {Limit: "1/minute"},
		"POST /logn":  {Limit: "1/minute"},
		"GET /login":  {Limit: "1/minute"}, // the path exists, for another method
		"/nope":       {Exempt: true},
		"/healthz":    {Exempt: true}, // every method: GET is registered
	}}
	set := core.MustLimitSet(cfg)
	err := check(set)
	for _, want := range []string{`routes["POST /logn"]: matches no route`, `routes["GET /login"]: matches no route`, `routes["/nope"]: matches no route`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("misspelt entries: %v; want it to contain %q", err, want)
		}
	}
	if err != nil && (strings.Contains(err.Error(), `"POST /login"`) || strings.Contains(err.Error(), `"/healthz"`)) {
		t.Errorf("error %v names a registered route", err)
	}
	delete(cfg.Routes, "POST /logn")
	delete(cfg.Routes, "GET /login")
	delete(cfg.Routes, "/nope")
	if err := set.Reload(cfg); err != nil {
		t.Errorf("Reload without the misspelt entries: %v", err)
	}
	cfg.Routes["DELETE /items"] = core.LimitConfig{Limit: "1/minute"}
	if err := set.Reload(cfg); err == nil || !strings.Contains(err.Error(), `routes["DELETE /items"]: matches no route`) {
		t.Errorf("Reload with an unknown route after CheckRoutes: %v; want it refused, naming it", err)
	}
}

// RoutesChargeByOutcome checks that a LimitSet whose limits charge by
// outcome (core.WithChargeWhen, through core.ConfigMiddleware) is settled
// by the adapter's Routes: newApp mounts the set and serves POST /login,
// answering 401 when the request has X-Fail and 200 otherwise; under its
// own 1/minute, successes spend nothing and one failure spends the budget.
func RoutesChargeByOutcome(t *testing.T, newApp func(set *core.LimitSet) http.Handler) {
	t.Helper()
	lim, _ := NewLimiter(t)
	set := core.MustLimitSet(core.Config{Routes: map[string]core.LimitConfig{"POST /login": {Limit: "1/minute"}}},
		core.ConfigMiddleware(core.WithLimiter(lim), core.WithChargeWhen(func(status int) bool { return status != http.StatusOK })))
	h := newApp(set)
	var got []string
	for _, fail := range []bool{false, false, false, true, false} {
		var header []string
		if fail {
			header = []string{"X-Fail", "1"}
		}
		got = append(got, fmt.Sprint(Do(h, "POST", "/login", Client, header...).Code))
	}
	if strings.Join(got, " ") != "200 200 200 401 429" {
		t.Errorf("logins: %s; want 200 200 200 401 429: only the failure is charged", strings.Join(got, " "))
	}
}

// RoutesLabelEvents checks that the decisions of an adapter's Routes carry
// the route pattern the router matched, for metric labels, and nothing of
// the request's own: GET /items/<id> reads itemsPattern, POST /login reads
// "/login" (a route of the table), and a path no route matches reads "".
func RoutesLabelEvents(t *testing.T, itemsPattern string, newApp func(*core.LimitSet) http.Handler) {
	t.Helper()
	var (
		mu     sync.Mutex
		routes []string
	)
	lim, _ := NewLimiter(t, core.WithObserver(core.ObserverFunc(func(e core.Event) {
		if e.Kind == core.EventDecision {
			mu.Lock()
			routes = append(routes, e.Route)
			mu.Unlock()
		}
	})))
	set, err := core.NewLimitSet(core.Config{
		Default: &core.LimitConfig{Limit: "10/minute"},
		Routes:  map[string]core.LimitConfig{"POST /login": {Limit: "5/minute"}},
	}, core.ConfigMiddleware(core.WithLimiter(lim)))
	if err != nil {
		t.Fatal(err)
	}
	h := newApp(set)
	Do(h, "GET", "/items/7", "192.0.2.1:1")
	Do(h, "POST", "/login", "192.0.2.1:1")
	Do(h, "GET", "/no/such/path", "192.0.2.1:1")
	mu.Lock()
	defer mu.Unlock()
	if want := []string{itemsPattern, "/login", ""}; !slices.Equal(routes, want) {
		t.Errorf("decision events' routes = %q; want %q", routes, want)
	}
}
