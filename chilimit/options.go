package chilimit

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/limitkit/limitkit/core"
)

// Option configures a chi middleware (Limit, New): it is either one of
// core's middleware options (core.WithName, core.WithKey, core.WithCost,
// ...), which fit every adapter, or one of this package's (ByRoute), which
// fit chi only: handing ginlimit's or echolimit's options, or a limiter
// option such as core.WithStore, to Limit does not compile.
type Option interface {
	core.AdapterOption
	ChiOption()
}

// option is one of this package's options: a core option with chi's mark
// only.
type option struct{ core.AdapterOption }

// ChiOption marks the option as chilimit's.
func (option) ChiOption() {}

// ByRoute keys requests by client and by chi route, so that one middleware
// on a router or group gives each route a budget of its own: the client is
// given by keys, combined (default core.ByIP), and the route by Route.
//
//	r.Use(chilimit.Limit("60/minute", chilimit.ByRoute()))
func ByRoute(keys ...core.KeyFunc) Option {
	for i, k := range keys {
		if k == nil {
			return option{core.InvalidOption(fmt.Errorf("chilimit.ByRoute: key function %d of %d is nil; give none to key clients by IP", i+1, len(keys)))}
		}
	}
	if len(keys) == 0 {
		keys = []core.KeyFunc{core.ByIP}
	}
	return option{core.WithKey(core.Combine(append(keys[:len(keys):len(keys)], Route)...))}
}

// Route identifies a request by its method and chi route pattern, such
// as "GET /items/{id}", so that every item shares one budget. It works
// wherever the middleware is mounted: in r.Use, chi has not yet routed the
// request, so Route asks the router which pattern the request will
// match. Outside chi it falls back to core.ByRoute. It is the key
// function ginlimit.Route and echolimit.Route are for their frameworks.
//
// The key is core.RouteIdentity's, so no client makes a budget by
// inventing a method or a path: every request that matches no route for
// its method (a 404, a 405, a method chi does not know) shares the identity
// "(no route)", and methods outside the standard set read "OTHER". A route
// registered for every method (r.Handle, r.HandleFunc) has a budget per
// standard method.
func Route(r *http.Request) (string, error) {
	method, pattern, ok := routePattern(r)
	if !ok {
		return core.ByRoute(r)
	}
	return core.RouteIdentity(method, pattern), nil
}

// routePattern is the method and pattern of the chi route r matches,
// pattern "" for none; ok is false outside chi. It routes as chi will: by
// the route context's RouteMethod and RoutePath where a middleware set
// them before routing (GetHead serves HEAD by GET's route, StripSlashes
// and CleanPath reroute the path), for a limit that followed the URL alone
// would let POST /login/ reach /login's handler without /login's limit.
// Below a subrouter, RoutePath is relative to it, so there the URL path is
// routed from the top router, which the context holds.
func routePattern(r *http.Request) (method, pattern string, ok bool) {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || rctx.Routes == nil {
		return r.Method, "", false
	}
	method = r.Method
	if rctx.RouteMethod != "" {
		method = rctx.RouteMethod
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	if rctx.RoutePath != "" && len(rctx.RoutePatterns) == 0 {
		path = rctx.RoutePath // rerouted before the top router routed
	}
	return method, rctx.Routes.Find(chi.NewRouteContext(), method, path), true
}
