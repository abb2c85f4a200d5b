package chilimit_test

import (
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func TestLimit_builtPerRequestStillLimitsAndWarnsOfItsLine(t *testing.T) {
	httptestkit.BuiltPerRequest(t, func(lim *core.Limiter, mark func()) http.Handler {
		h := chi.NewRouter()
		h.Get("/items", func(w http.ResponseWriter, r *http.Request) {
			mark()
			chilimit.Limit("2/minute", core.WithLimiter(lim))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			})).ServeHTTP(w, r)
		})
		return h
	})
}
