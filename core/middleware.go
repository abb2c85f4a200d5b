package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"
)

// Middleware enforces one rule on HTTP requests. Build it once, at start-up,
// with NewMiddleware; it is safe for concurrent use.
//
// Handler wraps a net/http handler. The adapters for other frameworks call
// EnforceWith, which decides and writes the rate-limit headers, and then serve
// or refuse the request in their own idiom, with Refuse or with Result's
// Status and Body.
type Middleware struct {
	// The options it was built with, as given: requests only read them.
	// The limiter is nil for Default(), looked up per request; the key
	// function is nil when a native one is set, both are nil for ByIP,
	// the default (see identify), and planOf's native value is ignored
	// for WithPlans' function.
	middlewareConfig
	base     ruleSet
	planSets map[string]*ruleSet // by plan name, from the config's plans

	// Each is set once a panic of that function (key, cost, exempt, plan,
	// charge) has been logged.
	keyPanicked, costPanicked, exemptPanicked, planPanicked, chargePanicked atomic.Bool
}

// ruleSet is a rule with everything about it that requests only read.
type ruleSet struct {
	rule      Rule
	scope     string
	keyPrefix string // scope + ":", which begins its store keys
	limits    []limitText
	policy    string // the RateLimit-Policy value
	// misreported is the last limiter this rule was reported as
	// unenforceable by, so that a configuration error is reported once.
	misreported *atomic.Pointer[Limiter]
	// prepared is the rule with the defaults of the limiter that last
	// checked it: defaults are applied once per limiter, not per request
	// (the default limiter is looked up per request, so it may change).
	prepared *atomic.Pointer[preparedRule]
}

// preparedRule is a rule with the defaults of lim applied.
type preparedRule struct {
	lim  *Limiter
	rule Rule
}

// ruleFor returns the rule of rs with lim's defaults, which no one may
// change: it is shared by every request.
func (rs *ruleSet) ruleFor(lim *Limiter) *Rule {
	if p := rs.prepared.Load(); p != nil && p.lim == lim {
		return &p.rule
	}
	p := &preparedRule{lim: lim, rule: rs.rule}
	lim.applyDefaults(&p.rule)
	rs.prepared.Store(p)
	return &p.rule
}

// NewMiddleware returns a middleware enforcing the limits in expr (see
// ParseLimits) per client. The error quotes a bad expression or names a bad
// option. Its scope is derived from the function that calls NewMiddleware;
// see Middleware.Scope.
func NewMiddleware(expr string, opts ...MiddlewareOption) (*Middleware, error) {
	return newMiddleware(1, expr, opts, nil)
}

// MustNewMiddleware is NewMiddleware for set-up code: it panics with the
// error, which quotes a bad expression.
func MustNewMiddleware(expr string, opts ...MiddlewareOption) *Middleware {
	m, err := newMiddleware(1, expr, opts, nil)
	if err != nil {
		panic(err)
	}
	return m
}

// NewMiddlewareSkip is NewMiddleware for adapters, whose users call the
// adapter rather than core: skip is how many functions lie between the
// user's function and the call of NewMiddlewareSkip. An adapter function
// that users call and that calls NewMiddlewareSkip directly passes 1; one
// more wrapper in between makes it 2. The user's function then names the
// middleware's scope.
func NewMiddlewareSkip(skip int, expr string, opts ...MiddlewareOption) (*Middleware, error) {
	return newMiddleware(skip+1, expr, opts, nil)
}

// applyOptions applies opts to a fresh configuration and refuses, with
// every problem they have, options a middleware cannot take: among them a
// framework's own options (natives) given to an adapter whose framework
// context is not native.
func applyOptions[O AdapterOption](opts []O, native reflect.Type) (*middlewareConfig, error) {
	mc := &middlewareConfig{}
	for _, o := range opts {
		if any(o) != nil {
			o.applyMiddleware(mc)
		}
	}
	for _, n := range mc.natives {
		if n.native != native {
			passes := "no framework context"
			if native != nil {
				passes = native.String()
			}
			mc.problem("limitkit: %s reads a %s, and this middleware is given %s: give it to its own framework's adapter", n.name, n.native, passes)
		}
	}
	mc.natives = nil
	if err := errors.Join(mc.problems...); err != nil {
		return nil, err
	}
	return mc, nil
}

