package chilimit

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
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

// Routes returns a chi middleware that limits every route by set, a
// core.LimitSet (limits declared in a core.Config): a route that set's
// Routes names by its method and pattern ("POST /login") or its pattern
// alone ("/items/{id}") gets that limit or exemption only, and every other
// route its own budget under set's default. Requests that match no route
// (a 404, a 405) share one budget per client. r.Use runs before chi
// routes, so the pattern is the one chi will match (see Route); outside
// chi every request counts as matching none. Mount chi's middlewares that
// reroute a request (StripSlashes, CleanPath, GetHead, URLFormat) before
// Routes, so that it sees the route chi will serve.
//
//	r.Use(middleware.StripSlashes, chilimit.Routes(set))
func Routes(set *core.LimitSet) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			method, pattern, _ := routePattern(r)
			m, native := set.ForRoute(method, pattern)
			if m == nil {
				next.ServeHTTP(w, r)
				return
			}
			m.Respond(w, r, next, m.EnforceWith(r, w.Header(), native))
		})
	}
}

// Named returns a chi middleware enforcing the limit called name in set's
// Config.Limits, as set has it now: a Reload changes it under the mounted
// middleware. It panics, naming the limit, if set has none of that name.
func Named(set *core.LimitSet, name string) func(http.Handler) http.Handler {
	current, err := set.Mount(name)
	if err != nil {
		panic(fmt.Errorf("chilimit.Named(%q): %w", name, err))
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m := current()
			m.Respond(w, r, next, m.Enforce(r, w.Header()))
		})
	}
}

// CheckRoutes reports, naming them, the entries of set's Config.Routes
// that match none of r's routes (subrouters included), so that a misspelt
// route is found at start-up rather than limited by the default; call it
// once the routes are registered. See core.LimitSet.CheckRoutes.
func CheckRoutes(set *core.LimitSet, r chi.Routes) error {
	var routes []string
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+route)
		return nil
	})
	if err != nil {
		return err
	}
	return set.CheckRoutes(routes)
}
