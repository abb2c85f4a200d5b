// Package promlimit exports a limiter's decisions and store failures as
// Prometheus metrics. One line sets it up:
//
//	core.SetDefault(core.New(promlimit.Observe(prometheus.DefaultRegisterer)))
//
// The metrics:
//
//	limitkit_requests_total{scope, route, result, decided_by}
//	    checked requests; result is allowed, denied or shadow_denied
//	    (denied, but served by a middleware in shadow mode); decided_by is
//	    store, fallback, fail_open or fail_closed (see core.Action).
//	limitkit_store_errors_total{scope}
//	    failed, timed-out or panicking calls of the store.
//	limitkit_store_transitions_total{to}
//	    changes of the store's state: to="down" when a limiter starts
//	    applying its failure policy, to="up" when the store is back.
//	limitkit_config_errors_total{scope}
//	    rules a limiter cannot enforce, once per rule and limiter; their
//	    requests are refused with 500.
//	limitkit_store_latency_seconds
//	    how long the store took to answer.
//
// The labels are bounded by the app's code, never by its clients. scope is
// the budget: the middleware's name (core.WithName), with "/" and the plan
// for a plan's rule, or else the short hash of its derived scope (see
// core.Middleware.Scope); name your middlewares to make it readable. route
// is the route pattern the request matched, such as "/items/:id", where
// the router has told it (core.Event.Route): "" for a request that matched
// no route, for a middleware that runs before routing (chi's root r.Use)
// and for Limiter.Take. Neither ever holds the request's path, method or
// identity, so the number of series is at most the number of middlewares
// times the routes each covers, times the results and deciders, however
// many clients, paths or methods arrive.
package promlimit

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/limitkit/limitkit/core"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector fed by a limiter as its core.Observer.
// Its methods are safe for concurrent use; observing an event costs no
// allocation once its scope has been seen.
type Collector struct {
	requests    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	transitions *prometheus.CounterVec
	config      *prometheus.CounterVec
	latency     prometheus.Histogram
	down, up    prometheus.Counter

	scopes sync.Map // scope → *scopeMetrics
}

const (
	resultAllowed = iota
	resultDenied
	resultShadowDenied
	results
)

var (
	resultNames = [results]string{"allowed", "denied", "shadow_denied"}
	// decidedByNames is indexed by core.DecidedBy: its String, with the
	// underscores Prometheus label values use by convention.
	decidedByNames = func() (names [core.ActionFallback + 1]string) {
		for a := range names {
			names[a] = strings.ReplaceAll(core.Action(a).String(), "-", "_")
		}
		return names
	}()
)

// scopeMetrics caches one scope's series, so that observing does not look
// labels up in the vectors on every request.
type scopeMetrics struct {
	scope  string
	routes sync.Map // route → *routeMetrics
	errors prometheus.Counter
}

// routeMetrics caches the request series of one scope and route.
type routeMetrics struct {
	route    string
	requests [results][len(decidedByNames)]atomic.Pointer[prometheus.Counter]
}

// NewCollector returns a collector; register it, and give it to a limiter
// with core.WithObserver. Observe does both in one call.
func NewCollector() *Collector {
	c := &Collector{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "limitkit_requests_total",
			Help: "Requests checked by a rate limit, by scope, route pattern, result (allowed, denied, shadow_denied) and what decided (store, fallback, fail_open, fail_closed).",
		}, []string{"scope", "route", "result", "decided_by"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "limitkit_store_errors_total",
			Help: "Calls of the rate-limit store that failed, timed out or panicked, by scope.",
		}, []string{"scope"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "limitkit_store_transitions_total",
			Help: "Changes of the rate-limit store's state: to=down when a limiter starts applying its failure policy, to=up when the store answers again.",
		}, []string{"to"}),
		config: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "limitkit_config_errors_total",
			Help: "Rules a limiter cannot enforce (such as after SetDefault with other defaults), by scope: counted once per rule and limiter; their requests are refused with 500 until the configuration is fixed.",
		}, []string{"scope"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "limitkit_store_latency_seconds",
			Help:    "How long the rate-limit store took to answer a check.",
			Buckets: []float64{.00001, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	c.down = c.transitions.WithLabelValues("down")
	c.up = c.transitions.WithLabelValues("up")
	return c
}

// Observe registers a collector with reg (prometheus.DefaultRegisterer if
// nil) and returns the option that makes a limiter report to it. Called
// again with the same registry, for a second limiter, it reuses the
// collector already there. It panics if reg refuses the collector for
// another reason, such as a clash with metrics of the same names: that is a
// set-up mistake.
func Observe(reg prometheus.Registerer) core.Option {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	c := NewCollector()
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		existing, ok := (*Collector)(nil), false
		if errors.As(err, &are) {
			existing, ok = are.ExistingCollector.(*Collector)
		}
		if !ok {
			panic(fmt.Errorf("promlimit.Observe: %w", err))
		}
		c = existing
	}
	return core.WithObserver(c)
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.requests.Describe(ch)
	c.errors.Describe(ch)
	c.transitions.Describe(ch)
	c.config.Describe(ch)
	c.latency.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.requests.Collect(ch)
	c.errors.Collect(ch)
	c.transitions.Collect(ch)
	c.config.Collect(ch)
	c.latency.Collect(ch)
}

// Observe implements core.Observer.
func (c *Collector) Observe(e core.Event) {
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
		sm := c.scope(e.Scope)
		sm.route(e.Route).counter(c, sm.scope, res, e.DecidedBy).Inc()
		if e.Latency > 0 {
			c.latency.Observe(e.Latency.Seconds())
		}
	case core.EventStoreError:
		c.scope(e.Scope).errors.Inc()
		if e.Latency > 0 {
			c.latency.Observe(e.Latency.Seconds())
		}
	case core.EventStoreDown:
		c.down.Inc()
	case core.EventStoreUp:
		c.up.Inc()
	case core.EventConfigError:
		c.config.WithLabelValues(e.Scope).Inc()
	}
}

func (c *Collector) scope(s string) *scopeMetrics {
	if m, ok := c.scopes.Load(s); ok {
		return m.(*scopeMetrics)
	}
	m, _ := c.scopes.LoadOrStore(s, &scopeMetrics{scope: s, errors: c.errors.WithLabelValues(s)})
	return m.(*scopeMetrics)
}

func (m *scopeMetrics) route(r string) *routeMetrics {
	if rm, ok := m.routes.Load(r); ok {
		return rm.(*routeMetrics)
	}
	rm, _ := m.routes.LoadOrStore(r, &routeMetrics{route: r})
	return rm.(*routeMetrics)
}

func (m *routeMetrics) counter(c *Collector, scope string, res int, a core.Action) prometheus.Counter {
	if int(a) >= len(decidedByNames) {
		a = core.ActionStore
	}
	cell := &m.requests[res][a]
	if p := cell.Load(); p != nil {
		return *p
	}
	ctr := c.requests.WithLabelValues(scope, m.route, resultNames[res], decidedByNames[a])
	cell.Store(&ctr)
	return ctr
}
