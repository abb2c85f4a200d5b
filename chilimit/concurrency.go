package chilimit

import (
	"net/http"

	"github.com/limitkit/limitkit/core"
)

// Concurrency returns a chi middleware that lets at most n requests per
// client be in flight at once (see core.ConcurrencyMiddleware): a request
// over it is refused with 429 and Retry-After: 1, or held for a slot up to
// core.WithConcurrencyWait. The request's slot is given back when the next
// handler returns, also when it panics. The options are those of Limit
// (core.WithKey, ByRoute, core.WithName, ...) and core.WithLeaseTTL; it
// panics on a bad n or option, naming the call, such as
// `chilimit.Concurrency(0): ...`.
//
//	r.With(chilimit.Concurrency(2)).Post("/reports", buildReport)
func Concurrency(n int64, opts ...Option) func(http.Handler) http.Handler {
	return core.MustAdaptConcurrency[any]("chilimit.Concurrency", 1, n, opts, concurrencyHandler)
}

// NewConcurrency is Concurrency returning the error instead of panicking.
func NewConcurrency(n int64, opts ...Option) (func(http.Handler) http.Handler, error) {
	return core.AdaptConcurrency[any]("chilimit.NewConcurrency", 1, n, opts, concurrencyHandler)
}

func concurrencyHandler(cm *core.ConcurrencyMiddleware) func(http.Handler) http.Handler {
	return cm.Handler
}
