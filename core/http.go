package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"
)

// Middleware enforces one rule on HTTP requests. Build it once, at start-up,
// with NewMiddleware; it is safe for concurrent use.
//
// Handler wraps a net/http handler. The adapters for other frameworks call
// CheckWith, which decides and writes the rate-limit headers, and then serve
// or refuse the request in their own idiom, with Refuse or with Result's
// Status and Body.
type Middleware struct {
	limiter *Limiter // nil: Default(), looked up per request
	base    ruleSet
	plans   map[string]*ruleSet
	planOf  func(*http.Request, any) string // WithPlans' function ignores the native value

	key          KeyFunc       // nil when nativeKey is set
	nativeKey    NativeKeyFunc // set by WithNativeKey
	keyPolicy    KeyErrorPolicy
	cost         func(*http.Request) int64
	exempt       func(*http.Request) bool
	nativeExempt func(*http.Request, any) bool
	shadow       bool
	deny         http.Handler
	nativeDeny   NativeDenyFunc
	names        headerNames
	ietf         bool
	wait         func(context.Context, time.Duration) error

	// Each is set once a panic of that function (key, cost, exempt, plan)
	// has been logged.
	keyPanicked, costPanicked, exemptPanicked, planPanicked atomic.Bool
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
}

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
	names        headerNames
	namesSet     bool
	ietf         bool
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

// NewMiddleware returns a middleware enforcing the limits in expr (see
// ParseLimits) per client. The error quotes a bad expression or names a bad
// option. Its scope is derived from the function that calls NewMiddleware;
// see Middleware.Scope.
func NewMiddleware(expr string, opts ...Option) (*Middleware, error) {
	return newMiddleware(1, expr, opts)
}

