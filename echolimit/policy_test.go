package echolimit_test

import (
	"net/http"

	"testing"

	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func TestKey_panickingKeyFunctionFollowsTheKeyErrorPolicy(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t, core.WithLogger(httptestkit.Quiet))
	e := echo.New() // no Recover middleware: a panic would end the test
	key := echolimit.Key(func(echo.Context) (string, error) { panic("key bug") })
	e.GET("/", ok, echolimit.Limit("1/minute", core.WithLimiter(lim), key, core.WithKeyErrorPolicy(core.KeyErrorRefuse)))
	httptestkit.PanicRefused(t, e)
}

func TestLimit_costThatCanNeverFitIs413WithoutRetryAfter(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	e := echo.New()
	e.HTTPErrorHandler = echolimit.ErrorHandler(e.DefaultHTTPErrorHandler) // core's body, which the shared case reads
	e.GET("/", ok, echolimit.Limit("5/minute", core.WithLimiter(lim), core.WithCost(func(*http.Request) int64 { return 6 })))
	httptestkit.CostNeverFits(t, e)
}

func TestLimit_heldRequestWhoseContextEndsIsAnsweredWithAStatus(t *testing.T) {
	for _, tt := range httptestkit.EndedCases {
		t.Run(tt.Name, func(t *testing.T) {
			decided := make(chan struct{}, 4)
			lim, _ := httptestkit.NewLimiter(t, core.WithObserver(core.ObserverFunc(func(core.Event) { decided <- struct{}{} })))
			e := echo.New()
			ran := false
			e.GET("/", func(c echo.Context) error { ran = true; return nil },
				echolimit.Limit("1/hour", core.WithLimiter(lim), core.WithAlgorithm(core.LeakyBucket), core.WithBurst(2)))
			httptestkit.Do(e, "GET", "/", httptestkit.Client)
			<-decided
			ran = false
			httptestkit.EndedWhileHeld(t, e, decided, tt) // held for an hour
			if ran {
				t.Error("the handler ran")
			}
		})
	}
}
