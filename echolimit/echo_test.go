package echolimit_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func ok(c echo.Context) error { return c.String(http.StatusOK, "ok") }

func TestLimit_setsHeadersBeforeTheHandlerRuns(t *testing.T) {
	httptestkit.HeadersBeforeHandler(t, func(lim *core.Limiter, record func(http.Header)) http.Handler {
		e := echo.New()
		e.GET("/items", func(c echo.Context) error {
			record(c.Response().Header())
			return c.NoContent(http.StatusOK)
		}, echolimit.Limit("3/minute", core.WithLimiter(lim), core.WithAlgorithm(core.FixedWindow)))
		return e
	})
}

func TestLimit_refusesWithAnHTTPErrorRenderedAs429RetryAfterAndJSON(t *testing.T) {
	lim, clk := httptestkit.NewLimiter(t)
	e := echo.New()
	var handled []error
	coreBody := echolimit.ErrorHandler(e.DefaultHTTPErrorHandler)
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		handled = append(handled, err)
		coreBody(err, c)
	}
	ran := 0
	e.GET("/items", func(c echo.Context) error { ran++; return ok(c) }, echolimit.Limit("2/minute", core.WithLimiter(lim), core.WithAlgorithm(core.FixedWindow)))
	httptestkit.Do(e, "GET", "/items", httptestkit.Client)
	httptestkit.Do(e, "GET", "/items", httptestkit.Client)
	clk.Advance(15 * time.Second)
	w := httptestkit.Do(e, "GET", "/items", httptestkit.Client)
	if w.Code != http.StatusTooManyRequests || ran != 2 {
		t.Fatalf("third request: status %d, handler ran %d times; want 429 and 2", w.Code, ran)
	}
	httptestkit.CheckRefusal(t, w, "2/minute", 45)
	if len(handled) != 1 {
		t.Fatalf("the error handler ran %d times; want once", len(handled))
	}
	var he *echo.HTTPError
	var le *echolimit.Error
	if !errors.As(handled[0], &he) || he.Code != http.StatusTooManyRequests || !errors.As(handled[0], &le) {
		t.Fatalf("error %#v; want an *echo.HTTPError with code 429 wrapping an *echolimit.Error", handled[0])
	}
	if d := le.Result.Decision; d.Allowed || d.RetryAfter != 45*time.Second || d.Limit != core.Per(2, time.Minute) {
		t.Errorf("the error's decision %+v; want the refusal by 2/minute, retry after 45s", d)
	}
}