// newMiddleware's skip counts frames above its caller: 0 is the caller.
// native is the type of the framework context the adapter passes to
// EnforceWith, nil for none: native options of any other type fail.
func newMiddleware[O AdapterOption](skip int, expr string, opts []O, native reflect.Type) (*Middleware, error) {
	mc, err := applyOptions(opts, native)
	if err != nil {
		return nil, err
	}
	if err := mc.conc.forRateLimit(); err != nil {
		return nil, err
	}
	if mc.chargeWhen != nil && mc.limiter != nil && !mc.limiter.quota {
		return nil, fmt.Errorf("limitkit: WithChargeWhen reserves and settles each request: %w", mc.limiter.noQuota())
	}
	// ruleOf parses an expression into the middleware's rule or a plan's,
	// checked with the defaults of the limiter that will enforce it.
	calendar := false // some rule has a calendar limit, for WithTimeZone
	ruleOf := func(expr string) (Rule, error) {
		r, err := NewRule(expr, mc.algorithm)
		if err != nil {
			return Rule{}, err
		}
		r.Burst = mc.burst
		calendar = r.inZone(mc.zone) || calendar
		return r, validateFor(r, mc.limiter)
	}
	rule, err := ruleOf(expr)
	if err != nil {
		return nil, err
	}
	if !mc.namesSet {
		mc.names = headerNames{HeaderLimit, HeaderRemaining, HeaderReset}
	}
	mc.problems = nil
	m := &Middleware{middlewareConfig: *mc}
	scope := mc.name
	if scope == "" {
		scope = deriveScope(skip, expr, m.logger())
	}
	m.base = newRuleSet(rule, scope, mc.quotaUnit)
	if len(mc.plans) > 0 {
		m.planSets = make(map[string]*ruleSet, len(mc.plans))
		for name, pexpr := range mc.plans {
			if err := checkName("plan", name); err != nil {
				return nil, err
			}
			pr, err := ruleOf(pexpr)
			if err != nil {
				return nil, fmt.Errorf("limitkit: plan %q: %w", name, err)
			}
			rs := newRuleSet(pr, scope+"/"+name, mc.quotaUnit)
			m.planSets[name] = &rs
		}
	}
	if mc.zone != nil && !calendar {
		return nil, fmt.Errorf("limitkit: WithTimeZone(%s): %q has no calendar limit for it to apply to; write \"per calendar month\" (or day, week, year)", mc.zone, expr)
	}
	return m, nil
}

// validateFor checks the rule with the defaults of the limiter that will
// enforce it, as far as that is known now. It does not make the default
// limiter: that would start a store no one may ever use.
func validateFor(rule Rule, l *Limiter) error {
	if l == nil {
		l = defaultLimiter.Load()
	}
	if l != nil {
		l.applyDefaults(&rule)
	} else if rule.Algorithm == 0 {
		rule.Algorithm = DefaultAlgorithm
	}
	return rule.Validate()
}

// newRuleSet's IETF policy is named after its scope, in unit.
func newRuleSet(rule Rule, scope, unit string) ruleSet {
	limits, pol := newLimitTexts(rule.Limits, scope, unit)
	return ruleSet{rule: rule, scope: scope, keyPrefix: scope + ":", limits: limits, policy: pol,
		misreported: new(atomic.Pointer[Limiter]), prepared: new(atomic.Pointer[preparedRule])}
}

func (m *Middleware) logger() *slog.Logger {
	if m.limiter != nil {
		return m.limiter.logger()
	}
	return slog.Default()
}

