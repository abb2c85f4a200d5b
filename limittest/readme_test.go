package limittest_test

// The tests of the README's "Testing your app": an app's router on each
// framework, tested as the README shows. Keep the two in step.

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
	"github.com/limitkit/limitkit/ginlimit"
	"github.com/limitkit/limitkit/limittest"
)

// --- Gin

func newGinRouter() *gin.Engine {
	r := gin.New()
	r.POST("/login", ginlimit.Limit("5/minute", core.WithName("login")), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	return r
}

func TestGinLoginIsLimited(t *testing.T) {
	clock := limittest.Isolate(t) // fresh budgets, on a clock the test drives
	r := newGinRouter()
	login := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("POST", "/login", nil))
		return w
	}
	for i := range 5 {
		limittest.AssertAllowed(t, login(), limittest.Limit(5), limittest.Remaining(int64(4-i)))
	}
	limittest.AssertLimited(t, login(), limittest.Remaining(0))
	clock.Advance(2 * time.Minute)
	limittest.AssertAllowed(t, login())
}

// --- Echo

func newEchoApp() *echo.Echo {
	e := echo.New()
	e.POST("/login", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) },
		echolimit.Limit("5/minute", core.WithName("login")))
	return e
}

func TestEchoLoginIsLimited(t *testing.T) {
	limittest.Isolate(t)
	e := newEchoApp()
	var w *httptest.ResponseRecorder
	for range 6 {
		w = httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest("POST", "/login", nil))
	}
	limittest.AssertLimited(t, w, limittest.Limit(5), limittest.Remaining(0))
}

// A test that is about something else turns limiting off.
func TestEchoLoginWithoutLimits(t *testing.T) {
	limittest.Disable(t)
	e := newEchoApp()
	for range 100 {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest("POST", "/login", nil))
		limittest.AssertAllowed(t, w)
	}
}

// --- Chi, in parallel tests: each builds its router on a limiter of its own

func newChiRouter(lim *core.Limiter) chi.Router {
	r := chi.NewRouter()
	r.With(chilimit.Limit("5/minute", core.WithLimiter(lim), core.WithName("login"))).
		Post("/login", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return r
}

func TestChiLoginIsLimited(t *testing.T) {
	t.Parallel()
	lim, _ := limittest.NewLimiter(t)
	r := newChiRouter(lim)
	var w *httptest.ResponseRecorder
	for range 6 {
		w = httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("POST", "/login", nil))
	}
	limittest.AssertLimited(t, w, limittest.Limit(5))
}
