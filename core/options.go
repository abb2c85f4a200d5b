package core

// The options of a middleware: who is counted, what a request costs, what
// is exempt, how refusals and plans are answered. The options it shares with
// a Limiter live in limiter.go; the header options in headers.go.

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

type middlewareConfig struct {
	limiter      *Limiter
	name         string
	key          KeyFunc
	nativeKey    NativeKeyFunc
	keyPolicy    KeyErrorPolicy
	cost         func(*http.Request) int64
	exempt       func(*http.Request) bool
	nativeExempt func(*http.Request, any) bool
	shadow       bool
	deny         http.Handler
	nativeDeny   NativeDenyFunc
	plans        map[string]string
	planOf       func(*http.Request, any) string
	routeOf      func(*http.Request, any) string
	names        headerNames
	namesSet     bool
	ietf         bool
	resetEpoch   bool
	wait         func(context.Context, time.Duration) error
	problems     []error
}

func (c *middlewareConfig) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Errorf(format, args...))
}

// WithLimiter makes the middleware decide with l (default: Default(), looked
// up on every request, so that SetDefault works before or after the routes
// are built).
func WithLimiter(l *Limiter) Option {
	return func(c *config) {
		if l == nil {
			c.mw.problem("limitkit: WithLimiter(nil): give a limiter, or leave the option out to use the default")
		}
		c.mw.limiter = l
	}
}

// WithName gives the middleware's budget a name, in place of the scope
// derived from where it was built (see Middleware.Scope). Middlewares with the same name and the same store share one
// budget, on any route, in any process: use it to limit several routes
// together. The name appears in store keys, metrics and the IETF headers; it
// must be printable ASCII without spaces, quotes, backslashes or colons, at
// most 64 bytes.
func WithName(name string) Option {
	return func(c *config) {
		if err := checkName("WithName", name); err != nil {
			c.mw.problems = append(c.mw.problems, err)
		}
		c.mw.name = name
	}
}

// WithKey sets who requests are counted for (default ByIP).
func WithKey(key KeyFunc) Option {
	return func(c *config) {
		if key == nil {
			c.mw.problem("limitkit: WithKey(nil): give a key function, or leave the option out to key by IP")
		}
		c.mw.key, c.mw.nativeKey = key, nil
	}
}

// KeyErrorPolicy says what the middleware does with a request its key
// function cannot identify (an error, or an empty identity).
type KeyErrorPolicy uint8

// The key error policies.
const (
	// KeyErrorPeerIP counts the request against its peer IP, as ByIP
	// would, in a budget of its own beside the identified clients'. It is the
	// default: a request is never let through unlimited because it lacks
	// a key, and with ByContextValue or ByHeader anonymous clients are
	// limited by IP.
	KeyErrorPeerIP KeyErrorPolicy = iota
	// KeyErrorRefuse answers 400 Bad Request, for routes that require the
	// key (an API key) and have nothing else to check that.
	KeyErrorRefuse
	// KeyErrorServe serves the request without checking it, for a limit
	// meant only for identified clients.
	KeyErrorServe
)

var keyErrorPolicyNames = [...]string{"peer-ip", "refuse", "serve"}

// String returns the policy's name, such as "peer-ip".
func (p KeyErrorPolicy) String() string {
	if int(p) < len(keyErrorPolicyNames) {
		return keyErrorPolicyNames[p]
	}
	return fmt.Sprintf("KeyErrorPolicy(%d)", uint8(p))
}

// WithKeyErrorPolicy sets what happens to a request the key function cannot
// identify (default KeyErrorPeerIP), and to one whose key or cost function
// panicked.
func WithKeyErrorPolicy(p KeyErrorPolicy) Option {
	return func(c *config) {
		if p > KeyErrorServe {
			c.mw.problem("limitkit: WithKeyErrorPolicy(%d): unknown policy", uint8(p))
		}
		c.mw.keyPolicy = p
	}
}

// WithCost sets what a request costs (default 1): a bulk call may spend more
// of the budget than a simple one. Negative costs count as zero.
func WithCost(cost func(*http.Request) int64) Option {
	return func(c *config) { c.mw.cost = cost }
}

// WithExempt lets requests for which exempt returns true through without a
// check, a charge or headers: health checks, internal callers.
func WithExempt(exempt func(*http.Request) bool) Option {
	return func(c *config) { c.mw.exempt = exempt }
}

// WithShadow runs the middleware as a dry run: every request is decided,
// charged and reported to the observer (denials as Shadow), but none is
// refused or held, and no headers are sent. Use it to see what a new limit
// would do before enforcing it.
func WithShadow() Option {
	return func(c *config) { c.mw.shadow = true }
}

// WithDenyHandler replaces the response to a request refused by the limit
// (429, and 413 for a cost that can never fit; see Result.OverLimit). The
// rate-limit headers, and Retry-After for a 429, are already set when h
// runs; DecisionFrom(r.Context()) gives the decision, whose Never tells
// the two apart. Refusals for other reasons (503 when the store is down
// under FailClosed, 400 under KeyErrorRefuse) keep the default response.
func WithDenyHandler(h http.Handler) Option {
	return func(c *config) { c.mw.deny = h }
}

// WithPlans gives requests different limits by plan or tier without parsing
// anything per request: plans maps a plan's name to its limit expression,
// parsed once by NewMiddleware, and planOf names the plan of a request. A
// request whose plan is "" or not in plans gets the middleware's own
// expression. Each plan is its own budget, the middleware's scope with
// "/" and the plan's name after it, so moving a client to another plan
// starts it on a fresh budget. Plan names follow WithName's rules.
func WithPlans(plans map[string]string, planOf func(*http.Request) string) Option {
	return func(c *config) {
		if planOf == nil {
			c.mw.problem("limitkit: WithPlans: the planOf function is nil")
			return
		}
		c.mw.plans = plans
		c.mw.planOf = func(r *http.Request, _ any) string { return planOf(r) }
	}
}