func TestLimit_budgets(t *testing.T) {
	tests := []struct {
		name  string
		build func(e *echo.Echo, lim *core.Limiter)
		paths []string
		codes []int
	}{
		{
			name: "two routes do not share a budget",
			build: func(e *echo.Echo, lim *core.Limiter) {
				e.GET("/a", ok, echolimit.Limit("1/minute", core.WithLimiter(lim)))
				e.GET("/b", ok, echolimit.Limit("1/minute", core.WithLimiter(lim)))
			},
			paths: []string{"/a", "/b", "/a", "/b"},
			codes: []int{200, 200, 429, 429},
		},
		{
			name: "a group is one budget",
			build: func(e *echo.Echo, lim *core.Limiter) {
				api := e.Group("/api", echolimit.Limit("2/minute", core.WithLimiter(lim)))
				api.GET("/a", ok)
				api.GET("/b", ok)
			},
			paths: []string{"/api/a", "/api/b", "/api/a", "/api/b"},
			codes: []int{200, 200, 429, 429},
		},
		{
			name: "e.Use is one budget for the app",
			build: func(e *echo.Echo, lim *core.Limiter) {
				e.Use(echolimit.Limit("2/minute", core.WithLimiter(lim)))
				e.GET("/a", ok)
				e.GET("/b", ok)
			},
			paths: []string{"/a", "/b", "/a"},
			codes: []int{200, 200, 429},
		},
		{
			name: "a shared name is one budget",
			build: func(e *echo.Echo, lim *core.Limiter) {
				e.GET("/a", ok, echolimit.Limit("2/minute", core.WithLimiter(lim), core.WithName("shared")))
				e.GET("/b", ok, echolimit.Limit("2/minute", core.WithLimiter(lim), core.WithName("shared")))
			},
			paths: []string{"/a", "/b", "/a", "/b"},
			codes: []int{200, 200, 429, 429},
		},
		{
			name: "middlewares built in a loop are distinct",
			build: func(e *echo.Echo, lim *core.Limiter) {
				for _, p := range []string{"/a", "/b", "/c"} {
					e.GET(p, ok, echolimit.Limit("1/minute", core.WithLimiter(lim)))
				}
			},
			paths: []string{"/a", "/b", "/c", "/a", "/b", "/c"},
			codes: []int{200, 200, 200, 429, 429, 429},
		},
		{
			name: "two limits stacked on one route are both enforced",
			build: func(e *echo.Echo, lim *core.Limiter) {
				e.GET("/a", ok, echolimit.Limit("3/minute", core.WithLimiter(lim)), echolimit.Limit("3/minute", core.WithLimiter(lim), core.WithKey(core.Global)))
			},
			paths: []string{"/a", "/a", "/a", "/a"},
			codes: []int{200, 200, 200, 429},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := httptestkit.NewLimiter(t)
			e := echo.New()
			tt.build(e, lim)
			codes := httptestkit.Codes(e, httptestkit.Client, tt.paths...)
			if fmt.Sprint(codes) != fmt.Sprint(tt.codes) {
				t.Errorf("codes %v; want %v", codes, tt.codes)
			}
		})
	}
}

type userKey struct{}

// trustTen is an IPExtractor that believes X-Forwarded-For only from
// 10.0.0.0/8.
func trustTen() echo.IPExtractor {
	_, ten, _ := net.ParseCIDR("10.0.0.0/8")
	return echo.ExtractIPFromXFFHeader(echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false), echo.TrustIPRange(ten))
}

