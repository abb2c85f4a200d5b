// Package otellimit records a limiter's decisions and store failures as
// OpenTelemetry metrics, as promlimit does for Prometheus. One line sets it
// up, on the global MeterProvider (or pass your own):
//
//	core.SetDefault(core.New(otellimit.Observe(nil)))
//
// The instruments, on the meter named MeterName, follow OpenTelemetry's
// naming conventions (dot-separated names, units in UCUM with annotations in
// braces, no unit in the name, attributes in dot and snake case):
//
//	limitkit.decisions (counter, {decision})
//	    checked requests, by limitkit.scope, http.route, limitkit.result
//	    (allowed, denied or shadow_denied: denied, but served by a
//	    middleware in shadow mode) and limitkit.decided_by (store,
//	    fallback, fail_open or fail_closed; see core.Action).
//	limitkit.store.errors (counter, {error})
//	    failed, timed-out or panicking calls of the store, by limitkit.scope.
//	limitkit.store.transitions (counter, {transition})
//	    changes of the store's state, by limitkit.store.state: down when a
//	    limiter starts applying its failure policy, up when the store is back.
//	limitkit.config.errors (counter, {error})
//	    rules a limiter cannot enforce, once per rule and limiter, by
//	    limitkit.scope; their requests are refused with 500.
//	limitkit.store.duration (histogram, s)
//	    how long the store took to answer.
//
// The attributes are bounded by the app's code, never by its clients.
// limitkit.scope is the budget: the middleware's name (core.WithName), with
// "/" and the plan for a plan's rule, or else the short hash of its derived
// scope (see core.Middleware.Scope); name your middlewares to make it
// readable. http.route is the route pattern the request matched, such as
// "/items/:id", where the router has told it (core.Event.Route); it is
// left out for a request that matched no route, for a middleware that runs
// before routing (chi's root r.Use) and for Limiter.Take. Neither ever holds
// the request's path, method or identity, so the number of series is at
// most the number of middlewares times the routes each covers, times the
// results and deciders, however many clients, paths or methods arrive.
package otellimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/limitkit/limitkit/core"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the name of the meter, the instrumentation scope, that the
// instruments belong to.
const MeterName = "github.com/limitkit/limitkit/otellimit"

// The attribute keys.
const (
	AttrScope     = attribute.Key("limitkit.scope")
	AttrRoute     = attribute.Key("http.route") // OpenTelemetry's semantic convention
	AttrResult    = attribute.Key("limitkit.result")
	AttrDecidedBy = attribute.Key("limitkit.decided_by")
	AttrState     = attribute.Key("limitkit.store.state")
)

// Metrics is a core.Observer that records to OpenTelemetry instruments. Its
// methods are safe for concurrent use.
type Metrics struct {
	decisions   metric.Int64Counter
	errors      metric.Int64Counter
	transitions metric.Int64Counter
	config      metric.Int64Counter
	duration    metric.Float64Histogram
	down, up    []metric.AddOption

	scopes sync.Map // scope → *scopeAttrs
}

const (
	resultAllowed = iota
	resultDenied
	resultShadowDenied
	results
)

var (
	resultNames = [results]string{"allowed", "denied", "shadow_denied"}
	// decidedByNames is indexed by core.Action: its String, in snake case.
	decidedByNames = func() (names [core.ActionFallback + 1]string) {
		for a := range names {
			names[a] = strings.ReplaceAll(core.Action(a).String(), "-", "_")
		}
		return names
	}()
)

// scopeAttrs caches one scope's attribute sets, so that recording does not
// build them on every request.
type scopeAttrs struct {
	scope  string
	only   []metric.AddOption // limitkit.scope alone
	routes sync.Map           // route → *routeAttrs
}

// routeAttrs caches the decision attributes of one scope and route.
type routeAttrs struct {
	route string
	cells [results][len(decidedByNames)]atomic.Pointer[[]metric.AddOption]
}

