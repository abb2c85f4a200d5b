package core

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// routeCheck decides one request to (method, pattern) through set, as an
// adapter's Routes does, and returns its status: 200 when served.
func routeCheck(set *LimitSet, method, pattern, remote string) int {
	m, native := set.ForRoute(method, pattern)
	if m == nil {
		return http.StatusOK
	}
	r := request(remote)
	r.Method = method
	res := m.EnforceWith(r, http.Header{}, native)
	if res.Verdict == Serve {
		return http.StatusOK
	}
	return res.Status
}

func routeCodes(set *LimitSet, method, pattern string, n int) []int {
	var codes []int
	for range n {
		codes = append(codes, routeCheck(set, method, pattern, client))
	}
	return codes
}

func decodeConfig(t *testing.T, text string) Config {
	t.Helper()
	var cfg Config
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return cfg
}

const setJSON = `{
  "default": {"limit": "2/minute"},
  "routes": {
    "POST /login": {"limit": "1/minute"},
    "/search": {"limit": "3/minute", "algorithm": "fixed-window"},
    "GET /healthz": {"exempt": true}
  },
  "limits": {
    "export": {"limit": "1/hour", "key": "header:X-API-Key"}
  }
}`

func TestLimitSet_decodedFromJSONLimitsEachRouteAsDeclared(t *testing.T) {
	lim, _ := clockedLimiter(t)
	set, err := NewLimitSet(decodeConfig(t, setJSON), ConfigMiddleware(WithLimiter(lim)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, pattern string
		want            string
	}{
		{"GET", "/items/:id", "[200 200 429]"},   // the default, a budget of its own
		{"GET", "/users/:id", "[200 200 429]"},   // and another
		{"POST", "/items/:id", "[200 200 429]"},  // another method is another route
		{"POST", "/login", "[200 429 429]"},      // its own limit, in place of the default
		{"GET", "/search", "[200 200 200 429]"},  // a pattern for every method
		{"POST", "/search", "[429]"},             // ... one budget for all of them
		{"GET", "/healthz", "[200 200 200 200]"}, // exempt
		{"PUT", "/healthz", "[200 200 429]"},     // exempt for GET only
		{"GET", "", "[200 200 429]"},             // no route: one budget ...
		{"DELETE", "", "[429]"},                  // ... whatever the method
		{"BREW", "/items/:id", "[200 200 429]"},  // an invented method reads OTHER
		{"MKCOL", "/items/:id", "[429]"},         // ... so another one shares it
	}
	for _, tt := range tests {
		n := strings.Count(tt.want, " ") + 1
		if got := routeCodes(set, tt.method, tt.pattern, n); fmtInts(got) != tt.want {
			t.Errorf("%s %q: %v; want %s", tt.method, tt.pattern, got, tt.want)
		}
	}
	export, err := set.Mount("export")
	if err != nil {
		t.Fatal(err)
	}
	m := export()
	for i, want := range []Verdict{Serve, Refuse} {
		if res := m.Enforce(request(client, "X-API-Key", "k1"), http.Header{}); res.Verdict != want {
			t.Errorf("named limit, request %d: %v; want %v", i+1, res.Verdict, want)
		}
	}
	if _, err := set.Mount("exports"); err == nil || !strings.Contains(err.Error(), `no limit "exports"; its limits are ["export"]`) {
		t.Errorf("Mount of an unknown name: %v; want an error naming it and the names there are", err)
	}
}

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestLimitSet_errorsNameTheirPlaceInTheConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		opts []LimitSetOption
		want []string
	}{
		{"a bad limit", `{"routes": {"/login": {"limit": "5/fortnight"}}}`, nil,
			[]string{`routes["/login"].limit: invalid limit "5/fortnight" at offset 2: unknown unit "fortnight"`}},
		{"a missing limit", `{"default": {"key": "ip"}}`, nil, []string{`default.limit: missing; give a limit such as "100/minute"`}},
		{"a bad algorithm", `{"limits": {"api": {"limit": "5/minute", "algorithm": "leaky"}}}`, nil,
			[]string{`limits["api"].algorithm: unknown algorithm "leaky"`}},
		{"a bad key", `{"default": {"limit": "5/minute", "key": "usr"}}`, []LimitSetOption{ConfigKeys(map[string]KeyFunc{"user": ByIP})},
			[]string{`default.key: unknown key "usr"; expected ip, global, bearer, header:NAME or one given with ConfigKeys (user)`}},
		{"a header key without a name", `{"default": {"limit": "5/minute", "key": "header:"}}`, nil, []string{`default.key: "header:" names no header`}},
		{"a negative burst", `{"default": {"limit": "5/minute", "burst": -1}}`, nil, []string{`default.burst: -1`}},
		{"a bad plan", `{"default": {"limit": "5/minute", "plans": {"pro": "lots", "pro plan": "9/minute"}}}`,
			[]LimitSetOption{ConfigPlanOf(func(*http.Request) string { return "" })},
			[]string{`default.plans["pro"]: invalid limit "lots"`, `default.plans["pro plan"]: plan "pro plan": use printable ASCII`}},
		{"plans without a plan function", `{"default": {"limit": "5/minute", "plans": {"pro": "9/minute"}}}`, nil,
			[]string{`default.plans: the plan of a request is unknown: give core.ConfigPlanOf`}},
		{"a bad failure policy", `{"failure": "fail-safe", "default": {"limit": "5/minute", "failure": "open"}}`, nil,
			[]string{`failure: unknown failure policy "fail-safe"`, `default.failure: unknown failure policy "open"`}},
		{"a failure policy without limiters", `{"default": {"limit": "5/minute", "failure": "fail-open"}}`, nil,
			[]string{`default.failure: a failure policy needs the set's own limiters: give core.ConfigLimiter`}},
		{"a bad method", `{"routes": {"post /login": {"limit": "5/minute"}}}`, nil, []string{`routes["post /login"]: unknown method "post"`}},
		{"a route without a slash", `{"routes": {"login": {"limit": "5/minute"}}}`, nil, []string{`routes["login"]: a route is a pattern beginning with /`}},
		{"an exempt route with a limit", `{"routes": {"/health": {"exempt": true, "limit": "5/minute"}}}`, nil, []string{`routes["/health"]: an exempt route has no other settings`}},
		{"an exempt named limit", `{"limits": {"x": {"exempt": true}}}`, nil, []string{`limits["x"].exempt: only a route can be exempt`}},
		{"a bad name", `{"limits": {"my api": {"limit": "5/minute"}}}`, nil, []string{`limits["my api"]: limit name "my api": use printable ASCII`}},
		{"a rule the limiter cannot enforce", `{"default": {"limit": "200000/minute", "algorithm": "sliding-window-log"}}`, nil, []string{`default.limit: `, `at most 100000`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := NewLimitSet(decodeConfig(t, tt.cfg), tt.opts...)
			if set != nil || err == nil {
				t.Fatalf("NewLimitSet = %v, %v; want an error", set, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %v is no *ConfigError", err)
			}
		})
	}
	_, err := NewLimitSet(decodeConfig(t, `{"routes": {"/login": {"limit": "5/fortnight"}}}`))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Expr != "5/fortnight" {
		t.Errorf("error %v does not wrap the *SyntaxError of the limit", err)
	}
}

