package chilimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

// testLimiter is a limiter on a memory store with a driven clock, as an
// option for Limit.
func testLimiter(t *testing.T) (chilimit.Option, *storetest.ManualClock) {
	l, clk := httptestkit.NewLimiter(t)
	clk.Set(20 * time.Second) // 20s into a minute: the resets below count on it
	return core.WithLimiter(l), clk
}

func ok(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }

// codes sends a GET for each path from one client and returns the statuses.
func codes(h http.Handler, paths ...string) string {
	return fmt.Sprint(httptestkit.Codes(h, "203.0.113.7:5000", paths...))
}

func TestLimit_mountsEveryWayChiDoes(t *testing.T) {
	tests := []struct {
		name  string
		build func(r chi.Router, lim chilimit.Option)
		paths []string
		want  string
	}{
		{"r.With on one route", func(r chi.Router, lim chilimit.Option) {
			r.With(chilimit.Limit("2/minute", lim)).Get("/a", ok)
			r.Get("/free", ok)
		}, []string{"/a", "/a", "/a", "/free"}, "[200 200 429 200]"},
		{"two routes do not share", func(r chi.Router, lim chilimit.Option) {
			r.With(chilimit.Limit("1/minute", lim)).Get("/a", ok)
			r.With(chilimit.Limit("1/minute", lim)).Get("/b", ok)
		}, []string{"/a", "/b", "/a", "/b"}, "[200 200 429 429]"},
		{"r.Use on the router is one budget", func(r chi.Router, lim chilimit.Option) {
			r.Use(chilimit.Limit("2/minute", lim))
			r.Get("/a", ok)
			r.Get("/b", ok)
		}, []string{"/a", "/b", "/a"}, "[200 200 429]"},
		{"r.Group is one budget, outside it is free", func(r chi.Router, lim chilimit.Option) {
			r.Group(func(r chi.Router) {
				r.Use(chilimit.Limit("2/minute", lim))
				r.Get("/a", ok)
				r.Get("/b", ok)
			})
			r.Get("/free", ok)
		}, []string{"/a", "/b", "/a", "/free"}, "[200 200 429 200]"},
		{"r.Route subrouter is one budget", func(r chi.Router, lim chilimit.Option) {
			r.Route("/api", func(r chi.Router) {
				r.Use(chilimit.Limit("2/minute", lim))
				r.Get("/a", ok)
				r.Get("/b/{id}", ok)
			})
		}, []string{"/api/a", "/api/b/1", "/api/b/2"}, "[200 200 429]"},
		{"a name shares one budget across routes", func(r chi.Router, lim chilimit.Option) {
			r.With(chilimit.Limit("2/minute", lim, core.WithName("writes"))).Get("/a", ok)
			r.With(chilimit.Limit("2/minute", lim, core.WithName("writes"))).Get("/b", ok)
		}, []string{"/a", "/b", "/a"}, "[200 200 429]"},
		{"stacked limits both apply", func(r chi.Router, lim chilimit.Option) {
			r.With(chilimit.Limit("3/minute", lim), chilimit.Limit("1/minute", lim)).Get("/a", ok)
		}, []string{"/a", "/a"}, "[200 429]"},
		{"built in a loop are distinct", func(r chi.Router, lim chilimit.Option) {
			for _, p := range []string{"/a", "/b"} {
				r.With(chilimit.Limit("1/minute", lim)).Get(p, ok)
			}
		}, []string{"/a", "/b", "/b"}, "[200 200 429]"},
		{"ByRoute gives each route of a group a budget", func(r chi.Router, lim chilimit.Option) {
			r.Route("/api", func(r chi.Router) {
				r.Use(chilimit.Limit("1/minute", lim, chilimit.ByRoute()))
				r.Get("/a", ok)
				r.Get("/b/{id}", ok)
			})
		}, []string{"/api/a", "/api/b/1", "/api/b/2", "/api/a"}, "[200 200 429 429]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := testLimiter(t)
			r := chi.NewRouter()
			tt.build(r, lim)
			if got := codes(r, tt.paths...); got != tt.want {
				t.Errorf("codes %s; want %s", got, tt.want)
			}
		})
	}
}

func TestLimit_headersAndRefusal(t *testing.T) {
	lim, clk := testLimiter(t)
	r := chi.NewRouter()
	r.With(chilimit.Limit("1/minute", lim, core.WithAlgorithm(core.FixedWindow))).Get("/", ok)
	send := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	first := send()
	if first.Code != 200 || first.Header().Get("X-RateLimit-Limit") != "1" || first.Header().Get("X-RateLimit-Remaining") != "0" || first.Header().Get("X-RateLimit-Reset") != "40" {
		t.Errorf("first: %d %v", first.Code, first.Header())
	}
	clk.Advance(10 * time.Second)
	second := send()
	if second.Code != 429 || second.Header().Get("Retry-After") != "30" || !strings.Contains(second.Body.String(), `"retry_after":30`) {
		t.Errorf("second: %d %v %s", second.Code, second.Header(), second.Body)
	}
}

