package chilimit_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
)

func hello(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") }

// call sends one request to h and prints what came back.
func call(h http.Handler, method, path string) {
	r := httptest.NewRequest(method, path, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(method, path, w.Code, "remaining", w.Header().Get("X-RateLimit-Remaining"))
	if ra := w.Header().Get("Retry-After"); ra != "" {
		fmt.Println("  retry after", ra, "s:", strings.TrimSpace(w.Body.String()))
	}
}

// stopped is a clock that keeps the examples' output the same on every run.
func stopped() time.Time { return time.Unix(1_700_000_000, 0) }

// One route gets its own limit with r.With; a subrouter shares one budget
// with r.Use.
func Example() {
	// In production: core.New(core.WithStore(redisstore.New(rdb))), or no
	// WithLimiter at all for the default limiter.
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()

	r := chi.NewRouter()
	r.With(chilimit.Limit("2/minute", core.WithLimiter(limiter))).Post("/login", hello)
	r.Route("/api", func(r chi.Router) {
		r.Use(chilimit.Limit("100/minute", core.WithLimiter(limiter)))
		r.Get("/items", hello)
		r.Get("/items/{id}", hello)
	})

	call(r, "POST", "/login")
	call(r, "POST", "/login")
	call(r, "POST", "/login")
	call(r, "GET", "/api/items")
	call(r, "GET", "/api/items/7")
	// Output:
	// POST /login 200 remaining 1
	// POST /login 200 remaining 0
	// POST /login 429 remaining 0
	//   retry after 70 s: {"error":"rate limit exceeded","limit":"2/minute","retry_after":70}
	// GET /api/items 200 remaining 99
	// GET /api/items/7 200 remaining 98
}

// ByRoute gives each route under one middleware its own budget per client.
func ExampleByRoute() {
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()

	r := chi.NewRouter()
	r.Use(chilimit.Limit("1/minute", core.WithLimiter(limiter), chilimit.ByRoute()))
	r.Get("/a", hello)
	r.Get("/b", hello)

	call(r, "GET", "/a")
	call(r, "GET", "/b")
	call(r, "GET", "/a")
	// Output:
	// GET /a 200 remaining 0
	// GET /b 200 remaining 0
	// GET /a 429 remaining 0
	//   retry after 100 s: {"error":"rate limit exceeded","limit":"1/minute","retry_after":100}
}

// New returns the error of a limit read from configuration: it names the
// call and wraps core's, which errors.As finds.
func ExampleNew() {
	_, err := chilimit.New("100 per fortnight")
	fmt.Println(err)
	var se *core.SyntaxError
	if errors.As(err, &se) {
		fmt.Println("offset", se.Offset, "of", se.Expr)
	}
	// Output:
	// chilimit.New("100 per fortnight"): limitkit: invalid limit "100 per fortnight" at offset 8: unknown unit "fortnight"; expected second, minute, hour, day, month or year
	// offset 8 of 100 per fortnight
}

// At most one upload per client in flight: a second one while the first
// runs is refused with 429 and Retry-After: 1.
func ExampleConcurrency() {
	limiter := core.New()
	defer limiter.Close()
	r := chi.NewRouter()
	var again func()
	r.With(chilimit.Concurrency(1, core.WithLimiter(limiter))).Post("/uploads", func(w http.ResponseWriter, _ *http.Request) {
		if again != nil {
			f := again
			again = nil
			f() // the same client uploads again while this one runs
		}
		fmt.Fprintln(w, "stored")
	})
	again = func() { call(r, "POST", "/uploads") }
	call(r, "POST", "/uploads")
	// Output:
	// POST /uploads 429 remaining 0
	//   retry after 1 s: {"error":"rate limit exceeded","limit":"1 concurrent","retry_after":1}
	// POST /uploads 200 remaining 0
}
