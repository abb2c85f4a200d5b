package core

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// otherContext stands for another framework's context.
type otherContext struct{}

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
	m := fw("1/minute", WithLimiter(lim), NativeKey("fw.Key", userKey))
	alice, bob := &frameworkContext{user: "alice"}, &frameworkContext{user: "bob"}
	codes := fmt.Sprint(first(checkWith(m, alice)), first(checkWith(m, bob)), first(checkWith(m, alice)))
	if codes != "200 200 429" {
		t.Errorf("codes alice, bob, alice: %s; want 200 200 429 (one budget per user, not per IP)", codes)
	}
}

func first(code int, _ http.Header) int { return code }

// fw builds a middleware as an adapter whose context is *frameworkContext
// does, with MustAdapt.
func fw(expr string, opts ...AdapterOption) *Middleware {
	return MustAdapt[*frameworkContext]("fw.Limit", 1, expr, opts, func(m *Middleware) *Middleware { return m })
}

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
			m := fw("5/minute", WithLimiter(lim), NativeKey("fw.Key", userKey), WithKeyErrorPolicy(tt.policy))
			if got, _ := checkWith(m, tt.native); got != tt.want {
				t.Errorf("status %d; want %d", got, tt.want)
			}
		})
	}
}

func TestNativeKeys_combineAsCombineDoes(t *testing.T) {
	rec := &recorder{}
	lim, _ := clockedLimiter(t, WithObserver(rec))
	combined := fw("5/minute", WithLimiter(lim), WithKey(Combine(
		func(*http.Request) (string, error) { return "a|b", nil },
		ByIP,
	)))
	checkWith(combined, nil)
	want := rec.last().Identity
	for name, key := range map[string]AdapterOption{
		"NativeKey": NativeKey("fw.Key", userKey, func(*frameworkContext) (string, error) { return ByIP(request(client)) }),
	} {
		checkWith(fw("5/minute", WithLimiter(lim), key, WithName("combined-"+strings.ToLower(name))), &frameworkContext{user: "a|b"})
		if got := rec.last().Identity; got != want || strings.Contains(got, "a|b") {
			t.Errorf("%s: identity %q; want %q, as Combine gives, the part with a separator hashed", name, got, want)
		}
	}
}

func TestNativeKey_andWithKeyReplaceEachOther(t *testing.T) {
	native := NativeKey("fw.Key", userKey)
	byHeader := WithKey(ByHeader("X-User"))
	tests := []struct {
		name string
		opts []AdapterOption
		want string
	}{
		{"native key given last", []AdapterOption{byHeader, native}, "alice"},
		{"WithKey given last", []AdapterOption{native, byHeader}, HashIdentity("bob")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			lim, _ := clockedLimiter(t, WithObserver(rec))
			m := fw("5/minute", append([]AdapterOption{WithLimiter(lim)}, tt.opts...)...)
			r := request(client, "X-User", "bob")
			m.EnforceWith(r, nil, &frameworkContext{user: "alice"})
			if got := rec.last().Identity; got != tt.want {
				t.Errorf("identity %q; want %q", got, tt.want)
			}
		})
	}
}

