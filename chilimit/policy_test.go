package chilimit_test

import (
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func TestLimit_costThatCanNeverFitIs413WithoutRetryAfter(t *testing.T) {
	lim, _ := testLimiter(t)
	r := chi.NewRouter()
	r.With(chilimit.Limit("5/minute", lim, core.WithCost(func(*http.Request) int64 { return 6 }))).Get("/", ok)
	httptestkit.CostNeverFits(t, r)
}
