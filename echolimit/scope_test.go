package echolimit_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func TestLimit_builtPerRequestStillLimitsAndWarnsOfItsLine(t *testing.T) {
	httptestkit.BuiltPerRequest(t, func(lim *core.Limiter, mark func()) http.Handler {
		h := echo.New()
		h.GET("/items", func(c echo.Context) error {
			mark()
			return echolimit.Limit("2/minute", core.WithLimiter(lim))(func(c echo.Context) error {
				return c.NoContent(http.StatusNoContent)
			})(c)
		})
		return h
	})
}
