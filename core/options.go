package core

// The kinds of options, and the options of a middleware: who is counted,
// what a request costs, what is exempt, how refusals and plans are
// answered. The options of a Limiter, and the two it shares with a
// middleware, live in limiter.go; the header options in headers.go; the
// adapters' framework-typed options are built in native.go.

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"time"
)

// Option configures a Limiter: it is what New takes. WithStore,
// WithClock, WithTimeout, WithFailurePolicy, WithProbeInterval, WithLogger
// and WithObserver are Options only, so handing one to a middleware does not
// compile; wrap the limiter instead: WithLimiter(New(WithStore(s))).
// WithAlgorithm and WithBurst are RuleOptions, which fit both.
type Option interface{ applyLimiter(*config) }

// MiddlewareOption configures a middleware: it is what NewMiddleware takes,
// and what every adapter (ginlimit, echolimit, chilimit) takes beside its
// own options. WithName, WithKey, WithCost, WithPlans, WithLimiter, the
// header options and the rest are MiddlewareOptions only, so handing one to
// New does not compile.
//
// GinOption, EchoOption and ChiOption do nothing: they are the marks the
// adapters' option types ask for (ginlimit.Option is an AdapterOption with
// GinOption), so that core's options fit every adapter while an adapter's
// own options, which carry only their adapter's mark, fit that adapter only:
// ginlimit.Key given to chilimit.New does not compile.
type MiddlewareOption interface {
	AdapterOption
	GinOption()
	EchoOption()
	ChiOption()
}

// AdapterOption is any option of a middleware: a MiddlewareOption, or one
// an adapter built around its users' framework-typed functions with
// NativeKey, NativePlans, NativeExempt or NativeDeny. Adapt and MustAdapt
// take them; an adapter's own Option type is AdapterOption with the
// adapter's mark, as ginlimit's is. An option built for another
// framework's context than the one Adapt is told of fails the constructor,
// naming the option.
type AdapterOption interface{ applyMiddleware(*middlewareConfig) }

// RuleOption is an option of both a Limiter and a middleware: on a Limiter
// it sets the default of every rule, on a middleware its rule. WithAlgorithm
// and WithBurst are RuleOptions.
type RuleOption interface {
	Option
	MiddlewareOption
}

// limiterOption is the concrete type of the options of a Limiter only.
type limiterOption func(*config)

func (f limiterOption) applyLimiter(c *config) { f(c) }

// middlewareOption is the concrete type of core's options of every
// middleware, which fit every adapter.
type middlewareOption func(*middlewareConfig)

func (f middlewareOption) applyMiddleware(c *middlewareConfig) { f(c) }

// GinOption marks the option as one ginlimit takes.
func (middlewareOption) GinOption() {}

// EchoOption marks the option as one echolimit takes.
func (middlewareOption) EchoOption() {}

// ChiOption marks the option as one chilimit takes.
func (middlewareOption) ChiOption() {}

// ruleOption is the concrete type of the options of both a Limiter and a
// middleware: it sets the algorithm and burst of either.
type ruleOption func(alg *Algorithm, burst *int64)

func (f ruleOption) applyLimiter(c *config)              { f(&c.algorithm, &c.burst) }
func (f ruleOption) applyMiddleware(c *middlewareConfig) { f(&c.algorithm, &c.burst) }

// GinOption marks the option as one ginlimit takes.
func (ruleOption) GinOption() {}

// EchoOption marks the option as one echolimit takes.
func (ruleOption) EchoOption() {}

// ChiOption marks the option as one chilimit takes.
func (ruleOption) ChiOption() {}

// nativeOption is the concrete type of an option an adapter built for its
// framework's context: it fits no adapter until the adapter wraps it with
// its mark, and the middleware's constructor checks that it is given to an
// adapter of that context.
type nativeOption struct {
	name   string       // as users call it, such as "ginlimit.Key"
	native reflect.Type // the framework context its functions read
	apply  func(*middlewareConfig)
}

