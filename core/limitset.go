package core

// Limits declared as data (Config, which the app's own decoder fills from
// JSON, YAML or TOML), built into a LimitSet: the adapters mount it for a
// whole app (a default limit that gives every route a budget of its own,
// and per-route limits and exemptions) and by name, and it reloads without
// losing the state of the limits that did not change.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Config declares limits as data. Its fields carry json, yaml and toml tags,
// so that the app's own decoder fills it from a file:
//
//	{
//	  "default": {"limit": "100/minute"},
//	  "routes": {
//	    "POST /login": {"limit": "5/minute"},
//	    "GET /healthz": {"exempt": true}
//	  },
//	  "limits": {
//	    "search": {"limit": "10/second;1000/hour", "key": "header:X-API-Key"}
//	  }
//	}
//
// NewLimitSet checks and builds it; see LimitSet for what each part does.
type Config struct {
	// Default, if set, is the limit of every route that Routes does not
	// name: each route (method and pattern) gets a budget of its own under
	// it, per client, as slowapi's default_limits.
	Default *LimitConfig `json:"default,omitempty" yaml:"default,omitempty" toml:"default,omitempty"`
	// Routes gives routes a limit of their own in place of the default, or
	// exempts them. A key is a route pattern as the router writes it
	// ("/items/:id" for Gin and Echo, "/items/{id}" for chi), for every
	// method, or a method and a pattern ("POST /login"), which wins over
	// the pattern alone.
	Routes map[string]LimitConfig `json:"routes,omitempty" yaml:"routes,omitempty" toml:"routes,omitempty"`
	// Limits are limits by name, mounted where the code says
	// (ginlimit.Named(set, "search"), ...); a name is one budget wherever
	// it is mounted.
	Limits map[string]LimitConfig `json:"limits,omitempty" yaml:"limits,omitempty" toml:"limits,omitempty"`
	// Failure is the failure policy of every limit that does not set its
	// own: "fail-open", "fail-closed" or "fallback" (see FailurePolicy).
	// Empty leaves the limiter's.
	Failure string `json:"failure,omitempty" yaml:"failure,omitempty" toml:"failure,omitempty"`
}

// LimitConfig is one limit of a Config.
type LimitConfig struct {
	// Limit is the limit expression, such as "100/minute" or
	// "10/second;1000/hour" (see ParseLimits).
	Limit string `json:"limit,omitempty" yaml:"limit,omitempty" toml:"limit,omitempty"`
	// Algorithm names the algorithm as ParseAlgorithm reads it, such as
	// "token-bucket"; empty leaves the limiter's default.
	Algorithm string `json:"algorithm,omitempty" yaml:"algorithm,omitempty" toml:"algorithm,omitempty"`
	// Key says who is counted: "ip" (the default, ByIP), "global" (one
	// budget for all), "bearer" (ByBearerToken), "header:NAME" (ByHeader),
	// or a name given with ConfigKeys.
	Key string `json:"key,omitempty" yaml:"key,omitempty" toml:"key,omitempty"`
	// Burst is the capacity of a token or leaky bucket (see WithBurst).
	Burst int64 `json:"burst,omitempty" yaml:"burst,omitempty" toml:"burst,omitempty"`
	// Plans maps a plan's name to its limit expression, as WithPlans does;
	// the plan of a request comes from the function given with
	// ConfigPlanOf.
	Plans map[string]string `json:"plans,omitempty" yaml:"plans,omitempty" toml:"plans,omitempty"`
	// Failure is the limit's failure policy, as Config.Failure.
	Failure string `json:"failure,omitempty" yaml:"failure,omitempty" toml:"failure,omitempty"`
	// Exempt, in Routes only and alone, lets the route through without a
	// check, a charge or headers.
	Exempt bool `json:"exempt,omitempty" yaml:"exempt,omitempty" toml:"exempt,omitempty"`
}

// ConfigError is an error in a Config: Path says where, in the Config's own
// terms, such as routes["/login"].limit. It wraps the error found there, so
// errors.As finds a *SyntaxError for a bad limit.
type ConfigError struct {
	Path string
	Err  error
}

