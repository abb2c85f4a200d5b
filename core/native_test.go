package core

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// frameworkContext stands for an adapter's framework context.
type frameworkContext struct {
	user, plan string
	internal   bool
}

// checkWith runs EnforceWith on a GET from client with native, and returns
// the status an adapter would answer with.
func checkWith(m *Middleware, native any) (int, http.Header) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = client
	h := http.Header{}
	switch res := m.EnforceWith(r, h, native); res.Verdict {
	case Serve:
		return http.StatusOK, h
	case Refuse:
		return res.Status, h
	default:
		return 0, h
	}
}

// userOf is a native key function as an adapter would wrap a typed one.
func userOf(_ *http.Request, native any) (string, error) {
	c, ok := native.(*frameworkContext)
	if !ok || c == nil {
		return "", fmt.Errorf("test adapter: %w", ErrNativeType)
	}
	return c.user, nil
}

func TestCheckWith_nativeKeyCountsEachIdentityApart(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("1/minute", WithLimiter(lim), WithNativeKey(userOf))
	alice, bob := &frameworkContext{user: "alice"}, &frameworkContext{user: "bob"}
	codes := fmt.Sprint(first(checkWith(m, alice)), first(checkWith(m, bob)), first(checkWith(m, alice)))
	if codes != "200 200 429" {
		t.Errorf("codes alice, bob, alice: %s; want 200 200 429 (one budget per user, not per IP)", codes)
	}
}

func first(code int, _ http.Header) int { return code }

func TestCheckWith_nativeValueOfAnotherTypeFollowsTheKeyErrorPolicy(t *testing.T) {
	tests := []struct {
		name   string
		native any
		policy KeyErrorPolicy
		want   int
	}{
		{"no native value, counted by peer IP", nil, KeyErrorPeerIP, http.StatusOK},
		{"another framework's value, counted by peer IP", "not a framework context", KeyErrorPeerIP, http.StatusOK},
		{"another framework's value, refused", 42, KeyErrorRefuse, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := clockedLimiter(t)
			m := MustNewMiddleware("5/minute", WithLimiter(lim), WithNativeKey(userOf), WithKeyErrorPolicy(tt.policy))
			if got, _ := checkWith(m, tt.native); got != tt.want {
				t.Errorf("status %d; want %d", got, tt.want)
			}
		})
	}
}

func TestNativeKeys_combineAsCombineDoes(t *testing.T) {
	rec := &recorder{}
	lim, _ := clockedLimiter(t, WithObserver(rec))
	combined := MustNewMiddleware("5/minute", WithLimiter(lim), WithKey(Combine(
		func(*http.Request) (string, error) { return "a|b", nil },
		ByIP,
	)))
	checkWith(combined, nil)
	want := rec.last().Identity
	for name, key := range map[string]Option{
		"WithNativeKey": WithNativeKey(userOf, func(r *http.Request, _ any) (string, error) { return ByIP(r) }),
		"NativeKey":     NativeKey("fw.Key", userKey, func(*frameworkContext) (string, error) { return ByIP(request(client)) }),
	} {
		checkWith(MustNewMiddleware("5/minute", WithLimiter(lim), key, WithName("combined-"+strings.ToLower(name))), &frameworkContext{user: "a|b"})
		if got := rec.last().Identity; got != want || strings.Contains(got, "a|b") {
			t.Errorf("%s: identity %q; want %q, as Combine gives, the part with a separator hashed", name, got, want)
		}
	}
}

func TestWithNativeKey_andWithKeyReplaceEachOther(t *testing.T) {
	native := WithNativeKey(userOf)
	byHeader := WithKey(ByHeader("X-User"))
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"native key given last", []Option{byHeader, native}, "alice"},
		{"WithKey given last", []Option{native, byHeader}, HashIdentity("bob")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			lim, _ := clockedLimiter(t, WithObserver(rec))
			m := MustNewMiddleware("5/minute", append([]Option{WithLimiter(lim)}, tt.opts...)...)
			r := request(client, "X-User", "bob")
			m.EnforceWith(r, nil, &frameworkContext{user: "alice"})
			if got := rec.last().Identity; got != tt.want {
				t.Errorf("identity %q; want %q", got, tt.want)
			}
		})
	}
}

