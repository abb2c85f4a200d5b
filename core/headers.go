package core

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// The response headers the middleware writes by default. Go's http.Header
// keys are canonical, so they are spelt here as net/http stores them; clients
// read header names case-insensitively.
const (
	HeaderLimit      = "X-Ratelimit-Limit"     // the deciding limit's count
	HeaderRemaining  = "X-Ratelimit-Remaining" // requests left under it
	HeaderReset      = "X-Ratelimit-Reset"     // whole seconds until it is fully replenished, rounded up
	HeaderRetryAfter = "Retry-After"           // on refusals: whole seconds to wait, rounded up, at least 1
	// The IETF structured fields of draft-ietf-httpapi-ratelimit-headers-11,
	// sent with WithIETFHeaders.
	HeaderPolicy    = "Ratelimit-Policy"
	HeaderRateLimit = "Ratelimit"
)

// The quota units of the draft's registry ("RateLimit Quota Units"), for
// WithQuotaUnit: what a limit's count counts. A policy in requests, the
// draft's default, is sent without a unit.
const (
	QuotaUnitRequests           = "requests"
	QuotaUnitContentBytes       = "content-bytes"
	QuotaUnitConcurrentRequests = "concurrent-requests"
)

// The middlewares stacked on a route pass each other the remaining count
// of the tightest decision written so far in the response's header map,
// which every middleware of one response shares and no client can set:
// where the request's context would cost two allocations per request, the
// map carries it without one.
//
// A middleware that sends the remaining count, and not the IETF fields,
// marks its value as its own: the value's slice has room for a second
// element, beyond its length, and that element is tightMark, whose text no
// code outside this package can point to. Another middleware's value, or a
// handler's, is never mistaken for one of ours, so it cannot quiet our
// headers; the count needs no entry of its own, which would cost every
// request a map assignment.
//
// A middleware that sends no remaining count, or sends the RateLimit
// field, which every middleware writes under the same name whatever its
// other headers are called, keeps the count under tightestKey, which is no
// valid header name (a NUL is in it), so net/http drops it from the
// response on HTTP/1 and HTTP/2. A middleware reads both and keeps the
// tighter: only middlewares without the IETF fields whose remaining
// headers are named apart do not see each other, and each of those
// headers then shows its own tightest count.
const tightestKey = "Limitkit\x00tightest"

var (
	tightMarkByte byte
	tightMark     = unsafe.String(&tightMarkByte, 1)
)

// tightestSoFar is the tightest remaining count the middlewares stacked
// before this one wrote to h, if any: the smaller of the value of
// remaining, the name of this middleware's remaining header, if one of
// ours wrote it (see tightMark), and the count under tightestKey.
func tightestSoFar(h http.Header, remaining string) (r int64, ok bool) {
	if remaining != "" {
		if cur := h[remaining]; len(cur) == 1 && cap(cur) >= 2 && unsafe.StringData(cur[:2][1]) == &tightMarkByte {
			v, err := strconv.ParseInt(cur[0], 10, 64)
			r, ok = v, err == nil
		}
	}
	if cur := h[tightestKey]; len(cur) == 1 {
		if v, err := strconv.ParseInt(cur[0], 10, 64); err == nil && (!ok || v < r) {
			r, ok = v, true
		}
	}
	return r, ok
}

// sfMaxInt is the largest Integer a structured field can carry (RFC 9651,
// section 3.3.1: at most 15 digits). Larger counts are sent as this.
const sfMaxInt = 999_999_999_999_999

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
		for _, name := range []string{limit, remaining, reset} {
			if !isToken(name) {
				// net/http would drop it from every response without a word.
				c.problem("limitkit: WithHeaderNames: %q is not a header name; use letters, digits and - (an RFC 9110 token), or \"\" to leave the header out", name)
			}
		}
		// CanonicalHeaderKey keeps "" as it is.
		c.names = headerNames{http.CanonicalHeaderKey(limit), http.CanonicalHeaderKey(remaining), http.CanonicalHeaderKey(reset)}
		c.namesSet = true
	})
}

