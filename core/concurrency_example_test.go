package core_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/limitkit/limitkit/core"
)

// A job runner holds at most two jobs per tenant at once: Acquire takes a
// slot, and the lease renews itself until Release gives it back.
func ExampleLimiter_Acquire() {
	limiter := core.New()
	defer limiter.Close()
	two, err := core.NewConcurrency(2, 0) // leases of DefaultLeaseTTL
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	var leases []*core.Lease
	for range 3 {
		d, lease, err := limiter.Acquire(ctx, "tenant-42", two)
		if err != nil {
			fmt.Println(err) // the store failed; the limit was not reached
			return
		}
		fmt.Println(d.Allowed, d.Remaining)
		if lease != nil {
			leases = append(leases, lease)
		}
	}
	_ = leases[0].Release(ctx) // the first job is done
	d, lease, _ := limiter.Acquire(ctx, "tenant-42", two)
	fmt.Println(d.Allowed, d.Remaining)
	fmt.Println(lease.Release(ctx), leases[1].Release(ctx))
	// Output:
	// true 1
	// true 0
	// false 0
	// true 0
	// <nil> <nil>
}

// At most one report per client is built at a time: a second request while
// the first runs is refused with 429.
func ExampleConcurrencyMiddleware_Handler() {
	limiter := core.New()
	defer limiter.Close()
	cm := core.MustNewConcurrencyMiddleware(1, core.WithLimiter(limiter))
	var h http.Handler
	inner := true
	h = cm.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inner { // while this report is built, the same client asks again
			inner = false
			w2 := httptest.NewRecorder()
			h.ServeHTTP(w2, r)
			fmt.Print("inner: ", w2.Code, " ", w2.Header().Get("Retry-After"), " ", w2.Body.String())
		}
		fmt.Fprintln(w, "report")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/reports", nil))
	fmt.Print("outer: ", w.Code, " ", w.Header().Get("X-RateLimit-Remaining"), " ", w.Body.String())
	// Output:
	// inner: 429 1 {"error":"rate limit exceeded","limit":"1 concurrent","retry_after":1}
	// outer: 200 0 report
}