// Reloading a Config keeps the budgets of the limits that did not change:
// a client that spent them stays refused; a changed limit starts afresh.
func TestLimitSet_reloadKeepsTheStateOfUnchangedLimits(t *testing.T) {
	lim, _ := clockedLimiter(t)
	cfg := decodeConfig(t, setJSON)
	set, err := NewLimitSet(cfg, ConfigMiddleware(WithLimiter(lim)))
	if err != nil {
		t.Fatal(err)
	}
	export, _ := set.Mount("export")
	routeCodes(set, "GET", "/items/:id", 2)
	routeCodes(set, "POST", "/login", 1)
	routeCodes(set, "GET", "/search", 3)
	export().Enforce(request(client, "X-API-Key", "k1"), http.Header{})

	// The same Config, decoded again: every budget is still spent.
	if err := set.Reload(decodeConfig(t, setJSON)); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{{"GET", "/items/:id"}, {"POST", "/login"}, {"GET", "/search"}} {
		if got := routeCheck(set, r[0], r[1], client); got != http.StatusTooManyRequests {
			t.Errorf("after reloading the same config, %s %s: %d; want 429 (its budget kept)", r[0], r[1], got)
		}
	}
	if res := export().Enforce(request(client, "X-API-Key", "k1"), http.Header{}); res.Verdict != Refuse {
		t.Errorf("after reload, the named limit: %v; want refused (its budget kept)", res.Verdict)
	}

	// One limit changes: it starts afresh. The others keep their state,
	// also one respelled to the same rule and algorithm.
	changed := decodeConfig(t, setJSON)
	changed.Routes["POST /login"] = LimitConfig{Limit: "2/minute"}
	changed.Routes["/search"] = LimitConfig{Limit: "3 per minute", Algorithm: "FIXED_WINDOW"}
	if err := set.Reload(changed); err != nil {
		t.Fatal(err)
	}
	if got := routeCodes(set, "POST", "/login", 3); fmtInts(got) != "[200 200 429]" {
		t.Errorf("the changed limit after reload: %v; want [200 200 429], a fresh 2/minute", got)
	}
	for _, r := range [][2]string{{"GET", "/items/:id"}, {"GET", "/search"}} {
		if got := routeCheck(set, r[0], r[1], client); got != http.StatusTooManyRequests {
			t.Errorf("an unchanged limit after another changed, %s %s: %d; want 429", r[0], r[1], got)
		}
	}

	// A bad Config, or one that drops a mounted name, changes nothing.
	bad := decodeConfig(t, setJSON)
	bad.Default = &LimitConfig{Limit: "2/minnute"}
	if err := set.Reload(bad); err == nil || !strings.Contains(err.Error(), `default.limit: invalid limit "2/minnute"`) {
		t.Errorf("Reload of a bad config: %v; want the error naming default.limit", err)
	}
	dropped := decodeConfig(t, setJSON)
	delete(dropped.Limits, "export")
	if err := set.Reload(dropped); err == nil || !strings.Contains(err.Error(), `limits["export"]: missing, but an adapter's Named mounts it`) {
		t.Errorf("Reload dropping a mounted limit: %v; want an error naming it", err)
	}
	if got := routeCheck(set, "POST", "/login", client); got != http.StatusTooManyRequests {
		t.Errorf("after refused reloads, POST /login: %d; want 429: the set kept its limits", got)
	}
}

