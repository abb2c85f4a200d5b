// Package ginlimit rate-limits Gin routes and groups with limitkit's core.
//
// Limit returns a gin.HandlerFunc. On a route it limits that route; on a
// group (or the engine) with Use it is one budget for every route of the
// group:
//
//	r := gin.New()
//	r.GET("/items", ginlimit.Limit("5/minute"), listItems)
//
//	api := r.Group("/api")
//	api.Use(ginlimit.Limit("100/minute"))
//
// Requests are counted per client IP by default (the connection's peer, see
// core.ByIP), never by forwarded headers: Gin trusts X-Forwarded-For from
// every proxy unless the app calls SetTrustedProxies, so a client could
// otherwise pick a new identity per request. Behind proxies, use
// core.WithKey(core.ByClientIP("10.0.0.0/8")), or, in an app that has called
// SetTrustedProxies, Key(ClientIP).
//
// The options (Option) are core's middleware options (core.WithName,
// core.WithKey, core.WithLimiter, core.WithShadow, ...) and this package's
// Gin-typed ones, whose functions get the *gin.Context: Key, ByRoute,
// Plans, Exempt and OnDeny. Those fit Gin only, and a limiter's options
// (core.WithStore) fit core.New only: handing either to the wrong
// constructor does not compile.
//
// For a whole app, Routes mounts a core.LimitSet (limits declared in a
// core.Config, from code or a file): a default that gives every route its
// own budget, routes with limits of their own or none, reloadable:
//
//	r.Use(ginlimit.Routes(set))
//
// An admitted request runs the rest of the chain with the rate-limit headers
// already set on c.Writer. A refused one is aborted with 429, Retry-After
// and a small JSON body (core.Result.Body), or handed to OnDeny; a cost that
// can never fit gets 413 without Retry-After (see core.Result). The scope
// of a middleware (which budget it counts against) is derived from the
// function that calls Limit or New, as core.Middleware.Scope describes;
// core.WithName pins it.
package ginlimit
