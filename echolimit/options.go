package echolimit

import (
	"errors"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
)

// settings is what an echolimit middleware keeps beside core's middleware:
// the Echo-typed functions core has no place for, and whether the
// echo.Context must ride along in the request's context.
type settings struct {
	key     any // the core configuration being built, in building
	carry   bool
	skipper func(echo.Context) bool
	onDeny  func(echo.Context, core.Result) error
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

// carrying wraps a core option whose functions read the echo.Context, so
// that the middleware puts it in the request's context for them.
func carrying(o core.Option) core.Option {
	return join(o, hook[core.Option](func(s *settings) { s.carry = true }))
}

// KeyFunc says who a request comes from, as core.KeyFunc does, with Echo's
// context: it can read what an earlier middleware stored with c.Set, such
// as the signed-in user. An error, or an empty identity, means the request
// cannot be identified (see core.WithKeyErrorPolicy).
type KeyFunc func(echo.Context) (string, error)

var errNoContext = errors.New("echolimit: no echo.Context in the request; Echo-typed options work only in echolimit.Limit and echolimit.New")

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
			c, ok := echoContext(r)
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
	// core.ByIP reads only RemoteAddr; it gives an address core's identity
	// (IPv4 as it is, IPv6 as its /64) without this package repeating it.
	return core.ByIP(&http.Request{RemoteAddr: ip})
}

// Route is a KeyFunc naming the Echo route a request matched: its method
// and c.Path(), such as "GET /items/:id". Requests that matched no route
// share one identity per method, so that a client probing random paths
// spends one budget, not one per path. Combine it with a client key for a
// budget per client and route under one e.Use middleware:
//
//	e.Use(echolimit.Limit("10/second", echolimit.Key(echolimit.HTTPKey(core.ByIP), echolimit.Route)))
func Route(c echo.Context) (string, error) {
	p := c.Path()
	if p == "" {
		p = "(no route)"
	}
	return c.Request().Method + " " + p, nil
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
func Plans(plans map[string]string, planOf func(echo.Context) string) core.Option {
	if planOf == nil {
		return core.WithPlans(plans, nil) // core reports the nil function
	}
	return carrying(core.WithPlans(plans, func(r *http.Request) string {
		if c, ok := echoContext(r); ok {
			return planOf(c)
		}
		return ""
	}))
}

// Skipper lets requests for which skip returns true through without a
// check, a charge or headers (health checks, internal callers), as the
// Skipper of Echo's own middlewares does; a middleware.Skipper can be
// passed as it is.
func Skipper(skip func(echo.Context) bool) core.Option {
	return hook[core.Option](func(s *settings) { s.skipper = skip })
}

// OnDeny replaces the error a request refused by the limit (429) ends
// with: the middleware returns what deny returns, so deny may write a
// response itself and return nil, or return an error of its own for the
// HTTPErrorHandler. The rate-limit headers and Retry-After are already set
// on c.Response(). Refusals for other reasons (503 when the store is down
// under core.FailClosed, 400 under core.KeyErrorRefuse) keep the default
// *echo.HTTPError.
func OnDeny(deny func(c echo.Context, res core.Result) error) core.Option {
	return hook[core.Option](func(s *settings) { s.onDeny = deny })
}
