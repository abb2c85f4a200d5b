// Package chilimit rate-limits routes of a chi router (github.com/go-chi/chi/v5).
//
// Limit returns a chi middleware, func(http.Handler) http.Handler, so it
// mounts like any other:
//
//	r.With(chilimit.Limit("5/minute")).Post("/login", login) // one route
//	r.Route("/api", func(r chi.Router) {
//		r.Use(chilimit.Limit("100/minute")) // one budget for the subrouter
//		r.Get("/items", listItems)
//	})
//
// Each call of Limit is its own budget, per client IP by default; options
// from package core choose the key (core.WithKey), share a budget between
// routes (core.WithName), pick the limiter and its store (core.WithLimiter)
// and more, and ByRoute gives each route under one middleware a budget of
// its own. A limiter's options (core.WithStore) and other adapters'
// (ginlimit.Key) are not Options: handing one to Limit does not compile.
// For a whole app, Routes mounts a core.LimitSet (limits declared in a
// core.Config, from code or a file): a default per route, routes with
// limits of their own or none, reloadable: r.Use(chilimit.Routes(set)). Requests over the limit get 429 Too Many Requests with
// Retry-After and a small JSON body (413 Content Too Large without
// Retry-After for a cost that can never fit); every limited response carries
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset. The logic
// is core's (core.Middleware); this package only names chi's routes.
//
// Behind a reverse proxy, chi's middleware.RealIP rewrites r.RemoteAddr from
// headers any client can send, unless the proxy strips them; prefer
// core.ByClientIP with your proxies' addresses.
package chilimit