// isToken reports whether s is "" or an RFC 9110 token, which a header
// name must be.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c < 0x80 && strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
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
// draft-ietf-httpapi-ratelimit-headers-11 (May 2026) to every limited
// response:
//
//	RateLimit-Policy: "quotes";q=100;w=60
//	RateLimit: "quotes";r=50;t=30
//
// RateLimit-Policy lists the rule's limits: q is the count, w the period in
// whole seconds (rounded up), and qu the unit when it is not requests (see
// WithQuotaUnit). It is the same on every response of a middleware. Each
// middleware's policy has a name of its own: WithName's name, or else its
// scope (see Middleware.Scope), with "/" and the plan's name after it for
// a plan of WithPlans, and with "-1", "-2", ... after it for each limit of
// a rule of several. Middlewares stacked on one route each add their
// policy to the field.
//
// RateLimit reports the limit that decided (of stacked middlewares, the
// tightest, as X-RateLimit-* do): r is the available quota, the requests
// (or units) it admits now; t is the effective window, the seconds within
// which the client should use no more than r. On a refusal, t is when the
// refused request would be admitted, the same value as Retry-After, so that
// Retry-After is never earlier than the end of the effective window, as
// the draft requires. On an admitted request, t is the time until the
// limit is fully replenished if no other traffic comes: for a fixed window
// the window's end; for the sliding counter, the sliding log and the
// buckets, whose quota comes back gradually, the time by which all of it
// is back. A shorter t (until the next unit comes back) would let a client
// that divides r by t infer a rate many times the limit's, which the
// draft's section 8.5 warns against. With WithPartitionKey, RateLimit also
// carries pk, a keyed hash of the budget. Integers larger than a structured
// field carries (15 digits) are sent as 999999999999999.
func WithIETFHeaders() MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.ietf = true })
}

// WithQuotaUnit names what the middleware's counts count, for the qu
// parameter of the IETF RateLimit-Policy field (see WithIETFHeaders). The
// unit must be one the draft's registry lists: QuotaUnitRequests (the
// default, sent without qu), QuotaUnitContentBytes (a WithCost function
// that charges the bytes of a body) or QuotaUnitConcurrentRequests (a
// concurrency limit). A WithCost that weighs requests (a bulk call counts
// as ten) keeps the default: the draft leaves how many units a request
// consumes to the server. Other units, such as an LLM's tokens, have no
// registered name yet and are refused, rather than sent in a field that
// clients must then ignore as malformed.
func WithQuotaUnit(unit string) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		switch unit {
		case QuotaUnitRequests, QuotaUnitContentBytes, QuotaUnitConcurrentRequests:
			c.quotaUnit = unit
		default:
			c.problem("limitkit: WithQuotaUnit(%q): not a unit of the RateLimit quota unit registry; use %q, %q or %q",
				unit, QuotaUnitRequests, QuotaUnitContentBytes, QuotaUnitConcurrentRequests)
		}
	})
}

// WithPartitionKey adds pk, the partition key of draft-11, to the IETF
// RateLimit field (see WithIETFHeaders): a Byte Sequence that names the
// budget the request was counted against, so that a client acting for
// several users, API keys or plans can tell which responses share a quota.
//
// The key is the first 12 bytes of the HMAC-SHA-256, keyed by h's secret,
// of a fixed label and the request's store key (the middleware's scope and
// the client's identity, as Middleware.Scope describes). What it reveals:
// two responses carry the same pk exactly when they were counted against
// the same budget, and nothing else. Without h's secret no one, neither the
// client nor a proxy or log that sees the response, can compute a pk, test
// a guessed identity (an IP address, a short API key) against it, or tell
// it from the identities the store keeps, even when h also hashes those
// (the label keeps the two apart). A client cannot predict the pk of a
// request it has not sent; it compares the ones it receives. pk is the same
// in every process that shares h's secret, and changes with it. Since it is
// stable per client, anyone who sees several of a client's responses can
// link them, as an API key in a header could; leave it out where that
// matters more than what clients gain.
//
// Use a secret of its own (NewIdentityHasher) rather than the one that
// hashes identities, so that either can be rotated alone. A nil h is an
// error.
func WithPartitionKey(h *IdentityHasher) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		if h == nil {
			c.problem("limitkit: WithPartitionKey(nil): give an IdentityHasher from NewIdentityHasher")
		}
		c.partitionKey = h
	})
}

// pkLabel begins every value a partition key is the hash of, so that no
// partition key equals the hash of an identity under the same secret.
const pkLabel = "limitkit partition key\x00"

// appendPartitionKey appends the base64 of the partition key of the store
// key to dst (see WithPartitionKey).
func (h *IdentityHasher) appendPartitionKey(dst []byte, key storeKey) []byte {
	k := h.pool.Get().(*keyedHash)
	k.mac.Reset()
	k.buf = append(append(append(k.buf[:0], pkLabel...), key.prefix...), key.id...)
	k.mac.Write(k.buf)
	clear(k.buf)
	k.sum = k.mac.Sum(k.sum[:0])
	dst = base64.StdEncoding.AppendEncode(dst, k.sum[:12])
	if cap(k.buf) > 1<<12 {
		k.buf = nil
	}
	h.pool.Put(k)
	return dst
}