// Error returns the path and the mistake, such as
// `routes["/login"].limit: invalid limit "5/fortnight" at offset 2: ...`.
func (e *ConfigError) Error() string {
	return e.Path + ": " + strings.TrimPrefix(e.Err.Error(), "limitkit: ")
}

// Unwrap returns the error found at Path.
func (e *ConfigError) Unwrap() error { return e.Err }

// LimitSetOption configures how NewLimitSet builds a Config: what a Config
// cannot say, because it is code (key and plan functions, the store).
type LimitSetOption func(*limitSetConfig)

type limitSetConfig struct {
	limiter    []Option
	hasLimiter bool
	keys       map[string]KeyFunc
	planOf     func(*http.Request) string
	mw         []MiddlewareOption
}

// ConfigLimiter makes the set decide with limiters of its own, built with
// opts (a store, a clock, an observer): one, and one more per failure
// policy the Config names, all on the same store. Closing the set closes
// them. Without it the set decides with Default(), and a Config that names
// a failure policy is refused.
func ConfigLimiter(opts ...Option) LimitSetOption {
	opts = slices.Clone(opts)
	return func(c *limitSetConfig) { c.limiter, c.hasLimiter = opts, true }
}

// ConfigKeys names key functions that a LimitConfig's Key may name, such
// as "user" for the signed-in user. The built-in names (ip, global, bearer,
// header:NAME) cannot be replaced.
func ConfigKeys(keys map[string]KeyFunc) LimitSetOption {
	keys = maps.Clone(keys)
	return func(c *limitSetConfig) {
		if c.keys == nil {
			c.keys = map[string]KeyFunc{}
		}
		maps.Copy(c.keys, keys)
	}
}

// ConfigPlanOf gives the plan of a request, for the limits whose Plans are
// set (see WithPlans).
func ConfigPlanOf(planOf func(*http.Request) string) LimitSetOption {
	return func(c *limitSetConfig) { c.planOf = planOf }
}

// ConfigMiddleware adds opts to every limit of the set, before the
// Config's own settings, which win: header options, a deny handler, a key
// error policy.
func ConfigMiddleware(opts ...MiddlewareOption) LimitSetOption {
	opts = slices.Clone(opts)
	return func(c *limitSetConfig) { c.mw = append(c.mw, opts...) }
}

// LimitSet is the limits of a Config, built: each adapter mounts it for a
// whole app or group (ginlimit.Routes, echolimit.Routes, chilimit.Routes)
// and mounts its named limits where the code says (Named). It is safe for
// concurrent use, and Reload replaces its limits while it serves.
//
// How a request to a route is limited, in this order:
//   - Routes names it by method and pattern ("POST /login"), or by pattern
//     alone ("/login"): it is checked against that limit only, never the
//     default; or, if the entry is exempt, not at all.
//   - Otherwise, if a Default is set, against the default, with a budget per
//     client and route: route is the method and the pattern the router
//     matched, so the paths, cases and trailing slashes a client sends do
//     not make budgets of their own. Requests that matched no route (a 404, a
//     405) share one budget per client, "(no route)", whatever their method
//     and path, and a method outside the standard set reads "OTHER".
//   - Otherwise it is served unchecked.
//
// A limit a route is given in code (ginlimit.Limit on the route) is checked
// as well as what the set gives it: the app-wide middleware runs before
// the route's own, and cannot see them in every framework, so to replace the
// default for a route, name the route in Routes.
//
// Budgets: each limit's scope is named after its place in the Config:
// "config.default", "config.route.POST+/login" (a space reads "+", and
// bytes a name cannot hold %XX, such as the colon of "/items/%3Aid"),
// "config.limit.search". So every process built from one Config shares
// budgets through a shared store, and the names show in metrics and the
// IETF headers. Stores keep a key's state per rule shape (see Rule.Shape),
// so Reload keeps the state of every limit whose limit, algorithm and burst
// did not change, and a limit whose did starts afresh (its old state
// expires in the store, and a change back before then finds it again); a
// changed key counts other identities, and a changed plan is a budget of
// its own. A failure policy changes nothing of the state and can change
// freely.
type LimitSet struct {
	opts limitSetConfig

	mu       sync.Mutex                 // orders Reload, Mount and Close
	limiters map[FailurePolicy]*Limiter // made by ConfigLimiter; 0 is without a policy of its own
	mounted  map[string]bool            // names mounted by an adapter's Named
	known    []string                   // the router's routes, once CheckRoutes has been given them
	closed   bool
	cur      atomic.Pointer[limitState]
}

