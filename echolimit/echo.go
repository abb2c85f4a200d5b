package echolimit

import (
	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
)

// StatusClientClosedRequest is the status of the error a request ends with
// when its client went away while it was checked or held (nginx's 499, as
// Echo's proxy middleware uses): nothing reaches the client, but access logs
// can tell these requests apart.
const StatusClientClosedRequest = core.StatusClientClosedRequest

// Limit returns an Echo middleware enforcing the limits in expr (see
// core.ParseLimits), for a route, a group or, with e.Use, the whole app. It
// panics if expr or an option is invalid, with an error that names the call
// and quotes the expression, such as `echolimit.Limit("5/minit"): ...`: that
// is a mistake in set-up code, best found at start-up. Use New to get the
// error instead.
func Limit(expr string, opts ...core.Option) echo.MiddlewareFunc {
	return core.MustAdapt("echolimit.Limit", 1, expr, withRoute(opts), middleware)
}

// New is Limit returning an error, rather than panicking, for an invalid
// expression or option. The error wraps core's: errors.As finds a
// *core.SyntaxError for a bad expression.
func New(expr string, opts ...core.Option) (echo.MiddlewareFunc, error) {
	return core.Adapt("echolimit.New", 1, expr, withRoute(opts), middleware)
}

// Error is what a refused request's *echo.HTTPError carries, as its Message
// and its Internal error: the outcome of the check, for a custom
// HTTPErrorHandler to read with errors.As. It marshals to core's JSON body,
// so that Echo's default handler writes that.
type Error struct {
	Result core.Result
}

// Error returns the refusal's reason.
func (e *Error) Error() string { return "echolimit: " + e.Result.Message() }

// MarshalJSON returns core's body for the refusal, such as
// {"error":"rate limit exceeded","limit":"5/minute","retry_after":12}.
func (e *Error) MarshalJSON() ([]byte, error) { return e.Result.Body(), nil }

// withRoute tells core the route each request matched, for the events that
// metrics label (core.Event.Route): see routePattern.
func withRoute(opts []core.Option) []core.Option {
	return append([]core.Option{routeOption}, opts...)
}

var routeOption = core.NativeRoute(routePattern)

// routePattern is the route c matched: c.Path(), or "" for a 405, for which
// Echo sets c.Path() to the path of the routes that take other methods.
func routePattern(c echo.Context) string {
	if c.Get(echo.ContextKeyHeaderAllow) != nil {
		return ""
	}
	return c.Path()
}

// middleware passes the echo.Context to core as the native value, for the
// Echo-typed options (Key, Plans, Skipper, OnDeny) to find.
func middleware(m *core.Middleware) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			res := m.EnforceWith(c.Request(), c.Response().Header(), c)
			switch res.Verdict {
			case core.Serve:
				return next(c)
			case core.Refuse:
				if answered, err := m.DenyNatively(c, res); answered {
					return err
				}
				e := &Error{Result: res}
				return &echo.HTTPError{Code: res.Status, Message: e, Internal: e}
			default: // core.Gone
				return &echo.HTTPError{Code: res.Status, Message: "client closed request", Internal: res.Err}
			}
		}
	}
}