// limitText is one limit of a rule with its header values, made once at
// construction so that requests only format the numbers that change.
type limitText struct {
	count  string // the X-RateLimit-Limit value
	item   string // `"name";r=`: the RateLimit item up to the available quota
	window bool   // the limit has a period, so RateLimit carries t
}

// newLimitTexts returns the texts of limits and the RateLimit-Policy value
// of a rule whose policy is named name, in unit (requests if "").
func newLimitTexts(limits []Limit, name, unit string) ([]limitText, string) {
	out := make([]limitText, len(limits))
	var pol []byte
	for i, l := range limits {
		n := name
		if len(limits) > 1 {
			n += "-" + strconv.Itoa(i+1)
		}
		item := appendSFString(nil, n)
		out[i] = limitText{count: strconv.FormatInt(l.Count, 10), item: string(item) + ";r=", window: l.Period > 0}
		if i > 0 {
			pol = append(pol, ", "...)
		}
		pol = append(pol, item...)
		pol = append(pol, ";q="...)
		pol = strconv.AppendInt(pol, sfInt(l.Count), 10)
		if unit != "" && unit != QuotaUnitRequests {
			pol = append(pol, ";qu="...)
			pol = appendSFString(pol, unit)
		}
		if l.Period > 0 {
			pol = append(pol, ";w="...)
			pol = strconv.AppendInt(pol, sfInt(max(ceilSeconds(l.Period), 1)), 10)
		}
	}
	return out, string(pol)
}

// appendSFString appends s as a structured field String (RFC 9651,
// section 3.3.3): quoted, with quotes and backslashes escaped. A String
// holds printable ASCII only; any other byte becomes '?'. Policy names
// never have such bytes (WithName and plan names are checked, scopes are
// hex), so that is a guard, not a rule anyone meets.
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < ' ' || c > '~':
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// sfInt is n as a structured field Integer can carry it: 0 to sfMaxInt.
func sfInt(n int64) int64 { return min(max(n, 0), sfMaxInt) }

// ceilSeconds is d in whole seconds, rounded up; zero or less is 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// writeHeaders sets the rate-limit headers of decision d on h, and
// Retry-After if d refuses the request. key is the request's store key,
// for the partition key.
//
// It costs one allocation whatever it writes (see headerSlots): an array
// backing every header's value slice and tightMark (or tightestKey's
// value), with the text of every number beside it, of 80 bytes for the
// default headers. Each slice is capped at one element so that a later Add
// copies rather than overwrites its neighbour; the remaining count's, when
// marked, at two, its second element tightMark, which an Add may overwrite,
// and so only unmark. A middleware stacked on another with the
// IETF fields on costs one more, to list its policy.
//
// now, when the middleware sends X-RateLimit-Reset as a time
// (WithResetEpoch), is the time in Unix nanoseconds; else zero.
func (m *Middleware) writeHeaders(h http.Header, rs *ruleSet, key storeKey, d *Decision, now int64) {
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
	// remaining count written before it in place (see tightMark). (An empty
	// map, as the first middleware of a response finds it, has none: len
	// spares the lookup.)
	if d.Allowed && len(h) > 0 {
		if r, ok := tightestSoFar(h, n.remaining); ok && r < d.Remaining {
			if m.ietf {
				addPolicy(h, rs.policy, nil)
			}
			return
		}
	}
	reset := ceilSeconds(d.ResetAfter)
	var buf [192]byte
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
	var retry int64
	if !d.Allowed && !d.Never {
		retry = max(ceilSeconds(d.RetryAfter), 1)
		b = strconv.AppendInt(b, retry, 10)
		retryEnd = len(b)
	}
	ietfStart := len(b)
	if m.ietf {
		b = append(b, lt.item...)
		b = strconv.AppendInt(b, sfInt(d.Remaining), 10)
		if lt.window {
			// The effective window: on a refusal Retry-After itself, which
			// the draft forbids to be earlier than the window's end.
			t := reset
			if retry > 0 {
				t = retry
			}
			b = append(b, ";t="...)
			b = strconv.AppendInt(b, sfInt(t), 10)
		}
		if m.partitionKey != nil {
			b = append(b, ";pk=:"...)
			b = m.partitionKey.appendPartitionKey(b, key)
			b = append(b, ':')
		}
	}
	// One slot for tightMark or tightestKey, one for each header sent.
	slots := 1
	for _, name := range [...]string{n.limit, n.remaining, n.reset} {
		if name != "" {
			slots++
		}
	}
	if retryEnd > resetEnd {
		slots++
	}
	if m.ietf {
		slots += 2
	}
	vals, s := headerSlots(b, slots)
	next := 0
	slot := func() []string {
		next++
		return vals[next-1 : next : next]
	}
	set := func(name, v string) {
		if name != "" {
			v1 := slot()
			v1[0] = v
			h[name] = v1
		}
	}
	set(n.limit, lt.count)
	if n.remaining != "" && !m.ietf {
		v := vals[next : next+1 : next+2]
		v[0], vals[next+1] = s[:remEnd], tightMark
		next += 2
		h[n.remaining] = v
	} else {
		set(n.remaining, s[:remEnd])
		set(tightestKey, s[:remEnd])
	}
	set(n.reset, s[remEnd:resetEnd])
	if retryEnd > resetEnd {
		set(HeaderRetryAfter, s[resetEnd:retryEnd])
	}
	if m.ietf {
		addPolicy(h, rs.policy, slot())
		set(HeaderRateLimit, s[ietfStart:])
	}
}

