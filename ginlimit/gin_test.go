package ginlimit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/ginlimit"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func init() { gin.SetMode(gin.TestMode) }

func ok(c *gin.Context) { c.String(http.StatusOK, "ok") }

func TestLimit_setsHeadersBeforeTheHandlerRuns(t *testing.T) {
	httptestkit.HeadersBeforeHandler(t, func(lim *core.Limiter, record func(http.Header)) http.Handler {
		r := gin.New()
		r.GET("/items", ginlimit.Limit("3/minute", core.WithLimiter(lim), core.WithAlgorithm(core.FixedWindow)), func(c *gin.Context) {
			record(c.Writer.Header())
			c.Status(http.StatusOK)
		})
		return r
	})
}

func TestLimit_refusesWith429RetryAfterAndJSONBodyAndAbortsTheChain(t *testing.T) {
	lim, clk := httptestkit.NewLimiter(t)
	r := gin.New()
	ran := 0
	r.GET("/items", ginlimit.Limit("2/minute", core.WithLimiter(lim), core.WithAlgorithm(core.FixedWindow)), func(c *gin.Context) { ran++; c.Next() }, ok)
	httptestkit.Do(r, "GET", "/items", httptestkit.Client)
	httptestkit.Do(r, "GET", "/items", httptestkit.Client)
	clk.Advance(15 * time.Second)
	w := httptestkit.Do(r, "GET", "/items", httptestkit.Client)
	if w.Code != http.StatusTooManyRequests || ran != 2 {
		t.Fatalf("third request: status %d, later handlers ran %d times; want 429 and 2", w.Code, ran)
	}
	httptestkit.CheckRefusal(t, w, "2/minute", 45)
}

// routes builds an engine for one budget test.
type routes func(r *gin.Engine, lim *core.Limiter)

func TestLimit_budgets(t *testing.T) {
	tests := []struct {
		name  string
		build routes
		paths []string
		codes []int
	}{
		{
			name: "two routes do not share a budget",
			build: func(r *gin.Engine, lim *core.Limiter) {
				r.GET("/a", ginlimit.Limit("1/minute", core.WithLimiter(lim)), ok)
				r.GET("/b", ginlimit.Limit("1/minute", core.WithLimiter(lim)), ok)
			},
			paths: []string{"/a", "/b", "/a", "/b"},
			codes: []int{200, 200, 429, 429},
		},
		{
			name: "a group is one budget",
			build: func(r *gin.Engine, lim *core.Limiter) {
				api := r.Group("/api")
				api.Use(ginlimit.Limit("2/minute", core.WithLimiter(lim)))
				api.GET("/a", ok)
				api.GET("/b", ok)
			},
			paths: []string{"/api/a", "/api/b", "/api/a", "/api/b"},
			codes: []int{200, 200, 429, 429},
		},
		{
			name: "a shared name is one budget",
			build: func(r *gin.Engine, lim *core.Limiter) {
				r.GET("/a", ginlimit.Limit("2/minute", core.WithLimiter(lim), core.WithName("shared")), ok)
				r.GET("/b", ginlimit.Limit("2/minute", core.WithLimiter(lim), core.WithName("shared")), ok)
			},
			paths: []string{"/a", "/b", "/a", "/b"},
			codes: []int{200, 200, 429, 429},
		},
		{
			name: "middlewares built in a loop are distinct",
			build: func(r *gin.Engine, lim *core.Limiter) {
				for _, p := range []string{"/a", "/b", "/c"} {
					r.GET(p, ginlimit.Limit("1/minute", core.WithLimiter(lim)), ok)
				}
			},
			paths: []string{"/a", "/b", "/c", "/a", "/b", "/c"},
			codes: []int{200, 200, 200, 429, 429, 429},
		},
		{
			name: "two limits stacked on one route are both enforced",
			build: func(r *gin.Engine, lim *core.Limiter) {
				r.GET("/a", ginlimit.Limit("3/minute", core.WithLimiter(lim)), ginlimit.Limit("3/minute", core.WithLimiter(lim), core.WithKey(core.Global)), ok)
			},
			paths: []string{"/a", "/a", "/a", "/a"},
			codes: []int{200, 200, 200, 429},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := httptestkit.NewLimiter(t)
			r := gin.New()
			tt.build(r, lim)
			codes := httptestkit.Codes(r, httptestkit.Client, tt.paths...)
			if fmt.Sprint(codes) != fmt.Sprint(tt.codes) {
				t.Errorf("codes %v; want %v", codes, tt.codes)
			}
		})
	}
}

