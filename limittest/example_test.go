package limittest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/limittest"
)

// A test isolates the default limiter, drives its clock, and checks the
// headers. (Examples cannot take a *testing.T; this one shows the body of
// a test.)
func ExampleIsolate() {
	test := func(t *testing.T) {
		clock := limittest.Isolate(t)
		h := core.MustNewMiddleware("1/minute", core.WithAlgorithm(core.FixedWindow)).
			Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		get := func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			return w
		}
		limittest.AssertAllowed(t, get(), limittest.Limit(1), limittest.Remaining(0))
		limittest.AssertLimited(t, get(), limittest.RetryAfter(time.Minute))
		clock.Advance(time.Minute)
		limittest.AssertAllowed(t, get())
	}
	_ = test
}

// Unlimited admits everything and keeps the headers consistent, for a
// limiter of the test's own.
func ExampleUnlimited() {
	lim := core.New(core.WithStore(limittest.Unlimited()))
	defer lim.Close()
	h := core.MustNewMiddleware("2/minute", core.WithLimiter(lim)).
		Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		fmt.Println(w.Code, w.Header().Get("X-RateLimit-Limit"), w.Header().Get("X-RateLimit-Remaining"), w.Header().Get("X-RateLimit-Reset"))
	}
	// Output:
	// 200 2 2 0
	// 200 2 2 0
	// 200 2 2 0
}

// ParseList reads the IETF fields whatever their parameters' order.
func ExampleParseList() {
	items, err := limittest.ParseList(`"quotes";q=100;w=60, "burst";w=1;q=10`)
	if err != nil {
		panic(err)
	}
	for _, it := range items {
		q, _ := it.Int("q")
		fmt.Println(it.Value, q)
	}
	// Output:
	// quotes 100
	// burst 10
}
