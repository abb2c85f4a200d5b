package chilimit_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

// chi's own middlewares that reroute a request before chi routes it
// (StripSlashes, CleanPath, GetHead, URLFormat) set the route context's RoutePath and
// RouteMethod, which chi routes by: the route's limit must follow them, or
// POST /login/ reaches the login handler limited by nothing.
func TestRoutes_followChisRewrittenRoutePathAndMethod(t *testing.T) {
	for _, tc := range []struct {
		name, method, path string
		rewrite            func(http.Handler) http.Handler
	}{
		{"StripSlashes", http.MethodPost, "/login/", middleware.StripSlashes},
		{"CleanPath", http.MethodPost, "//login", middleware.CleanPath},
		{"GetHead", http.MethodHead, "/login", middleware.GetHead},
		{"URLFormat", http.MethodPost, "/login.json", middleware.URLFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, _ := httptestkit.NewLimiter(t)
			set, err := core.NewLimitSet(core.Config{Routes: map[string]core.LimitConfig{
				"POST /login": {Limit: "2/minute"},
				"GET /login":  {Limit: "2/minute"},
			}}, core.ConfigMiddleware(core.WithLimiter(lim)))
			if err != nil {
				t.Fatal(err)
			}
			r := chi.NewRouter()
			r.Use(tc.rewrite, chilimit.Routes(set))
			r.Post("/login", ok)
			r.Get("/login", ok)
			var got []int
			for range 3 {
				got = append(got, httptestkit.Do(r, tc.method, tc.path, "203.0.113.7:5000").Code)
			}
			if fmt.Sprint(got) != "[200 200 429]" {
				t.Fatalf("%s %s three times: %v; want the route's 2/minute to hold", tc.method, tc.path, got)
			}
		})
	}
}

// ByRoute keys by the route chi serves: HEAD served by the GET handler
// (GetHead) and /login/ served by /login (StripSlashes) count against the
// same budget as the route itself, not one of their own.
func TestRoute_followsChisRewrittenRoutePathAndMethod(t *testing.T) {
	lim, _ := testLimiter(t)
	r := chi.NewRouter()
	r.Use(middleware.StripSlashes, middleware.GetHead, chilimit.Limit("2/minute", lim, chilimit.ByRoute()))
	r.Get("/login", ok)
	var got []int
	for _, req := range [][2]string{{"GET", "/login"}, {"HEAD", "/login"}, {"GET", "/login/"}} {
		got = append(got, httptestkit.Do(r, req[0], req[1], "203.0.113.7:5000").Code)
	}
	if fmt.Sprint(got) != "[200 200 429]" {
		t.Fatalf("GET /login, HEAD /login, GET /login/: %v; want one budget of 2", got)
	}
}
