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
func Limit(expr string, opts ...core.Option) func(http.Handler) http.Handler {
	return core.MustAdapt("chilimit.Limit", 1, expr, opts, handler)
}

// New is Limit returning the error instead of panicking, for limits read
// from configuration. The error wraps core's: errors.As finds a
// *core.SyntaxError for a bad expression.
func New(expr string, opts ...core.Option) (func(http.Handler) http.Handler, error) {
	return core.Adapt("chilimit.New", 1, expr, opts, handler)
}

// handler is the middleware's own net/http one.
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
func NewMiddleware(expr string, opts ...core.Option) (*core.Middleware, error) {
	return core.Adapt("chilimit.NewMiddleware", 1, expr, opts, func(m *core.Middleware) *core.Middleware { return m })
}

// MustNewMiddleware is NewMiddleware for set-up code: it panics with the
// error, which names the call and quotes the expression.
func MustNewMiddleware(expr string, opts ...core.Option) *core.Middleware {
	return core.MustAdapt("chilimit.MustNewMiddleware", 1, expr, opts, func(m *core.Middleware) *core.Middleware { return m })
}

// ByRoute keys requests by client and by chi route, so that one middleware
// on a router or group gives each route a budget of its own: the client is
// given by keys, combined (default core.ByIP), and the route by RouteKey.
//
//	r.Use(chilimit.Limit("60/minute", chilimit.ByRoute()))
func ByRoute(keys ...core.KeyFunc) core.Option {
	for i, k := range keys {
		if k == nil {
			return core.InvalidOption(fmt.Errorf("chilimit.ByRoute: key function %d of %d is nil; give none to key clients by IP", i+1, len(keys)))
		}
	}
	if len(keys) == 0 {
		keys = []core.KeyFunc{core.ByIP}
	}
	return core.WithKey(core.Combine(append(keys[:len(keys):len(keys)], RouteKey)...))
}

// RouteKey identifies a request by its method and chi route pattern, such
// as "GET /items/{id}", so that every item shares one budget. It works
// wherever the middleware is mounted: in r.Use, chi has not yet routed the
// request, so RouteKey asks the router which pattern the request will
// match. Outside chi it falls back to core.ByRoute.
//
// The key is core.RouteIdentity's, so no client makes a budget by
// inventing a method or a path: every request that matches no route for
// its method (a 404, a 405, a method chi does not know) shares the identity
// "(no route)", and methods outside the standard set read "OTHER". A route
// registered for every method (r.Handle, r.HandleFunc) has a budget per
// standard method.
func RouteKey(r *http.Request) (string, error) {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || rctx.Routes == nil {
		return core.ByRoute(r)
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	return core.RouteIdentity(r.Method, rctx.Routes.Find(chi.NewRouteContext(), r.Method, path)), nil
}