// Scope returns the middleware's scope, the budget its rule counts against.
// The store key of a request is scope + ":" + identity; namespacing keys
// (the Redis store's "limitkit:" prefix) is the store's business. Scopes
// never contain a colon, so the keys of two scopes never meet.
//
// Unless WithName gives one, the scope is a short hash of three things:
// the named function whose code builds the middleware (such as
// "example.com/app.routes"; a function literal counts as the function it
// is written in, so a middleware in chi's Route or Group callback belongs
// to the function that calls Route), the limit expression as written, and
// how many middlewares that function had already built with that
// expression in this process. So every process of the same build and
// configuration derives the same scopes and shares counters through Redis;
// two routes, two limits stacked on one route and limits built in a loop
// each get their own budget; a middleware applied to a group or subrouter
// is one budget for the group; and edits elsewhere, even ones that add
// lines or literals around the set-up code, change nothing, while changing
// the expression, renaming the function or building another middleware
// with that expression earlier in it starts those budgets afresh. The
// order of building is the one thing assumed: where one place builds
// middlewares with one expression again and again (a loop, whose order
// differs between processes when it ranges over a map), a warning at
// start-up names that place (file:line) and the expression, and each of
// those middlewares needs a WithName, such as its route. A middleware
// built while serving a request (a ServeHTTP method is on the call stack)
// is hashed from its function, expression and call site instead, so
// every middleware built there counts against one budget and the limit
// holds, and a warning (once per call site and limiter) names the line:
// build it once, at start-up. To pin a budget, or to share one across
// routes on purpose, name it: WithName("api").
func (m *Middleware) Scope() string { return m.base.scope }

// Enforce enforces the middleware's rule on a request: it decides it,
// charges it if admitted, writes the rate-limit headers to h (the
// response's headers), and holds the request first if the rule's algorithm
// (LeakyBucket) schedules it for later; the hold ends early if the request's
// context is done, and Enforce then returns Gone, or, if the context passed a
// deadline, a 503 refusal (see Gone); the request's slot is then given back
// (on a store that implements QuotaStore, as both of this module's do).
// Under WithChargeWhen the request is reserved rather than charged, and the
// adapter settles it with Finish after the handler. It never panics on a
// request: a failing key function, cost function or store is handled by the
// documented policies. A key or cost function that panics is handled as a
// key function that failed, by the key error policy (WithKeyErrorPolicy),
// and logged at Error level the first time. Enforce is EnforceWith with no
// native value.
func (m *Middleware) Enforce(r *http.Request, h http.Header) Result {
	return m.EnforceWith(r, h, nil)
}

// EnforceWith is Enforce for adapters: native, typically the framework's own
// request context, is handed as it is to the functions given by
// NativeKey, NativePlans and NativeExempt, which the adapter
// wrapped around its users' framework-typed ones.
func (m *Middleware) EnforceWith(r *http.Request, h http.Header, native any) Result {
	lim := m.limiter
	if lim == nil {
		lim = Default()
	}
	if (m.exempt != nil || m.nativeExempt != nil) && m.isExempt(lim, r, native) {
		return Result{Verdict: Serve}
	}
	rs := m.ruleSetOf(lim, r, native)
	key, id, cost, err := m.keyOf(lim, rs, r, native)
	if err != nil {
		return m.unidentified(err)
	}
	ctx := r.Context()
	rule := rs.ruleFor(lim)
	op := opTake
	if m.reserving(lim, *rule) {
		op = opReserve
	}
	o := lim.check(ctx, op, rs.scope, id, key, rule, cost)
	if o.stopped() {
		return m.stopped(lim, rs, o)
	}
	if obs := lim.cfg.observer; obs != nil {
		decided := o.action == ActionStore || o.action == ActionFallback
		obs.Observe(Event{
			Kind: EventDecision, Scope: rs.scope, Identity: id, Route: m.route(r, native), Decision: o.d,
			Shadow: m.shadow && decided && !o.d.Allowed, DecidedBy: o.action, Latency: o.latency, Err: o.err,
		})
	}
	res := m.respond(ctx, lim, rs, h, key, &o)
	if op == opReserve {
		res = m.reserved(ctx, lim, key, *rule, cost, o, res)
	}
	return res
}

// ruleSetOf is the rule a request is checked against: its plan's, if it
// has one the middleware knows, else the middleware's own.
func (m *Middleware) ruleSetOf(lim *Limiter, r *http.Request, native any) *ruleSet {
	if m.planOf != nil {
		if p := m.planFor(lim, r, native); p != "" {
			if prs, ok := m.planSets[p]; ok {
				return prs
			}
		}
	}
	return &m.base
}

