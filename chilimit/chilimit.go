package chilimit

import (
	"net/http"

	"github.com/limitkit/limitkit/core"
)

// Limit returns a chi middleware that enforces the limits in expr (such as
// "5/minute" or "10/second;1000/hour") per client. It panics if expr or an
// option is invalid, with an error that names the call and quotes expr,
// such as `chilimit.Limit("5/minit"): ...`: call it while building the
// router, so that a mistake stops the program at start-up.
func Limit(expr string, opts ...Option) func(http.Handler) http.Handler {
	return core.MustAdapt[any]("chilimit.Limit", 1, expr, opts, handler)
}

// New is Limit returning the error instead of panicking, for limits read
// from configuration. The error wraps core's: errors.As finds a
// *core.SyntaxError for a bad expression.
func New(expr string, opts ...Option) (func(http.Handler) http.Handler, error) {
	return core.Adapt[any]("chilimit.New", 1, expr, opts, handler)
}

// handler is the middleware's own net/http one, which passes no native
// value: chi's handlers have none beyond the request (hence Adapt[any]).
func handler(m *core.Middleware) func(http.Handler) http.Handler { return m.Handler }

// NewMiddleware is New returning the *core.Middleware itself, whose Handler
// is the chi middleware and whose Peek looks at the budget Handler would
// charge a request to (its plan, its key) without charging it, for a route
// such as GET /usage. For a plain limit, Limit is all you need.
//
//	quotes := chilimit.MustNewMiddleware("100/minute", core.WithName("quotes"))
//	r.With(quotes.Handler).Get("/quotes/{symbol}", getQuote)
//	r.Get("/usage", func(w http.ResponseWriter, r *http.Request) { u, err := quotes.Peek(r); ... })
//
// Charging by outcome (core.WithChargeWhen) reads the status through a
// wrapped http.ResponseWriter, which passes Flush, Hijack and Unwrap on.
func NewMiddleware(expr string, opts ...Option) (*core.Middleware, error) {
	return core.Adapt[any]("chilimit.NewMiddleware", 1, expr, opts, func(m *core.Middleware) *core.Middleware { return m })
}

// MustNewMiddleware is NewMiddleware for set-up code: it panics with the
// error, which names the call and quotes the expression.
func MustNewMiddleware(expr string, opts ...Option) *core.Middleware {
	return core.MustAdapt[any]("chilimit.MustNewMiddleware", 1, expr, opts, func(m *core.Middleware) *core.Middleware { return m })
}
