// Package echolimit rate-limits Echo routes and groups with limitkit's core.
//
// Limit returns an echo.MiddlewareFunc. On a route it limits that route;
// with e.Use or on a group it is one budget for every route it covers:
//
//	e := echo.New()
//	e.GET("/items", listItems, echolimit.Limit("5/minute"))
//
//	api := e.Group("/api", echolimit.Limit("100/minute"))
//
// Requests are counted per client IP by default (the connection's peer, see
// core.ByIP), never by forwarded headers: unless the app sets e.IPExtractor,
// Echo's c.RealIP() believes X-Forwarded-For and X-Real-IP from anyone, so a
// client could otherwise pick a new identity per request. Behind proxies,
// use core.WithKey(core.ByClientIP("10.0.0.0/8")), or, in an app that set
// e.IPExtractor (echo.ExtractIPFromXFFHeader with its trust options, say),
// Key(RealIP).
//
// The options (Option) are core's middleware options (core.WithName,
// core.WithKey, core.WithLimiter, core.WithShadow, ...) and this package's
// Echo-typed ones, whose functions get the echo.Context: Key, ByRoute,
// Plans, Skipper and OnDeny. Those fit Echo only, and a limiter's options
// (core.WithStore) fit core.New only: handing either to the wrong
// constructor does not compile.
//
// For a whole app, Routes mounts a core.LimitSet (limits declared in a
// core.Config, from code or a file): a default that gives every route its
// own budget, routes with limits of their own or none, reloadable. Mount
// it with e.Use, after routing, not e.Pre:
//
//	e.Use(echolimit.Routes(set))
//
// An admitted request runs the next handler with the rate-limit headers
// already set on the response. A refused one ends with an *echo.HTTPError
// whose Code is the refusal's status (429; 413 for a cost that can never
// fit, without Retry-After; or 503 and 400 from the failure and key
// policies; see core.Result), so that the app's HTTPErrorHandler renders it like any
// other error, with the headers, Retry-After included, already set. The
// error's Message is the reason, a string, so Echo's default handler writes
// {"message":"rate limit exceeded"}; its Internal is an *Error, which a
// custom handler finds with errors.As to read the decision. ErrorHandler
// answers refusals with core's JSON body instead, with the limit and
// retry_after, as ginlimit and chilimit do. The scope of a middleware
// (which budget it counts against) is derived from the function that calls
// Limit or New, as core.Middleware.Scope describes; core.WithName pins it.
package echolimit
