package echolimit

import (
	"errors"
	"fmt"

	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
)

// Option configures an Echo middleware (Limit, New): it is either one of
// core's middleware options (core.WithName, core.WithKey, core.WithCost,
// ...), which fit every adapter, or one of this package's (Key, Plans,
// Skipper, OnDeny), which read Echo's context and so fit Echo only:
// handing one to ginlimit or chilimit, or a limiter option such as
// core.WithStore to Limit, does not compile.
type Option interface {
	core.AdapterOption
	EchoOption()
}

// option is one of this package's options: a core option for Echo's
// context, with Echo's mark only.
type option struct{ core.AdapterOption }

// EchoOption marks the option as echolimit's.
func (option) EchoOption() {}

// KeyFunc says who a request comes from, as core.KeyFunc does, with Echo's
// context: it can read what an earlier middleware stored with c.Set, such
// as the signed-in user. An error, or an empty identity, means the request
// cannot be identified (see core.WithKeyErrorPolicy).
type KeyFunc func(echo.Context) (string, error)

// Key counts requests by the identity keys give, combined as core.Combine
// combines (a budget per user and route, say). It replaces core.WithKey;
// the identity is not hashed, so a key function that reads a secret should
// return its hash: core.IdentityHasher's Hash, or core.HashIdentity for
// long random secrets.
func Key(keys ...KeyFunc) Option { return option{core.NativeKey("echolimit.Key", keys...)} }

var errNoRealIP = errors.New("echolimit: Echo found no client IP")

// RealIP is a KeyFunc reading Echo's c.RealIP(), IPv6 grouped by /64 as
// core.ByIP groups it. Use it only in an app that set e.IPExtractor (such as
// echo.ExtractIPFromXFFHeader(echo.TrustIPRange(...))): without one, Echo
// takes the first X-Forwarded-For entry, or X-Real-IP, from any client, so
// a client could send a new address with every request and never be
// limited. Without that set-up, keep the default key (core.ByIP) or use
// core.ByClientIP with your proxies.
func RealIP(c echo.Context) (string, error) {
	ip := c.RealIP()
	if ip == "" {
		return "", errNoRealIP
	}
	return core.IPIdentity(ip), nil
}

// Route is a KeyFunc naming the Echo route a request matched: its method
// and c.Path(), such as "GET /items/:id", as core.RouteIdentity gives it.
// No client makes a budget by inventing a method or a path: requests that
// matched no route for their method share the identity "(no route)",
// whatever their method and path, and a method outside the standard set
// reads "OTHER". That includes a 405, for which Echo sets c.Path() to the
// path of the routes that take other methods. Routes registered for every
// method (Any), and RouteNotFound routes (which Group.Use adds), have a
// budget per standard method. Combine it with a client key for a budget per
// client and route under one e.Use middleware:
//
//	e.Use(echolimit.Limit("10/second", echolimit.Key(echolimit.HTTPKey(core.ByIP), echolimit.Route)))
func Route(c echo.Context) (string, error) {
	return core.RouteIdentity(c.Request().Method, routePath(c)), nil
}

// routePath is the pattern of the route the request matched, "" for none.
func routePath(c echo.Context) string {
	if c.Get(echo.ContextKeyHeaderAllow) != nil {
		return "" // Echo's router found the path but no route for the method: a 405
	}
	return c.Path()
}

// ByRoute keys requests by client and by Echo route, so that one
// middleware on an engine or group gives each route a budget of its own:
// the client is given by keys, combined (default core.ByIP), and the route
// by Route. It is Key(keys..., Route), as chilimit.ByRoute is for chi.
//
//	api.Use(echolimit.Limit("60/minute", echolimit.ByRoute()))
func ByRoute(keys ...KeyFunc) Option {
	for i, k := range keys {
		if k == nil {
			return option{core.InvalidOption(fmt.Errorf("echolimit.ByRoute: key function %d of %d is nil; give none to key clients by IP", i+1, len(keys)))}
		}
	}
	if len(keys) == 0 {
		keys = []KeyFunc{HTTPKey(core.ByIP)}
	}
	return option{core.NativeKey("echolimit.ByRoute", append(keys[:len(keys):len(keys)], Route)...)}
}

// HTTPKey runs a core key function (core.ByIP, core.ByClientIP(...),
// core.ByHeader(...)) on the Echo request, to combine it with Echo-typed
// ones in Key.
func HTTPKey(k core.KeyFunc) KeyFunc {
	return func(c echo.Context) (string, error) { return k(c.Request()) }
}

// Plans gives requests different limits by plan, as core.WithPlans does,
// with the plan read from Echo's context (for example from the user an
// auth middleware stored with c.Set). plans maps a plan's name to its limit
// expression; a request whose plan is "" or unknown gets the middleware's
// own expression.
func Plans(plans map[string]string, planOf func(echo.Context) string) Option {
	return option{core.NativePlans("echolimit.Plans", plans, planOf)}
}

// Skipper lets requests for which skip returns true through without a
// check, a charge or headers (health checks, internal callers), as the
// Skipper of Echo's own middlewares does; a middleware.Skipper can be
// passed as it is.
func Skipper(skip func(echo.Context) bool) Option {
	return option{core.NativeExempt("echolimit.Skipper", skip)}
}

// OnDeny replaces the error a request refused by the limit (429, or 413 for
// a cost that can never fit: res.Decision.Never) ends with: the middleware
// returns what deny returns, so deny may write a response itself and return
// nil, or return an error of its own for the HTTPErrorHandler. The
// rate-limit headers, and Retry-After for a 429, are already set on
// c.Response(). Refusals for other reasons (503 when the store is down
// under core.FailClosed, 400 under core.KeyErrorRefuse) keep the default
// *echo.HTTPError.
func OnDeny(deny func(c echo.Context, res core.Result) error) Option {
	return option{core.NativeDeny[echo.Context]("echolimit.OnDeny", deny)}
}

// ChargeWhen counts only the requests for which charge returns true, given
// the context and the error the handler returned, after it ran: Status(c,
// err) says what the response's status is or will be. It is
// core.WithChargeWhen with Echo's context, and works as that does: each
// request is reserved before its handler runs, so concurrent requests
// cannot slip past the limit, and given back after it unless it matches;
// a panicking handler, or a client gone before any response was
// committed, is charged. For failed logins:
//
//	e.POST("/login", login, echolimit.Limit("5/minute", echolimit.ChargeWhen(func(c echo.Context, err error) bool {
//		return echolimit.Status(c, err) != http.StatusOK
//	})))
func ChargeWhen(charge func(c echo.Context, err error) bool) Option {
	if charge == nil {
		return option{core.NativeChargeWhen[echo.Context]("echolimit.ChargeWhen", nil)}
	}
	return option{core.NativeChargeWhen("echolimit.ChargeWhen", func(c echo.Context, r core.Response) bool { return charge(c, r.Err) })}
}
