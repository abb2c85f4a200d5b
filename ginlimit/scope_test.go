package ginlimit_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/ginlimit"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func TestLimit_builtPerRequestStillLimitsAndWarnsOfItsLine(t *testing.T) {
	httptestkit.BuiltPerRequest(t, func(lim *core.Limiter, mark func()) http.Handler {
		h := gin.New()
		h.GET("/items", func(c *gin.Context) {
			mark()
			ginlimit.Limit("2/minute", core.WithLimiter(lim))(c)
			if !c.IsAborted() {
				c.Status(http.StatusNoContent)
			}
		})
		return h
	})
}
