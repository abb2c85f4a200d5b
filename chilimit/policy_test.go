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

func TestLimit_heldRequestWhoseContextEndsIsAnsweredWithAStatus(t *testing.T) {
	for _, e := range httptestkit.EndedCases {
		t.Run(e.Name, func(t *testing.T) {
			decided := make(chan struct{}, 4)
			lim, _ := httptestkit.NewLimiter(t, core.WithObserver(core.ObserverFunc(func(core.Event) { decided <- struct{}{} })))
			r := chi.NewRouter()
			ran := false
			r.With(chilimit.Limit("1/hour", core.WithLimiter(lim), core.WithAlgorithm(core.LeakyBucket), core.WithBurst(2))).
				Get("/", func(http.ResponseWriter, *http.Request) { ran = true })
			httptestkit.Do(r, "GET", "/", httptestkit.Client)
			<-decided
			ran = false
			httptestkit.EndedWhileHeld(t, r, decided, e) // held for an hour
			if ran {
				t.Error("the handler ran")
			}
		})
	}
}
