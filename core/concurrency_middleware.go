package core

// The HTTP middleware of concurrency limits: at most N requests in flight
// per client, each holding a lease from before its handler runs until it
// returns.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"time"
)

// concurrencyOptions are the options of a concurrency middleware.
type concurrencyOptions struct {
	ttl     time.Duration
	wait    time.Duration
	ttlSet  bool
	waitSet bool
}

// WithLeaseTTL sets how long a concurrency middleware's leases live
// unless renewed (default DefaultLeaseTTL): the slots of an instance that
// dies come back within it, and a request that runs longer renews its
// lease every third of it. It must be between 1ms and a year. It applies to
// concurrency middlewares only; a rate-limit middleware given it fails.
func WithLeaseTTL(d time.Duration) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		if err := (Concurrency{Limit: 1, TTL: d}).Validate(); err != nil {
			c.problem("limitkit: WithLeaseTTL(%v): %v", d, err)
		}
		c.conc.ttl, c.conc.ttlSet = d, true
	})
}

// WithConcurrencyWait makes a concurrency middleware hold a request that
// finds no free slot for up to max, trying again with a backoff from 5ms
// to 200ms, before it refuses it; the wait ends early, with no slot taken,
// if the client goes (Gone). Each waiting request asks the store again at
// most every 200ms, so a client that keeps many requests waiting costs the
// store that many calls per 200ms, for at most max each. Zero, the
// default, refuses at once, as Stripe's concurrency limiter does. It applies to concurrency middlewares
// only; a rate-limit middleware given it fails.
func WithConcurrencyWait(max time.Duration) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		if max < 0 {
			c.problem("limitkit: WithConcurrencyWait(%v): the wait must not be negative", max)
		}
		c.conc.wait, c.conc.waitSet = max, true
	})
}

// forRateLimit is the error of a rate-limit middleware given the options
// of a concurrency one.
func (o concurrencyOptions) forRateLimit() error {
	switch {
	case o.ttlSet:
		return errors.New("limitkit: WithLeaseTTL configures a concurrency middleware (NewConcurrencyMiddleware), not a rate limit")
	case o.waitSet:
		return errors.New("limitkit: WithConcurrencyWait configures a concurrency middleware (NewConcurrencyMiddleware), not a rate limit")
	}
	return nil
}

// Backoff of a request waiting for a slot (WithConcurrencyWait): a slot
// frees when a request ends, which no store announces across instances,
// so the waiter asks again, soon at first and then less often.
const (
	waitFirstRetry = 5 * time.Millisecond
	waitMaxRetry   = 200 * time.Millisecond
)

// ConcurrencyMiddleware limits how many requests of one client are in
// flight at once (Stripe's concurrent-requests limiter): a request takes a
// lease of one of the client's N slots before its handler runs, and gives
// it back when the handler returns, also when it panics. A request that
// finds no free slot is refused with 429 (Retry-After:
// ConcurrencyRetryAfter, as a slot frees whenever a request ends), or held
// for a free slot up to WithConcurrencyWait. Build it once, at start-up,
// with NewConcurrencyMiddleware; it is safe for concurrent use.
//
// A client that goes away while its handler runs does not give its slot
// back before the handler returns: the work it started still runs, and
// counting it is what keeps one client from piling up work by opening and
// dropping connections. Handlers that stop on their request's context
// give the slot back as they stop.
//
// Clients are told apart, and budgets named, as by Middleware: WithKey
// (default ByIP), WithKeyErrorPolicy, WithName, WithExempt, WithShadow,
// WithDenyHandler, WithHeaderNames, WithIETFHeaders and WithLimiter apply
// alike. The scope rules of Middleware.Scope hold, with the limit's
// String, such as "10 concurrent", in place of the expression. WithCost,
// WithPlans, WithAlgorithm, WithBurst, WithResetEpoch, WithChargeWhen and
// WithTimeZone mean nothing for concurrency, and the constructor fails if
// given them.
//
// The headers: X-RateLimit-Limit is N and X-RateLimit-Remaining the slots
// free after this request took one; X-RateLimit-Reset is not sent, since a
// slot comes back when a request ends, which nothing foresees. With
// WithIETFHeaders, RateLimit-Policy carries q=N and
// qu="concurrent-requests", and RateLimit the free slots as r.
type ConcurrencyMiddleware struct {
	m    *Middleware // the key, name, exemption and refusal options
	conc Concurrency
	wait time.Duration
}