func TestCheckWith_nativeExemptAndWithExemptBothApply(t *testing.T) {
	lim, _ := clockedLimiter(t)
	m := fw("1/minute", WithLimiter(lim),
		WithExempt(func(r *http.Request) bool { return r.Header.Get("X-Health") != "" }),
		NativeExempt("fw.Exempt", func(c *frameworkContext) bool { return c.internal }))
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
	m := fw("1/minute", WithLimiter(lim), NativeDeny[*frameworkContext]("fw.OnDeny", func(*frameworkContext, Result) error {
		called = true
		return nil
	}))
	deny := m.NativeDeny()
	if deny == nil {
		t.Fatal("NativeDeny() = nil; want the function NativeDeny gave")
	}
	h := m.Handler(okHandler)
	get(h, "/", client)
	if w := get(h, "/", client); w.Code != http.StatusTooManyRequests || called {
		t.Errorf("Handler: status %d, native deny called %v; want 429 by core's own refusal", w.Code, called)
	}
	if err := deny(&frameworkContext{}, Result{}); err != nil || !called {
		t.Errorf("deny() = %v, called %v; want the given function", err, called)
	}
	if fw("1/minute", WithLimiter(lim)).NativeDeny() != nil {
		t.Error("NativeDeny() without a NativeDeny option is not nil")
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
	plain := fw("1000000000/hour", WithLimiter(lim), WithKey(func(*http.Request) (string, error) { return "alice", nil }))
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
	for name, key := range map[string]AdapterOption{"NativeKey": NativeKey("fw.Key", userKey)} {
		if n := count(fw("1000000000/hour", WithLimiter(lim), key, WithName("alloc-"+strings.ToLower(name)))); n > p {
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
	m := fw("1/minute", WithLimiter(lim), NativeKey("fw.Key", userKey), WithKeyErrorPolicy(KeyErrorRefuse))
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
		opts   []AdapterOption
		want   string
		syntax string // the expression of a wrapped *SyntaxError
	}{
		{"no key", []AdapterOption{NativeKey[*frameworkContext, func(*frameworkContext) (string, error)]("fw.Key")}, "fw.Key(): give at least one key function, or leave the option out to key by IP", ""},
		{"a nil key", []AdapterOption{NativeKey[*frameworkContext, func(*frameworkContext) (string, error)]("fw.Key", nil)}, "fw.Key(nil): give a key function, or leave the option out to key by IP", ""},
		{"a nil key among others", []AdapterOption{NativeKey("fw.Key", userKey, nil)}, "fw.Key: key function 2 of 2 is nil", ""},
		{"a nil plan function", []AdapterOption{NativePlans[*frameworkContext, func(*frameworkContext) string]("fw.Plans", map[string]string{"pro": "9/minute"}, nil)}, "fw.Plans: the planOf function is nil", ""},
		{"a bad plan name", []AdapterOption{NativePlans("fw.Plans", map[string]string{"pro:1": "9/minute"}, planOf)}, `fw.Plans: limitkit: plan "pro:1": use printable ASCII`, ""},
		{"a bad plan expression", []AdapterOption{NativePlans("fw.Plans", map[string]string{"pro": "9/minnute"}, planOf)}, `fw.Plans: plan "pro": limitkit: invalid limit "9/minnute"`, "9/minnute"},
		{"two bad plans, in the order of their names", []AdapterOption{NativePlans("fw.Plans", map[string]string{"b": "x", "a": "y"}, planOf)}, `fw.Plans: plan "a": limitkit: invalid limit "y" at offset 0: expected a count (a positive whole number)` + "\n" + `fw.Plans: plan "b"`, "y"},
		{"an invalid option", []AdapterOption{InvalidOption(errors.New("fw.Thing: wrong"))}, "fw.Thing: wrong", ""},
		{"another framework's key", []AdapterOption{NativeKey("other.Key", func(*otherContext) (string, error) { return "", nil })},
			"limitkit: other.Key reads a *core.otherContext, and this middleware is given *core.frameworkContext", ""},
		{"another framework's plans", []AdapterOption{NativePlans("other.Plans", nil, func(*otherContext) string { return "" })}, "limitkit: other.Plans reads a *core.otherContext", ""},
		{"another framework's exemption", []AdapterOption{NativeExempt("other.Exempt", func(*otherContext) bool { return true })}, "limitkit: other.Exempt reads a *core.otherContext", ""},
		{"another framework's deny handler", []AdapterOption{NativeDeny[*otherContext]("other.OnDeny", func(*otherContext, Result) {})}, "limitkit: other.OnDeny reads a *core.otherContext", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Adapt[*frameworkContext]("fw.New", 1, "5/minute", tt.opts, func(m *Middleware) *Middleware { return m })
			const call = `fw.New("5/minute"): `
			if err == nil || !strings.HasPrefix(err.Error(), call) {
				t.Fatalf("error %v; want one beginning with %s", err, call)
			}
			if msg := strings.TrimPrefix(err.Error(), call); !strings.HasPrefix(msg, tt.want[:strings.IndexByte(tt.want, ':')]) || !strings.Contains(msg, tt.want) {
				t.Fatalf("error %v; want one naming the option first and containing %q", err, tt.want)
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
	m := fw("1/minute", WithLimiter(lim), NativePlans("fw.Plans", map[string]string{"pro": "3/minute"},
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
	m := fw("1/minute", WithLimiter(lim), NativeExempt("fw.Exempt", func(c *frameworkContext) bool { return c.internal }))
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
	none := fw("1/minute", WithLimiter(lim), NativeExempt[*frameworkContext, func(*frameworkContext) bool]("fw.Exempt", nil))
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
		deny     AdapterOption
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
			m := fw("1/minute", tt.deny)
			got, err := m.DenyNatively(tt.native, tt.res)
			if got != tt.answered || err != tt.err || (len(answered) > 0) != tt.answered {
				t.Errorf("DenyNatively = %v, %v (handler called for %v); want %v, %v", got, err, answered, tt.answered, tt.err)
			}
		})
	}
}

func TestNativeDeny_functionFailsWithAnErrorNamingTheOptionWithoutItsType(t *testing.T) {
	m := fw("1/minute", NativeDeny[*frameworkContext]("fw.OnDeny", func(*frameworkContext, Result) {}))
	err := m.NativeDeny()("another framework's", Result{})
	if !errors.Is(err, ErrNativeType) || !strings.HasPrefix(err.Error(), "fw.OnDeny got no *core.frameworkContext") {
		t.Errorf("error %v; want one naming the option and the type, wrapping ErrNativeType", err)
	}
}

func TestAdapt_withoutANativeContextRefusesEveryNativeOption(t *testing.T) {
	_, err := Adapt[any]("plain.New", 1, "5/minute", []AdapterOption{WithName("plain"), NativeKey("fw.Key", userKey)},
		func(m *Middleware) *Middleware { return m })
	want := `plain.New("5/minute"): limitkit: fw.Key reads a *core.frameworkContext, and this middleware is given no framework context`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v; want %s...", err, want)
	}
	if _, err := Adapt[any]("plain.New", 1, "5/minute", []MiddlewareOption{WithName("plain")}, func(m *Middleware) *Middleware { return m }); err != nil {
		t.Errorf("core's options: %v", err)
	}
}
