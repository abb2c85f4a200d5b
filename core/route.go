package core

import "net/http"

// NativeRoute is the route option of an adapter whose framework context is
// C: route names the route pattern a request matched, read from the
// context (Gin's c.FullPath()), for Event.Route. Without it, and where the
// native value is not a C, the middleware reads r.Pattern, which a
// ServeMux and chi set. option names it in errors, as NativeKey's does.
// route must return a pattern the app registered, or "", never anything of
// the request's own (its path, its method): observers use it as a metric
// label, whose values must be bounded.
func NativeRoute[C comparable, F ~func(C) string](option string, route F) AdapterOption {
	var f func(*http.Request, any) string
	if route != nil {
		f = func(r *http.Request, native any) string {
			if c, ok := nativeOf[C](native); ok {
				return route(c)
			}
			return r.Pattern
		}
	}
	return native[C](option, func(c *middlewareConfig) { c.routeOf = f })
}

// route is the route pattern of r for events.
func (m *Middleware) route(r *http.Request, native any) string {
	if m.routeOf != nil {
		return m.routeOf(r, native)
	}
	return r.Pattern
}