// The blocks writeHeaders writes a response's headers to: the one-element
// slices it hands to the header map, and the bytes of the numbers, which
// their strings point into. Allocating both as one object saves one of the
// two allocations a string and an array would cost every request, and the
// smallest block that fits is chosen, since the bytes allocated per request
// cost collection time too. The text is never written after its string is
// made, so the strings are as immutable as any.
type (
	// headerBlock1 holds tightestKey alone, for a middleware that sends no
	// headers (WithHeaderNames("", "", "")): 32 bytes.
	headerBlock1 struct {
		vals [1]string
		text [16]byte
	}
	// headerBlock4 holds the X-RateLimit headers of an admitted request,
	// with room for a remaining count of up to 11 digits and a reset of up
	// to 5: 80 bytes.
	headerBlock4 struct {
		vals [4]string
		text [16]byte
	}
	// headerBlock5 holds the X-RateLimit headers and Retry-After, with
	// room for their numbers in any realistic case: 112 bytes, the size of
	// the bare array of seven slots the blocks replace.
	headerBlock5 struct {
		vals [5]string
		text [32]byte
	}
	// headerBlock7 holds the IETF fields too, with room for a policy
	// named by a derived scope or a name of up to 24 characters, with a
	// partition key: 192 bytes.
	headerBlock7 struct {
		vals [7]string
		text [80]byte
	}
	// headerBlock7L holds longer policy names: 320 bytes.
	headerBlock7L struct {
		vals [7]string
		text [208]byte
	}
)

// headerSlots returns slots empty strings for writeHeaders' values and b
// as a string that lives as long as they do: one allocation, unless b is
// longer than any block holds (a very long policy name, say).
func headerSlots(b []byte, slots int) ([]string, string) {
	switch {
	case slots <= 1 && len(b) <= len(headerBlock1{}.text):
		hb := new(headerBlock1)
		return hb.vals[:slots], unsafe.String(&hb.text[0], copy(hb.text[:], b))
	case slots <= 4 && len(b) <= len(headerBlock4{}.text):
		hb := new(headerBlock4)
		return hb.vals[:slots], unsafe.String(&hb.text[0], copy(hb.text[:], b))
	case slots <= 5 && len(b) <= len(headerBlock5{}.text):
		hb := new(headerBlock5)
		return hb.vals[:slots], unsafe.String(&hb.text[0], copy(hb.text[:], b))
	case slots <= 7 && len(b) <= len(headerBlock7{}.text):
		hb := new(headerBlock7)
		return hb.vals[:slots], unsafe.String(&hb.text[0], copy(hb.text[:], b))
	case slots <= 7 && len(b) <= len(headerBlock7L{}.text):
		hb := new(headerBlock7L)
		return hb.vals[:slots], unsafe.String(&hb.text[0], copy(hb.text[:], b))
	}
	return make([]string, slots), string(b)
}

// addPolicy adds the RateLimit-Policy value pol to h, unless a middleware
// of the same policy wrote it already, in slot (one element) if it is the
// first policy and slot is given.
func addPolicy(h http.Header, pol string, slot []string) {
	cur := h[HeaderPolicy]
	for _, v := range cur {
		if v == pol {
			return
		}
	}
	if len(cur) == 0 && slot != nil {
		slot[0] = pol
		h[HeaderPolicy] = slot
		return
	}
	h[HeaderPolicy] = append(cur[:len(cur):len(cur)], pol)
}
