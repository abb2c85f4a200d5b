package core_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/limitkit/limitkit/core"
)

// frameworkCtx stands for a framework's own request context.
type frameworkCtx struct{ user string }

// otherCtx stands for another framework's context.
type otherCtx struct{}

// An adapter's Key option is one line over NativeKey: users write key
// functions against the framework's context, which the adapter passes to
// EnforceWith.
func ExampleNativeKey() {
	key := func(keys ...func(*frameworkCtx) (string, error)) core.AdapterOption {
		return core.NativeKey("myadapter.Key", keys...) // the adapter's Key
	}
	limit := func(expr string, opts ...core.AdapterOption) *core.Middleware { // the adapter's Limit
		return core.MustAdapt[*frameworkCtx]("myadapter.Limit", 1, expr, opts, func(m *core.Middleware) *core.Middleware { return m })
	}
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	m := limit("1/hour", core.WithLimiter(limiter), key(func(c *frameworkCtx) (string, error) { return c.user, nil }))

	for _, user := range []string{"ann", "bob", "ann"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		res := m.EnforceWith(r, http.Header{}, &frameworkCtx{user: user})
		fmt.Println(user, res.Verdict == core.Serve)
	}
	_, err := core.Adapt[*frameworkCtx]("myadapter.New", 1, "1/hour", []core.AdapterOption{key(nil)},
		func(m *core.Middleware) *core.Middleware { return m })
	fmt.Println(err)
	// Output:
	// ann true
	// bob true
	// ann false
	// myadapter.New("1/hour"): myadapter.Key(nil): give a key function, or leave the option out to key by IP
}

// An adapter's constructors are one line each over Adapt and MustAdapt, so
// their errors name the call and wrap core's. The type argument is the
// framework context the adapter passes to EnforceWith: a native option
// built for another framework's fails the constructor, naming the option.
func ExampleAdapt() {
	newMiddleware := func(expr string, opts ...core.AdapterOption) (http.Handler, error) { // the adapter's New
		return core.Adapt[*frameworkCtx]("myadapter.New", 1, expr, opts, func(m *core.Middleware) http.Handler {
			return m.Handler(http.NotFoundHandler())
		})
	}
	_, err := newMiddleware("5/minit")
	fmt.Println(err)
	var se *core.SyntaxError
	fmt.Println(errors.As(err, &se), se.Offset)
	_, err = newMiddleware("5/minute", core.NativeKey("otheradapter.Key", func(*otherCtx) (string, error) { return "", nil }))
	fmt.Println(err)
	// Output:
	// myadapter.New("5/minit"): limitkit: invalid limit "5/minit" at offset 2: unknown unit "minit"; expected second, minute, hour, day, month or year
	// true 2
	// myadapter.New("5/minute"): limitkit: otheradapter.Key reads a *core_test.otherCtx, and this middleware is given *core_test.frameworkCtx: give it to its own framework's adapter
}
