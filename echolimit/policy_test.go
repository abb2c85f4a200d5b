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
	e.GET("/", ok, echolimit.Limit("5/minute", core.WithLimiter(lim), core.WithCost(func(*http.Request) int64 { return 6 })))
	httptestkit.CostNeverFits(t, e)
}
