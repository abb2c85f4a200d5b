package ginlimit

import (
	"errors"
	"fmt"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
)

// Option configures a Gin middleware (Limit, New): it is either one of
// core's middleware options (core.WithName, core.WithKey, core.WithCost,
// ...), which fit every adapter, or one of this package's (Key, Plans,
// Exempt, OnDeny), which read Gin's context and so fit Gin only: handing
// one to echolimit or chilimit, or a limiter option such as
// core.WithStore to Limit, does not compile.
type Option interface {
	core.AdapterOption
	GinOption()
}

// option is one of this package's options: a core option for Gin's
// context, with Gin's mark only.
type option struct{ core.AdapterOption }

// GinOption marks the option as ginlimit's.
func (option) GinOption() {}

// KeyFunc says who a request comes from, as core.KeyFunc does, with Gin's
// context: it can read what an earlier handler stored with c.Set, such as
// the signed-in user. An error, or an empty identity, means the request
// cannot be identified (see core.WithKeyErrorPolicy).
type KeyFunc func(*gin.Context) (string, error)

// Key counts requests by the identity keys give, combined as core.Combine
// combines (a budget per user and route, say). It replaces core.WithKey;
// the identity is not hashed, so a key function that reads a secret should
// return its hash: core.IdentityHasher's Hash, or core.HashIdentity for
// long random secrets.
func Key(keys ...KeyFunc) Option { return option{core.NativeKey("ginlimit.Key", keys...)} }

var errNoClientIP = errors.New("ginlimit: Gin found no client IP")

// ClientIP is a KeyFunc reading Gin's c.ClientIP(), IPv6 grouped by /64 as
// core.ByIP groups it. Use it only in an app that called
// engine.SetTrustedProxies (or set TrustedPlatform): by default Gin trusts
// X-Forwarded-For and X-Real-IP from every peer, so any client could send a
// new address with every request and never be limited. Without that set-up,
// keep the default key (core.ByIP) or use core.ByClientIP with your proxies.
func ClientIP(c *gin.Context) (string, error) {
	ip := c.ClientIP()
	if ip == "" {
		return "", errNoClientIP
	}
	return core.IPIdentity(ip), nil
}

// Route is a KeyFunc naming the Gin route a request matched: its method and
// c.FullPath(), such as "GET /items/:id", as core.RouteIdentity gives it.
// No client makes a budget by inventing a method or a path: requests that
// matched no route for their method (a 404, a 405) share the identity
// "(no route)", whatever their method and path, and a method outside the
// standard set reads "OTHER". A route registered for every method (Any)
// has a budget per standard method. Combine it with a client key for a
// budget per client and route under one group middleware:
//
//	api.Use(ginlimit.Limit("10/second", ginlimit.Key(ginlimit.HTTPKey(core.ByIP), ginlimit.Route)))
func Route(c *gin.Context) (string, error) {
	return core.RouteIdentity(c.Request.Method, c.FullPath()), nil
}

// ByRoute keys requests by client and by Gin route, so that one
// middleware on an engine or group gives each route a budget of its own:
// the client is given by keys, combined (default core.ByIP), and the route
// by Route. It is Key(keys..., Route), as chilimit.ByRoute is for chi.
//
//	api.Use(ginlimit.Limit("60/minute", ginlimit.ByRoute()))
func ByRoute(keys ...KeyFunc) Option {
	for i, k := range keys {
		if k == nil {
			return option{core.InvalidOption(fmt.Errorf("ginlimit.ByRoute: key function %d of %d is nil; give none to key clients by IP", i+1, len(keys)))}
		}
	}
	if len(keys) == 0 {
		keys = []KeyFunc{HTTPKey(core.ByIP)}
	}
	return option{core.NativeKey("ginlimit.ByRoute", append(keys[:len(keys):len(keys)], Route)...)}
}

// HTTPKey runs a core key function (core.ByIP, core.ByClientIP(...),
// core.ByHeader(...)) on the Gin request, to combine it with Gin-typed ones
// in Key.
func HTTPKey(k core.KeyFunc) KeyFunc {
	return func(c *gin.Context) (string, error) { return k(c.Request) }
}

// Plans gives requests different limits by plan, as core.WithPlans does,
// with the plan read from Gin's context (for example from the user an auth
// handler stored with c.Set). plans maps a plan's name to its limit
// expression; a request whose plan is "" or unknown gets the middleware's
// own expression.
func Plans(plans map[string]string, planOf func(*gin.Context) string) Option {
	return option{core.NativePlans("ginlimit.Plans", plans, planOf)}
}

// Exempt lets requests for which exempt returns true through without a
// check, a charge or headers (health checks, internal callers), like
// core.WithExempt with Gin's context.
func Exempt(exempt func(*gin.Context) bool) Option {
	return option{core.NativeExempt("ginlimit.Exempt", exempt)}
}

// OnDeny replaces the response to a request refused by the limit (429, or
// 413 for a cost that can never fit: res.Decision.Never): deny writes it,
// with the rate-limit headers (and, for a 429, Retry-After) already set on
// c.Writer, and the chain already aborted. res.Decision says which limit
// refused and when to retry. Refusals for other reasons (503 when the store
// is down under core.FailClosed, 400 under core.KeyErrorRefuse) keep the
// default JSON response.
func OnDeny(deny func(c *gin.Context, res core.Result)) Option {
	return option{core.NativeDeny[*gin.Context]("ginlimit.OnDeny", deny)}
}

// ChargeWhen counts only the requests for which charge returns true, read
// after the rest of the chain ran: c.Writer.Status(), or whatever the
// handlers stored with c.Set. It is core.WithChargeWhen with Gin's
// context, and works as that does: each request is reserved before its
// handlers run, so concurrent requests cannot slip past the limit, and
// given back after them unless it matches; a panicking handler, or a
// client gone before any status was written, is charged. For failed
// logins:
//
//	r.POST("/login", ginlimit.Limit("5/minute", ginlimit.ChargeWhen(func(c *gin.Context) bool {
//		return c.Writer.Status() != http.StatusOK
//	})), login)
func ChargeWhen(charge func(c *gin.Context) bool) Option {
	if charge == nil {
		return option{core.NativeChargeWhen[*gin.Context]("ginlimit.ChargeWhen", nil)}
	}
	return option{core.NativeChargeWhen("ginlimit.ChargeWhen", func(c *gin.Context, _ core.Response) bool { return charge(c) })}
}