func TestRoute(t *testing.T) {
	var got []string
	record := func(w http.ResponseWriter, r *http.Request) {}
	keyer := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k, _ := chilimit.Route(r)
			got = append(got, k)
			next.ServeHTTP(w, r)
		})
	}
	r := chi.NewRouter()
	r.Use(keyer) // before chi has routed
	r.Route("/api", func(r chi.Router) {
		r.Use(keyer)                             // inside a subrouter, with the prefix matched
		r.With(keyer).Get("/items/{id}", record) // after routing
	})
	codes(r, "/api/items/7", "/nowhere")
	want := "[GET /api/items/{id} GET /api/items/{id} GET /api/items/{id} (no route)]"
	if fmt.Sprint(got) != want {
		t.Errorf("keys %v; want %s", got, want)
	}
}

func TestLimit_panicsQuotingABadExpression(t *testing.T) {
	defer func() {
		p := recover()
		if p == nil || !strings.Contains(fmt.Sprint(p), `chilimit.Limit("5/fortnight")`) || !strings.Contains(fmt.Sprint(p), `unknown unit "fortnight"`) {
			t.Errorf("panic %v; want one quoting the expression and the problem", p)
		}
	}()
	chilimit.Limit("5/fortnight")
}

func TestNew_returnsTheError(t *testing.T) {
	mw, err := chilimit.New("five/minute")
	if mw != nil || err == nil || !strings.Contains(err.Error(), `"five/minute"`) {
		t.Errorf("New = %v, %v; want no middleware and an error quoting the expression", mw != nil, err)
	}
}

func TestLimit_badExpressionPanicsNamingTheCallAndWrappingCoresError(t *testing.T) {
	httptestkit.PanicNaming(t, `chilimit.Limit("10/minnute")`, "10/minnute", func() { chilimit.Limit("10/minnute") })
}

func TestNew_errorsNameTheCallAndTheMisusedOptionAndWrapCores(t *testing.T) {
	httptestkit.NewErrors(t, "chilimit.New", chilimit.New,
		httptestkit.Misuse[chilimit.Option]{Name: "a nil route client key", Opt: chilimit.ByRoute(nil), Want: "chilimit.ByRoute: key function 1 of 1 is nil"},
		httptestkit.Misuse[chilimit.Option]{Name: "a nil route client key among others", Opt: chilimit.ByRoute(core.ByIP, nil), Want: "chilimit.ByRoute: key function 2 of 2 is nil"},
		httptestkit.Misuse[chilimit.Option]{Name: "a nil core key", Opt: core.WithKey(nil), Want: "limitkit: WithKey(nil): give a key function"},
	)
}

func TestRoute_clientChosenMethodsAndPathsMakeNoBudgets(t *testing.T) {
	lim, _ := testLimiter(t)
	r := chi.NewRouter()
	r.Use(chilimit.Limit("2/minute", lim, chilimit.ByRoute()))
	r.Get("/items/{id}", ok)
	httptestkit.ClientChosenRouteKeys(t, r)
}

// byRoute answers with the route's first segment, such as "items".
func byRoute(w http.ResponseWriter, r *http.Request) {
	fmt.Fprint(w, strings.Split(chi.RouteContext(r.Context()).RoutePattern(), "/")[1])
}

func routesApp(set *core.LimitSet) chi.Router {
	r := chi.NewRouter()
	r.Use(chilimit.Routes(set))
	r.Get("/items/{id}", byRoute)
	r.Get("/users/{id}", byRoute)
	r.Get("/healthz", byRoute)
	r.Post("/login", byRoute)
	return r
}

func TestRoutes_defaultGivesEachRouteItsBudgetAndNoPathEscapesIt(t *testing.T) {
	httptestkit.RoutesBudgets(t, routesApp(httptestkit.RoutesSet(t, "/items/{id}", false)))
}

func TestRoutes_aRoutesOwnLimitReplacesTheDefault(t *testing.T) {
	httptestkit.RoutesOverride(t, routesApp(httptestkit.RoutesSet(t, "/items/{id}", true)))
}

func TestCheckRoutes_namesTableEntriesThatMatchNoRoute(t *testing.T) {
	httptestkit.CheckedRoutes(t, "/items/{id}", func(set *core.LimitSet) error { return chilimit.CheckRoutes(set, routesApp(set)) })
}

