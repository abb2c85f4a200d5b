package core

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The response headers the middleware writes by default. Go's http.Header
// keys are canonical, so they are spelt here as net/http stores them; clients
// read header names case-insensitively.
const (
	HeaderLimit      = "X-Ratelimit-Limit"     // the deciding limit's count
	HeaderRemaining  = "X-Ratelimit-Remaining" // requests left under it
	HeaderReset      = "X-Ratelimit-Reset"     // whole seconds until it is fully replenished, rounded up
	HeaderRetryAfter = "Retry-After"           // on refusals: whole seconds to wait, rounded up, at least 1
	// The IETF structured fields of draft-ietf-httpapi-ratelimit-headers-10,
	// sent with WithIETFHeaders.
	HeaderPolicy    = "Ratelimit-Policy"
	HeaderRateLimit = "Ratelimit"
)

// tightestKey is the entry of a response's header map in which the
// middlewares stacked on a route pass each other the remaining count of the
// tightest decision written so far. It is no valid header name (a NUL is
// in it), so net/http drops it from the response on HTTP/1 and HTTP/2: the
// header map, which every middleware of one response shares and no client
// can set, carries it without an allocation, where the request's context
// would cost two per request.
const tightestKey = "Limitkit\x00tightest"

type headerNames struct {
	limit, remaining, reset string
}

// WithHeaderNames replaces the names of the limit, remaining and reset
// headers (default X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset); an empty name leaves that header out, so
// WithHeaderNames("", "", "") sends none of them. Retry-After, a standard
// header, is always sent with a 429.
func WithHeaderNames(limit, remaining, reset string) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		// CanonicalHeaderKey keeps "" as it is.
		c.names = headerNames{http.CanonicalHeaderKey(limit), http.CanonicalHeaderKey(remaining), http.CanonicalHeaderKey(reset)}
		c.namesSet = true
	})
}

// WithResetEpoch sends X-RateLimit-Reset as the Unix time, in whole
// seconds, at which the deciding limit is fully replenished, as GitHub's API
// and slowapi send it, instead of the seconds from now (the default). The
// IETF fields' t stays relative, as the draft defines it. The time is the
// limiter's clock (WithClock), so that tests can drive it.
func WithResetEpoch() MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.resetEpoch = true })
}

// WithIETFHeaders adds the structured fields of the IETF draft
// (draft-ietf-httpapi-ratelimit-headers-10) to every limited response:
//
//	RateLimit-Policy: "default";q=100;w=60
//	RateLimit: "default";r=50;t=30
//
// The policy is named after WithName's name, or the plan, or "default"; a
// rule of several limits lists them all in RateLimit-Policy, with "-1",
// "-2", ... after the name, and RateLimit reports the one that decided.
// Windows are in whole seconds, rounded up.
func WithIETFHeaders() MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.ietf = true })
}

// limitText is one limit of a rule with its header values, made once at
// construction so that requests only format the numbers that change.
type limitText struct {
	count string // the X-RateLimit-Limit value
	item  string // `"name";r=`: the RateLimit item up to the remaining count
}

func newLimitTexts(limits []Limit, policy string) ([]limitText, string) {
	out := make([]limitText, len(limits))
	var pol strings.Builder
	for i, l := range limits {
		name := policy
		if len(limits) > 1 {
			name += "-" + strconv.Itoa(i+1)
		}
		out[i] = limitText{count: strconv.FormatInt(l.Count, 10), item: `"` + name + `";r=`}
		if i > 0 {
			pol.WriteString(", ")
		}
		pol.WriteString(`"` + name + `";q=` + strconv.FormatInt(l.Count, 10) + ";w=" + strconv.FormatInt(ceilSeconds(l.Period), 10))
	}
	return out, pol.String()
}

// ceilSeconds is d in whole seconds, rounded up; zero or less is 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// writeHeaders sets the rate-limit headers of decision d on h, and
// Retry-After if d refuses the request.
//
// It costs two allocations whatever it writes: one string holding every
// number, and one array backing every header's value slice (tightestKey's
// among them). Each slice is
// capped at one element so that a later Add copies rather than overwrites
// its neighbour.
//
// now, when the middleware sends X-RateLimit-Reset as a time
// (WithResetEpoch), is the time in Unix nanoseconds; else zero.
func (m *Middleware) writeHeaders(h http.Header, rs *ruleSet, d Decision, now int64) {
	if h == nil {
		return
	}
	lt := &rs.limits[0]
	if d.Index > 0 && d.Index < len(rs.limits) {
		lt = &rs.limits[d.Index]
	}
	n := m.names
	// Two limits stacked on one route each write these headers; the client
	// should see the tighter, so an admitting decision leaves a smaller
	// remaining count written before it in place. The count travels in
	// tightestKey, whatever the headers are named or whether they are sent.
	if d.Allowed {
		if cur := h[tightestKey]; len(cur) == 1 {
			if r, err := strconv.ParseInt(cur[0], 10, 64); err == nil && r < d.Remaining {
				return
			}
		}
	}
	reset := ceilSeconds(d.ResetAfter)
	var buf [128]byte
	b := buf[:0]
	b = strconv.AppendInt(b, d.Remaining, 10)
	remEnd := len(b)
	if now != 0 {
		// The moment of full replenishment, rounded up: never too early.
		b = strconv.AppendInt(b, ceilSeconds(time.Duration(now)+d.ResetAfter), 10)
	} else {
		b = strconv.AppendInt(b, reset, 10)
	}
	resetEnd := len(b)
	retryEnd := resetEnd
	if !d.Allowed && !d.Never {
		b = strconv.AppendInt(b, max(ceilSeconds(d.RetryAfter), 1), 10)
		retryEnd = len(b)
	}
	ietfStart := len(b)
	if m.ietf {
		b = append(b, lt.item...)
		b = strconv.AppendInt(b, d.Remaining, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, reset, 10)
	}
	s := string(b)
	vals := new([7]string)
	set := func(i int, name, v string) {
		if name != "" {
			vals[i] = v
			h[name] = vals[i : i+1 : i+1]
		}
	}
	set(6, tightestKey, s[:remEnd])
	set(0, n.limit, lt.count)
	set(1, n.remaining, s[:remEnd])
	set(2, n.reset, s[remEnd:resetEnd])
	if retryEnd > resetEnd {
		set(3, HeaderRetryAfter, s[resetEnd:retryEnd])
	}
	if m.ietf {
		set(4, HeaderPolicy, rs.policy)
		set(5, HeaderRateLimit, s[ietfStart:])
	}
}