// New returns the instruments on mp's meter MeterName; nil mp means the
// global MeterProvider (otel.GetMeterProvider). Give the result to a
// limiter with core.WithObserver; Observe does both in one call. The error
// is the meter's, for an instrument it refused.
func New(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(MeterName)
	m := &Metrics{
		down: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrState.String("down")))},
		up:   []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrState.String("up")))},
	}
	var errs [5]error
	m.decisions, errs[0] = meter.Int64Counter("limitkit.decisions", metric.WithUnit("{decision}"),
		metric.WithDescription("Requests checked by a rate limit, by scope, route pattern, result (allowed, denied, shadow_denied) and what decided (store, fallback, fail_open, fail_closed)."))
	m.errors, errs[1] = meter.Int64Counter("limitkit.store.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Calls of the rate-limit store that failed, timed out or panicked, by scope."))
	m.transitions, errs[2] = meter.Int64Counter("limitkit.store.transitions", metric.WithUnit("{transition}"),
		metric.WithDescription("Changes of the rate-limit store's state: down when a limiter starts applying its failure policy, up when the store answers again."))
	m.config, errs[3] = meter.Int64Counter("limitkit.config.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Rules a limiter cannot enforce (such as after SetDefault with other defaults), by scope: counted once per rule and limiter; their requests are refused with 500 until the configuration is fixed."))
	m.duration, errs[4] = meter.Float64Histogram("limitkit.store.duration", metric.WithUnit("s"),
		metric.WithDescription("How long the rate-limit store took to answer a check."),
		metric.WithExplicitBucketBoundaries(.00001, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("otellimit: %w", err)
	}
	return m, nil
}

// Observe returns the option that makes a limiter record to mp's
// instruments (nil means the global MeterProvider). Called again with the
// same provider, for a second limiter, it records to the same instruments:
// a meter gives one instrument per name. It panics if the meter refuses an
// instrument: that is a set-up mistake.
func Observe(mp metric.MeterProvider) core.Option {
	m, err := New(mp)
	if err != nil {
		panic(fmt.Errorf("otellimit.Observe: %w", err))
	}
	return core.WithObserver(m)
}

// Observe implements core.Observer.
func (m *Metrics) Observe(e core.Event) {
	ctx := context.Background()
	switch e.Kind {
	case core.EventDecision:
		res := resultAllowed
		switch {
		case e.Shadow:
			res = resultShadowDenied
		case e.DecidedBy == core.ActionFailClosed,
			(e.DecidedBy == core.ActionStore || e.DecidedBy == core.ActionFallback) && !e.Decision.Allowed:
			res = resultDenied
		}
		m.decisions.Add(ctx, 1, m.scope(e.Scope).route(e.Route).options(e.Scope, res, e.DecidedBy)...)
		if e.Latency > 0 {
			m.duration.Record(ctx, e.Latency.Seconds())
		}
	case core.EventStoreError:
		m.errors.Add(ctx, 1, m.scope(e.Scope).only...)
		if e.Latency > 0 {
			m.duration.Record(ctx, e.Latency.Seconds())
		}
	case core.EventStoreDown:
		m.transitions.Add(ctx, 1, m.down...)
	case core.EventStoreUp:
		m.transitions.Add(ctx, 1, m.up...)
	case core.EventConfigError:
		m.config.Add(ctx, 1, m.scope(e.Scope).only...)
	}
}

func (m *Metrics) scope(s string) *scopeAttrs {
	if sa, ok := m.scopes.Load(s); ok {
		return sa.(*scopeAttrs)
	}
	sa, _ := m.scopes.LoadOrStore(s, &scopeAttrs{
		scope: s,
		only:  []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrScope.String(s)))},
	})
	return sa.(*scopeAttrs)
}

func (sa *scopeAttrs) route(r string) *routeAttrs {
	if ra, ok := sa.routes.Load(r); ok {
		return ra.(*routeAttrs)
	}
	ra, _ := sa.routes.LoadOrStore(r, &routeAttrs{route: r})
	return ra.(*routeAttrs)
}

// options returns the attributes of a decision, made once per cell.
func (ra *routeAttrs) options(scope string, res int, a core.Action) []metric.AddOption {
	if int(a) >= len(decidedByNames) {
		a = core.ActionStore
	}
	cell := &ra.cells[res][a]
	if p := cell.Load(); p != nil {
		return *p
	}
	kvs := []attribute.KeyValue{AttrScope.String(scope), AttrResult.String(resultNames[res]), AttrDecidedBy.String(decidedByNames[a])}
	if ra.route != "" {
		kvs = append(kvs, AttrRoute.String(ra.route))
	}
	opts := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kvs...))}
	cell.Store(&opts)
	return opts
}
