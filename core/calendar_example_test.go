package core_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/limitkit/limitkit/core"
)

// A billing-style quota: 1000 requests per calendar month, resetting at
// midnight on the first in Paris, beside a per-second limit. Both limits
// are counted in fixed windows, and a request is charged to both or none.
func ExamplePerCalendar() {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err) // no zone database: import _ "time/tzdata"
	}
	rule := core.Rule{
		Limits:    []core.Limit{core.Per(10, time.Second), core.PerCalendar(1000, core.CalendarMonth, paris)},
		Algorithm: core.FixedWindow,
	}
	fmt.Println(rule)
	// The same rule in the grammar:
	same := core.MustRule("10/second;1000 per calendar month in Europe/Paris", 0)
	fmt.Println(same.Shape() == rule.Shape(), same.Algorithm)

	// March 2024 in Paris had 31 days, one of them of 23 hours.
	start, end := rule.Limits[1].Window(time.Date(2024, 3, 15, 12, 0, 0, 0, time.UTC))
	fmt.Println(start, "to", end, "=", end.Sub(start))

	lim := core.New()
	defer lim.Close()
	d, _ := lim.Take(context.Background(), "customer-42", rule, 1)
	fmt.Println(d.Allowed)
	// Output:
	// 10/second;1000/calendar month in Europe/Paris
	// true fixed-window
	// 2024-03-01 00:00:00 +0100 CET to 2024-04-01 00:00:00 +0200 CEST = 743h0m0s
	// true
}

// A middleware's calendar limits reset in the zone WithTimeZone names, here
// a plan's monthly quota and a daily limit for everyone else.
func ExampleWithTimeZone() {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		panic(err)
	}
	m, err := core.NewMiddleware("100/calendar day",
		core.WithTimeZone(tokyo),
		core.WithPlans(map[string]string{"pro": "100000 per calendar month"}, func(r *http.Request) string {
			return r.Header.Get("X-Plan") // in an app: the authenticated user's plan
		}),
	)
	if err != nil {
		panic(err)
	}
	_ = m.Handler(http.NotFoundHandler())
	// A zone given for nothing is a mistake, found at start-up:
	_, err = core.NewMiddleware("100/minute", core.WithTimeZone(tokyo))
	fmt.Println(err)
	// Output:
	// limitkit: WithTimeZone(Asia/Tokyo): "100/minute" has no calendar limit for it to apply to; write "per calendar month" (or day, week, year)
}