func TestWithNativeKey_rejectsMissingKeyFunctions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
		want string
	}{
		{"none", WithNativeKey(), "at least one"},
		{"a nil one", WithNativeKey(userOf, nil), "key function 2 of 2 is nil"},
		{"nil plan function", WithNativePlans(map[string]string{"pro": "9/minute"}, nil), "planOf function is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMiddleware("5/minute", tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckWith_nativePlansChooseTheRule(t *testing.T) {
	lim, _ := clockedLimiter(t)
	planOf := func(_ *http.Request, native any) string {
		if c, ok := native.(*frameworkContext); ok {
			return c.plan
		}
		return ""
	}
	m := MustNewMiddleware("1/minute", WithLimiter(lim), WithNativePlans(map[string]string{"pro": "3/minute"}, planOf))
	tests := []struct {
		native any
		limit  string
	}{
		{&frameworkContext{plan: "pro"}, "3"},
		{&frameworkContext{plan: ""}, "1"},
		{nil, "1"},
	}
	for _, tt := range tests {
		if _, h := checkWith(m, tt.native); h.Get(HeaderLimit) != tt.limit {
			t.Errorf("native %+v: limit %q; want %q", tt.native, h.Get(HeaderLimit), tt.limit)
		}
	}
}

func TestCheckWith_nativeExemptAndWithExemptBothApply(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("1/minute", WithLimiter(lim),
		WithExempt(func(r *http.Request) bool { return r.Header.Get("X-Health") != "" }),
		WithNativeExempt(func(_ *http.Request, native any) bool {
			c, ok := native.(*frameworkContext)
			return ok && c.internal
		}))
	internal := &frameworkContext{internal: true}
	for range 3 {
		if code, h := checkWith(m, internal); code != http.StatusOK || len(h) != 0 {
			t.Fatalf("natively exempt request: status %d, headers %v; want 200 and none", code, h)
		}
		r := request(client, "X-Health", "1")
		if res := m.EnforceWith(r, nil, nil); res.Verdict != Serve || res.Decision.Limit.Count != 0 {
			t.Fatalf("request exempt by WithExempt: %+v; want served undecided", res)
		}
	}
	codes := fmt.Sprint(first(checkWith(m, &frameworkContext{})), first(checkWith(m, nil)))
	if codes != "200 429" {
		t.Errorf("codes %s; want 200 429: the exempt requests charged nothing", codes)
	}
}

func TestNativeDeny_isKeptForTheAdapterAndNeverCalledByCore(t *testing.T) {
	lim, _ := clockedLimiter(t)
	called := false
	m := MustNewMiddleware("1/minute", WithLimiter(lim), WithNativeDeny(func(native any, res Result) error {
		called = true
		return nil
	}))
	deny := m.NativeDeny()
	if deny == nil {
		t.Fatal("NativeDeny() = nil; want the function WithNativeDeny gave")
	}
	h := m.Handler(okHandler)
	get(h, "/", client)
	if w := get(h, "/", client); w.Code != http.StatusTooManyRequests || called {
		t.Errorf("Handler: status %d, native deny called %v; want 429 by core's own refusal", w.Code, called)
	}
	if err := deny(nil, Result{}); err != nil || !called {
		t.Errorf("deny() = %v, called %v; want the given function", err, called)
	}
	if MustNewMiddleware("1/minute", WithLimiter(lim)).NativeDeny() != nil {
		t.Error("NativeDeny() without WithNativeDeny is not nil")
	}
}

func TestErrNativeType_isFoundThroughAnAdapterError(t *testing.T) {
	_, err := userOf(nil, "wrong")
	if !errors.Is(err, ErrNativeType) {
		t.Errorf("%v does not wrap ErrNativeType", err)
	}
}

func TestCheckWith_nativeKeyAddsNoAllocation(t *testing.T) {
	lim, _ := clockedLimiter(t)
	native := &frameworkContext{user: "alice"}
	plain := MustNewMiddleware("1000000000/hour", WithLimiter(lim), WithKey(func(*http.Request) (string, error) { return "alice", nil }))
	r := request(client)
	h := http.Header{}
	count := func(m *Middleware) float64 {
		m.EnforceWith(r, h, native) // the key exists from here on
		return testing.AllocsPerRun(200, func() {
			clear(h)
			m.EnforceWith(r, h, native)
		})
	}
	p := count(plain)
	for name, key := range map[string]Option{"WithNativeKey": WithNativeKey(userOf), "NativeKey": NativeKey("fw.Key", userKey)} {
		if n := count(MustNewMiddleware("1000000000/hour", WithLimiter(lim), key, WithName("alloc-"+strings.ToLower(name)))); n > p {
			t.Errorf("%s: %v allocations per request, plain key %v; want no more", name, n, p)
		}
	}
}

// The generic hooks below are what adapters' options are: each test uses
// *frameworkContext as the framework's context type.

func userKey(c *frameworkContext) (string, error) { return c.user, nil }

func TestNativeKey_countsByTheTypedContextAndFailsIntoTheKeyPolicyWithoutIt(t *testing.T) {
	rec := &recorder{}
	lim, _ := clockedLimiter(t, WithObserver(rec))
	m := MustNewMiddleware("1/minute", WithLimiter(lim), NativeKey("fw.Key", userKey), WithKeyErrorPolicy(KeyErrorRefuse))
	alice, bob := &frameworkContext{user: "alice"}, &frameworkContext{user: "bob"}
	codes := fmt.Sprint(first(checkWith(m, alice)), first(checkWith(m, bob)), first(checkWith(m, alice)))
	if codes != "200 200 429" {
		t.Errorf("codes alice, bob, alice: %s; want 200 200 429", codes)
	}
	for _, native := range []any{nil, "another framework's", (*frameworkContext)(nil)} {
		res := m.EnforceWith(request(client), http.Header{}, native)
		if res.Status != http.StatusBadRequest || !errors.Is(res.Err, ErrNativeType) ||
			!strings.Contains(res.Err.Error(), "fw.Key got no *core.frameworkContext") {
			t.Errorf("native %#v: status %d, error %v; want 400 (KeyErrorRefuse) with an error naming the option and the type, wrapping ErrNativeType", native, res.Status, res.Err)
		}
	}
}

func TestNativeHooks_misusesFailTheConstructorNamingTheOption(t *testing.T) {
	planOf := func(c *frameworkContext) string { return c.plan }
	tests := []struct {
		name   string
		opts   []Option
		want   string
		syntax string // the expression of a wrapped *SyntaxError
	}{
		{"no key", []Option{NativeKey[*frameworkContext, func(*frameworkContext) (string, error)]("fw.Key")}, "fw.Key(): give at least one key function, or leave the option out to key by IP", ""},
		{"a nil key", []Option{NativeKey[*frameworkContext, func(*frameworkContext) (string, error)]("fw.Key", nil)}, "fw.Key(nil): give a key function, or leave the option out to key by IP", ""},
		{"a nil key among others", []Option{NativeKey("fw.Key", userKey, nil)}, "fw.Key: key function 2 of 2 is nil", ""},
		{"a nil plan function", []Option{NativePlans[*frameworkContext, func(*frameworkContext) string]("fw.Plans", map[string]string{"pro": "9/minute"}, nil)}, "fw.Plans: the planOf function is nil", ""},
		{"a bad plan name", []Option{NativePlans("fw.Plans", map[string]string{"pro:1": "9/minute"}, planOf)}, `fw.Plans: limitkit: plan "pro:1": use printable ASCII`, ""},
		{"a bad plan expression", []Option{NativePlans("fw.Plans", map[string]string{"pro": "9/minnute"}, planOf)}, `fw.Plans: plan "pro": limitkit: invalid limit "9/minnute"`, "9/minnute"},
		{"two bad plans, in the order of their names", []Option{NativePlans("fw.Plans", map[string]string{"b": "x", "a": "y"}, planOf)}, `fw.Plans: plan "a": limitkit: invalid limit "y" at offset 0: expected a count (a positive whole number)` + "\n" + `fw.Plans: plan "b"`, "y"},
		{"an invalid option", []Option{InvalidOption(errors.New("fw.Thing: wrong"))}, "fw.Thing: wrong", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMiddleware("5/minute", tt.opts...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want[:strings.IndexByte(tt.want, ':')]) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want one beginning with the option's name and containing %q", err, tt.want)
			}
			var se *SyntaxError
			if tt.syntax != "" && (!errors.As(err, &se) || se.Expr != tt.syntax) {
				t.Errorf("error %v does not wrap the *SyntaxError of %q", err, tt.syntax)
			}
		})
	}
}