type userKey struct{}

func TestLimit_keys(t *testing.T) {
	cases := append(httptestkit.CoreKeyCases[*gin.Engine, ginlimit.Option](), []httptestkit.KeyCase[*gin.Engine, ginlimit.Option]{
		{
			Name: "a Gin-typed key reads the user an earlier handler set",
			Setup: func(r *gin.Engine) {
				r.Use(func(c *gin.Context) {
					if u := c.GetHeader("X-User"); u != "" {
						c.Set("user", u)
					}
				})
			},
			Opts: []ginlimit.Option{ginlimit.Key(func(c *gin.Context) (string, error) { return c.GetString("user"), nil })},
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
			Setup: func(r *gin.Engine) {
				r.Use(func(c *gin.Context) {
					c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), userKey{}, c.GetHeader("X-User")))
				})
			},
			Opts: []ginlimit.Option{core.WithKey(core.ByContextValue(userKey{}))},
			Reqs: []httptestkit.KeyRequest{
				httptestkit.Req(httptestkit.Client, "X-User", "ann"),
				httptestkit.Req("198.51.100.9:1", "X-User", "ann"),
				httptestkit.Req(httptestkit.Client, "X-User", "bob"),
			},
			Codes: []int{200, 429, 200},
		},
		{
			Name:  "Gin's ClientIP, opted into with trusted proxies set",
			Setup: func(r *gin.Engine) { _ = r.SetTrustedProxies([]string{"10.0.0.0/8"}) },
			Opts:  []ginlimit.Option{ginlimit.Key(ginlimit.ClientIP)},
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
			Name:  "Gin's ClientIP groups IPv6 clients by /64",
			Setup: func(r *gin.Engine) { _ = r.SetTrustedProxies(nil) },
			Opts:  []ginlimit.Option{ginlimit.Key(ginlimit.ClientIP)},
			Reqs: []httptestkit.KeyRequest{
				httptestkit.Req("[2001:db8:1:2::1]:1"),
				httptestkit.Req("[2001:db8:1:2::99]:1"),
				httptestkit.Req("[2001:db8:1:3::1]:1"),
			},
			Codes: []int{200, 429, 200},
		},
	}...)
	httptestkit.Keys(t, cases, func(setup func(*gin.Engine), opts []ginlimit.Option) http.Handler {
		r := gin.New()
		if setup != nil {
			setup(r)
		}
		r.GET("/", ginlimit.Limit("1/minute", opts...), ok)
		return r
	})
}

func TestRoute_givesEachRouteItsOwnBudgetUnderOneGroupMiddleware(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	r := gin.New()
	r.Use(ginlimit.Limit("1/minute", core.WithLimiter(lim), ginlimit.Key(ginlimit.HTTPKey(core.ByIP), ginlimit.Route)))
	r.GET("/items/:id", ok)
	r.GET("/users/:id", ok)
	httptestkit.RouteBudgets(t, r)
}

func TestPlans_limitByThePlanInGinsContext(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	r := gin.New()
	r.Use(func(c *gin.Context) { c.Set("plan", c.GetHeader("X-Plan")) })
	r.GET("/", ginlimit.Limit("1/minute", core.WithLimiter(lim),
		ginlimit.Plans(map[string]string{"pro": "3/minute"}, func(c *gin.Context) string { return c.GetString("plan") })), ok)
	httptestkit.PlanAdmissions(t, r)
}

func TestOnDeny_writesTheRefusalWithTheHeadersSet(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	r := gin.New()
	var got core.Result
	r.GET("/", ginlimit.Limit("1/minute", core.WithLimiter(lim), core.WithAlgorithm(core.FixedWindow), ginlimit.OnDeny(func(c *gin.Context, res core.Result) {
		got = res
		c.String(http.StatusTooManyRequests, "slow down; retry in %ss", c.Writer.Header().Get("Retry-After"))
	})), ok)
	httptestkit.DenyHandlerRefusal(t, r, &got)
}

