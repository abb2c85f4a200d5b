package core

import "net/http"

// WithNativeRoute is for adapters: route names the route pattern a request
// matched, given the native value the adapter passed to EnforceWith, for
// Event.Route. Without it the middleware reads r.Pattern, which a ServeMux
// and chi set. route must return a pattern the app registered, or "", never
// anything of the request's own (its path, its method): observers use it as
// a metric label, whose values must be bounded.
func WithNativeRoute(route func(r *http.Request, native any) string) Option {
	return func(c *config) { c.mw.routeOf = route }
}

// NativeRoute is the route option of an adapter whose framework context is
// C: WithNativeRoute with route reading the pattern from the context, such
// as Gin's c.FullPath(). Where the native value is not a C, the middleware
// reads r.Pattern.
func NativeRoute[C comparable, F ~func(C) string](route F) Option {
	if route == nil {
		return WithNativeRoute(nil)
	}
	return WithNativeRoute(func(r *http.Request, native any) string {
		if c, ok := nativeOf[C](native); ok {
			return route(c)
		}
		return r.Pattern
	})
}

// route is the route pattern of r for events.
func (m *Middleware) route(r *http.Request, native any) string {
	if m.routeOf != nil {
		return m.routeOf(r, native)
	}
	return r.Pattern
}
