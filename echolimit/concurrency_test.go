package echolimit_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

func TestConcurrency_limitsRequestsInFlight(t *testing.T) {
	held := httptestkit.NewHeld()
	httptestkit.ConcurrencyLimit(t, func(lim *core.Limiter) http.Handler {
		e := echo.New()
		e.HTTPErrorHandler = echolimit.ErrorHandler(e.DefaultHTTPErrorHandler) // core's body, as the test checks
		e.Use(recoverer)
		g := e.Group("", echolimit.Concurrency(2, core.WithLimiter(lim)))
		g.GET("/slow", func(c echo.Context) error { held.Slow(); return c.NoContent(http.StatusOK) })
		g.GET("/panic", func(echo.Context) error { panic("boom") })
		return e
	}, held)
}

func TestNewConcurrency_errorNamesTheCall(t *testing.T) {
	if _, err := echolimit.NewConcurrency(0); err == nil || !strings.HasPrefix(err.Error(), "echolimit.NewConcurrency(0): ") {
		t.Errorf("NewConcurrency(0) = %v, want an error naming the call", err)
	}
}

// recoverer is the part of Echo's Recover middleware the test needs: a
// panic becomes a 500.
func recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if recover() != nil {
				err = echo.NewHTTPError(http.StatusInternalServerError)
			}
		}()
		return next(c)
	}
}