// MustNewMiddleware is NewMiddleware for set-up code: it panics with the
// error, which quotes a bad expression.
func MustNewMiddleware(expr string, opts ...Option) *Middleware {
	m, err := newMiddleware(1, expr, opts)
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
func NewMiddlewareSkip(skip int, expr string, opts ...Option) (*Middleware, error) {
	return newMiddleware(skip+1, expr, opts)
}

// newMiddleware's skip counts frames above its caller: 0 is the caller.
func newMiddleware(skip int, expr string, opts []Option) (*Middleware, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	mc := &c.mw
	if len(c.limiterOnly) > 0 {
		n := c.limiterOnly[0]
		return nil, fmt.Errorf("limitkit: core.%s configures a Limiter, not a middleware; pass core.WithLimiter(core.New(core.%s(...)))", n, n)
	}
	if err := errors.Join(append(c.problems, mc.problems...)...); err != nil {
		return nil, err
	}
	// ruleOf parses an expression into the middleware's rule or a plan's,
	// checked with the defaults of the limiter that will enforce it.
	ruleOf := func(expr string) (Rule, error) {
		r, err := NewRule(expr, c.algorithm)
		if err != nil {
			return Rule{}, err
		}
		r.Burst = c.burst
		return r, validateFor(r, mc.limiter)
	}
	rule, err := ruleOf(expr)
	if err != nil {
		return nil, err
	}
	m := &Middleware{
		limiter:      mc.limiter,
		planOf:       mc.planOf,
		key:          mc.key,
		nativeKey:    mc.nativeKey,
		keyPolicy:    mc.keyPolicy,
		cost:         mc.cost,
		exempt:       mc.exempt,
		nativeExempt: mc.nativeExempt,
		shadow:       mc.shadow,
		deny:         mc.deny,
		nativeDeny:   mc.nativeDeny,
		names:        headerNames{HeaderLimit, HeaderRemaining, HeaderReset},
		ietf:         mc.ietf,
		wait:         mc.wait,
	}
	if mc.namesSet {
		m.names = mc.names
	}
	if m.key == nil && m.nativeKey == nil {
		m.key = ByIP
	}
	scope, policy := mc.name, mc.name
	if scope == "" {
		scope, policy = deriveScope(skip, expr, m.logger()), "default"
	}
	m.base = newRuleSet(rule, scope, policy)
	if len(mc.plans) > 0 {
		m.plans = make(map[string]*ruleSet, len(mc.plans))
		for name, pexpr := range mc.plans {
			if err := checkName("plan", name); err != nil {
				return nil, err
			}
			pr, err := ruleOf(pexpr)
			if err != nil {
				return nil, fmt.Errorf("limitkit: plan %q: %w", name, err)
			}
			rs := newRuleSet(pr, scope+"/"+name, name)
			m.plans[name] = &rs
		}
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

func newRuleSet(rule Rule, scope, policy string) ruleSet {
	limits, pol := newLimitTexts(rule.Limits, policy)
	return ruleSet{rule: rule, scope: scope, keyPrefix: scope + ":", limits: limits, policy: pol, misreported: new(atomic.Pointer[Limiter])}
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

// Verdict says what to do with a request after Check.
type Verdict uint8

// The verdicts.
const (
	// Serve: run the handler. The headers are set.
	Serve Verdict = iota + 1
	// Refuse: answer with Result.Status (see Result), by Refuse or in the
	// framework's idiom. The headers are set.
	Refuse
	// Gone: the client went away (its request's context was cancelled)
	// during the check or while its request was held; write no body.
	// Result.Status is StatusClientClosedRequest, to end the request with,
	// so that access logs tell these apart and net/http does not answer
	// an empty 200. A request whose context passed a deadline, which is the
	// server's (http.TimeoutHandler, a timeout middleware), is not Gone but
	// refused with 503: its client still waits for an answer.
	Gone
)

// StatusClientClosedRequest is the status of a Gone result (nginx's 499):
// nothing reaches the client, but access logs can tell these requests apart.
const StatusClientClosedRequest = 499

// Result is the outcome of Check.
type Result struct {
	Verdict Verdict
	// Status is the HTTP status of a refusal, or of a request that is Gone:
	//   - 429 Too Many Requests: the limit refused; Retry-After is set.
	//   - 413 Content Too Large: the limit refused a cost that can never fit
	//     (Decision.Never). Waiting cannot help, so there is no Retry-After;
	//     clients retry a 429, but not a 413 sent without one.
	//   - 503 Service Unavailable: the store failed under FailClosed
	//     (Retry-After is the probe interval); the limiter is closed (Err
	//     wraps ErrClosed); or the request's context passed its deadline,
	//     set by a server-side timeout, during the check or the hold.
	//   - 500 Internal Server Error: the limiter cannot enforce the rule, a
	//     mistake in set-up, reported once (see EventConfigError).
	//   - 400 Bad Request: the key function failed under KeyErrorRefuse.
	//   - StatusClientClosedRequest: the client went away (Gone).
	// Zero otherwise.
	Status int
	// Decision is the decision, when a store made one (the limiter's, or
	// the fallback); zero for exempt requests and those the failure policy
	// let through or refused undecided.
	Decision Decision
	// Action says whether the store or the failure policy decided.
	Action Action
	// Err says why a check did not go as usual, even if the request is
	// served: the store's error, the key function's, or the request
	// context's.
	Err error
}

// OverLimit reports whether the limit refused the request: a 429, or a 413
// for a cost that can never fit. These are the refusals that deny handlers
// (WithDenyHandler, and the adapters' own) replace.
func (r Result) OverLimit() bool {
	return r.Verdict == Refuse && (r.Status == http.StatusTooManyRequests || r.Status == http.StatusRequestEntityTooLarge)
}

// Message is the refusal's reason in a sentence, for an error response.
func (r Result) Message() string {
	switch {
	case r.Verdict != Refuse:
		return ""
	case r.Status == http.StatusRequestEntityTooLarge:
		return "request exceeds the rate limit and can never be admitted"
	case r.Status == http.StatusTooManyRequests:
		return "rate limit exceeded"
	case r.Status == http.StatusInternalServerError:
		return "rate limit cannot be enforced"
	case r.Status == http.StatusServiceUnavailable && r.Action != ActionFailClosed && errors.Is(r.Err, context.DeadlineExceeded):
		return "request timed out in the rate limiter"
	case r.Status == http.StatusServiceUnavailable:
		return "rate limiter unavailable"
	default:
		return "cannot identify the client for rate limiting"
	}
}

// Body is the default JSON body of a refusal, such as
// {"error":"rate limit exceeded","limit":"5/minute","retry_after":12}.
// retry_after is left out when waiting cannot help (Decision.Never, a 413).
func (r Result) Body() []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"error":`...)
	b = strconv.AppendQuote(b, r.Message())
	if r.OverLimit() {
		b = append(b, `,"limit":`...)
		b = strconv.AppendQuote(b, r.Decision.Limit.String())
		if !r.Decision.Never {
			b = append(b, `,"retry_after":`...)
			b = strconv.AppendInt(b, max(ceilSeconds(r.Decision.RetryAfter), 1), 10)
		}
	}
	return append(b, "}\n"...)
}

// Check decides a request and writes the rate-limit headers to h (the
// response's headers), holding the request first if the rule's algorithm
// (LeakyBucket) schedules it for later; the hold ends early if the request's
// context is done, and Check then returns Gone, or, if the context passed a
// deadline, a 503 refusal (see Gone). It never panics on a
// request: a failing key function, cost function or store is handled by the
// documented policies. A key or cost function that panics is handled as a
// key function that failed, by the key error policy (WithKeyErrorPolicy),
// and logged at Error level the first time. Check is CheckWith with no
// native value.
func (m *Middleware) Check(r *http.Request, h http.Header) Result {
	return m.CheckWith(r, h, nil)
}

// CheckWith is Check for adapters: native, typically the framework's own
// request context, is handed as it is to the functions given by
// WithNativeKey, WithNativePlans and WithNativeExempt, which the adapter
// wrapped around its users' framework-typed ones.
func (m *Middleware) CheckWith(r *http.Request, h http.Header, native any) Result {
	lim := m.limiter
	if lim == nil {
		lim = Default()
	}
	if (m.exempt != nil || m.nativeExempt != nil) && m.isExempt(lim, r, native) {
		return Result{Verdict: Serve}
	}
	ctx := r.Context()
	rs := &m.base
	if m.planOf != nil {
		if p := m.planFor(lim, r, native); p != "" {
			if prs, ok := m.plans[p]; ok {
				rs = prs
			}
		}
	}
	id, err := m.identify(lim, r, native)
	cost, costErr := m.costOf(lim, r)
	if err == nil {
		err = costErr // a cost that cannot be known is handled as a missing key
	}
	if err == nil && id == "" {
		err = errEmptyIdentity
	}
	var key string
	if err != nil {
		switch m.keyPolicy {
		case KeyErrorServe:
			return Result{Verdict: Serve, Err: err}
		case KeyErrorRefuse:
			return Result{Verdict: Refuse, Status: http.StatusBadRequest, Err: err}
		}
		// fallbackPrefix keeps these apart from identities the key
		// function gives, which bound keeps out of it (see keys.go).
		// The identity is cut from the key so that both cost one string.
		key = rs.keyPrefix + fallbackPrefix + IPIdentity(r.RemoteAddr)
		id = key[len(rs.keyPrefix):]
	} else {
		id = bound(id)
		key = rs.keyPrefix + id
	}
	rule := rs.rule
	lim.applyDefaults(&rule)
	o := lim.take(ctx, rs.scope, id, key, rule, cost)
	if o.stopped() {
		switch {
		case o.closed:
			return Result{Verdict: Refuse, Status: http.StatusServiceUnavailable, Err: o.err}
		case o.invalid:
			m.misconfigured(lim, rs, o.err)
			return Result{Verdict: Refuse, Status: http.StatusInternalServerError, Err: o.err}
		}
		return ended(Result{}, o.err)
	}
	decided := o.action == ActionStore || o.action == ActionFallback
	if obs := lim.cfg.observer; obs != nil {
		obs.Observe(Event{
			Kind: EventDecision, Scope: rs.scope, Identity: id, Decision: o.d,
			Shadow: m.shadow && decided && !o.d.Allowed, Action: o.action, Latency: o.latency, Err: o.err,
		})
	}
	res := Result{Verdict: Serve, Decision: o.d, Action: o.action, Err: o.err}
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
	m.writeHeaders(h, rs, o.d)
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

// ended is res for a request whose context ended, with err, before it could
// be served. A deadline is the server's: no client sends one over HTTP, so
// it was set by http.TimeoutHandler or a timeout middleware, and the client
// is still there; it gets 503, as http.TimeoutHandler answers. The slot a
// held request was given stays spent, so there is no Retry-After.
func ended(res Result, err error) Result {
	res.Err = err
	if errors.Is(err, context.DeadlineExceeded) {
		res.Verdict, res.Status = Refuse, http.StatusServiceUnavailable
		return res
	}
	res.Verdict, res.Status = Gone, StatusClientClosedRequest
	return res
}

var errEmptyIdentity = errors.New("limitkit: the key function returned an empty identity")

// identify runs the key function. A panic in it is a bug in the app, but
// Check never panics on a request: it becomes the key function's error, so
// the key error policy answers as it does for any key function that fails.
func (m *Middleware) identify(lim *Limiter, r *http.Request, native any) (id string, err error) {
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

// hold waits d, or until ctx is done. The slot the request was given stays
// spent if the client leaves: the store has no way to give it back.
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

type resultKey struct{}

// DecisionFrom returns the decision that refused the request whose context
// ctx is, inside a handler given to WithDenyHandler.
func DecisionFrom(ctx context.Context) (Decision, bool) {
	res, ok := ctx.Value(resultKey{}).(Result)
	return res.Decision, ok
}

// Refuse writes the response to a request Check refused: the deny handler
// for a refusal by the limit (res.OverLimit) if WithDenyHandler gave one,
// else res.Status with res.Body as JSON. The headers Check wrote are kept.
func (m *Middleware) Refuse(w http.ResponseWriter, r *http.Request, res Result) {
	if res.OverLimit() && m.deny != nil {
		m.deny.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), resultKey{}, res)))
		return
	}
	status := res.Status
	if status == 0 {
		status = http.StatusTooManyRequests
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(status)
	_, _ = w.Write(res.Body())
}

// Handler wraps next so that requests over the limit are refused (see
// Check and Refuse); it is what chilimit returns. A request whose client
// went away (Gone) is ended with StatusClientClosedRequest and no body.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := m.Check(r, w.Header())
		switch res.Verdict {
		case Serve:
			next.ServeHTTP(w, r)
		case Refuse:
			m.Refuse(w, r, res)
		default: // Gone
			w.WriteHeader(res.Status)
		}
	})
}

// String describes the middleware for logs: its scope and its rule.
func (m *Middleware) String() string {
	return "limitkit middleware " + m.base.scope + " " + m.base.rule.String()
}
