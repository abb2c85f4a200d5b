package ginlimit_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/ginlimit"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func TestConcurrency_limitsRequestsInFlight(t *testing.T) {
	held := httptestkit.NewHeld()
	httptestkit.ConcurrencyLimit(t, func(lim *core.Limiter) http.Handler {
		r := gin.New()
		r.Use(gin.CustomRecovery(func(c *gin.Context, _ any) { c.AbortWithStatus(http.StatusInternalServerError) }))
		g := r.Group("/", ginlimit.Concurrency(2, core.WithLimiter(lim), ginlimit.Key(ginlimit.HTTPKey(core.ByIP))))
		g.GET("/slow", func(c *gin.Context) { held.Slow(); c.Status(http.StatusOK) })
		g.GET("/panic", func(*gin.Context) { panic("boom") })
		return r
	}, held)
}

func TestNewConcurrency_errorNamesTheCall(t *testing.T) {
	if _, err := ginlimit.NewConcurrency(0); err == nil || !strings.HasPrefix(err.Error(), "ginlimit.NewConcurrency(0): ") {
		t.Errorf("NewConcurrency(0) = %v, want an error naming the call", err)
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(error).Error(), "ginlimit.Concurrency(-1)") {
			t.Errorf("Concurrency(-1) panicked with %v, want an error naming the call", p)
		}
	}()
	ginlimit.Concurrency(-1)
}
