package core_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/limitkit/limitkit/core"
)

// Reserve charges an estimate before the work and settles to what the work
// cost: an LLM call budgeted in tokens.
func ExampleLimiter_Reserve() {
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	ctx := context.Background()
	rule := core.MustRule("10000/hour", core.SlidingWindowCounter)

	res, err := limiter.Reserve(ctx, "user:42", rule, 4000) // at most 4000 tokens
	if err != nil || !res.OK() {
		fmt.Println("refused", err)
		return
	}
	used := int64(1234) // what the model used
	if err := res.Settle(ctx, used); err != nil {
		fmt.Println(err)
	}
	d, _ := limiter.Peek(ctx, "user:42", rule, 0)
	fmt.Println("left:", d.Remaining)
	fmt.Println("second settle:", res.Settle(ctx, used))
	// Output:
	// left: 8766
	// second settle: limitkit: the reservation is already settled or cancelled
}

// WithChargeWhen counts only failed logins: successes never spend the
// budget, and concurrent guesses cannot slip past it.
func ExampleWithChargeWhen() {
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	login := core.MustNewMiddleware("2/minute", core.WithLimiter(limiter),
		core.WithChargeWhen(func(status int) bool { return status != http.StatusOK }))
	h := login.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("password") != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	for _, password := range []string{"secret", "secret", "secret", "guess", "guess", "secret"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/login?password="+password, nil))
		fmt.Print(w.Code, " ")
	}
	fmt.Println()
	// Output:
	// 200 200 200 401 401 429
}

// Peek answers GET /usage for another route's budget without spending it.
func ExampleMiddleware_Peek() {
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	quotes := core.MustNewMiddleware("100/minute", core.WithLimiter(limiter), core.WithName("quotes"))
	api := quotes.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 3 {
		api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/quotes/ACME", nil))
	}
	u, err := quotes.Peek(httptest.NewRequest(http.MethodGet, "/usage", nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(u.Scope, u.Decision.Limit, "remaining:", u.Remaining())
	// Output:
	// quotes 100/minute remaining: 97
}
