package chilimit_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
)

// A billing-style quota: 3 exports per calendar month, resetting at
// midnight on the first in Paris; X-RateLimit-Reset and Retry-After count
// the seconds until then.
func Example_calendarQuota() {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err) // no zone database: import _ "time/tzdata"
	}
	// 2024-06-30 12:00 UTC: ten hours before July begins in Paris.
	limiter := core.New(core.WithClock(func() time.Time { return time.Date(2024, 6, 30, 12, 0, 0, 0, time.UTC) }))
	defer limiter.Close()

	r := chi.NewRouter()
	r.With(chilimit.Limit("3 per calendar month", core.WithTimeZone(paris), core.WithLimiter(limiter))).Get("/export", hello)
	for range 4 {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", "/export", nil))
		fmt.Println(w.Code, "remaining", w.Header().Get("X-RateLimit-Remaining"), "reset", w.Header().Get("X-RateLimit-Reset"), "retry", w.Header().Values("Retry-After"))
	}
	// Output:
	// 200 remaining 2 reset 36000 retry []
	// 200 remaining 1 reset 36000 retry []
	// 200 remaining 0 reset 36000 retry []
	// 429 remaining 0 reset 36000 retry [36000]
}
