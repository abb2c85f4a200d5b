package ginlimit

import (
	"errors"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
)

// settings is what a ginlimit middleware keeps beside core's middleware:
// the Gin-typed functions core has no place for, and whether the
// *gin.Context must ride along in the request's context.
type settings struct {
	key    any // the core configuration being built, in building
	carry  bool
	exempt func(*gin.Context) bool
	onDeny func(*gin.Context, core.Result)
}

// building maps the core configuration of each middleware that Limit or New
// is building to its settings. The options of this package are core.Options
// (so they mix with core's), and core's configuration is opaque: the first
// option Limit passes registers the configuration, and this package's
// options, applied by core to the same configuration, find the settings
// here. An option of this package given to core.NewMiddleware directly
// finds nothing and does nothing.
var building sync.Map

// register returns the option that links the configuration core builds to s.
// O is core.Option and T its configuration pointer, which this package
// cannot name.
func register[O ~func(T), T comparable](s *settings) O {
	return func(t T) {
		s.key = t
		building.Store(t, s)
	}
}

// hook returns an option that applies set to the settings of the middleware
// being built.
func hook[O ~func(T), T comparable](set func(*settings)) O {
	return func(t T) {
		if s, ok := building.Load(t); ok {
			set(s.(*settings))
		}
	}
}

// join returns an option applying all of opts in order.
func join[O ~func(T), T any](opts ...O) O {
	return func(t T) {
		for _, o := range opts {
			o(t)
		}
	}
}

// carrying wraps a core option whose functions read the *gin.Context, so
// that the middleware puts it in the request's context for them.
func carrying(o core.Option) core.Option {
	return join(o, hook[core.Option](func(s *settings) { s.carry = true }))
}

// KeyFunc says who a request comes from, as core.KeyFunc does, with Gin's
// context: it can read what an earlier handler stored with c.Set, such as
// the signed-in user. An error, or an empty identity, means the request
// cannot be identified (see core.WithKeyErrorPolicy).
type KeyFunc func(*gin.Context) (string, error)

var errNoContext = errors.New("ginlimit: no *gin.Context in the request; Gin-typed options work only in ginlimit.Limit and ginlimit.New")

// Key counts requests by the identity keys give, combined as core.Combine
// combines (a budget per user and route, say). It replaces core.WithKey;
// the identity is not hashed, so a key function that reads a secret should
// return core.HashIdentity of it.
func Key(keys ...KeyFunc) core.Option {
	fns := make([]core.KeyFunc, len(keys))
	for i, k := range keys {
		if k == nil {
			return core.WithKey(nil) // core reports the nil key function
		}
		fns[i] = func(r *http.Request) (string, error) {
			c, ok := ginContext(r)
			if !ok {
				return "", errNoContext
			}
			return k(c)
		}
	}
	kf := core.KeyFunc(nil)
	switch len(fns) {
	case 0:
	case 1:
		kf = fns[0]
	default:
		kf = core.Combine(fns...)
	}
	return carrying(core.WithKey(kf))
}

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
	// core.ByIP reads only RemoteAddr; it gives an address core's identity
	// (IPv4 as it is, IPv6 as its /64) without this package repeating it.
	return core.ByIP(&http.Request{RemoteAddr: ip})
}

// Route is a KeyFunc naming the Gin route a request matched: its method and
// c.FullPath(), such as "GET /items/:id". Requests that matched no route
// share the identity "<method> (no route)", so that a client probing random
// paths spends one budget, not one per path. Combine it with a client key
// for a budget per client and route under one group middleware:
//
//	api.Use(ginlimit.Limit("10/second", ginlimit.Key(ginlimit.HTTPKey(core.ByIP), ginlimit.Route)))
func Route(c *gin.Context) (string, error) {
	p := c.FullPath()
	if p == "" {
		p = "(no route)"
	}
	return c.Request.Method + " " + p, nil
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
func Plans(plans map[string]string, planOf func(*gin.Context) string) core.Option {
	if planOf == nil {
		return core.WithPlans(plans, nil) // core reports the nil function
	}
	return carrying(core.WithPlans(plans, func(r *http.Request) string {
		if c, ok := ginContext(r); ok {
			return planOf(c)
		}
		return ""
	}))
}

// Exempt lets requests for which exempt returns true through without a
// check, a charge or headers (health checks, internal callers), like
// core.WithExempt with Gin's context.
func Exempt(exempt func(*gin.Context) bool) core.Option {
	return hook[core.Option](func(s *settings) { s.exempt = exempt })
}

// OnDeny replaces the response to a request refused by the limit (429):
// deny writes it, with the rate-limit headers and Retry-After already set on
// c.Writer, and the chain already aborted. res.Decision says which limit
// refused and when to retry. Refusals for other reasons (503 when the store
// is down under core.FailClosed, 400 under core.KeyErrorRefuse) keep the
// default JSON response.
func OnDeny(deny func(c *gin.Context, res core.Result)) core.Option {
	return hook[core.Option](func(s *settings) { s.onDeny = deny })
}