func TestExempt_requestsAreNotChargedOrHeadered(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	r := gin.New()
	r.GET("/", ginlimit.Limit("1/minute", core.WithLimiter(lim), ginlimit.Exempt(func(c *gin.Context) bool { return c.GetHeader("X-Internal") == "yes" })), ok)
	httptestkit.NotCharged(t, r, "X-Internal", "yes")
}

func TestLimit_shadowModeServesAndReportsDenials(t *testing.T) {
	httptestkit.ShadowMode(t, func(lim *core.Limiter) http.Handler {
		r := gin.New()
		r.GET("/", ginlimit.Limit("1/minute", core.WithLimiter(lim), core.WithShadow()), ok)
		return r
	})
}

func TestLimit_leakyBucketHoldsRequestsUntilTheirSlot(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	r := gin.New()
	r.GET("/", ginlimit.Limit("20/second", core.WithLimiter(lim), core.WithAlgorithm(core.LeakyBucket), core.WithBurst(2)), ok)
	httptestkit.LeakyBucketHold(t, r)
}

func TestLimit_leakyBucketHoldEndsWhenTheClientGoes(t *testing.T) {
	decided := make(chan struct{}, 4)
	lim, _ := httptestkit.NewLimiter(t, core.WithObserver(core.ObserverFunc(func(core.Event) { decided <- struct{}{} })))
	r := gin.New()
	ran := false
	r.GET("/", ginlimit.Limit("1/hour", core.WithLimiter(lim), core.WithAlgorithm(core.LeakyBucket), core.WithBurst(2)), func(c *gin.Context) { ran = true })
	httptestkit.Do(r, "GET", "/", httptestkit.Client)
	<-decided
	ran = false
	w := httptestkit.GoneWhileHeld(t, r, decided) // held for an hour
	if ran || w.Code != ginlimit.StatusClientClosedRequest || w.Body.Len() != 0 {
		t.Errorf("handler ran: %v; response %d %q; want the chain aborted with 499 and no body", ran, w.Code, w.Body)
	}
}

func TestLimit_failurePolicies(t *testing.T) {
	httptestkit.FailurePolicies(t, func(lim *core.Limiter) http.Handler {
		r := gin.New()
		r.GET("/", ginlimit.Limit("1/minute", core.WithLimiter(lim)), ok)
		return r
	})
}

func TestLimit_badExpressionPanicsNamingTheCallAndQuotingIt(t *testing.T) {
	httptestkit.PanicNaming(t, `ginlimit.Limit("10/minnute")`, "10/minnute", func() { ginlimit.Limit("10/minnute") })
}

func TestNew_errorsNameTheCallAndTheMisusedOptionAndWrapCores(t *testing.T) {
	httptestkit.NewErrors(t, "ginlimit.New", ginlimit.New, httptestkit.NativeMisuses("ginlimit", ginlimit.Key, ginlimit.Plans, ginlimit.Route)...)
}

func TestLimit_scopeIsNamedByTheCallingFunction(t *testing.T) {
	lim, logs := httptestkit.NewLoggedLimiter(t)
	ginlimit.Limit("7/minute", core.WithLimiter(lim))
	if _, err := ginlimit.New("7/minute", core.WithLimiter(lim)); err != nil {
		t.Fatal(err)
	}
	httptestkit.ScopesNamedBy(t, logs, "github.com/limitkit/limitkit/ginlimit_test.TestLimit_scopeIsNamedByTheCallingFunction")
}