// limitState is one Config, built; a Reload swaps it whole.
type limitState struct {
	def    *Middleware
	routes map[string]routeLimit // by "METHOD pattern" or "pattern"
	named  map[string]*Middleware

	mu       sync.RWMutex
	resolved map[routeKey]resolution // cache of ForRoute's answers
}

// routeLimit is a route's own limit, or its exemption (m nil).
type routeLimit struct{ m *Middleware }

type routeKey struct{ method, pattern string }

type resolution struct {
	m      *Middleware
	native any
}

// maxResolved bounds the cache of ForRoute. The patterns come from the
// router, not the client, and methods are cut to the standard ones, so it
// holds at most a few per route; the bound is a second line of defence.
const maxResolved = 1 << 14

// NewLimitSet checks cfg and builds its limits. Every mistake is reported
// at once, each naming its place in cfg, such as
// `routes["/login"].limit: invalid limit "5/fortnight" ...`; see
// ConfigError.
func NewLimitSet(cfg Config, opts ...LimitSetOption) (*LimitSet, error) {
	s := &LimitSet{limiters: map[FailurePolicy]*Limiter{}, mounted: map[string]bool{}}
	for _, o := range opts {
		if o != nil {
			o(&s.opts)
		}
	}
	st, err := s.build(cfg)
	if err != nil {
		s.closeLimiters()
		return nil, err
	}
	s.cur.Store(st)
	return s, nil
}

// MustLimitSet is NewLimitSet for set-up code: it panics with the error.
func MustLimitSet(cfg Config, opts ...LimitSetOption) *LimitSet {
	s, err := NewLimitSet(cfg, opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// Reload replaces the set's limits with cfg's, for every request from
// then on, keeping the state of each limit whose settings did not change
// (see LimitSet). If cfg has a mistake, or drops a named limit an adapter
// has mounted, the set keeps its limits and Reload returns the error.
func (s *LimitSet) Reload(cfg Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errLimitSetClosed
	}
	st, err := s.buildLocked(cfg)
	if err != nil {
		return err
	}
	s.cur.Store(st)
	return nil
}

// Close closes the limiters ConfigLimiter made, and so their store: from
// then on the set's requests are refused with 503 (see Limiter.Close).
// A set without ConfigLimiter decides with Default(), which Close leaves
// alone. Reload after Close fails.
func (s *LimitSet) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.closeLimiters()
}

var errLimitSetClosed = fmt.Errorf("limitkit: the limit set is closed: %w", ErrClosed)

func (s *LimitSet) closeLimiters() error {
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(s.limiters)) {
		errs = append(errs, s.limiters[p].Close())
	}
	return errors.Join(errs...)
}

// ForRoute returns the middleware that decides a request the router matched
// to pattern with method, and the native value to pass to its EnforceWith;
// nil when the request is exempt or nothing limits it. pattern is "" for a
// request that matched no route. It is for adapters, whose Routes call it
// on every request.
func (s *LimitSet) ForRoute(method, pattern string) (*Middleware, any) {
	st := s.cur.Load()
	k := routeKey{standardMethod(method), pattern}
	if pattern == "" {
		k.method = "" // every method of no route is one budget
	}
	st.mu.RLock()
	res, ok := st.resolved[k]
	st.mu.RUnlock()
	if ok {
		return res.m, res.native
	}
	res = st.resolve(k)
	st.mu.Lock()
	if len(st.resolved) < maxResolved {
		st.resolved[k] = res
	}
	st.mu.Unlock()
	return res.m, res.native
}