func TestNativePlans_chooseTheRuleFromTheTypedContext(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("1/minute", WithLimiter(lim), NativePlans("fw.Plans", map[string]string{"pro": "3/minute"},
		func(c *frameworkContext) string { return c.plan }))
	for _, tt := range []struct {
		native any
		limit  string
	}{
		{&frameworkContext{plan: "pro"}, "3"},
		{&frameworkContext{plan: ""}, "1"},
		{nil, "1"},
		{(*frameworkContext)(nil), "1"},
		{"another framework's", "1"},
	} {
		if _, h := checkWith(m, tt.native); h.Get(HeaderLimit) != tt.limit {
			t.Errorf("native %#v: limit %q; want %q", tt.native, h.Get(HeaderLimit), tt.limit)
		}
	}
}

func TestNativeExempt_exemptsByTheTypedContextAndNothingWithoutIt(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := MustNewMiddleware("1/minute", WithLimiter(lim), NativeExempt(func(c *frameworkContext) bool { return c.internal }))
	internal := &frameworkContext{internal: true}
	for range 3 {
		if code, h := checkWith(m, internal); code != http.StatusOK || len(h) != 0 {
			t.Fatalf("exempt request: status %d, headers %v; want 200 and none", code, h)
		}
	}
	codes := fmt.Sprint(first(checkWith(m, "another framework's")), first(checkWith(m, nil)))
	if codes != "200 429" {
		t.Errorf("codes %s; want 200 429: without the typed context nothing is exempt", codes)
	}
	none := MustNewMiddleware("1/minute", WithLimiter(lim), NativeExempt[*frameworkContext, func(*frameworkContext) bool](nil))
	if codes := fmt.Sprint(first(checkWith(none, internal)), first(checkWith(none, internal))); codes != "200 429" {
		t.Errorf("nil exempt: codes %s; want 200 429, nothing exempt", codes)
	}
}