// keyOf is the store key, identity and cost of a request under rs; or, if
// the request cannot be identified and the key error policy answers it
// unchecked, why (see unidentified).
func (m *Middleware) keyOf(lim *Limiter, rs *ruleSet, r *http.Request, native any) (key storeKey, id string, cost int64, unchecked error) {
	return m.keyAndCost(lim, rs, r, native, true)
}

// keyAndCost is keyOf, asking the cost function only if withCost (a peek
// does not: its request is not the route's); the cost is then 1.
func (m *Middleware) keyAndCost(lim *Limiter, rs *ruleSet, r *http.Request, native any, withCost bool) (key storeKey, id string, cost int64, unchecked error) {
	id, err := m.identify(lim, r, native)
	cost, costErr := int64(1), error(nil)
	if withCost {
		cost, costErr = m.costOf(lim, r)
	}
	if err == nil {
		err = costErr // a cost that cannot be known is handled as a missing key
	}
	if err == nil && id == "" {
		err = errEmptyIdentity
	}
	if err == nil {
		id = bound(id)
		return storeKey{rs.keyPrefix, id}, id, cost, nil
	}
	if m.keyPolicy == KeyErrorServe || m.keyPolicy == KeyErrorRefuse {
		return storeKey{}, "", 0, err
	}
	// fallbackPrefix keeps these apart from identities the key function
	// gives, which bound keeps out of it (see keys.go).
	id = fallbackPrefix + IPIdentity(r.RemoteAddr)
	return storeKey{rs.keyPrefix, id}, id, cost, nil
}

// unidentified is the result the key error policy gives a request that
// cannot be identified (err says why), which keyOf returns unchecked.
func (m *Middleware) unidentified(err error) Result {
	if m.keyPolicy == KeyErrorRefuse {
		return Result{Verdict: Refuse, Status: http.StatusBadRequest, Err: err}
	}
	return Result{Verdict: Serve, Err: err}
}

// stopped is the result of a check the limiter did not decide: its limiter
// is closed, it cannot enforce the rule, or the request's context ended.
func (m *Middleware) stopped(lim *Limiter, rs *ruleSet, o outcome) Result {
	switch {
	case o.closed:
		return Result{Verdict: Refuse, Status: http.StatusServiceUnavailable, Err: o.err}
	case o.invalid:
		m.misconfigured(lim, rs, o.err)
		return Result{Verdict: Refuse, Status: http.StatusInternalServerError, Err: o.err}
	}
	return ended(Result{}, o.err)
}

// respond turns a decided check into its result: the headers written,
// refused or served by the decision and the failure policy (or served
// anyway in shadow mode), and held until its slot by a leaky bucket.
func (m *Middleware) respond(ctx context.Context, lim *Limiter, rs *ruleSet, h http.Header, key storeKey, o *outcome) Result {
	res := Result{Verdict: Serve, Decision: o.d, DecidedBy: o.action, Err: o.err}
	switch {
	case m.shadow || o.action == ActionFailOpen:
		return res
	case o.action == ActionFailClosed:
		if h != nil {
			h[HeaderRetryAfter] = []string{strconv.FormatInt(max(ceilSeconds(lim.cfg.probe), 1), 10)}
		}
		res.Verdict, res.Status = Refuse, http.StatusServiceUnavailable
		return res
	}
	var now int64
	if m.resetEpoch {
		now = lim.now().UnixNano()
	}
	m.writeHeaders(h, rs, key, &o.d, now)
	if !o.d.Allowed {
		res.Verdict, res.Status = Refuse, http.StatusTooManyRequests
		if o.d.Never {
			res.Status = http.StatusRequestEntityTooLarge
		}
		return res
	}
	if o.d.Delay > 0 {
		if err := m.hold(ctx, o.d.Delay); err != nil {
			res = ended(res, err)
		}
	}
	return res
}

// misconfigured reports, once per rule and limiter, that lim cannot enforce
// the rule of rs: a mistake in set-up, whose requests are refused with 500.
func (m *Middleware) misconfigured(lim *Limiter, rs *ruleSet, err error) {
	if rs.misreported.Swap(lim) == lim {
		return
	}
	lim.emit(Event{Kind: EventConfigError, Scope: rs.scope, Err: err})
	lim.logger().Error("limitkit: the limiter cannot enforce this middleware's rule; its requests are refused with 500 until the configuration is fixed (was SetDefault called after the routes were built, with other defaults?)",
		"scope", rs.scope, "rule", rs.rule.String(), "err", err)
}