func (st *limitState) resolve(k routeKey) resolution {
	if k.pattern != "" {
		// The route identity is the native value of a route's own limit
		// too: it names the route in the limit's events.
		if rl, ok := st.routes[k.method+" "+k.pattern]; ok {
			return resolution{m: rl.m, native: RouteIdentity(k.method, k.pattern)}
		}
		if rl, ok := st.routes[k.pattern]; ok {
			return resolution{m: rl.m, native: RouteIdentity(k.method, k.pattern)}
		}
	}
	if st.def == nil {
		return resolution{}
	}
	return resolution{m: st.def, native: RouteIdentity(k.method, k.pattern)}
}

// CheckRoutes reports, naming them, the entries of the Config's Routes that
// match none of routes, the router's own as "METHOD pattern" (such as
// "GET /items/:id"): a misspelt route would otherwise be limited by the
// default without a word. The adapters' CheckRoutes pass their router's
// routes; call it once the routes are registered. From then on Reload
// refuses a Config with such an entry too.
func (s *LimitSet) CheckRoutes(routes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known = slices.Clone(routes)
	return unmatched(s.cur.Load(), s.known)
}

// unmatched reports the route entries of st that match none of known.
func unmatched(st *limitState, known []string) error {
	full, patterns := map[string]bool{}, map[string]bool{}
	for _, r := range known {
		if method, pattern, ok := strings.Cut(r, " "); ok {
			full[method+" "+pattern], patterns[pattern] = true, true
		}
	}
	var errs []error
	for _, route := range slices.Sorted(maps.Keys(st.routes)) {
		_, _, hasMethod := strings.Cut(route, " ")
		if hasMethod && !full[route] || !hasMethod && !patterns[route] {
			errs = append(errs, &ConfigError{Path: "routes[" + strconv.Quote(route) + "]",
				Err: errors.New("matches no route of the router; check the method and the pattern as the router writes it")})
		}
	}
	return errors.Join(errs...)
}

// Mount returns a function that gives the current middleware of the
// named limit (Config.Limits), for an adapter's Named to call per request.
// It fails, naming the limit and the names there are, if cfg has no such
// limit; and from then on a Reload that drops the name fails.
func (s *LimitSet) Mount(name string) (func() *Middleware, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cur.Load().named[name]; !ok {
		return nil, s.unknownName(name)
	}
	s.mounted[name] = true
	return func() *Middleware { return s.cur.Load().named[name] }, nil
}

func (s *LimitSet) unknownName(name string) error {
	names := slices.Sorted(maps.Keys(s.cur.Load().named))
	return fmt.Errorf("limitkit: the limit set has no limit %q; its limits are %q", name, names)
}

func (s *LimitSet) build(cfg Config) (*limitState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buildLocked(cfg)
}

