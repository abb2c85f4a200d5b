package core

// A middleware's budget beyond charging every request: charging only the
// requests whose response matches (WithChargeWhen), and looking at the
// budget a request would be charged to without charging it (Peek).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
)

// Response is what an adapter saw of the response to a request whose
// middleware charges by outcome (see WithChargeWhen and NativeChargeWhen),
// for Middleware.Finish.
type Response struct {
	// Status is the response's status: the one written, or the one the
	// framework will write (200 if the handler wrote none; for Echo, the
	// code of the error the handler returned).
	Status int
	// Err is the handler's error, for frameworks whose handlers return one.
	Err error
	// Written reports whether the handler wrote a status before it
	// returned.
	Written bool
	// Panicked reports that the handler panicked.
	Panicked bool
}

// WithChargeWhen makes the middleware count only the requests whose
// response matches: match gets the response's status, and a request is
// charged when it returns true, such as a failed login's 401. Each request
// is still checked before its handler runs, by reserving its cost (see
// Limiter.Reserve), so that concurrent requests cannot all slip past the
// limit between the check and the charge: of 20 wrong passwords sent at
// once against 5/minute, at most 5 reach the handler. After the handler,
// the reservation is kept when the response matches and cancelled when it
// does not; a refused request is never charged.
//
// A handler that panics is charged, and so is a request whose client went
// away before a status was written: neither outcome is known, and an
// attacker must not escape the count by crashing the handler or hanging
// up early. The rate-limit headers are written before the handler runs,
// so Remaining counts the request as charged.
//
// The limiter's store must implement QuotaStore (both of this module's
// stores do); NewMiddleware fails if WithLimiter's does not, and a default
// limiter whose store does not refuses the requests with 500.
func WithChargeWhen(match func(status int) bool) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		if match == nil {
			c.problem("limitkit: WithChargeWhen(nil): give a function of the status")
			return
		}
		c.chargeWhen = func(_ any, resp Response) bool { return match(resp.Status) }
	})
}

// NativeChargeWhen is the ChargeWhen option of an adapter whose framework
// context is C: WithChargeWhen with match reading the context, and the
// response, after the handler ran. option names it in the errors, such as
// "ginlimit.ChargeWhen"; the adapter hands the context to Finish. Where
// the native value is not a C, every request is charged.
func NativeChargeWhen[C comparable](option string, match func(c C, resp Response) bool) AdapterOption {
	if match == nil {
		return invalid("%s(nil): give a function of the response", option)
	}
	return native[C](option, func(c *middlewareConfig) {
		c.chargeWhen = func(native any, resp Response) bool {
			n, ok := nativeOf[C](native)
			return !ok || match(n, resp)
		}
	})
}

// ChargesByOutcome reports whether the middleware charges by outcome
// (WithChargeWhen): its adapter must then call Finish after the handler of
// every request Enforce served.
func (m *Middleware) ChargesByOutcome() bool { return m.chargeWhen != nil }

