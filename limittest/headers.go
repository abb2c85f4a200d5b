package limittest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

// Response is what the assertions read: a response a client got, or a
// recorder a handler wrote to (as Gin's, Echo's and chi's tests use).
type Response interface {
	*http.Response | *httptest.ResponseRecorder
}

// Check is one expectation on a response's rate-limit headers, given to
// AssertHeaders, AssertAllowed or AssertLimited.
type Check struct {
	check func(h http.Header) error
}

// Limit expects X-RateLimit-Limit to be n: the count of the limit that
// decided.
func Limit(n int64) Check { return intHeader(core.HeaderLimit, n) }

// Remaining expects X-RateLimit-Remaining to be n.
func Remaining(n int64) Check { return intHeader(core.HeaderRemaining, n) }

// Reset expects X-RateLimit-Reset to be d in whole seconds, rounded up, as
// the middleware sends it (the default, seconds from now).
func Reset(d time.Duration) Check { return intHeader(core.HeaderReset, ceilSeconds(d)) }

// RetryAfter expects Retry-After to be d in whole seconds, rounded up.
func RetryAfter(d time.Duration) Check { return intHeader(core.HeaderRetryAfter, ceilSeconds(d)) }

// Header expects the header name to be value exactly, for headers renamed
// with core.WithHeaderNames or any other.
func Header(name, value string) Check {
	return Check{func(h http.Header) error {
		if got, ok := one(h, name); !ok || got != value {
			return fmt.Errorf("%s is %s, want %q", http.CanonicalHeaderKey(name), show(h, name), value)
		}
		return nil
	}}
}

// NoHeader expects the response not to have the header name: no
// Retry-After on an admitted request, no X-RateLimit-* on an exempt one.
func NoHeader(name string) Check {
	return Check{func(h http.Header) error {
		if _, ok := h[http.CanonicalHeaderKey(name)]; ok {
			return fmt.Errorf("%s is %s, want none", http.CanonicalHeaderKey(name), show(h, name))
		}
		return nil
	}}
}

// Param expects the structured-field list in the header field (such as
// "RateLimit" or "RateLimit-Policy", sent with core.WithIETFHeaders) to
// have an item whose value is item (a policy's name, unquoted) with the
// integer parameter param equal to value:
//
//	limittest.Param("RateLimit-Policy", "quotes", "q", 100)
//	limittest.Param("RateLimit", "quotes", "r", 0)
//
// The field is parsed as RFC 9651 has it, so the order of the items and
// their parameters, and parameters the check does not name, do not matter.
func Param(field, item, param string, value int64) Check {
	return Check{func(h http.Header) error {
		raw, ok := h[http.CanonicalHeaderKey(field)]
		if !ok {
			return fmt.Errorf("%s is missing, want an item %q with %s=%d", http.CanonicalHeaderKey(field), item, param, value)
		}
		var items []Item
		for _, line := range raw {
			its, err := ParseList(line)
			if err != nil {
				return err
			}
			items = append(items, its...)
		}
		for _, it := range items {
			if it.Value != item {
				continue
			}
			got, isInt := it.Int(param)
			if isInt && got == value {
				return nil
			}
			return fmt.Errorf("%s is %s: item %q has %s=%s, want %d", http.CanonicalHeaderKey(field), show(h, field), item, param, paramText(it, param), value)
		}
		return fmt.Errorf("%s is %s: no item %q, want one with %s=%d", http.CanonicalHeaderKey(field), show(h, field), item, param, value)
	}}
}

func paramText(it Item, key string) string {
	if v, ok := it.Params[key]; ok {
		return v
	}
	return "(none)"
}

// AssertHeaders reports, with t.Errorf, every check the response fails, and
// any rate-limit header it sends that is not well formed: X-RateLimit-Limit
// a positive integer, X-RateLimit-Remaining an integer from 0 to the
// limit, X-RateLimit-Reset and Retry-After non-negative integers (a
// Retry-After of at least 1), RateLimit and RateLimit-Policy structured
// field lists. It reports whether all passed.
func AssertHeaders[R Response](t testing.TB, r R, checks ...Check) bool {
	t.Helper()
	_, h := read(r)
	return assert(t, h, checks)
}

