package echolimit

import (
	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
)

// Concurrency returns an Echo middleware that lets at most n requests per
// client be in flight at once (see core.ConcurrencyMiddleware): a request
// over it gets an *echo.HTTPError of 429 (Retry-After: 1 is set; with
// ErrorHandler the body names the limit, such as "2 concurrent"), or is
// held for a slot up to core.WithConcurrencyWait. The request's slot is
// given back when the next handler returns, also when it panics. The
// options are those of Limit (Key, Skipper, OnDeny, core.WithName, ...)
// and core.WithLeaseTTL; it panics on a bad n or option, naming the call,
// such as `echolimit.Concurrency(0): ...`.
//
//	e.POST("/reports", buildReport, echolimit.Concurrency(2))
func Concurrency(n int64, opts ...Option) echo.MiddlewareFunc {
	return core.MustAdaptConcurrency[echo.Context]("echolimit.Concurrency", 1, n, opts, concurrencyMiddleware)
}

// NewConcurrency is Concurrency returning an error, rather than panicking,
// for a bad n or option.
func NewConcurrency(n int64, opts ...Option) (echo.MiddlewareFunc, error) {
	return core.AdaptConcurrency[echo.Context]("echolimit.NewConcurrency", 1, n, opts, concurrencyMiddleware)
}

func concurrencyMiddleware(cm *core.ConcurrencyMiddleware) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			res, lease := cm.EnforceWith(c.Request(), c.Response().Header(), c)
			switch res.Verdict {
			case core.Serve:
				defer cm.Release(c.Request(), lease)
				return next(c)
			case core.Refuse:
				if answered, err := cm.DenyNatively(c, res); answered {
					return err
				}
				return &echo.HTTPError{Code: res.Status, Message: res.Message(), Internal: &Error{Result: res}}
			default: // core.Gone
				return &echo.HTTPError{Code: res.Status, Message: "client closed request", Internal: res.Err}
			}
		}
	}
}
