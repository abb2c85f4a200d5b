package core_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/limitkit/limitkit/core"
)

// The IETF fields of draft-ietf-httpapi-ratelimit-headers-11: the policy,
// and the available quota r with its effective window t. On the refusal t
// is Retry-After, never earlier.
func ExampleWithIETFHeaders() {
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	quotes := core.MustNewMiddleware("2/minute", core.WithLimiter(limiter), core.WithName("quotes"),
		core.WithAlgorithm(core.FixedWindow), core.WithIETFHeaders())
	h := quotes.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/quotes", nil))
		fmt.Println(w.Code, w.Header().Get("RateLimit-Policy"), w.Header().Get("RateLimit"), w.Header().Values("Retry-After"))
	}
	// Output:
	// 200 "quotes";q=2;w=60 "quotes";r=1;t=40 []
	// 200 "quotes";q=2;w=60 "quotes";r=0;t=40 []
	// 429 "quotes";q=2;w=60 "quotes";r=0;t=40 [40]
}

// A partition key tells a client which responses share a budget, without
// naming whose budget it is: a keyed hash, under a secret of its own.
func ExampleWithPartitionKey() {
	pkSecret := []byte("load me from the app's secrets!!") // 32 random bytes in a real app
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	m := core.MustNewMiddleware("100/minute", core.WithLimiter(limiter), core.WithName("quotes"),
		core.WithIETFHeaders(), core.WithPartitionKey(core.MustNewIdentityHasher(pkSecret)))
	h := m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	pk := func(remote string) string {
		r := httptest.NewRequest(http.MethodGet, "/quotes", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Header().Get("RateLimit")
	}
	a, b, c := pk("203.0.113.7:1"), pk("203.0.113.7:2"), pk("198.51.100.1:1")
	fmt.Println(a[len(a)-18:] == b[len(b)-18:], a[len(a)-18:] == c[len(c)-18:])
	// Output: true false
}