var errEmptyIdentity = errors.New("limitkit: the key function returned an empty identity")

// identify runs the key function. A panic in it is a bug in the app, but
// Enforce never panics on a request: it becomes the key function's error, so
// the key error policy answers as it does for any key function that fails.
// Without a key function the key is ByIP's, called directly: it cannot
// panic, and it is what nearly every request is identified by.
func (m *Middleware) identify(lim *Limiter, r *http.Request, native any) (string, error) {
	if m.key == nil && m.nativeKey == nil {
		return IPIdentity(r.RemoteAddr), nil
	}
	return m.identifyGuarded(lim, r, native)
}

// identifyGuarded is identify for a key function of the app's.
func (m *Middleware) identifyGuarded(lim *Limiter, r *http.Request, native any) (id string, err error) {
	defer func() {
		if p := recover(); p != nil {
			id, err = "", m.panicked(lim, &m.keyPanicked, "key", p)
		}
	}()
	if m.key != nil {
		return m.key(r)
	}
	return m.nativeKey(r, native)
}

// isExempt runs the exempt functions. One that panics exempts nothing: the
// request is limited as any other, and the panic is logged once.
func (m *Middleware) isExempt(lim *Limiter, r *http.Request, native any) (exempt bool) {
	defer func() {
		if p := recover(); p != nil {
			exempt = false
			_ = m.panicked(lim, &m.exemptPanicked, "exempt", p)
		}
	}()
	return m.exempt != nil && m.exempt(r) || m.nativeExempt != nil && m.nativeExempt(r, native)
}

// planFor runs the plan function. One that panics names no plan: the
// request gets the middleware's own limits, and the panic is logged once.
func (m *Middleware) planFor(lim *Limiter, r *http.Request, native any) (plan string) {
	defer func() {
		if p := recover(); p != nil {
			plan = ""
			_ = m.panicked(lim, &m.planPanicked, "plan", p)
		}
	}()
	return m.planOf(r, native)
}

// costOf runs the cost function, as identify runs the key function: a panic
// becomes an error for the key error policy, and the cost is then 1.
func (m *Middleware) costOf(lim *Limiter, r *http.Request) (cost int64, err error) {
	if m.cost == nil {
		return 1, nil
	}
	defer func() {
		if p := recover(); p != nil {
			cost, err = 1, m.panicked(lim, &m.costPanicked, "cost", p)
		}
	}()
	return max(m.cost(r), 0), nil
}

// panicAnswer says, for the log, how a request is answered when each of
// the middleware's functions panics.
var panicAnswer = map[string]string{
	"key":    "the key error policy answers such requests",
	"cost":   "the key error policy answers such requests",
	"exempt": "such requests are limited as if not exempt",
	"plan":   "such requests get the middleware's own limits",
	"charge": "such requests are charged",
}

// panicked turns the panic p of the middleware's fn function into an error,
// and logs it with its stack the first time only: a bug that panics on
// every request must not flood the log.
func (m *Middleware) panicked(lim *Limiter, logged *atomic.Bool, fn string, p any) error {
	err := fmt.Errorf("limitkit: the %s function panicked: %v", fn, p)
	if logged.CompareAndSwap(false, true) {
		lim.logger().Error("limitkit: the "+fn+" function panicked; "+panicAnswer[fn]+" (logged once per middleware)",
			"scope", m.base.scope, "policy", m.keyPolicy.String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	}
	return err
}

// hold waits d, or until ctx is done. If the client leaves, EnforceWith
// gives the request's slot back, on a store that can (a QuotaStore).
func (m *Middleware) hold(ctx context.Context, d time.Duration) error {
	if m.wait != nil {
		return m.wait(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Handler wraps next so that requests over the limit are refused (see
// Enforce and Refuse); it is what chilimit returns. A request whose client
// went away (Gone) is ended with StatusClientClosedRequest and no body.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Respond(w, r, next, m.Enforce(r, w.Header()))
	})
}

// String describes the middleware for logs: its scope and its rule.
func (m *Middleware) String() string {
	return "limitkit middleware " + m.base.scope + " " + m.base.rule.String()
}
