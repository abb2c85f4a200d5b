package quotes

import (
	"net/http"
	"time"

	"github.com/limitkit/limitkit/core"
)

// UsageLimit guards GET /usage, per IP, in a budget of its own: the usage
// of the quotes budget is read without spending it, but a route that reads
// tokens is limited all the same.
const UsageLimit = "60/minute"

// UsageScope names GET /usage's own budget.
const UsageScope = "usage"

// Usage is the answer to GET /usage: the caller's plan ("anonymous" for a
// client that is not signed in) and what is left of its quotes budget.
type Usage struct {
	Plan      string `json:"plan"`
	Limit     string `json:"limit"`
	Remaining int64  `json:"remaining"`
	// RetryAfter is, when nothing is left, how many seconds until a quote
	// is served again; 0 otherwise.
	RetryAfter int64 `json:"retry_after"`
}

// UsageOf turns a peek at the quotes budget into GET /usage's answer.
func UsageOf(u core.Usage) Usage {
	plan := u.Plan
	if plan == "" {
		plan = "anonymous"
	}
	secs := int64((u.Decision.RetryAfter + time.Second - 1) / time.Second)
	return Usage{Plan: plan, Limit: u.Decision.Limit.String(), Remaining: u.Remaining(), RetryAfter: secs}
}

// LoginFailed says whether a response to POST /login counts against
// LoginLimit: every answer but a success, so that only failed attempts
// (a wrong password, a malformed request) spend the budget.
func LoginFailed(status int) bool { return status != http.StatusOK }