// NewConcurrencyMiddleware returns a middleware that lets at most n
// requests per client be in flight at once. The error quotes n when it is
// not positive, and names a bad option. Its limiter's store must implement
// ConcurrencyStore (the memory and Redis stores do).
func NewConcurrencyMiddleware(n int64, opts ...MiddlewareOption) (*ConcurrencyMiddleware, error) {
	return newConcurrencyMiddleware(1, n, opts, nil)
}

// MustNewConcurrencyMiddleware is NewConcurrencyMiddleware for set-up
// code: it panics with the error.
func MustNewConcurrencyMiddleware(n int64, opts ...MiddlewareOption) *ConcurrencyMiddleware {
	cm, err := newConcurrencyMiddleware(1, n, opts, nil)
	if err != nil {
		panic(err)
	}
	return cm
}

// NewConcurrencyMiddlewareSkip is NewConcurrencyMiddleware for adapters,
// as NewMiddlewareSkip is NewMiddleware: skip counts the functions between
// the user's function and this call.
func NewConcurrencyMiddlewareSkip(skip int, n int64, opts ...MiddlewareOption) (*ConcurrencyMiddleware, error) {
	return newConcurrencyMiddleware(skip+1, n, opts, nil)
}

// AdaptConcurrency is Adapt for concurrency limits: an adapter's
// constructor that returns an error (such as ginlimit.NewConcurrency)
// builds its middleware with it, and its errors name the call and n, such
// as `ginlimit.NewConcurrency(0): ...`. C, H and O are as for Adapt: the
// framework context passed to EnforceWith (any for none), the handler
// type, and the adapter's option type.
func AdaptConcurrency[C any, H any, O AdapterOption](constructor string, skip int, n int64, opts []O, wrap func(*ConcurrencyMiddleware) H) (H, error) {
	cm, err := newConcurrencyMiddleware(skip+1, n, opts, nativeType[C]())
	if err != nil {
		var none H
		return none, fmt.Errorf("%s(%d): %w", constructor, n, err)
	}
	return wrap(cm), nil
}

// MustAdaptConcurrency is AdaptConcurrency for an adapter's constructor
// that panics (such as ginlimit.Concurrency).
func MustAdaptConcurrency[C any, H any, O AdapterOption](constructor string, skip int, n int64, opts []O, wrap func(*ConcurrencyMiddleware) H) H {
	cm, err := newConcurrencyMiddleware(skip+1, n, opts, nativeType[C]())
	if err != nil {
		panic(fmt.Errorf("%s(%d): %w", constructor, n, err))
	}
	return wrap(cm)
}