// Finish settles the charge of a request that Enforce served under
// WithChargeWhen, once its handler has run (or panicked): it keeps the
// charge if the response matches, the handler panicked or the client went
// away before a status was written, and gives it back otherwise. It does
// nothing for other requests and middlewares, and never panics. The charge
// is settled even if the request's context is done.
func (m *Middleware) Finish(r *http.Request, res Result, native any, resp Response) {
	rv := res.reservation
	if rv == nil {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if resp.Panicked || !resp.Written && r.Context().Err() != nil || m.matches(rv.lim, native, resp) {
		_ = rv.Settle(ctx, rv.estimate) // keep it all: marks it settled
		return
	}
	_ = rv.Cancel(ctx) // a failure is reported to the observer by the limiter
}

// matches runs the charge function; one that panics charges.
func (m *Middleware) matches(lim *Limiter, native any, resp Response) (charge bool) {
	defer func() {
		if p := recover(); p != nil {
			charge = true
			_ = m.panicked(lim, &m.chargePanicked, "charge", p)
		}
	}()
	return m.chargeWhen(native, resp)
}

// reserving says whether requests under rule are reserved rather than
// taken: under WithChargeWhen, and under a leaky bucket whose store can
// give a slot back, for a client that leaves while its request is held.
func (m *Middleware) reserving(lim *Limiter, rule Rule) bool {
	return m.chargeWhen != nil || rule.Algorithm == LeakyBucket && lim.quota
}

// reserved finishes the result of a reserving check: a charged request that
// is not served (its client left during the hold, or its deadline passed)
// is given back at once; one served under WithChargeWhen carries its
// reservation to Finish.
func (m *Middleware) reserved(ctx context.Context, lim *Limiter, key storeKey, rule Rule, cost int64, o outcome, res Result) Result {
	if !o.d.Allowed || o.action == ActionFailOpen || o.action == ActionFailClosed {
		return res
	}
	rv := lim.reservation(o, key.String(), rule, cost)
	switch {
	case res.Verdict != Serve:
		_ = rv.Cancel(context.WithoutCancel(ctx))
	case m.chargeWhen != nil:
		res.reservation = rv
	}
	return res
}

// Usage is a client's budget as it stands, from Middleware.Peek.
type Usage struct {
	// Scope is the budget the request would be charged to: the
	// middleware's scope, with "/" and the plan for a plan's limits.
	Scope string
	// Plan is the request's plan (WithPlans), "" for the middleware's own
	// limits.
	Plan string
	// Decision is what a request of cost 1 would get now, charging
	// nothing; for FailOpen, the zero Decision but Allowed and Limit.
	Decision Decision
	// DecidedBy says whether the store or the failure policy answered.
	DecidedBy Action
}

// Remaining is how many requests of cost 1 the budget admits now.
func (u Usage) Remaining() int64 {
	if u.Decision.Allowed && u.DecidedBy != ActionFailOpen {
		return u.Decision.Remaining + 1 // Remaining is what a request would leave
	}
	return u.Decision.Remaining
}

// Peek looks at the budget a request like r would be charged to, without
// charging it: the same plan (WithPlans), the same key function and key
// error policy, at cost 1 (the cost function is not asked: r is a request
// for the usage, not for the route). It lets an app answer GET /usage for
// another route's budget, with that route's middleware. Exemptions are not
// asked either. Peek is not a request: the observer hears of no decision.
// The error is the key function's (under KeyErrorServe or KeyErrorRefuse),
// the limiter's (FailClosed, a closed limiter, a store that does not
// implement QuotaStore: ErrNoQuota) or the request context's.
func (m *Middleware) Peek(r *http.Request) (Usage, error) { return m.PeekWith(r, nil) }

// PeekWith is Peek for adapters, with the native value as EnforceWith's.
func (m *Middleware) PeekWith(r *http.Request, native any) (Usage, error) {
	lim := m.limiter
	if lim == nil {
		lim = Default()
	}
	rs, plan := &m.base, ""
	if m.planOf != nil {
		if p := m.planFor(lim, r, native); p != "" {
			if prs, ok := m.planSets[p]; ok {
				rs, plan = prs, p
			}
		}
	}
	u := Usage{Scope: rs.scope, Plan: plan}
	key, id, _, err := m.keyAndCost(lim, rs, r, native, false)
	if err != nil {
		return u, err
	}
	rule := rs.ruleFor(lim)
	o := lim.check(r.Context(), opPeek, rs.scope, id, key, rule, 1)
	if o.stopped() {
		return u, o.err
	}
	u.DecidedBy = o.action
	switch o.action {
	case ActionFailOpen:
		u.Decision = Decision{Allowed: true, Limit: rule.Limits[0]}
	case ActionFailClosed:
		return u, unavailable(o.err)
	default:
		u.Decision = o.d
	}
	return u, nil
}

// statusWriter records the status of a response for Finish, for core's own
// Handler. It passes Flush, Hijack and Unwrap on, so that streaming,
// websockets and http.ResponseController keep working.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("limitkit: the response writer %T cannot be hijacked", w.ResponseWriter)
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveThenFinish serves r with next through a status-recording writer and
// then settles its charge (see Finish), also if next panics, which goes on
// up the stack.
func (m *Middleware) serveThenFinish(next http.Handler, w http.ResponseWriter, r *http.Request, res Result) {
	sw := &statusWriter{ResponseWriter: w}
	done := false
	defer func() {
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		m.Finish(r, res, nil, Response{Status: status, Written: sw.status != 0, Panicked: !done})
	}()
	next.ServeHTTP(sw, r)
	done = true
}