func TestLimit_keys(t *testing.T) {
	cases := append(httptestkit.CoreKeyCases[*echo.Echo, echolimit.Option](), []httptestkit.KeyCase[*echo.Echo, echolimit.Option]{
		{
			Name: "an Echo-typed key reads the user an earlier middleware set",
			Setup: func(e *echo.Echo) {
				e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
					return func(c echo.Context) error {
						if u := c.Request().Header.Get("X-User"); u != "" {
							c.Set("user", u)
						}
						return next(c)
					}
				})
			},
			Opts: []echolimit.Option{echolimit.Key(func(c echo.Context) (string, error) {
				u, _ := c.Get("user").(string)
				return u, nil
			})},
			Reqs: []httptestkit.KeyRequest{
				httptestkit.Req(httptestkit.Client, "X-User", "ann"),
				httptestkit.Req(httptestkit.Client, "X-User", "bob"),
				httptestkit.Req("198.51.100.9:1", "X-User", "ann"),
				httptestkit.Req(httptestkit.Client), // anonymous: counted by IP, apart from users
				httptestkit.Req(httptestkit.Client),
			},
			Codes: []int{200, 200, 429, 200, 429},
		},
		{
			Name: "a user id in the request context",
			Setup: func(e *echo.Echo) {
				e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
					return func(c echo.Context) error {
						r := c.Request()
						c.SetRequest(r.WithContext(context.WithValue(r.Context(), userKey{}, r.Header.Get("X-User"))))
						return next(c)
					}
				})
			},
			Opts: []echolimit.Option{core.WithKey(core.ByContextValue(userKey{}))},
			Reqs: []httptestkit.KeyRequest{
				httptestkit.Req(httptestkit.Client, "X-User", "ann"),
				httptestkit.Req("198.51.100.9:1", "X-User", "ann"),
				httptestkit.Req(httptestkit.Client, "X-User", "bob"),
			},
			Codes: []int{200, 429, 200},
		},
		{
			Name:  "Echo's RealIP, opted into with an IPExtractor set",
			Setup: func(e *echo.Echo) { e.IPExtractor = trustTen() },
			Opts:  []echolimit.Option{echolimit.Key(echolimit.RealIP)},
			Reqs: []httptestkit.KeyRequest{
				httptestkit.Req("10.0.0.1:1", "X-Forwarded-For", "198.51.100.1"),
				httptestkit.Req("10.0.0.2:1", "X-Forwarded-For", "198.51.100.2"),
				httptestkit.Req("10.0.0.2:1", "X-Forwarded-For", "198.51.100.1"),
				httptestkit.Req(httptestkit.Client, "X-Forwarded-For", "198.51.100.3"), // untrusted peer: its own address
				httptestkit.Req(httptestkit.Client, "X-Forwarded-For", "198.51.100.4"),
			},
			Codes: []int{200, 200, 429, 200, 429},
		},
		{
			Name:  "Echo's RealIP groups IPv6 clients by /64",
			Setup: func(e *echo.Echo) { e.IPExtractor = echo.ExtractIPDirect() },
			Opts:  []echolimit.Option{echolimit.Key(echolimit.RealIP)},
			Reqs: []httptestkit.KeyRequest{
				httptestkit.Req("[2001:db8:1:2::1]:1"),
				httptestkit.Req("[2001:db8:1:2::99]:1"),
				httptestkit.Req("[2001:db8:1:3::1]:1"),
			},
			Codes: []int{200, 429, 200},
		},
	}...)
	httptestkit.Keys(t, cases, func(setup func(*echo.Echo), opts []echolimit.Option) http.Handler {
		e := echo.New()
		if setup != nil {
			setup(e)
		}
		e.GET("/", ok, echolimit.Limit("1/minute", opts...))
		return e
	})
}

func TestRoute_givesEachRouteItsOwnBudgetUnderOneUse(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	e := echo.New()
	e.Use(echolimit.Limit("1/minute", core.WithLimiter(lim), echolimit.Key(echolimit.HTTPKey(core.ByIP), echolimit.Route)))
	e.GET("/items/:id", ok)
	e.GET("/users/:id", ok)
	httptestkit.RouteBudgets(t, e)
}

func TestPlans_limitByThePlanInEchosContext(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { c.Set("plan", c.Request().Header.Get("X-Plan")); return next(c) }
	})
	e.GET("/", ok, echolimit.Limit("1/minute", core.WithLimiter(lim),
		echolimit.Plans(map[string]string{"pro": "3/minute"}, func(c echo.Context) string { p, _ := c.Get("plan").(string); return p })))
	httptestkit.PlanAdmissions(t, e)
}

func TestOnDeny_returnsWhatTheDenyHandlerReturns(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	e := echo.New()
	var got core.Result
	e.GET("/", ok, echolimit.Limit("1/minute", core.WithLimiter(lim), core.WithAlgorithm(core.FixedWindow), echolimit.OnDeny(func(c echo.Context, res core.Result) error {
		got = res
		return c.String(http.StatusTooManyRequests, "slow down; retry in "+c.Response().Header().Get("Retry-After")+"s")
	})))
	httptestkit.DenyHandlerRefusal(t, e, &got)
}

func TestSkipper_requestsAreNotChargedOrHeadered(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	e := echo.New()
	e.GET("/", ok, echolimit.Limit("1/minute", core.WithLimiter(lim), echolimit.Skipper(func(c echo.Context) bool { return c.Request().Header.Get("X-Internal") == "yes" })))
	httptestkit.NotCharged(t, e, "X-Internal", "yes")
}

func TestLimit_shadowModeServesAndReportsDenials(t *testing.T) {
	httptestkit.ShadowMode(t, func(lim *core.Limiter) http.Handler {
		e := echo.New()
		e.GET("/", ok, echolimit.Limit("1/minute", core.WithLimiter(lim), core.WithShadow()))
		return e
	})
}