// newConcurrencyMiddleware's skip counts frames above its caller, and
// native is the adapter's framework context, as for newMiddleware.
func newConcurrencyMiddleware[O AdapterOption](skip int, n int64, opts []O, native reflect.Type) (*ConcurrencyMiddleware, error) {
	mc, err := applyOptions(opts, native)
	if err != nil {
		return nil, err
	}
	var meaningless []error
	for _, o := range []struct {
		name  string
		given bool
	}{
		{"WithAlgorithm", mc.algorithm != 0}, {"WithBurst", mc.burst != 0}, {"WithCost", mc.cost != nil},
		{"WithPlans", mc.planOf != nil || mc.plans != nil}, {"WithResetEpoch", mc.resetEpoch},
		{"WithQuotaUnit", mc.quotaUnit != "" && mc.quotaUnit != QuotaUnitConcurrentRequests},
		{"WithChargeWhen", mc.chargeWhen != nil}, {"WithTimeZone", mc.zone != nil},
	} {
		name, given := o.name, o.given
		if given {
			meaningless = append(meaningless, fmt.Errorf("limitkit: %s means nothing for a concurrency limit; leave it out", name))
		}
	}
	if err := errors.Join(meaningless...); err != nil {
		return nil, err
	}
	conc, err := NewConcurrency(n, mc.conc.ttl)
	if err != nil {
		return nil, err
	}
	if l := mc.limiter; l != nil {
		if _, err := l.concurrencyStore(); err != nil {
			return nil, err
		}
	}
	if !mc.namesSet {
		mc.names = headerNames{HeaderLimit, HeaderRemaining, HeaderReset}
	}
	mc.problems = nil
	m := &Middleware{middlewareConfig: *mc}
	scope := mc.name
	if scope == "" {
		scope = deriveScope(skip, conc.String(), m.logger())
	}
	// A limit without a period: its IETF policy has no w, its RateLimit
	// no t, and its unit is concurrent requests (see headers.go).
	m.base = newRuleSet(Rule{Limits: []Limit{{Count: n}}}, scope, QuotaUnitConcurrentRequests)
	return &ConcurrencyMiddleware{m: m, conc: conc, wait: mc.conc.wait}, nil
}

// Scope returns the budget the middleware counts against (see
// Middleware.Scope).
func (cm *ConcurrencyMiddleware) Scope() string { return cm.m.base.scope }

// Limit returns the middleware's concurrency limit.
func (cm *ConcurrencyMiddleware) Limit() Concurrency { return cm.conc }

// String describes the middleware for logs: its scope and its limit.
func (cm *ConcurrencyMiddleware) String() string {
	return "limitkit concurrency middleware " + cm.m.base.scope + " " + cm.conc.String()
}

// Enforce is EnforceWith with no native value.
func (cm *ConcurrencyMiddleware) Enforce(r *http.Request, h http.Header) (Result, *Lease) {
	return cm.EnforceWith(r, h, nil)
}

// EnforceWith takes a slot for the request, waiting for one if
// WithConcurrencyWait allows, and writes the headers to h. When the
// result is Serve, the lease (nil for an exempt request, or one served in
// shadow mode without a slot) must be given back with Release once the
// handler has returned, also when it panics: defer it. Otherwise there is
// no lease, and the result is refused or Gone as for Middleware.Enforce.
// native is handed to the adapters' typed options, as by
// Middleware.EnforceWith. It never panics on a request.
func (cm *ConcurrencyMiddleware) EnforceWith(r *http.Request, h http.Header, native any) (Result, *Lease) {
	m := cm.m
	lim := m.limiter
	if lim == nil {
		lim = Default()
	}
	if (m.exempt != nil || m.nativeExempt != nil) && m.isExempt(lim, r, native) {
		return Result{Verdict: Serve}, nil
	}
	rs := &m.base
	k, id, _, err := m.keyOf(lim, rs, r, native)
	if err != nil {
		return m.unidentified(err), nil
	}
	key := k.String()
	ctx := r.Context()
	var deadline time.Time
	backoff := waitFirstRetry
	for {
		o, lease := lim.acquire(ctx, rs.scope, id, key, cm.conc)
		if o.stopped() {
			return m.stopped(lim, rs, o), nil
		}
		decided := o.action == ActionStore || o.action == ActionFallback
		if decided && !o.d.Allowed && cm.wait > 0 && !m.shadow {
			if deadline.IsZero() {
				deadline = lim.now().Add(cm.wait)
			}
			if left := deadline.Sub(lim.now()); left > 0 {
				if err := m.hold(ctx, min(backoff, left)); err != nil {
					return ended(Result{Decision: o.d, DecidedBy: o.action}, err), nil
				}
				backoff = min(2*backoff, waitMaxRetry)
				continue
			}
		}
		if obs := lim.cfg.observer; obs != nil {
			obs.Observe(Event{
				Kind: EventDecision, Scope: rs.scope, Identity: id, Decision: o.d,
				Shadow: m.shadow && decided && !o.d.Allowed, DecidedBy: o.action, Latency: o.latency, Err: o.err,
			})
		}
		return cm.respond(lim, h, key, o), lease
	}
}