// buildLocked builds cfg, reusing the set's limiters; s.mu is held.
func (s *LimitSet) buildLocked(cfg Config) (*limitState, error) {
	var errs []error
	fail := func(path string, err error) { errs = append(errs, &ConfigError{Path: path, Err: err}) }
	setFailure, err := parseFailure(cfg.Failure)
	if err != nil {
		fail("failure", err)
	}
	st := &limitState{routes: map[string]routeLimit{}, named: map[string]*Middleware{}, resolved: map[routeKey]resolution{}}
	if cfg.Default != nil {
		m, err := s.limit("default", "config.default", *cfg.Default, setFailure, true)
		if err != nil {
			errs = append(errs, err)
		}
		st.def = m
	}
	for _, route := range slices.Sorted(maps.Keys(cfg.Routes)) {
		path := "routes[" + strconv.Quote(route) + "]"
		if err := checkRoute(route); err != nil {
			fail(path, err)
			continue
		}
		lc := cfg.Routes[route]
		if lc.Exempt {
			if !lc.exemptOnly() {
				fail(path, errors.New("an exempt route has no other settings; drop exempt or the rest"))
			}
			st.routes[route] = routeLimit{}
			continue
		}
		m, err := s.limit(path, "config.route."+route, lc, setFailure, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st.routes[route] = routeLimit{m: m}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Limits)) {
		path := "limits[" + strconv.Quote(name) + "]"
		if err := checkName("limit name", name); err != nil {
			fail(path, err)
			continue
		}
		lc := cfg.Limits[name]
		if lc.Exempt {
			fail(path+".exempt", errors.New("only a route can be exempt"))
			continue
		}
		m, err := s.limit(path, "config.limit."+name, lc, setFailure, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st.named[name] = m
	}
	if cfg.Default != nil && cfg.Default.Exempt {
		fail("default.exempt", errors.New("only a route can be exempt; leave the default out to limit nothing by default"))
	}
	for _, name := range slices.Sorted(maps.Keys(s.mounted)) {
		if _, ok := st.named[name]; !ok {
			fail("limits["+strconv.Quote(name)+"]", errors.New("missing, but an adapter's Named mounts it; keep it, or remove the route that uses it"))
		}
	}
	if len(errs) == 0 && s.known != nil {
		if err := unmatched(st, s.known); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return st, nil
}

func (lc LimitConfig) exemptOnly() bool {
	return lc.Limit == "" && lc.Algorithm == "" && lc.Key == "" && lc.Burst == 0 && len(lc.Plans) == 0 && lc.Failure == ""
}

// checkRoute checks a key of Config.Routes: a pattern, with a standard
// method and a space before it or not.
func checkRoute(route string) error {
	method, pattern, hasMethod := strings.Cut(route, " ")
	if !hasMethod {
		pattern = route
	} else if standardMethod(method) != method {
		return fmt.Errorf("unknown method %q; expected GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS or TRACE, in capitals, or the pattern alone for every method", method)
	}
	if !strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("a route is a pattern beginning with /, such as \"/items/:id\" or \"POST /login\"")
	}
	return nil
}

// limit builds one LimitConfig at path into a middleware whose scope is
// named after id and its settings. byRoute keys it per client and route,
// for the default.
func (s *LimitSet) limit(path, id string, lc LimitConfig, setFailure FailurePolicy, byRoute bool) (*Middleware, error) {
	var errs []error
	fail := func(field string, err error) { errs = append(errs, &ConfigError{Path: path + "." + field, Err: err}) }
	if strings.TrimSpace(lc.Limit) == "" {
		fail("limit", errors.New(`missing; give a limit such as "100/minute"`))
	}
	var alg Algorithm
	if lc.Algorithm != "" {
		a, err := ParseAlgorithm(lc.Algorithm)
		if err != nil {
			fail("algorithm", err)
		}
		alg = a
	}
	if _, err := NewRule(lc.Limit, alg); err != nil && lc.Limit != "" {
		fail("limit", err)
	}
	if lc.Burst < 0 {
		fail("burst", fmt.Errorf("%d: the burst must be positive, or 0 for each limit's count", lc.Burst))
	}
	key, err := s.keyOf(lc.Key)
	if err != nil {
		fail("key", err)
	}
	for _, name := range slices.Sorted(maps.Keys(lc.Plans)) {
		if err := checkName("plan", name); err != nil {
			fail("plans["+strconv.Quote(name)+"]", err)
		} else if _, err := NewRule(lc.Plans[name], alg); err != nil {
			fail("plans["+strconv.Quote(name)+"]", err)
		}
	}
	if len(lc.Plans) > 0 && s.opts.planOf == nil {
		fail("plans", errors.New("the plan of a request is unknown: give core.ConfigPlanOf(...) to NewLimitSet"))
	}
	policy := setFailure
	if lc.Failure != "" {
		p, err := parseFailure(lc.Failure)
		if err != nil {
			fail("failure", err)
		}
		policy = p
	}
	if policy != 0 && !s.opts.hasLimiter {
		fail("failure", errors.New("a failure policy needs the set's own limiters: give core.ConfigLimiter(core.WithStore(...)) to NewLimitSet"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	opts := slices.Clone(s.opts.mw)
	if lim := s.limiterFor(policy); lim != nil {
		opts = append(opts, WithLimiter(lim))
	}
	opts = append(opts, WithName(scopeName(id)), WithKey(key))
	if alg != 0 {
		opts = append(opts, WithAlgorithm(alg))
	}
	if lc.Burst != 0 {
		opts = append(opts, WithBurst(lc.Burst))
	}
	if len(lc.Plans) > 0 {
		opts = append(opts, WithPlans(lc.Plans, s.opts.planOf))
	}
	if byRoute {
		opts = append(opts, keyedByRoute(key))
	}
	opts = append(opts, routeFromIdentity)
	m, err := newMiddleware(0, lc.Limit, opts, nil)
	if err != nil {
		return nil, &ConfigError{Path: path + ".limit", Err: err}
	}
	return m, nil
}

// routeFromIdentity labels a set's events with the route pattern of the
// route identity ForRoute passes as the native value ("GET /items/:id" reads
// "/items/:id"), which the adapters derive from the route the router
// matched: bounded by the app's routes, as Event.Route must be. A request
// that matched no route reads "", as elsewhere.
var routeFromIdentity = middlewareOption(func(c *middlewareConfig) {
	c.routeOf = func(r *http.Request, native any) string {
		id, ok := native.(string)
		if !ok {
			return r.Pattern
		}
		if id == noRoute {
			return ""
		}
		if _, pattern, found := strings.Cut(id, " "); found {
			return pattern
		}
		return ""
	}
})

// keyedByRoute keys the default's requests by client and by the route
// identity ForRoute passes as the native value.
func keyedByRoute(client KeyFunc) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		c.setNativeKey(func(r *http.Request, native any) (string, error) {
			route, _ := native.(string)
			if route == "" {
				route = noRoute
			}
			return combine(2, func(i int) (string, error) {
				if i == 0 {
					return client(r)
				}
				return route, nil
			})
		})
	})
}

// scopeName is the budget's name of the limit id: id escaped to a valid
// name (a space reads "+"; "+", "%" and every other byte a name cannot hold
// read %XX), so that two ids never share one; one too long is cut, with 8
// hex digits of a hash of id after it.
func scopeName(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c == ' ':
			b.WriteByte('+')
		case c <= ' ' || c > '~' || c == '"' || c == '\\' || c == ':' || c == '+' || c == '%':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	name := b.String()
	if len(name) > 64 {
		sum := sha256.Sum256([]byte(id))
		name = name[:55] + "~" + hex.EncodeToString(sum[:4])
	}
	return name
}

// keyOf resolves a LimitConfig's Key.
func (s *LimitSet) keyOf(name string) (KeyFunc, error) {
	switch {
	case name == "" || name == "ip":
		return ByIP, nil
	case name == "global":
		return Global, nil
	case name == "bearer":
		return ByBearerToken, nil
	case strings.HasPrefix(name, "header:"):
		h := strings.TrimSpace(strings.TrimPrefix(name, "header:"))
		if h == "" {
			return nil, fmt.Errorf("%q names no header; write header:X-API-Key", name)
		}
		return ByHeader(h), nil
	}
	if k, ok := s.opts.keys[name]; ok && k != nil {
		return k, nil
	}
	known := "ip, global, bearer, header:NAME"
	if len(s.opts.keys) > 0 {
		known += " or one given with ConfigKeys (" + strings.Join(slices.Sorted(maps.Keys(s.opts.keys)), ", ") + ")"
	}
	return nil, fmt.Errorf("unknown key %q; expected %s", name, known)
}

// limiterFor returns the set's limiter for policy (0: its own), made on
// first use; nil when the set decides with Default().
func (s *LimitSet) limiterFor(policy FailurePolicy) *Limiter {
	if !s.opts.hasLimiter {
		return nil
	}
	if l, ok := s.limiters[policy]; ok {
		return l
	}
	opts := s.opts.limiter
	if policy != 0 {
		opts = append(slices.Clone(opts), WithFailurePolicy(policy))
	}
	l := New(opts...)
	s.limiters[policy] = l
	return l
}

// parseFailure reads a failure policy as FailurePolicy's String writes it;
// "" is 0, the limiter's own.
func parseFailure(s string) (FailurePolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return 0, nil
	case "fail-open":
		return FailOpen, nil
	case "fail-closed":
		return FailClosed, nil
	case "fallback":
		return Fallback, nil
	}
	return 0, fmt.Errorf("unknown failure policy %q; expected fail-open, fail-closed or fallback", s)
}