func TestLimit_leakyBucketHoldsRequestsUntilTheirSlot(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	e := echo.New()
	e.GET("/", ok, echolimit.Limit("20/second", core.WithLimiter(lim), core.WithAlgorithm(core.LeakyBucket), core.WithBurst(2)))
	httptestkit.LeakyBucketHold(t, e)
}

func TestLimit_leakyBucketHoldEndsWhenTheClientGoes(t *testing.T) {
	decided := make(chan struct{}, 4)
	lim, _ := httptestkit.NewLimiter(t, core.WithObserver(core.ObserverFunc(func(core.Event) { decided <- struct{}{} })))
	e := echo.New()
	ran := false
	var handled error
	e.HTTPErrorHandler = func(err error, c echo.Context) { handled = err }
	e.GET("/", func(c echo.Context) error { ran = true; return nil },
		echolimit.Limit("1/hour", core.WithLimiter(lim), core.WithAlgorithm(core.LeakyBucket), core.WithBurst(2)))
	httptestkit.Do(e, "GET", "/", httptestkit.Client)
	<-decided
	ran = false
	httptestkit.GoneWhileHeld(t, e, decided) // held for an hour
	var he *echo.HTTPError
	if ran || !errors.As(handled, &he) || he.Code != echolimit.StatusClientClosedRequest || !errors.Is(handled, context.Canceled) {
		t.Errorf("handler ran: %v; error %v; want the handler skipped and a 499 error wrapping context.Canceled", ran, handled)
	}
}

func TestLimit_failurePolicies(t *testing.T) {
	httptestkit.FailurePolicies(t, func(lim *core.Limiter) http.Handler {
		e := echo.New()
		e.HTTPErrorHandler = echolimit.ErrorHandler(e.DefaultHTTPErrorHandler) // core's body, which the shared cases read
		e.GET("/", ok, echolimit.Limit("1/minute", core.WithLimiter(lim)))
		return e
	})
}

func TestLimit_badExpressionPanicsNamingTheCallAndQuotingIt(t *testing.T) {
	httptestkit.PanicNaming(t, `echolimit.Limit("10/minnute")`, "10/minnute", func() { echolimit.Limit("10/minnute") })
}

func TestNew_errorsNameTheCallAndTheMisusedOptionAndWrapCores(t *testing.T) {
	httptestkit.NewErrors(t, "echolimit.New", echolimit.New, httptestkit.NativeMisuses("echolimit", echolimit.Key, echolimit.Plans, echolimit.Route)...)
}

func TestLimit_scopeIsNamedByTheCallingFunction(t *testing.T) {
	lim, logs := httptestkit.NewLoggedLimiter(t)
	echolimit.Limit("7/minute", core.WithLimiter(lim))
	if _, err := echolimit.New("7/minute", core.WithLimiter(lim)); err != nil {
		t.Fatal(err)
	}
	httptestkit.ScopesNamedBy(t, logs, "github.com/limitkit/limitkit/echolimit_test.TestLimit_scopeIsNamedByTheCallingFunction")
}

