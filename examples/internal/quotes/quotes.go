// Package quotes is what the three example apps share, so that their mains
// show only framework wiring: the stock-quote table, the demo users and
// their tokens, the limits, and the limiter and metrics registry an app
// runs on.
package quotes

import (
	"sort"
	"strings"
)

// Quote is a (made-up) stock quote.
type Quote struct {
	Symbol   string  `json:"symbol"`
	Name     string  `json:"name"`
	Price    float64 `json:"price"`
	Currency string  `json:"currency"`
}

// table is the quote "market"; the prices never move.
var table = map[string]Quote{
	"ACME": {"ACME", "Acme Corporation", 187.42, "USD"},
	"GLBX": {"GLBX", "Globex", 42.10, "USD"},
	"INIT": {"INIT", "Initech", 13.37, "USD"},
	"UMBR": {"UMBR", "Umbrella plc", 950.00, "GBP"},
}

// Find returns the quote for symbol, in any case.
func Find(symbol string) (Quote, bool) {
	q, ok := table[strings.ToUpper(symbol)]
	return q, ok
}

// All returns every quote, by symbol: the body of GET /export.
func All() []Quote {
	out := make([]Quote, 0, len(table))
	for _, q := range table {
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Symbol < out[j].Symbol })
	return out
}

// ExportLimit guards GET /export, per IP: a calendar quota, which resets
// at midnight UTC rather than a day after each request.
const ExportLimit = "3 per calendar day"

// ExportScope names the export budget.
const ExportScope = "export"

// ReportConcurrency is how many GET /report requests one client may have
// in flight at once: a concurrency limit, not a rate.
const ReportConcurrency = 2

// ReportScope names the report slots.
const ReportScope = "report"

// The limits of the quote API.
const (
	// AnonymousLimit is what clients that are not signed in get, per IP.
	AnonymousLimit = "100/minute"
	// LoginLimit guards POST /login, per IP: five password guesses a
	// minute.
	LoginLimit = "5/minute"
)

// Plans returns the limit of each plan, per user.
func Plans() map[string]string {
	return map[string]string{"free": "100/minute", "pro": "1000/minute"}
}

// The budgets' names: they label the metrics, and they keep the budgets
// the same whichever function builds the routes.
const (
	QuotesScope = "quotes"
	LoginScope  = "login"
)
