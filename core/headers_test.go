package core

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// X-RateLimit-Reset as the Unix time of full replenishment, rounded up so
// that it is never early; the IETF field's t stays relative.
func TestWithResetEpoch_sendsTheTimeOfFullReplenishment(t *testing.T) {
	lim, clk := clockedLimiter(t)
	clk.mu.Lock()
	clk.now = time.Unix(1_700_000_000, 300_000_000) // 20.3s into a minute window
	clk.mu.Unlock()
	epoch := MustNewMiddleware("5/minute", WithLimiter(lim), WithAlgorithm(FixedWindow), WithResetEpoch(), WithIETFHeaders(), WithName("e"))
	plain := MustNewMiddleware("5/minute", WithLimiter(lim), WithAlgorithm(FixedWindow), WithName("p"))
	w := get(epoch.Handler(okHandler), "/", client)
	if got := w.Header().Get(HeaderReset); got != "1700000040" {
		t.Errorf("X-RateLimit-Reset = %q; want 1700000040, the window's end", got)
	}
	if got := w.Header().Get(HeaderRateLimit); got != `"e";r=4;t=40` {
		t.Errorf("RateLimit = %q; want t relative, 40", got)
	}
	if got := get(plain.Handler(okHandler), "/", client).Header().Get(HeaderReset); got != "40" {
		t.Errorf("without the option X-RateLimit-Reset = %q; want 40 seconds from now", got)
	}
}

// sfItem is one member of a structured field List whose items are Strings,
// as both IETF fields are: the policy's name and its parameters.
type sfItem struct {
	name   string
	params map[string]string // the parameter's value as serialized
	order  []string
}

// parseSFList parses v strictly as a List of String Items with parameters
// (RFC 9651, sections 4.2.1 to 4.2.5, 4.2.8), as a client must: it fails on
// anything a conforming parser would refuse, such as an uppercase key, an
// Integer of 16 digits, an unescaped quote or a bad Byte Sequence.
func parseSFList(v string) ([]sfItem, error) {
	fail := func(at int, why string) ([]sfItem, error) {
		return nil, fmt.Errorf("%q is no structured field List: %s at byte %d", v, why, at)
	}
	var out []sfItem
	i := 0
	for i < len(v) {
		if v[i] != '"' {
			return fail(i, "the item is not a String")
		}
		s, n, ok := parseSFString(v[i:])
		if !ok {
			return fail(i, "bad String")
		}
		i += n
		it := sfItem{name: s, params: map[string]string{}}
		for i < len(v) && v[i] == ';' {
			i++
			for i < len(v) && v[i] == ' ' {
				i++
			}
			k := i
			if i >= len(v) || !(v[i] >= 'a' && v[i] <= 'z' || v[i] == '*') {
				return fail(i, "a key must begin with a lowercase letter or *")
			}
			for i < len(v) && (v[i] >= 'a' && v[i] <= 'z' || v[i] >= '0' && v[i] <= '9' || strings.IndexByte("_-.*", v[i]) >= 0) {
				i++
			}
			key := v[k:i]
			if _, dup := it.params[key]; dup {
				return fail(k, "a key twice")
			}
			if i >= len(v) || v[i] != '=' {
				it.params[key] = "?1" // a Boolean true
				it.order = append(it.order, key)
				continue
			}
			i++
			start := i
			switch {
			case i < len(v) && v[i] == '"':
				_, n, ok := parseSFString(v[i:])
				if !ok {
					return fail(i, "bad String")
				}
				i += n
			case i < len(v) && v[i] == ':':
				end := strings.IndexByte(v[i+1:], ':')
				if end < 0 {
					return fail(i, "unterminated Byte Sequence")
				}
				if _, err := base64.StdEncoding.Strict().DecodeString(v[i+1 : i+1+end]); err != nil {
					return fail(i, "bad base64 in a Byte Sequence")
				}
				i += end + 2
			case i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '-'):
				if v[i] == '-' {
					i++
				}
				d := i
				for i < len(v) && v[i] >= '0' && v[i] <= '9' {
					i++
				}
				if i == d || i-d > 15 {
					return fail(d, "an Integer has 1 to 15 digits")
				}
				if i < len(v) && v[i] == '.' {
					return fail(i, "a Decimal where an Integer is due")
				}
			default:
				return fail(i, "no bare item")
			}
			it.params[key] = v[start:i]
			it.order = append(it.order, key)
		}
		out = append(out, it)
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i == len(v) {
			break
		}
		if v[i] != ',' {
			return fail(i, "members are separated by commas")
		}
		i++
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i == len(v) {
			return fail(i, "a trailing comma")
		}
	}
	if len(out) == 0 {
		return fail(0, "an empty List")
	}
	return out, nil
}

