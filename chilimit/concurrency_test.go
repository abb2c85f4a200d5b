package chilimit_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func TestConcurrency_limitsRequestsInFlight(t *testing.T) {
	held := httptestkit.NewHeld()
	httptestkit.ConcurrencyLimit(t, func(lim *core.Limiter) http.Handler {
		r := chi.NewRouter()
		r.Use(middleware.Recoverer)
		r.Group(func(r chi.Router) {
			r.Use(chilimit.Concurrency(2, core.WithLimiter(lim)))
			r.Get("/slow", func(w http.ResponseWriter, _ *http.Request) { held.Slow() })
			r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
		})
		return r
	}, held)
}

func TestNewConcurrency_errorNamesTheCall(t *testing.T) {
	if _, err := chilimit.NewConcurrency(0); err == nil || !strings.HasPrefix(err.Error(), "chilimit.NewConcurrency(0): ") {
		t.Errorf("NewConcurrency(0) = %v, want an error naming the call", err)
	}
}