// limitkit adds at most httptestkit.MaxAddedAllocs allocations to a
// request on a known key, with header values of three digits and of ten,
// with the default headers and with the IETF fields: the headers' block
// and the closure the middleware returns, since Echo applies a route's
// middlewares anew on every request. The middleware alone, applied and
// called on an Echo context as Echo does, is counted under -race too (no
// pool is involved); whole requests, the limited route against the bare
// one, only without it: Echo pools its contexts, and -race makes
// sync.Pool drop items at random, which moves both counts by one now and
// then.
func TestLimit_addsAtMostTwoAllocationsPerRequest(t *testing.T) {
	noop := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	for _, expr := range httptestkit.AllocLimits {
		for _, ietf := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ietf=%v", expr, ietf), func(t *testing.T) {
				opts := func() []echolimit.Option {
					lim, _ := httptestkit.NewLimiter(t)
					opts := []echolimit.Option{core.WithLimiter(lim), core.WithName("allocs")}
					if ietf {
						opts = append(opts, core.WithIETFHeaders())
					}
					return opts
				}
				e := echo.New()
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = httptestkit.Client
				w := httptest.NewRecorder()
				c := e.NewContext(r, w)
				mw := echolimit.Limit(expr, opts()...)
				next := func(echo.Context) error { return nil }
				n := httptestkit.AllocsPerCall(func() {
					clear(w.Header())
					_ = mw(next)(c)
				})
				httptestkit.CheckLimitHeaders(t, w.Header(), expr)
				if n > httptestkit.MaxAddedAllocs {
					t.Errorf("the middleware allocates %v times per request; want at most %d", n, httptestkit.MaxAddedAllocs)
				}
				if raceEnabled {
					return
				}
				e.GET("/bare", noop)
				e.GET("/limited", noop, echolimit.Limit(expr, opts()...))
				bare, limited := httptestkit.AllocsPerRequest(e, "/bare"), httptestkit.AllocsPerRequest(e, "/limited")
				t.Logf("allocations per request: middleware %v; bare route %v, limited %v (+%v)", n, bare, limited, limited-bare)
				if limited-bare > httptestkit.MaxAddedAllocs {
					t.Errorf("limitkit adds %v allocations per request; want at most %d", limited-bare, httptestkit.MaxAddedAllocs)
				}
			})
		}
	}
}

// The Echo context reaches core as an argument, not in the request's
// context, so an Echo-typed key costs nothing more.
func TestKey_addsNoAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are noisy under -race; run without it")
	}
	lim, _ := httptestkit.NewLimiter(t)
	e := echo.New()
	noop := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	e.GET("/limited", noop, echolimit.Limit("1000000000/hour", core.WithLimiter(lim)))
	e.GET("/echo-key", noop, echolimit.Limit("1000000000/hour", core.WithLimiter(lim), echolimit.Key(echolimit.HTTPKey(core.ByIP))))
	limited, echoKey := httptestkit.AllocsPerRequest(e, "/limited"), httptestkit.AllocsPerRequest(e, "/echo-key")
	if echoKey > limited {
		t.Errorf("an Echo-typed key adds %v allocations per request; want none", echoKey-limited)
	}
}

func BenchmarkLimit(b *testing.B) {
	lim := core.New()
	defer lim.Close()
	e := echo.New()
	e.GET("/", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, echolimit.Limit("1000000000/hour", core.WithLimiter(lim)))
	httptestkit.BenchmarkParallel(b, e)
}

func TestRoute_clientChosenMethodsAndPathsMakeNoBudgets(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	e := echo.New()
	e.Use(echolimit.Limit("2/minute", core.WithLimiter(lim), echolimit.Key(echolimit.HTTPKey(core.ByIP), echolimit.Route)))
	e.GET("/items/:id", ok)
	httptestkit.ClientChosenRouteKeys(t, e)
}

// byRoute answers with the route's first segment, such as "items".
func byRoute(c echo.Context) error {
	return c.String(http.StatusOK, strings.Split(c.Path(), "/")[1])
}

func routesApp(set *core.LimitSet) *echo.Echo {
	e := echo.New()
	e.Use(echolimit.Routes(set))
	e.GET("/items/:id", byRoute)
	e.GET("/users/:id", byRoute)
	e.GET("/healthz", byRoute)
	e.POST("/login", byRoute)
	return e
}

func TestRoutes_defaultGivesEachRouteItsBudgetAndNoPathEscapesIt(t *testing.T) {
	httptestkit.RoutesBudgets(t, routesApp(httptestkit.RoutesSet(t, "/items/:id", false)))
}

