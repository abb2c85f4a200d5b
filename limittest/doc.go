// Package limittest helps an app test its rate limits: a clock the test
// drives, a fresh default limiter per test, a switch that turns limiting
// off, and assertions on the rate-limit headers.
//
// Every budget lives in a limiter's store, and the adapters use the package
// default (core.Default) unless given one with core.WithLimiter: without
// help, a test that spends a budget leaves it spent for the next. Isolate
// gives a test a fresh default limiter, on a driven clock, and puts the old
// one back when the test ends:
//
//	func TestLogin(t *testing.T) {
//		clock := limittest.Isolate(t)
//		// ... five failed logins, the sixth is refused ...
//		clock.Advance(time.Minute)
//		// ... and a minute later it is admitted again
//	}
//
// The default limiter is one per process, so Isolate refuses a parallel
// test (it panics, as t.Setenv does). A parallel test builds its router
// with a limiter of its own, from NewLimiter, passed with core.WithLimiter.
//
// Disable turns limiting off for a test (every request admitted, the
// headers still sent and consistent), and Unlimited is its store, for a
// limiter of the test's own. AssertAllowed, AssertLimited and AssertHeaders
// check a response's X-RateLimit-* fields, Retry-After and the IETF
// RateLimit and RateLimit-Policy fields, which are parsed as structured
// fields (RFC 9651), so the checks do not depend on the order or the set
// of their parameters.
package limittest
