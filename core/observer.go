package core

import (
	"fmt"
	"log/slog"
	"time"
)

// Observer receives every decision a limiter makes and every failure of its
// store, for metrics (see packages promlimit and otellimit), logs or tests.
// Observe runs on the request's goroutine, so it must be quick and safe for
// concurrent use; the Event is passed by value so that observing costs no
// allocation.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// EventKind says what an Event reports.
type EventKind uint8

// The kinds of event.
const (
	// EventDecision: a check was decided, by the store or by the failure
	// policy (see Event.DecidedBy).
	EventDecision EventKind = iota
	// EventStoreError: one call of the store failed, timed out or panicked,
	// or found one key's state corrupt (Err wraps ErrCorruptState; the store
	// is not marked down for that).
	EventStoreError
	// EventStoreDown: the store failed and the limiter now applies its
	// failure policy until the store answers a probe.
	EventStoreDown
	// EventStoreUp: the store answered a probe; the limiter uses it again.
	EventStoreUp
	// EventConfigError: a middleware's rule cannot be enforced by the
	// limiter that checks it, such as a default limiter installed by
	// SetDefault after the routes were built, whose algorithm cannot hold
	// the rule. Err says why. It is a mistake in set-up, not a failure of
	// the store: the middleware refuses the rule's requests with 500 and
	// reports this once per rule and limiter, with no EventDecision.
	EventConfigError
)

var eventKindNames = [...]string{"decision", "store-error", "store-down", "store-up", "config-error"}

// String returns the kind's name, such as "store-down".
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one thing an Observer hears about.
//
// Scope and Identity never carry a secret: identities from API keys and
// tokens are hashed before any event sees them. Identity may be a client IP,
// so it suits logs but not metric labels (one series per client would
// exhaust any metrics backend). Scope and Route are set by the app's code
// (names, limits, routes), never by a client, so their number is bounded
// by the code: those are the labels.
type Event struct {
	Kind EventKind
	// Scope is the budget the check counted against: the middleware's name
	// (WithName), or its derived scope, with "/plan" for a plan's rule. It
	// is empty for checks made by calling Limiter.Take directly.
	Scope string
	// Identity is who was checked, as the key function gave it (hashed for
	// secrets); empty for Limiter.Take and for store up/down events.
	Identity string
	// Route is the route pattern the request matched, for EventDecision
	// from a middleware, where the router has told it by the time the
	// middleware runs: c.FullPath() on Gin, c.Path() on Echo, r.Pattern on
	// a ServeMux and on chi (which sets it once it has routed: a middleware
	// of r.Use on chi's root router runs before that). It is empty where
	// unknown, and for a request that matched no route. The app's routes
	// set it, never the client, so unlike Identity it suits a metric label.
	Route string
	// Decision is the store's decision for EventDecision; for
	// ActionFailOpen and ActionFailClosed it is the zero Decision.
	Decision Decision
	// Shadow reports a request the decision denied but that was served
	// because the middleware runs WithShadow.
	Shadow bool
	// DecidedBy says who decided: the store, or the failure policy.
	DecidedBy Action
	// Latency is how long the store took to answer, or to fail; zero when it
	// was not asked (the store was down or the caller gave up first).
	Latency time.Duration
	// Err is the store's error for EventStoreError and EventStoreDown, why
	// the rule cannot be enforced for EventConfigError, and, for a decision
	// the failure policy made, why.
	Err error
}

// WithObserver makes the limiter report to o. Given several times, every
// observer hears every event, in order.
func WithObserver(o Observer) Option {
	return limiterOption(func(c *config) {
		if o == nil {
			return
		}
		switch prev := c.observer.(type) {
		case nil:
			c.observer = o
		case observers:
			c.observer = append(prev[:len(prev):len(prev)], o)
		default:
			c.observer = observers{prev, o}
		}
	})
}

type observers []Observer

func (os observers) Observe(e Event) {
	for _, o := range os {
		o.Observe(e)
	}
}

// WithLogger sets where the limiter logs store failures and recoveries
// (default: slog.Default() at the time of logging).
func WithLogger(l *slog.Logger) Option {
	return limiterOption(func(c *config) { c.logger = l })
}

func (l *Limiter) emit(e Event) {
	if o := l.cfg.observer; o != nil {
		o.Observe(e)
	}
}
