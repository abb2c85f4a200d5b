package ginlimit_test

import (
	"net/http"

	"testing"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/ginlimit"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func TestKey_panickingKeyFunctionFollowsTheKeyErrorPolicy(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t, core.WithLogger(httptestkit.Quiet))
	r := gin.New() // no gin.Recovery: a panic would end the test
	key := ginlimit.Key(func(*gin.Context) (string, error) { panic("key bug") })
	r.GET("/", ginlimit.Limit("1/minute", core.WithLimiter(lim), key, core.WithKeyErrorPolicy(core.KeyErrorRefuse)), ok)
	httptestkit.PanicRefused(t, r)
}

func TestLimit_costThatCanNeverFitIs413WithoutRetryAfter(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	r := gin.New()
	r.GET("/", ginlimit.Limit("5/minute", core.WithLimiter(lim), core.WithCost(func(*http.Request) int64 { return 6 })), ok)
	httptestkit.CostNeverFits(t, r)
}
