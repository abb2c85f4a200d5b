// Package core is limitkit's framework-neutral rate limiter: the limit
// grammar, the five algorithms, the Store contract and its memory store,
// key functions, client-IP resolution, response headers, the failure policy,
// the observer hook and the net/http middleware. The adapters ginlimit,
// echolimit and chilimit are thin translations of it, and redisstore is a
// Store that shares limits across every instance of an app.
//
// # Limits and rules
//
// A limit is a count per period, written as Python's limits package
// (slowapi, Flask-Limiter) writes it: "5/minute", "10 per 2 hours",
// "10/second;1000/hour". A Rule checks one or more limits together with one
// Algorithm: a request is admitted only if every limit admits it, and then it
// is charged to all of them; a denied request is charged to none. The check is
// atomic, in one step of the store.
//
// A calendar limit, "1000 per calendar month" or "100/calendar day in
// Europe/Paris", resets at local midnight in a time zone, for billing-style
// quotas: days of 23 or 25 hours where the clocks change, months of 28 to 31
// days. Its rule is counted with FixedWindow; WithTimeZone names the zone of
// a middleware's calendar limits (UTC by default). See PerCalendar.
//
// # Choosing an algorithm
//
// SlidingWindowCounter is the default: "100/minute" then means about 100 in
// any minute, as people read it, with two counters per key and no burst at
// window boundaries. TokenBucket suits APIs that want to allow short bursts
// (set Rule.Burst or WithBurst); FixedWindow is the cheapest and the easiest
// to explain but admits up to twice the count across a boundary;
// SlidingWindowLog is exact at the cost of one entry per request;
// LeakyBucket smooths traffic by holding requests until their slot. See
// Algorithm for the exact semantics every store shares.
//
// # Keys and scopes
//
// A request is counted under its key: the middleware's scope (which budget)
// and the identity its key function gives (who). The default key function is
// ByIP, the connection's peer address, which a client cannot forge; forwarded
// headers count only through ByClientIP and only from the proxies it lists.
// Secrets used as identities (ByHeader, ByBearerToken) are hashed before they
// reach a store, a log or a metric; an IdentityHasher keys that hash with a
// secret of the app's, so that a short API key cannot be recovered from the
// store. Route keys (ByRoute, RouteIdentity) never give a client a budget
// for a method or a path it invents.
//
// Unless WithName gives one, a middleware's scope is derived from the code
// that builds it, the same in every process of a build; Middleware.Scope
// gives the rule, and when the library warns that it needs a name.
//
// # Stores and failures
//
// The memory store (NewMemoryStore) is the default: exact, allocation-free on
// existing keys, and bounded in size. redisstore shares state through Redis or
// Redis Cluster. A store error never reaches the client as a panic or a hang:
// each check has a deadline (WithTimeout), and the failure policy
// (WithFailurePolicy) serves, refuses with 503, or falls back to a local
// memory store until the remote one answers again. Every decision and every
// failure reaches the observer (WithObserver; promlimit feeds Prometheus) and
// store failures reach log/slog.
//
// # Writing an adapter
//
// An adapter translates a framework's request, route and error idioms to
// core and holds no algorithm or key logic of its own; ginlimit, echolimit
// and chilimit are the models. Its constructors are one line each over
// Adapt and MustAdapt, which build the Middleware at start-up (naming its
// scope after the adapter's user, not the adapter) and wrap every error
// with the call the user made. On each request the adapter calls
//
//	res := m.EnforceWith(r, w.Header(), native)
//
// with the request as net/http sees it, the response's headers, and native,
// the framework's own request context (a *gin.Context, an echo.Context).
// EnforceWith decides, charges, writes the rate-limit headers and holds a
// leaky-bucket request until its slot; it never panics. The adapter then
// acts on res.Verdict: Serve runs the next handler; Refuse answers
// res.Status with res.Body (after DenyNatively has given the user's deny
// handler its turn), or in the framework's idiom (an error for Echo's error
// handler); Gone ends a request whose client left, with res.Status.
//
// Framework-typed hooks are one line each too: NativeKey, NativePlans,
// NativeExempt and NativeDeny take the user's function of the framework's
// context type, assert native to it once, and fail alike everywhere when it
// is missing. Everything else (the limiter, the name, costs, plans by
// request, headers) is core's options, given as they are.
//
// # Options
//
// Each kind of option is its own type, so that handing one to the wrong
// constructor does not compile: Option for New (the limiter),
// MiddlewareOption for NewMiddleware and every adapter, MemoryOption for
// NewMemoryStore, redisstore.Option for the Redis store, and each adapter's
// own Option (ginlimit.Option, echolimit.Option, chilimit.Option), which
// takes core's MiddlewareOptions and the adapter's framework-typed options
// but not another adapter's. WithAlgorithm and WithBurst fit both a limiter
// and a middleware (RuleOption). An adapter outside this module takes
// AdapterOption, and Adapt refuses, naming it, a native option built for
// another framework's context.
package core