// limitkit adds at most httptestkit.MaxAddedAllocs allocations to a
// request on a known key, with header values of three digits and of ten,
// with the default headers and with the IETF fields. The handler alone,
// called on a Gin context as Gin calls it, is counted under -race too (no
// pool is involved); whole requests, the limited route against the bare
// one, only without it: Gin pools its contexts, and -race makes sync.Pool
// drop items at random, which moves both counts by one now and then.
func TestLimit_addsAtMostTwoAllocationsPerRequest(t *testing.T) {
	noop := func(c *gin.Context) { c.Status(http.StatusNoContent) }
	for _, expr := range httptestkit.AllocLimits {
		for _, ietf := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ietf=%v", expr, ietf), func(t *testing.T) {
				opts := func() []ginlimit.Option {
					lim, _ := httptestkit.NewLimiter(t)
					opts := []ginlimit.Option{core.WithLimiter(lim), core.WithName("allocs")}
					if ietf {
						opts = append(opts, core.WithIETFHeaders())
					}
					return opts
				}
				w := httptest.NewRecorder()
				c, _ := gin.CreateTestContext(w)
				c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
				c.Request.RemoteAddr = httptestkit.Client
				h := ginlimit.Limit(expr, opts()...)
				n := httptestkit.AllocsPerCall(func() {
					clear(w.Header())
					h(c)
				})
				httptestkit.CheckLimitHeaders(t, w.Header(), expr)
				if n > httptestkit.MaxAddedAllocs {
					t.Errorf("the handler allocates %v times per request; want at most %d", n, httptestkit.MaxAddedAllocs)
				}
				if raceEnabled {
					return
				}
				r := gin.New()
				r.GET("/bare", noop)
				r.GET("/limited", ginlimit.Limit(expr, opts()...), noop)
				bare, limited := httptestkit.AllocsPerRequest(r, "/bare"), httptestkit.AllocsPerRequest(r, "/limited")
				t.Logf("allocations per request: handler %v; bare route %v, limited %v (+%v)", n, bare, limited, limited-bare)
				if limited-bare > httptestkit.MaxAddedAllocs {
					t.Errorf("limitkit adds %v allocations per request; want at most %d", limited-bare, httptestkit.MaxAddedAllocs)
				}
			})
		}
	}
}

// The Gin context reaches core as an argument, not in the request's
// context, so a Gin-typed key costs nothing more.
func TestKey_addsNoAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are noisy under -race; run without it")
	}
	lim, _ := httptestkit.NewLimiter(t)
	r := gin.New()
	noop := func(c *gin.Context) { c.Status(http.StatusNoContent) }
	r.GET("/limited", ginlimit.Limit("1000000000/hour", core.WithLimiter(lim)), noop)
	r.GET("/gin-key", ginlimit.Limit("1000000000/hour", core.WithLimiter(lim), ginlimit.Key(ginlimit.HTTPKey(core.ByIP))), noop)
	limited, ginKey := httptestkit.AllocsPerRequest(r, "/limited"), httptestkit.AllocsPerRequest(r, "/gin-key")
	if ginKey > limited {
		t.Errorf("a Gin-typed key adds %v allocations per request; want none", ginKey-limited)
	}
}