// respond turns an acquire into its result, as Middleware.respond does a
// check.
func (cm *ConcurrencyMiddleware) respond(lim *Limiter, h http.Header, key string, o outcome) Result {
	res := Result{Verdict: Serve, Decision: o.d, DecidedBy: o.action, Err: o.err}
	switch {
	case cm.m.shadow || o.action == ActionFailOpen:
		return res
	case o.action == ActionFailClosed:
		if h != nil {
			h[HeaderRetryAfter] = []string{strconv.FormatInt(max(ceilSeconds(lim.cfg.probe), 1), 10)}
		}
		res.Verdict, res.Status = Refuse, http.StatusServiceUnavailable
		return res
	}
	cm.writeHeaders(h, key, o.d)
	if !o.d.Allowed {
		res.Verdict, res.Status = Refuse, http.StatusTooManyRequests
	}
	return res
}

// writeHeaders sets the headers of a concurrency decision as the rate
// middleware's writeHeaders does (of two middlewares stacked on a route,
// the one with fewer left speaks; the IETF fields name the unit), less
// X-RateLimit-Reset: no one can tell when a slot comes back.
func (cm *ConcurrencyMiddleware) writeHeaders(h http.Header, key string, d Decision) {
	if h == nil {
		return
	}
	m := cm.m
	tighter := false
	if d.Allowed {
		r, ok := tightestSoFar(h, m.names.remaining)
		tighter = ok && r < d.Remaining
	}
	m.writeHeaders(h, &m.base, storeKey{id: key}, &d, 0)
	if n := m.names.reset; n != "" && !tighter {
		delete(h, n)
	}
}

// Release gives back the lease EnforceWith returned for r, once its
// handler has returned; a nil lease is nothing to give back. It does not
// wait for the client, which may have gone: the slot is released also
// then. A release the store fails is reported (EventStoreError) and the
// slot comes back when the lease expires; one of a lease lost to its TTL
// was reported when it was lost (EventLeaseLost).
func (cm *ConcurrencyMiddleware) Release(r *http.Request, lease *Lease) {
	if lease == nil {
		return
	}
	ctx := context.Background()
	if r != nil {
		ctx = r.Context()
	}
	_ = lease.Release(ctx)
}

// Refuse writes the response to a request EnforceWith refused, as
// Middleware.Refuse does; the JSON body names the limit, such as
// {"error":"rate limit exceeded","limit":"10 concurrent","retry_after":1}.
func (cm *ConcurrencyMiddleware) Refuse(w http.ResponseWriter, r *http.Request, res Result) {
	cm.m.Refuse(w, r, res)
}

// DenyNatively answers a refusal with the adapter's deny function, as
// Middleware.DenyNatively does.
func (cm *ConcurrencyMiddleware) DenyNatively(native any, res Result) (answered bool, err error) {
	return cm.m.DenyNatively(native, res)
}

// Handler wraps next so that at most the limit's requests per client run
// in it at once; it is what chilimit.Concurrency returns. Each request's
// slot is given back when next returns or panics.
func (cm *ConcurrencyMiddleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, lease := cm.Enforce(r, w.Header())
		switch res.Verdict {
		case Serve:
			defer cm.Release(r, lease)
			next.ServeHTTP(w, r)
		case Refuse:
			cm.Refuse(w, r, res)
		default: // Gone
			w.WriteHeader(res.Status)
		}
	})
}