// AssertAllowed is AssertHeaders for a request the limit admitted: the
// status is neither 429 nor 503, there is no Retry-After, and
// X-RateLimit-Limit and X-RateLimit-Remaining are sent.
func AssertAllowed[R Response](t testing.TB, r R, checks ...Check) bool {
	t.Helper()
	status, h := read(r)
	ok := true
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		t.Errorf("limittest: status %d %s, want the request admitted", status, http.StatusText(status))
		ok = false
	}
	base := []Check{NoHeader(core.HeaderRetryAfter), present(core.HeaderLimit), present(core.HeaderRemaining)}
	return assert(t, h, append(base, checks...)) && ok
}

// AssertLimited is AssertHeaders for a request the limit refused: status
// 429 Too Many Requests with a Retry-After of at least one second.
func AssertLimited[R Response](t testing.TB, r R, checks ...Check) bool {
	t.Helper()
	status, h := read(r)
	ok := true
	if status != http.StatusTooManyRequests {
		t.Errorf("limittest: status %d %s, want 429 Too Many Requests", status, http.StatusText(status))
		ok = false
	}
	return assert(t, h, append([]Check{present(core.HeaderRetryAfter)}, checks...)) && ok
}

func assert(t testing.TB, h http.Header, checks []Check) bool {
	t.Helper()
	ok := true
	for _, err := range wellFormed(h) {
		t.Errorf("limittest: %v", err)
		ok = false
	}
	for _, c := range checks {
		if err := c.check(h); err != nil {
			t.Errorf("limittest: %v", err)
			ok = false
		}
	}
	return ok
}

// read returns the status and the headers of r as the client sees them.
func read[R Response](r R) (int, http.Header) {
	switch r := any(r).(type) {
	case *http.Response:
		return r.StatusCode, r.Header
	case *httptest.ResponseRecorder:
		res := r.Result() // the headers as written, not as changed since
		return res.StatusCode, res.Header
	}
	panic("unreachable")
}

// wellFormed returns what is wrong with the rate-limit headers h sends.
func wellFormed(h http.Header) []error {
	var errs []error
	num := func(name string, min int64) (int64, bool) {
		v, ok := one(h, name)
		if !ok {
			if _, many := h[http.CanonicalHeaderKey(name)]; many {
				errs = append(errs, fmt.Errorf("%s is %s, want one value", http.CanonicalHeaderKey(name), show(h, name)))
			}
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			errs = append(errs, fmt.Errorf("%s is %q, want an integer of at least %d", http.CanonicalHeaderKey(name), v, min))
			return 0, false
		}
		return n, true
	}
	limit, hasLimit := num(core.HeaderLimit, 1)
	if rem, ok := num(core.HeaderRemaining, 0); ok && hasLimit && rem > limit {
		errs = append(errs, fmt.Errorf("%s is %d, more than %s %d", core.HeaderRemaining, rem, core.HeaderLimit, limit))
	}
	num(core.HeaderReset, 0)
	num(core.HeaderRetryAfter, 1)
	for _, f := range []string{"RateLimit", "RateLimit-Policy"} {
		for _, line := range h[http.CanonicalHeaderKey(f)] {
			if _, err := ParseList(line); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

func present(name string) Check {
	return Check{func(h http.Header) error {
		if _, ok := h[http.CanonicalHeaderKey(name)]; !ok {
			return fmt.Errorf("%s is missing", http.CanonicalHeaderKey(name))
		}
		return nil
	}}
}

func intHeader(name string, want int64) Check {
	return Check{func(h http.Header) error {
		got, ok := one(h, name)
		if !ok || got != strconv.FormatInt(want, 10) {
			return fmt.Errorf("%s is %s, want %d", http.CanonicalHeaderKey(name), show(h, name), want)
		}
		return nil
	}}
}

// one returns the header's value if it has exactly one.
func one(h http.Header, name string) (string, bool) {
	vs := h[http.CanonicalHeaderKey(name)]
	if len(vs) != 1 {
		return "", false
	}
	return vs[0], true
}

// show quotes the header's values for a message, or says it is missing.
func show(h http.Header, name string) string {
	vs, ok := h[http.CanonicalHeaderKey(name)]
	switch {
	case !ok:
		return "missing"
	case len(vs) == 1:
		return strconv.Quote(vs[0])
	}
	return fmt.Sprintf("%q", vs)
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