func TestChargeWhen_countsOnlyFailedLogins(t *testing.T) {
	httptestkit.ChargeByOutcome(t, func(lim *core.Limiter) http.Handler {
		r := chi.NewRouter()
		r.Use(func(next http.Handler) http.Handler { // chi's Recoverer, without its log
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() {
					if recover() != nil {
						w.WriteHeader(http.StatusInternalServerError)
					}
				}()
				next.ServeHTTP(w, r)
			})
		})
		r.With(chilimit.Limit("5/minute", core.WithLimiter(lim), core.WithChargeWhen(func(status int) bool {
			return status != http.StatusOK
		}))).Post("/login", func(w http.ResponseWriter, r *http.Request) {
			if code := httptestkit.LoginOutcome(r); code != 0 {
				w.WriteHeader(code)
			}
		})
		return r
	})
}

func TestNewMiddleware_peekSeesTheBudgetWithoutCharging(t *testing.T) {
	lim, _ := testLimiter(t)
	quotes := chilimit.MustNewMiddleware("3/minute", lim)
	r := chi.NewRouter()
	r.With(quotes.Handler).Get("/quotes", ok)
	r.Get("/usage", func(w http.ResponseWriter, r *http.Request) {
		u, err := quotes.Peek(r)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, u.Remaining())
	})
	codes(r, "/quotes")
	for range 3 {
		if w := httptestkit.Do(r, "GET", "/usage", "203.0.113.7:5000"); w.Body.String() != "2" {
			t.Fatalf("usage: %d %q; want 2 left", w.Code, w.Body)
		}
	}
	if got := codes(r, "/quotes", "/quotes", "/quotes"); got != "[200 200 429]" {
		t.Fatalf("quotes after the peeks: %s; want 2 more served", got)
	}
}

func TestRoutes_settlesAChargeByOutcome(t *testing.T) {
	httptestkit.RoutesChargeByOutcome(t, func(set *core.LimitSet) http.Handler {
		r := chi.NewRouter()
		r.Use(chilimit.Routes(set))
		r.Post("/login", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Fail") != "" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		})
		return r
	})
}

func TestRoutes_eventsCarryTheMatchedRoute(t *testing.T) {
	httptestkit.RoutesLabelEvents(t, "/items/{id}", func(set *core.LimitSet) http.Handler { return routesApp(set) })
}

// limitkit adds at most httptestkit.MaxAddedAllocs allocations to a
// request on a known key, with header values of three digits and of ten,
// with the default headers and with the IETF fields. The middleware alone
// is counted under -race too (no pool is involved); whole requests, the
// limited route against the bare one, only without it: chi pools its
// route contexts, and -race makes sync.Pool drop items at random, which
// moves both counts by one now and then.
func TestLimit_addsAtMostTwoAllocationsPerRequest(t *testing.T) {
	noop := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	for _, expr := range httptestkit.AllocLimits {
		for _, ietf := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ietf=%v", expr, ietf), func(t *testing.T) {
				opts := func() []chilimit.Option {
					lim, _ := httptestkit.NewLimiter(t)
					opts := []chilimit.Option{core.WithLimiter(lim), core.WithName("allocs")}
					if ietf {
						opts = append(opts, core.WithIETFHeaders())
					}
					return opts
				}
				h := chilimit.Limit(expr, opts()...)(http.HandlerFunc(noop))
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = httptestkit.Client
				w := httptestkit.NewReusedWriter()
				n := httptestkit.AllocsPerCall(func() {
					clear(w.H)
					h.ServeHTTP(w, r)
				})
				httptestkit.CheckLimitHeaders(t, w.H, expr)
				if n > httptestkit.MaxAddedAllocs {
					t.Errorf("the middleware allocates %v times per request; want at most %d", n, httptestkit.MaxAddedAllocs)
				}
				if raceEnabled {
					return
				}
				m := chi.NewRouter()
				m.Get("/bare", noop)
				m.With(chilimit.Limit(expr, opts()...)).Get("/limited", noop)
				bare, limited := httptestkit.AllocsPerRequest(m, "/bare"), httptestkit.AllocsPerRequest(m, "/limited")
				t.Logf("allocations per request: middleware %v; bare route %v, limited %v (+%v)", n, bare, limited, limited-bare)
				if limited-bare > httptestkit.MaxAddedAllocs {
					t.Errorf("limitkit adds %v allocations per request; want at most %d", limited-bare, httptestkit.MaxAddedAllocs)
				}
			})
		}
	}
}