func TestNativeDeny_answersOverLimitRefusalsOfItsTypeOnly(t *testing.T) {
	errMine := errors.New("the handler's own error")
	var answered []string
	withError := NativeDeny[*frameworkContext]("fw.OnDeny", func(c *frameworkContext, res Result) error {
		answered = append(answered, c.user)
		return errMine
	})
	without := NativeDeny[*frameworkContext]("fw.OnDeny", func(c *frameworkContext, res Result) {
		answered = append(answered, c.user)
	})
	over := Result{Verdict: Refuse, Status: http.StatusTooManyRequests}
	down := Result{Verdict: Refuse, Status: http.StatusServiceUnavailable}
	tests := []struct {
		name     string
		deny     Option
		native   any
		res      Result
		answered bool
		err      error
	}{
		{"over the limit, with an error", withError, &frameworkContext{user: "ann"}, over, true, errMine},
		{"over the limit, without an error", without, &frameworkContext{user: "ann"}, over, true, nil},
		{"a cost that never fits", without, &frameworkContext{user: "ann"}, Result{Verdict: Refuse, Status: http.StatusRequestEntityTooLarge}, true, nil},
		{"another kind of refusal", without, &frameworkContext{user: "bob"}, down, false, nil},
		{"another framework's context", withError, "another framework's", over, false, nil},
		{"no context", withError, nil, over, false, nil},
		{"a nil handler", NativeDeny[*frameworkContext]("fw.OnDeny", (func(*frameworkContext, Result))(nil)), &frameworkContext{user: "bob"}, over, false, nil},
		{"no handler", nil, &frameworkContext{user: "bob"}, over, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answered = nil
			m := MustNewMiddleware("1/minute", tt.deny)
			got, err := m.DenyNatively(tt.native, tt.res)
			if got != tt.answered || err != tt.err || (len(answered) > 0) != tt.answered {
				t.Errorf("DenyNatively = %v, %v (handler called for %v); want %v, %v", got, err, answered, tt.answered, tt.err)
			}
		})
	}
}

func TestNativeDeny_functionFailsWithAnErrorNamingTheOptionWithoutItsType(t *testing.T) {
	m := MustNewMiddleware("1/minute", NativeDeny[*frameworkContext]("fw.OnDeny", func(*frameworkContext, Result) {}))
	err := m.NativeDeny()("another framework's", Result{})
	if !errors.Is(err, ErrNativeType) || !strings.HasPrefix(err.Error(), "fw.OnDeny got no *core.frameworkContext") {
		t.Errorf("error %v; want one naming the option and the type, wrapping ErrNativeType", err)
	}
}
