// Package labeltest holds what the metrics packages' tests share (promlimit,
// otellimit): the same small app on every router the module supports, with
// a limit on a group and one on a route, and a flood of requests whose
// paths and methods a client chose, to show that no client-chosen value
// becomes a label.
package labeltest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
	"github.com/limitkit/limitkit/ginlimit"
)

// App is one router with the app's routes and limits.
type App struct {
	Name    string
	Handler http.Handler
	// Routes are the route labels its requests may carry: the patterns it
	// registered, as its router spells them, and "" for none.
	Routes []string
}

// GroupName names the limit on the group of item routes; the limit on the
// login route has no name, so its scope is a hash. RootName names the limit
// on the whole router, which every request meets, those that match no
// route too.
const (
	GroupName = "items"
	RootName  = "all"
)

// Names are the routers of Apps, in order.
var Names = []string{"ServeMux", "chi", "Gin", "Echo"}

// Apps returns the app on a ServeMux, chi, Gin and Echo, its limits decided
// by lim: "100000/minute" named RootName on the whole router,
// "1000/minute" named GroupName on the group /items (routes /items/{id} and
// /items/{id}/price), and "1000/minute" unnamed on POST /login.
func Apps(t testing.TB, lim *core.Limiter) []App {
	t.Helper()
	gin.SetMode(gin.TestMode)
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	with := core.WithLimiter(lim)
	group, root := core.WithName(GroupName), core.WithName(RootName)

	mux := http.NewServeMux()
	items := core.MustNewMiddleware("1000/minute", with, group)
	mux.Handle("GET /items/{id}", items.Handler(ok))
	mux.Handle("GET /items/{id}/price", items.Handler(ok))
	mux.Handle("POST /login", core.MustNewMiddleware("1000/minute", with).Handler(ok))

	cr := chi.NewRouter()
	cr.Use(chilimit.Limit("100000/minute", with, root))
	cr.Route("/items", func(r chi.Router) {
		r.Use(chilimit.Limit("1000/minute", with, group))
		r.Get("/{id}", ok)
		r.Get("/{id}/price", ok)
	})
	cr.With(chilimit.Limit("1000/minute", with)).Post("/login", ok)

	ge := gin.New()
	ge.Use(ginlimit.Limit("100000/minute", with, root))
	gg := ge.Group("/items", ginlimit.Limit("1000/minute", with, group))
	gg.GET("/:id", func(*gin.Context) {})
	gg.GET("/:id/price", func(*gin.Context) {})
	ge.POST("/login", ginlimit.Limit("1000/minute", with), func(*gin.Context) {})

	ee := echo.New()
	ee.Use(echolimit.Limit("100000/minute", with, root))
	eg := ee.Group("/items", echolimit.Limit("1000/minute", with, group))
	eg.GET("/:id", func(echo.Context) error { return nil })
	eg.GET("/:id/price", func(echo.Context) error { return nil })
	ee.POST("/login", func(echo.Context) error { return nil }, echolimit.Limit("1000/minute", with))

	return []App{
		// The root limit wraps the mux, before it routes: no pattern.
		{"ServeMux", core.MustNewMiddleware("100000/minute", with, root).Handler(mux), []string{"GET /items/{id}", "GET /items/{id}/price", "POST /login", ""}},
		// chi tells a subrouter's middleware the pattern routed so far.
		// and chi's root middleware runs before routing.
		{"chi", cr, []string{"/items/*", "/login", ""}},
		{"Gin", ge, []string{"/items/:id", "/items/:id/price", "/login", ""}},
		// Echo's Group adds a not-found route, /items/*, that its
		// middlewares run on.
		{"Echo", ee, []string{"/items/:id", "/items/:id/price", "/login", "/items/*", ""}},
	}
}

// Methods are the methods of a flood: the standard ones, a few a client
// invents, and lower case.
var Methods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW", "get", "X-%d"}

// Flood sends n requests to h, each with a path no other has, most under
// the limited routes, and a method from Methods ("X-%d" a new one each
// time), from n clients.
func Flood(h http.Handler, n int) {
	for i := range n {
		m := Methods[i%len(Methods)]
		if m == "X-%d" {
			m = fmt.Sprintf(m, i)
		}
		var path string
		switch i % 4 {
		case 0:
			path = fmt.Sprintf("/items/%d", i)
		case 1:
			path = fmt.Sprintf("/items/%d/price?x=%d", i, i)
		case 2:
			path = fmt.Sprintf("/login/%d", i)
		default:
			path = fmt.Sprintf("/items/%d/%d/deeper", i, i)
		}
		r := httptest.NewRequest(m, path, nil)
		r.RemoteAddr = fmt.Sprintf("198.51.%d.%d:4000", i/256%256, i%256)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	for range 3 { // and the routes themselves, so that each label is seen
		for _, req := range []struct{ m, p string }{{"GET", "/items/1"}, {"GET", "/items/1/price"}, {"POST", "/login"}} {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.m, req.p, nil))
		}
	}
}