func mustParseSFList(t *testing.T, v string) []sfItem {
	t.Helper()
	items, err := parseSFList(v)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// parseSFString parses the String that v begins with: its value and length.
func parseSFString(v string) (string, int, bool) {
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\':
			if i+1 >= len(v) || (v[i+1] != '"' && v[i+1] != '\\') {
				return "", 0, false
			}
			i++
			b.WriteByte(v[i])
		case c == '"':
			return b.String(), i + 1, true
		case c < ' ' || c > '~':
			return "", 0, false
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// ietfFields returns a response's IETF fields, each parsed; the field lines
// of one name are one List, as RFC 9651 section 4.2 combines them.
func ietfFields(t *testing.T, h http.Header) (policy, ratelimit []sfItem) {
	t.Helper()
	if v := h.Values(HeaderPolicy); len(v) > 0 {
		policy = mustParseSFList(t, strings.Join(v, ", "))
	}
	if v := h.Values(HeaderRateLimit); len(v) > 0 {
		ratelimit = mustParseSFList(t, strings.Join(v, ", "))
	}
	return policy, ratelimit
}

func intParam(t *testing.T, it sfItem, key string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(it.params[key], 10, 64)
	if err != nil {
		t.Fatalf("item %q: %s=%q is no Integer", it.name, key, it.params[key])
	}
	return n
}

// noHold admits a leaky bucket's held requests at once: the tests read
// headers, not the hold.
var noHold = middlewareOption(func(c *middlewareConfig) {
	c.wait = func(context.Context, time.Duration) error { return nil }
})

// The parser above refuses what a client must refuse, so that the tests
// below, which pass the middleware's fields through it, can fail.
func TestParseSFList_refusesMalformedFields(t *testing.T) {
	for _, v := range []string{
		`default;q=1`, `"a";Q=1`, `"a";q=1234567890123456`, `"a";q=1.5`, `"a";pk=:!!:`,
		`"a"b"`, `"a";q=1,`, `"a" "b"`, `"a\x";q=1`, `"a";q=1;q=2`, ``,
	} {
		if _, err := parseSFList(v); err == nil {
			t.Errorf("parseSFList(%q) accepted it", v)
		}
	}
	if got := mustParseSFList(t, `"a\"b\\";q=1;qu="content-bytes";pk=:AAEC:, "c";r=0`); len(got) != 2 || got[0].name != `a"b\` || got[0].params["qu"] != `"content-bytes"` {
		t.Errorf("parsed %+v", got)
	}
}

func ietfRequest(remote string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	return r
}

// On every refusal, of every algorithm, Retry-After is never earlier than
// the end of RateLimit's effective window, t (draft-11, section 6): t is
// when the refused request fits. Draft-10's t, the time to full
// replenishment, was later than Retry-After for the algorithms whose quota
// comes back gradually; the test counts those refusals to show it tells
// the two apart.
func TestIETF_refusalsRetryAfterIsNeverEarlierThanT(t *testing.T) {
	for _, alg := range []Algorithm{FixedWindow, SlidingWindowLog, SlidingWindowCounter, TokenBucket, LeakyBucket} {
		for _, cost := range []int64{1, 3} {
			t.Run(fmt.Sprintf("%v/cost %d", alg, cost), func(t *testing.T) {
				lim, clk := clockedLimiter(t)
				m := MustNewMiddleware("10/minute", WithLimiter(lim), WithAlgorithm(alg), WithIETFHeaders(), WithName("quotes"),
					WithCost(func(*http.Request) int64 { return cost }), noHold)
				refusals, draft10Wrong := 0, 0
				for i := range 150 {
					h := http.Header{}
					res := m.Enforce(ietfRequest(client), h)
					_, rl := ietfFields(t, h)
					if len(rl) != 1 || rl[0].name != "quotes" {
						t.Fatalf("request %d: RateLimit %q; want one item, \"quotes\"", i, h.Values(HeaderRateLimit))
					}
					tv := intParam(t, rl[0], "t")
					if res.Status == http.StatusTooManyRequests {
						refusals++
						ra, err := strconv.ParseInt(h.Get(HeaderRetryAfter), 10, 64)
						if err != nil {
							t.Fatalf("request %d: Retry-After %q", i, h.Get(HeaderRetryAfter))
						}
						if ra < tv || tv < 1 {
							t.Errorf("request %d: Retry-After %d, t=%d; want Retry-After ≥ t ≥ 1", i, ra, tv)
						}
						if reset, _ := strconv.ParseInt(h.Get(HeaderReset), 10, 64); reset > ra {
							draft10Wrong++
						}
					} else if got := h.Get(HeaderReset); strconv.FormatInt(tv, 10) != got {
						t.Errorf("request %d admitted: t=%d; want the time to full replenishment, X-RateLimit-Reset %s", i, tv, got)
					}
					clk.Add(1700 * time.Millisecond) // a step that does not divide the window
				}
				if refusals == 0 {
					t.Fatal("no refusal to check")
				}
				if gradual := alg != FixedWindow; gradual != (draft10Wrong > 0) {
					t.Errorf("%d of %d refusals had a full replenishment later than Retry-After; want some exactly when the quota comes back gradually", draft10Wrong, refusals)
				}
			})
		}
	}
}

// The example of issue 10: the sliding counter refused with Retry-After 10
// and t=17. Now t is 10 as well, while X-RateLimit-Reset keeps the 17.
func TestIETF_slidingCounterRefusalSendsTheRetryAfterAsT(t *testing.T) {
	lim, clk := clockedLimiter(t)
	m := MustNewMiddleware("10/minute", WithLimiter(lim), WithAlgorithm(SlidingWindowCounter), WithIETFHeaders(), WithName("q"))
	for range 10 {
		m.Enforce(ietfRequest(client), http.Header{})
	}
	clk.Add(30 * time.Second)
	h := http.Header{}
	if res := m.Enforce(ietfRequest(client), h); res.Status != http.StatusTooManyRequests {
		t.Fatalf("status %d; want 429", res.Status)
	}
	ra, reset := h.Get(HeaderRetryAfter), h.Get(HeaderReset)
	if want := `"q";r=0;t=` + ra; h.Get(HeaderRateLimit) != want || ra == reset {
		t.Errorf("RateLimit %q, Retry-After %s, X-RateLimit-Reset %s; want %s, and a reset later than the retry", h.Get(HeaderRateLimit), ra, reset, want)
	}
}

// A cost that never fits is answered 413 without Retry-After; t is then the
// time to full replenishment, and r what is left.
func TestIETF_neverFitsSendsNoRetryAfter(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("5/minute", WithLimiter(lim), WithAlgorithm(FixedWindow), WithIETFHeaders(), WithName("q"),
		WithCost(func(*http.Request) int64 { return 6 }))
	h := http.Header{}
	if res := m.Enforce(ietfRequest(client), h); res.Status != http.StatusRequestEntityTooLarge || h.Get(HeaderRetryAfter) != "" {
		t.Fatalf("status %d, Retry-After %q; want 413 and none", res.Status, h.Get(HeaderRetryAfter))
	}
	if got := h.Get(HeaderRateLimit); got != `"q";r=5;t=40` {
		t.Errorf("RateLimit %q; want r=5 and t the window's end", got)
	}
}

// Every middleware names its own policy: two unnamed ones built alike get
// their scopes, which differ; WithName's name is used as given; a plan adds
// its name; a rule of several limits numbers them.
func TestIETF_everyMiddlewareNamesItsOwnPolicy(t *testing.T) {
	lim, _ := clockedLimiter(t)
	opts := []MiddlewareOption{WithLimiter(lim), WithIETFHeaders()}
	a := MustNewMiddleware("5/minute", opts...)
	b := MustNewMiddleware("5/minute", opts...)
	multi := MustNewMiddleware("10/second;1000/hour", opts...)
	named := MustNewMiddleware("5/minute", append(opts, WithName("quotes"))...)
	plans := MustNewMiddleware("5/minute", append(opts, WithName("api"),
		WithPlans(map[string]string{"pro": "50/minute"}, func(r *http.Request) string { return r.Header.Get("X-Plan") }))...)
	tests := []struct {
		m      *Middleware
		plan   string
		policy []string
		rl     string
	}{
		{a, "", []string{a.Scope()}, a.Scope()},
		{b, "", []string{b.Scope()}, b.Scope()},
		{multi, "", []string{multi.Scope() + "-1", multi.Scope() + "-2"}, multi.Scope() + "-1"},
		{named, "", []string{"quotes"}, "quotes"},
		{plans, "", []string{"api"}, "api"},
		{plans, "pro", []string{"api/pro"}, "api/pro"},
	}
	if a.Scope() == b.Scope() {
		t.Fatalf("two middlewares share scope %q", a.Scope())
	}
	for _, tt := range tests {
		w := get(tt.m.Handler(okHandler), "/", client, "X-Plan", tt.plan)
		pol, rl := ietfFields(t, w.Header())
		var names []string
		for _, p := range pol {
			names = append(names, p.name)
		}
		if fmt.Sprint(names) != fmt.Sprint(tt.policy) || len(rl) != 1 || rl[0].name != tt.rl {
			t.Errorf("policies %q, RateLimit %q; want %q and %q", names, w.Header().Values(HeaderRateLimit), tt.policy, tt.rl)
		}
	}
}

// Stacked middlewares each list their policy in RateLimit-Policy (once, if
// one is stacked twice); RateLimit reports the tightest decision, and on a
// refusal the refusing policy alone, whose t is Retry-After.
func TestIETF_stackedMiddlewaresListEveryPolicy(t *testing.T) {
	lim, _ := clockedLimiter(t)
	opts := []MiddlewareOption{WithLimiter(lim), WithIETFHeaders(), WithAlgorithm(FixedWindow)}
	tight := MustNewMiddleware("2/minute", append(opts, WithName("tight"))...)
	loose := MustNewMiddleware("100/hour", append(opts, WithName("loose"))...)
	for i, tt := range []struct {
		h      http.Handler
		policy string
	}{
		{loose.Handler(tight.Handler(okHandler)), "[loose tight]"},
		{tight.Handler(loose.Handler(okHandler)), "[tight loose]"}, // the refusal: [tight], as loose does not run
	} {
		remote := fmt.Sprintf("192.0.2.%d:1", i)
		// The clock is 20s into a minute.
		for n, want := range []string{`"tight";r=1;t=40`, `"tight";r=0;t=40`, `"tight";r=0;t=40`} {
			w := get(tt.h, "/", remote)
			pol, rl := ietfFields(t, w.Header())
			var names []string
			for _, p := range pol {
				names = append(names, p.name)
			}
			got := strings.Join(w.Header().Values(HeaderRateLimit), ", ")
			if n == 2 && (w.Code != http.StatusTooManyRequests || w.Header().Get(HeaderRetryAfter) != "40") {
				t.Errorf("order %d request %d: %d, Retry-After %q; want 429 after 40s", i, n, w.Code, w.Header().Get(HeaderRetryAfter))
			}
			if got != want || len(rl) != 1 || (fmt.Sprint(names) != tt.policy && !(i == 1 && n == 2 && fmt.Sprint(names) == "[tight]")) {
				t.Errorf("order %d request %d: policies %v, RateLimit %q; want %s and %s", i, n, names, got, tt.policy, want)
			}
		}
	}
	twice := get(loose.Handler(loose.Handler(okHandler)), "/", "192.0.2.9:1")
	if got := twice.Header().Values(HeaderPolicy); len(got) != 1 {
		t.Errorf("one middleware stacked twice lists its policy %d times: %q", len(got), got)
	}
}

// qu names the unit when it is not requests, from the draft's registry;
// anything else is refused at construction, quoted.
func TestWithQuotaUnit(t *testing.T) {
	lim, _ := clockedLimiter(t)
	bytes := MustNewMiddleware("65535/10s", WithLimiter(lim), WithAlgorithm(FixedWindow), WithIETFHeaders(), WithName("up"), WithQuotaUnit(QuotaUnitContentBytes),
		WithCost(func(r *http.Request) int64 { return r.ContentLength }))
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("0123456789"))
	r.RemoteAddr = client
	h := http.Header{}
	bytes.Enforce(r, h)
	pol, _ := ietfFields(t, h)
	if got := h.Get(HeaderPolicy); got != `"up";q=65535;qu="content-bytes";w=10` || fmt.Sprint(pol[0].order) != "[q qu w]" {
		t.Errorf("RateLimit-Policy %q; want q, qu=\"content-bytes\", w", got)
	}
	if got := h.Get(HeaderRateLimit); got != `"up";r=65525;t=10` {
		t.Errorf("RateLimit %q; want 65525 bytes left", got)
	}
	req := MustNewMiddleware("5/minute", WithLimiter(lim), WithIETFHeaders(), WithName("n"), WithQuotaUnit(QuotaUnitRequests))
	if got := get(req.Handler(okHandler), "/", client).Header().Get(HeaderPolicy); got != `"n";q=5;w=60` {
		t.Errorf("in requests RateLimit-Policy = %q; want no qu, requests being the default", got)
	}
	for _, bad := range []string{"tokens", "Requests", "request", ""} {
		_, err := NewMiddleware("5/minute", WithQuotaUnit(bad))
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("WithQuotaUnit(%q): error %v; want one quoting it", bad, err)
		}
	}
}

// The hook for concurrency limits: a policy in concurrent requests, whose
// limit has no period, has neither w nor t.
func TestIETF_concurrencyPolicyHasNoWindow(t *testing.T) {
	rs := newRuleSet(Rule{Limits: []Limit{{Count: 5}}}, "uploads", QuotaUnitConcurrentRequests)
	m := &Middleware{middlewareConfig: middlewareConfig{ietf: true}}
	h := http.Header{}
	m.writeHeaders(h, &rs, storeKey{"uploads:", "ip"}, &Decision{Allowed: true, Limit: Limit{Count: 5}, Remaining: 3}, 0)
	ietfFields(t, h)
	if got := h.Get(HeaderPolicy); got != `"uploads";q=5;qu="concurrent-requests"` {
		t.Errorf("RateLimit-Policy %q", got)
	}
	if got := h.Get(HeaderRateLimit); got != `"uploads";r=3` {
		t.Errorf("RateLimit %q", got)
	}
}

// Large values: ten digits pass as they are; a count beyond the 15 digits
// of a structured field Integer is sent as the largest one, while
// X-RateLimit-Limit, no structured field, keeps it.
func TestIETF_largeValues(t *testing.T) {
	lim, _ := clockedLimiter(t)
	tests := []struct {
		expr, policy, ratelimit, limit string
	}{
		// The clock is at 1700000000s: 800s into an hour, 700000000s into
		// a period of 1000000000s.
		{"1000000000/hour", `"big";q=1000000000;w=3600`, `"big";r=999999999;t=2800`, "1000000000"},
		{"5 per 1000000000 seconds", `"big";q=5;w=1000000000`, `"big";r=4;t=300000000`, "5"},
		{"1234567890123456/hour", `"big";q=999999999999999;w=3600`, `"big";r=999999999999999;t=2800`, "1234567890123456"},
	}
	for _, tt := range tests {
		m, err := NewMiddleware(tt.expr, WithLimiter(lim), WithAlgorithm(FixedWindow), WithIETFHeaders(), WithName("big"))
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		h := http.Header{}
		m.Enforce(ietfRequest(client), h)
		ietfFields(t, h)
		if h.Get(HeaderPolicy) != tt.policy || h.Get(HeaderRateLimit) != tt.ratelimit || h.Get(HeaderLimit) != tt.limit {
			t.Errorf("%s: RateLimit-Policy %q, RateLimit %q, X-RateLimit-Limit %q; want %q, %q, %q",
				tt.expr, h.Get(HeaderPolicy), h.Get(HeaderRateLimit), h.Get(HeaderLimit), tt.policy, tt.ratelimit, tt.limit)
		}
	}
}

func TestAppendSFString_escapes(t *testing.T) {
	for in, want := range map[string]string{
		`api`: `"api"`, `a"b`: `"a\"b"`, `a\b`: `"a\\b"`, "a\x00b\x7fc\u00e9": `"a?b?c??"`, ``: `""`,
	} {
		if got := string(appendSFString(nil, in)); got != want {
			t.Errorf("appendSFString(%q) = %s; want %s", in, got, want)
		}
		mustParseSFList(t, want)
	}
}

// pk names the budget: the same for one client's requests, in every process
// with the same secret; different for another client, another middleware or
// another secret; and no hash of the identity anyone could test a guess
// against without the secret.
func TestWithPartitionKey(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	pkOf := func(t *testing.T, name, remote string, secret []byte) []byte {
		t.Helper()
		lim, _ := clockedLimiter(t)
		m := MustNewMiddleware("5/minute", WithLimiter(lim), WithIETFHeaders(), WithName(name), WithPartitionKey(MustNewIdentityHasher(secret)))
		_, rl := ietfFields(t, get(m.Handler(okHandler), "/", remote).Header())
		v := rl[0].params["pk"]
		b, err := base64.StdEncoding.DecodeString(strings.Trim(v, ":"))
		if err != nil || len(b) != 12 || !strings.HasPrefix(v, ":") {
			t.Fatalf("pk %q; want a Byte Sequence of 12 bytes", v)
		}
		return b
	}
	first := pkOf(t, "quotes", client, secret)
	other := []byte("fedcba9876543210fedcba9876543210")
	for _, tt := range []struct {
		what   string
		pk     []byte
		shared bool
	}{
		{"the same client in another process with the same secret", pkOf(t, "quotes", client, secret), true},
		{"the same /64 of IPv6 (one identity)", pkOf(t, "quotes", "[2001:db8::1]:1", secret), false},
		{"another client", pkOf(t, "quotes", "203.0.113.8:1", secret), false},
		{"another middleware", pkOf(t, "other", client, secret), false},
		{"another secret", pkOf(t, "quotes", client, other), false},
	} {
		if bytes.Equal(tt.pk, first) != tt.shared {
			t.Errorf("%s: pk %x against %x; want equal %v", tt.what, tt.pk, first, tt.shared)
		}
	}
	// The store's identity under the same hasher is another value.
	if id := MustNewIdentityHasher(secret).Hash("quotes:" + IPIdentity(client)); strings.HasPrefix(id, fmt.Sprintf("%x", first)) {
		t.Errorf("pk %x is the identity hash %s", first, id)
	}
	if _, err := NewMiddleware("5/minute", WithPartitionKey(nil)); err == nil || !strings.Contains(err.Error(), "WithPartitionKey(nil)") {
		t.Errorf("WithPartitionKey(nil): error %v; want one naming it", err)
	}
}

// The IETF fields, with a partition key, cost no allocation of their own:
// the headers' block holds them too.
func TestIETF_allocatesNoMoreThanTheDefaultHeaders(t *testing.T) {
	if raceEnabled {
		t.Skip("-race empties sync.Pool at random")
	}
	lim, _ := clockedLimiter(t)
	hasher := MustNewIdentityHasher([]byte("0123456789abcdef0123456789abcdef"))
	for _, opts := range [][]MiddlewareOption{nil, {WithIETFHeaders(), WithPartitionKey(hasher), WithQuotaUnit(QuotaUnitContentBytes)}} {
		h := MustNewMiddleware("1000000000/hour", append([]MiddlewareOption{WithLimiter(lim), WithName("allocs")}, opts...)...).Handler(okHandler)
		r := ietfRequest(client)
		w := &reusedWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
		allocs := testing.AllocsPerRun(200, func() {
			clear(w.h)
			h.ServeHTTP(w, r)
		})
		if allocs > 1 {
			t.Errorf("%d options: %v allocations per request; want 1", len(opts), allocs)
		}
	}
}

// A header name that is no RFC 9110 token is dropped by net/http without a
// word, so the client would get no rate-limit headers: it is a mistake in
// set-up, refused at construction with the name quoted.
func TestWithHeaderNames_refusesWhatIsNoHeaderName(t *testing.T) {
	for _, name := range []string{"X Limit", "X-Limit\r\nSet-Cookie: a=b", "X-Limit:", "Zähler", "X-\"Limit\""} {
		_, err := NewMiddleware("5/minute", WithHeaderNames(name, "", ""))
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(name)) {
			t.Errorf("WithHeaderNames(%q): %v; want an error quoting it", name, err)
		}
	}
	if _, err := NewMiddleware("5/minute", WithHeaderNames("X-RateLimit-Limit", "ratelimit-remaining", "")); err != nil {
		t.Fatalf("valid names: %v", err)
	}
}

// headerSlots gives back the text it was handed and the slots asked for,
// whatever the lengths: in one of its blocks or, beyond them, a string of
// its own.
func TestHeaderSlots_holdTheTextWhole(t *testing.T) {
	b := make([]byte, 0, 400)
	for n := 1; n <= 400; n++ {
		b = append(b, byte('0'+n%10))
		for slots := 1; slots <= 7; slots++ {
			vals, s := headerSlots(b, slots)
			if s != string(b) || len(vals) != slots || slices.ContainsFunc(vals, func(v string) bool { return v != "" }) {
				t.Fatalf("%d bytes, %d slots: %q, slots %q; want the text and %d empty slots", n, slots, s, vals, slots)
			}
		}
	}
}
