package ginlimit

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
)

// StatusClientClosedRequest is the status a request is aborted with when its
// client went away while it was checked or held (nginx's 499): nothing
// reaches the client, but access logs can tell these requests apart.
const StatusClientClosedRequest = 499

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
	s := &settings{}
	opts = append([]core.Option{register[core.Option](s)}, opts...)
	m, err := core.NewMiddlewareSkip(2, expr, opts...)
	building.Delete(s.key)
	if err != nil {
		return nil, fmt.Errorf("ginlimit: %w", err)
	}
	return s.handler(m), nil
}

// ctxKey is the request-context key under which the *gin.Context reaches
// the Gin-typed functions that core calls.
type ctxKey struct{}

func (s *settings) handler(m *core.Middleware) gin.HandlerFunc {
	carry, exempt, onDeny := s.carry, s.exempt, s.onDeny
	return func(c *gin.Context) {
		if exempt != nil && exempt(c) {
			return
		}
		r := c.Request
		if carry {
			// Two allocations, paid only by middlewares with Gin-typed
			// functions that core calls.
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
		}
		res := m.Check(r, c.Writer.Header())
		switch res.Verdict {
		case core.Serve:
			return // Gin runs the rest of the chain
		case core.Refuse:
			c.Abort()
			if res.Status == http.StatusTooManyRequests && onDeny != nil {
				onDeny(c, res)
				return
			}
			m.Refuse(c.Writer, r, res)
		default: // core.Gone
			c.AbortWithStatus(StatusClientClosedRequest)
		}
	}
}

// ginContext returns the *gin.Context that the middleware put in r's
// context, for the Gin-typed functions core calls with r.
func ginContext(r *http.Request) (*gin.Context, bool) {
	c, ok := r.Context().Value(ctxKey{}).(*gin.Context)
	return c, ok
}
