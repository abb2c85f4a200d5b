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

func TestLimit_heldRequestWhoseContextEndsIsAnsweredWithAStatus(t *testing.T) {
	for _, e := range httptestkit.EndedCases {
		t.Run(e.Name, func(t *testing.T) {
			decided := make(chan struct{}, 4)
			lim, _ := httptestkit.NewLimiter(t, core.WithObserver(core.ObserverFunc(func(core.Event) { decided <- struct{}{} })))
			r := gin.New()
			ran := false
			r.GET("/", ginlimit.Limit("1/hour", core.WithLimiter(lim), core.WithAlgorithm(core.LeakyBucket), core.WithBurst(2)), func(c *gin.Context) { ran = true })
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
