package ginlimit

import (
	"fmt"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
)

// StatusClientClosedRequest is the status a request is aborted with when its
// client went away while it was checked or held (nginx's 499): nothing
// reaches the client, but access logs can tell these requests apart.
const StatusClientClosedRequest = core.StatusClientClosedRequest

// Limit returns a Gin middleware enforcing the limits in expr (see
// core.ParseLimits), for a route or, with Use, a group. It panics if expr or
// an option is invalid, with an error that quotes the expression: that is a
// mistake in set-up code, best found at start-up. Use New to get the error
// instead.
func Limit(expr string, opts ...core.Option) gin.HandlerFunc {
	h, err := build(expr, opts)
	if err != nil {
		panic(err)
	}
	return h
}

// New is Limit returning an error, rather than panicking, for an invalid
// expression or option.
func New(expr string, opts ...core.Option) (gin.HandlerFunc, error) {
	return build(expr, opts)
}

// build is called by Limit and New, so the user's function is two frames
// above core.NewMiddlewareSkip and names the scope.
func build(expr string, opts []core.Option) (gin.HandlerFunc, error) {
	m, err := core.NewMiddlewareSkip(2, expr, opts...)
	if err != nil {
		return nil, fmt.Errorf("ginlimit: %w", err)
	}
	return handler(m), nil
}

// handler passes the *gin.Context to core as the native value, for the
// Gin-typed options (Key, Plans, Exempt, OnDeny) to find.
func handler(m *core.Middleware) gin.HandlerFunc {
	onDeny := m.NativeDeny()
	return func(c *gin.Context) {
		res := m.CheckWith(c.Request, c.Writer.Header(), c)
		switch res.Verdict {
		case core.Serve:
			return // Gin runs the rest of the chain
		case core.Refuse:
			c.Abort()
			if res.OverLimit() && onDeny != nil && onDeny(c, res) == nil {
				return
			}
			m.Refuse(c.Writer, c.Request, res)
		default: // core.Gone
			c.AbortWithStatus(res.Status)
		}
	}
}