func (o nativeOption) applyMiddleware(c *middlewareConfig) {
	c.natives = append(c.natives, o)
	o.apply(c)
}

type middlewareConfig struct {
	limiter      *Limiter
	algorithm    Algorithm
	burst        int64
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
	quotaUnit    string          // the IETF policy's qu; see WithQuotaUnit
	partitionKey *IdentityHasher // the IETF pk; see WithPartitionKey
	resetEpoch   bool
	wait         func(context.Context, time.Duration) error
	chargeWhen   func(native any, resp Response) bool
	zone         *time.Location // WithTimeZone
	problems     []error
	// natives are the native options applied, for the constructor to
	// check their context against the adapter's.
	natives []nativeOption
}

func (c *middlewareConfig) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Errorf(format, args...))
}

// WithLimiter makes the middleware decide with l (default: Default(), looked
// up on every request, so that SetDefault works before or after the routes
// are built).
func WithLimiter(l *Limiter) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		if l == nil {
			c.problem("limitkit: WithLimiter(nil): give a limiter, or leave the option out to use the default")
		}
		c.limiter = l
	})
}

// WithName gives the middleware's budget a name, in place of the scope
// derived from where it was built (see Middleware.Scope). Middlewares with the same name and the same store share one
// budget, on any route, in any process: use it to limit several routes
// together. The name appears in store keys, metrics and the IETF headers; it
// must be printable ASCII without spaces, quotes, backslashes or colons, at
// most 64 bytes.
func WithName(name string) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		if err := checkName("WithName", name); err != nil {
			c.problems = append(c.problems, err)
		}
		c.name = name
	})
}

// WithKey sets who requests are counted for (default ByIP).
func WithKey(key KeyFunc) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		if key == nil {
			c.problem("limitkit: WithKey(nil): give a key function, or leave the option out to key by IP")
		}
		c.key, c.nativeKey = key, nil
	})
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
func WithKeyErrorPolicy(p KeyErrorPolicy) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		if p > KeyErrorServe {
			c.problem("limitkit: WithKeyErrorPolicy(%d): unknown policy", uint8(p))
		}
		c.keyPolicy = p
	})
}

// WithCost sets what a request costs (default 1): a bulk call may spend more
// of the budget than a simple one. Negative costs count as zero.
func WithCost(cost func(*http.Request) int64) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.cost = cost })
}

// WithExempt lets requests for which exempt returns true through without a
// check, a charge or headers: health checks, internal callers.
func WithExempt(exempt func(*http.Request) bool) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.exempt = exempt })
}

// WithShadow runs the middleware as a dry run: every request is decided,
// charged and reported to the observer (denials as Shadow), but none is
// refused or held, and no headers are sent. Use it to see what a new limit
// would do before enforcing it.
func WithShadow() MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.shadow = true })
}

// WithDenyHandler replaces the response to a request refused by the limit
// (429, and 413 for a cost that can never fit; see Result.OverLimit). The
// rate-limit headers, and Retry-After for a 429, are already set when h
// runs; DecisionFrom(r.Context()) gives the decision, whose Never tells
// the two apart. Refusals for other reasons (503 when the store is down
// under FailClosed, 400 under KeyErrorRefuse) keep the default response.
func WithDenyHandler(h http.Handler) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.deny = h })
}

// WithPlans gives requests different limits by plan or tier without parsing
// anything per request: plans maps a plan's name to its limit expression,
// parsed once by NewMiddleware, and planOf names the plan of a request. A
// request whose plan is "" or not in plans gets the middleware's own
// expression. Each plan is its own budget, the middleware's scope with
// "/" and the plan's name after it, so moving a client to another plan
// starts it on a fresh budget. Plan names follow WithName's rules.
func WithPlans(plans map[string]string, planOf func(*http.Request) string) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		if planOf == nil {
			c.problem("limitkit: WithPlans: the planOf function is nil")
			return
		}
		c.plans = plans
		c.planOf = func(r *http.Request, _ any) string { return planOf(r) }
	})
}