func BenchmarkLimit(b *testing.B) {
	lim := core.New()
	defer lim.Close()
	r := gin.New()
	r.GET("/", ginlimit.Limit("1000000000/hour", core.WithLimiter(lim)), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	httptestkit.BenchmarkParallel(b, r)
}

func TestRoute_clientChosenMethodsAndPathsMakeNoBudgets(t *testing.T) {
	for _, methodNotAllowed := range []bool{false, true} {
		t.Run(fmt.Sprintf("HandleMethodNotAllowed=%v", methodNotAllowed), func(t *testing.T) {
			lim, _ := httptestkit.NewLimiter(t)
			r := gin.New()
			r.HandleMethodNotAllowed = methodNotAllowed
			r.Use(ginlimit.Limit("2/minute", core.WithLimiter(lim), ginlimit.Key(ginlimit.HTTPKey(core.ByIP), ginlimit.Route)))
			r.GET("/items/:id", ok)
			httptestkit.ClientChosenRouteKeys(t, r)
		})
	}
}

// byRoute answers with the route's first segment, such as "items".
func byRoute(c *gin.Context) {
	c.String(http.StatusOK, strings.Split(c.FullPath(), "/")[1])
}

func routesApp(set *core.LimitSet) *gin.Engine {
	r := gin.New()
	r.Use(ginlimit.Routes(set))
	r.GET("/items/:id", byRoute)
	r.GET("/users/:id", byRoute)
	r.GET("/healthz", byRoute)
	r.POST("/login", byRoute)
	return r
}

func TestRoutes_defaultGivesEachRouteItsBudgetAndNoPathEscapesIt(t *testing.T) {
	httptestkit.RoutesBudgets(t, routesApp(httptestkit.RoutesSet(t, "/items/:id", false)))
}

func TestRoutes_aRoutesOwnLimitReplacesTheDefault(t *testing.T) {
	httptestkit.RoutesOverride(t, routesApp(httptestkit.RoutesSet(t, "/items/:id", true)))
}

func TestByRoute_givesEachRouteItsOwnBudgetUnderOneGroupMiddleware(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	r := gin.New()
	r.Use(ginlimit.Limit("1/minute", core.WithLimiter(lim), ginlimit.ByRoute()))
	r.GET("/items/:id", ok)
	r.GET("/users/:id", ok)
	httptestkit.RouteBudgets(t, r)
}

func TestByRoute_refusesANilKeyNamingIt(t *testing.T) {
	httptestkit.NewErrors(t, "ginlimit.New", ginlimit.New,
		httptestkit.Misuse[ginlimit.Option]{Name: "a nil client key", Opt: ginlimit.ByRoute(nil), Want: "ginlimit.ByRoute: key function 1 of 1 is nil"})
}

func TestCheckRoutes_namesTableEntriesThatMatchNoRoute(t *testing.T) {
	httptestkit.CheckedRoutes(t, "/items/:id", func(set *core.LimitSet) error { return ginlimit.CheckRoutes(set, routesApp(set)) })
}

func TestChargeWhen_countsOnlyFailedLogins(t *testing.T) {
	httptestkit.ChargeByOutcome(t, func(lim *core.Limiter) http.Handler {
		r := gin.New()
		r.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, _ any) { c.AbortWithStatus(http.StatusInternalServerError) }))
		r.POST("/login", ginlimit.Limit("5/minute", core.WithLimiter(lim), ginlimit.ChargeWhen(func(c *gin.Context) bool {
			return c.Writer.Status() != http.StatusOK
		})), func(c *gin.Context) {
			if code := httptestkit.LoginOutcome(c.Request); code != 0 {
				c.Status(code)
				c.Writer.WriteHeaderNow()
			}
		})
		return r
	})
}

func TestMiddleware_peekSeesTheBudgetWithoutCharging(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	quotes := ginlimit.MustNewMiddleware("3/minute", core.WithLimiter(lim))
	r := gin.New()
	r.GET("/quotes", quotes.Handle, ok)
	r.GET("/usage", func(c *gin.Context) {
		u, err := quotes.Peek(c)
		if err != nil {
			c.Status(http.StatusInternalServerError)
			return
		}
		c.String(http.StatusOK, "%d", u.Remaining())
	})
	httptestkit.Do(r, "GET", "/quotes", httptestkit.Client)
	for range 3 {
		if w := httptestkit.Do(r, "GET", "/usage", httptestkit.Client); w.Body.String() != "2" {
			t.Fatalf("usage: %d %q; want 2 left", w.Code, w.Body)
		}
	}
	if codes := fmt.Sprint(httptestkit.Codes(r, httptestkit.Client, "/quotes", "/quotes", "/quotes")); codes != "[200 200 429]" {
		t.Fatalf("quotes after the peeks: %s; want 2 more served", codes)
	}
}

func TestRoutes_settlesAChargeByOutcome(t *testing.T) {
	httptestkit.RoutesChargeByOutcome(t, func(set *core.LimitSet) http.Handler {
		r := gin.New()
		r.Use(ginlimit.Routes(set))
		r.POST("/login", func(c *gin.Context) {
			if c.GetHeader("X-Fail") != "" {
				c.Status(http.StatusUnauthorized)
			}
		})
		return r
	})
}

func TestRoutes_eventsCarryTheMatchedRoute(t *testing.T) {
	httptestkit.RoutesLabelEvents(t, "/items/:id", func(set *core.LimitSet) http.Handler { return routesApp(set) })
}