func TestRoutes_aRoutesOwnLimitReplacesTheDefault(t *testing.T) {
	httptestkit.RoutesOverride(t, routesApp(httptestkit.RoutesSet(t, "/items/:id", true)))
}

func TestByRoute_givesEachRouteItsOwnBudgetUnderOneMiddleware(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	e := echo.New()
	e.Use(echolimit.Limit("1/minute", core.WithLimiter(lim), echolimit.ByRoute()))
	e.GET("/items/:id", ok)
	e.GET("/users/:id", ok)
	httptestkit.RouteBudgets(t, e)
}

func TestByRoute_refusesANilKeyNamingIt(t *testing.T) {
	httptestkit.NewErrors(t, "echolimit.New", echolimit.New,
		httptestkit.Misuse[echolimit.Option]{Name: "a nil client key", Opt: echolimit.ByRoute(nil), Want: "echolimit.ByRoute: key function 1 of 1 is nil"})
}

func TestCheckRoutes_namesTableEntriesThatMatchNoRoute(t *testing.T) {
	httptestkit.CheckedRoutes(t, "/items/:id", func(set *core.LimitSet) error { return echolimit.CheckRoutes(set, routesApp(set)) })
}

func TestChargeWhen_countsOnlyFailedLogins(t *testing.T) {
	httptestkit.ChargeByOutcome(t, func(lim *core.Limiter) http.Handler {
		e := echo.New()
		e.Use(func(next echo.HandlerFunc) echo.HandlerFunc { // Echo's Recover, without its log
			return func(c echo.Context) (err error) {
				defer func() {
					if recover() != nil {
						err = echo.NewHTTPError(http.StatusInternalServerError)
					}
				}()
				return next(c)
			}
		})
		e.POST("/login", func(c echo.Context) error {
			switch code := httptestkit.LoginOutcome(c.Request()); code {
			case 0:
				return nil
			case http.StatusOK:
				return c.NoContent(code)
			default:
				return echo.NewHTTPError(code, "wrong password") // written by Echo after the middleware
			}
		}, echolimit.Limit("5/minute", core.WithLimiter(lim), echolimit.ChargeWhen(func(c echo.Context, err error) bool {
			return echolimit.Status(c, err) != http.StatusOK
		})))
		return e
	})
}

func TestMiddleware_peekSeesTheBudgetWithoutCharging(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	quotes := echolimit.MustNewMiddleware("3/minute", core.WithLimiter(lim))
	e := echo.New()
	e.GET("/quotes", ok, quotes.Handler)
	e.GET("/usage", func(c echo.Context) error {
		u, err := quotes.Peek(c)
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, fmt.Sprint(u.Remaining()))
	})
	httptestkit.Do(e, "GET", "/quotes", httptestkit.Client)
	for range 3 {
		if w := httptestkit.Do(e, "GET", "/usage", httptestkit.Client); w.Body.String() != "2" {
			t.Fatalf("usage: %d %q; want 2 left", w.Code, w.Body)
		}
	}
	if codes := fmt.Sprint(httptestkit.Codes(e, httptestkit.Client, "/quotes", "/quotes", "/quotes")); codes != "[200 200 429]" {
		t.Fatalf("quotes after the peeks: %s; want 2 more served", codes)
	}
}

func TestRoutes_settlesAChargeByOutcome(t *testing.T) {
	httptestkit.RoutesChargeByOutcome(t, func(set *core.LimitSet) http.Handler {
		e := echo.New()
		e.Use(echolimit.Routes(set))
		e.POST("/login", func(c echo.Context) error {
			if c.Request().Header.Get("X-Fail") != "" {
				return c.NoContent(http.StatusUnauthorized)
			}
			return c.NoContent(http.StatusOK)
		})
		return e
	})
}

func TestRoutes_eventsCarryTheMatchedRoute(t *testing.T) {
	httptestkit.RoutesLabelEvents(t, "/items/:id", func(set *core.LimitSet) http.Handler { return routesApp(set) })
}
