// Package promlimit exports a limiter's decisions and store failures as
// Prometheus metrics. One line sets it up:
//
//	core.SetDefault(core.New(promlimit.Observe(prometheus.DefaultRegisterer)))
//
// The metrics:
//
//	limitkit_requests_total{scope, result, decided_by}
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
// scope is the middleware's name (core.WithName) or derived scope, so the
// number of series grows with the number of limits in the code, never with
// the number of clients; name your middlewares to make the label readable.
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
	scope    string
	requests [results][len(decidedByNames)]atomic.Pointer[prometheus.Counter]
	errors   prometheus.Counter
}

// NewCollector returns a collector; register it, and give it to a limiter
// with core.WithObserver. Observe does both in one call.
func NewCollector() *Collector {
	c := &Collector{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "limitkit_requests_total",
			Help: "Requests checked by a rate limit, by scope, result (allowed, denied, shadow_denied) and what decided (store, fallback, fail_open, fail_closed).",
		}, []string{"scope", "result", "decided_by"}),
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
		c.scope(e.Scope).counter(c, res, e.DecidedBy).Inc()
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

func (m *scopeMetrics) counter(c *Collector, res int, a core.Action) prometheus.Counter {
	if int(a) >= len(decidedByNames) {
		a = core.ActionStore
	}
	cell := &m.requests[res][a]
	if p := cell.Load(); p != nil {
		return *p
	}
	ctr := c.requests.WithLabelValues(m.scope, resultNames[res], decidedByNames[a])
	cell.Store(&ctr)
	return ctr
}
