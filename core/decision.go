package core

import "time"

// Decision is the outcome of one check.
type Decision struct {
	// Allowed reports whether the request was admitted (and charged).
	Allowed bool
	// Limit is the limit that decided: the one that denied the request, or,
	// when it was admitted, the one with the fewest requests left.
	Limit Limit
	// Index is the deciding limit's position in the rule's Limits, so that
	// a rule listing one limit twice still names the one that decided.
	Index int
	// Remaining is how many more requests of cost 1 the deciding limit would
	// admit now.
	Remaining int64
	// ResetAfter is how long until the deciding limit is fully replenished
	// if no other traffic comes.
	ResetAfter time.Duration
	// RetryAfter is, for a denied request, the earliest time from now at which
	// the same request would be admitted if no other traffic came. It is zero
	// for admitted requests and for requests that can never be admitted.
	RetryAfter time.Duration
	// Delay is how long to hold an admitted request before serving it; only
	// LeakyBucket sets it.
	Delay time.Duration
	// Never reports that the request's cost exceeds what the deciding limit can
	// ever admit (its count, or its burst for the buckets): retrying is futile.
	// The middleware refuses such a request with 413 and no Retry-After.
	Never bool
	// Concurrency reports a decision of a concurrency limit (Limiter.Acquire,
	// ConcurrencyMiddleware): Limit.Count is how many requests may be in
	// flight (Limit.Period is zero), Remaining how many slots are free;
	// the unit is concurrent requests, not requests per period.
	Concurrency bool
}