func TestLimitSet_failurePoliciesGetLimitersOfTheirOwnOnOneStore(t *testing.T) {
	clk := newStepClock()
	store := NewMemoryStore(MemoryClock(clk.Now))
	set, err := NewLimitSet(decodeConfig(t, `{
		"failure": "fail-closed",
		"default": {"limit": "1/minute"},
		"routes": {"/open": {"limit": "1/minute", "failure": "fail-open"}}
	}`), ConfigLimiter(WithStore(store), WithClock(clk.Now)))
	if err != nil {
		t.Fatal(err)
	}
	def, _ := set.ForRoute("GET", "/x")
	open, _ := set.ForRoute("GET", "/open")
	if def.limiter == nil || open.limiter == nil || def.limiter == open.limiter {
		t.Fatalf("limiters %p and %p; want two of the set's own", def.limiter, open.limiter)
	}
	if def.limiter.cfg.policy != FailClosed || open.limiter.cfg.policy != FailOpen || def.limiter.Store() != store || open.limiter.Store() != store {
		t.Errorf("policies %v and %v on stores %p %p; want fail-closed and fail-open on %p", def.limiter.cfg.policy, open.limiter.cfg.policy, def.limiter.Store(), open.limiter.Store(), store)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Take(t.Context(), "k", MustRule("1/minute", 0), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("the store after Close: %v; want it closed", err)
	}
	if err := set.Reload(Config{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Reload after Close: %v; want ErrClosed", err)
	}
}

// The budgets' scopes depend on the Config alone, so every instance built
// from it shares them, and differ between limits.
func TestLimitSet_scopesAreDerivedFromTheConfig(t *testing.T) {
	build := func() (def, login *Middleware) {
		set := MustLimitSet(decodeConfig(t, setJSON))
		d, _ := set.ForRoute("GET", "/a")
		l, _ := set.ForRoute("POST", "/login")
		return d, l
	}
	d1, l1 := build()
	d2, l2 := build()
	if d1.Scope() != d2.Scope() || l1.Scope() != l2.Scope() || d1.Scope() == l1.Scope() {
		t.Errorf("scopes %s %s, then %s %s; want the same per limit, different between them", d1.Scope(), l1.Scope(), d2.Scope(), l2.Scope())
	}
	if l1.Scope() != "config.route.POST+/login" || d1.Scope() != "config.default" {
		t.Errorf("scopes %s and %s; want config.route.POST+/login and config.default, named after their place", l1.Scope(), d1.Scope())
	}
	// Names are valid, and two ids never share one.
	ids := []string{"route./a b", "route./a+b", "route./a%20b", "route./a_b", "route./a:b", "route./a%3Ab", "route.GET /a", "route.GET+/a",
		strings.Repeat("x:", 100), strings.Repeat("x:", 100) + "y"}
	seen := map[string]string{}
	for _, id := range ids {
		n := scopeName(id)
		if err := checkName("scope", n); err != nil {
			t.Errorf("scopeName(%q) = %q: %v", id, n, err)
		}
		if other, ok := seen[n]; ok {
			t.Errorf("scopeName(%q) = scopeName(%q) = %q", id, other, n)
		}
		seen[n] = id
	}
}
