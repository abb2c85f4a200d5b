package limittest

import (
	"context"
	"fmt"

	"github.com/limitkit/limitkit/core"
)

// Unlimited returns a core.Store that admits every request, whatever its
// cost, and keeps no state: limiting off. Its decisions keep the headers
// consistent: X-RateLimit-Limit is the rule's first limit, Remaining is
// that limit's full count (nothing is ever spent) and Reset is 0.
func Unlimited() core.Store { return unlimited{} }

type unlimited struct{}

// Take admits the request.
func (unlimited) Take(ctx context.Context, key string, rule core.Rule, cost int64) (core.Decision, error) {
	if len(rule.Limits) == 0 {
		return core.Decision{}, fmt.Errorf("limittest: Unlimited: rule %q has no limits", rule.String())
	}
	l := rule.Limits[0]
	return core.Decision{Allowed: true, Limit: l, Remaining: l.Count}, nil
}

// Reset does nothing: there is nothing to forget.
func (unlimited) Reset(context.Context, string, core.Rule) error { return nil }

// Close does nothing.
func (unlimited) Close() error { return nil }

// KeepsDeadlines reports that Take returns at once, so that the limiter
// calls it on the request's goroutine (see core.DeadlineKeeper).
func (unlimited) KeepsDeadlines() bool { return true }
