package ginlimit

import (
	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
)

// StatusClientClosedRequest is the status a request is aborted with when its
// client went away while it was checked or held (nginx's 499): nothing
// reaches the client, but access logs can tell these requests apart.
const StatusClientClosedRequest = core.StatusClientClosedRequest

// Limit returns a Gin middleware enforcing the limits in expr (see
// core.ParseLimits), for a route or, with Use, a group. It panics if expr or
// an option is invalid, with an error that names the call and quotes the
// expression, such as `ginlimit.Limit("5/minit"): ...`: that is a mistake in
// set-up code, best found at start-up. Use New to get the error instead.
func Limit(expr string, opts ...Option) gin.HandlerFunc {
	return core.MustAdapt[*gin.Context]("ginlimit.Limit", 1, expr, withRoute(opts), handler)
}

// New is Limit returning an error, rather than panicking, for an invalid
// expression or option. The error wraps core's: errors.As finds a
// *core.SyntaxError for a bad expression.
func New(expr string, opts ...Option) (gin.HandlerFunc, error) {
	return core.Adapt[*gin.Context]("ginlimit.New", 1, expr, withRoute(opts), handler)
}

// withRoute puts first the option that tells core the route each request
// matched, for the events that metrics label (core.Event.Route): Gin's
// c.FullPath(), "" for a 404.
func withRoute(opts []Option) []Option { return append([]Option{routeOption}, opts...) }

var routeOption Option = option{core.NativeRoute("ginlimit.route", (*gin.Context).FullPath)}

// handler passes the *gin.Context to core as the native value, for the
// Gin-typed options (Key, Plans, Exempt, OnDeny) to find.
func handler(m *core.Middleware) gin.HandlerFunc {
	return func(c *gin.Context) {
		res := m.EnforceWith(c.Request, c.Writer.Header(), c)
		switch res.Verdict {
		case core.Serve:
			return // Gin runs the rest of the chain
		case core.Refuse:
			c.Abort()
			if answered, err := m.DenyNatively(c, res); answered && err == nil {
				return
			}
			m.Refuse(c.Writer, c.Request, res)
		default: // core.Gone
			c.AbortWithStatus(res.Status)
		}
	}
}
