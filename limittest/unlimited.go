package limittest

import (
	"context"
	"fmt"
	"time"

	"github.com/limitkit/limitkit/core"
)

// Unlimited returns a store that admits every request, whatever its cost,
// and keeps no state: limiting off. Its decisions keep the headers
// consistent: X-RateLimit-Limit is the rule's first limit, Remaining is
// that limit's full count (nothing is ever spent) and Reset is 0. It is a
// core.QuotaStore, so that peeks (a GET /usage) and limits that charge by
// outcome (core.WithChargeWhen) work on it too: a peek sees the full
// budget, a reservation is admitted and a refund gives back nothing.
func Unlimited() core.QuotaStore { return unlimited{} }

type unlimited struct{}

var _ core.DeadlineKeeper = unlimited{}

// Take admits the request.
func (unlimited) Take(ctx context.Context, key string, rule core.Rule, cost int64) (core.Decision, error) {
	if len(rule.Limits) == 0 {
		return core.Decision{}, fmt.Errorf("limittest: Unlimited: rule %q has no limits", rule.String())
	}
	l := rule.Limits[0]
	return core.Decision{Allowed: true, Limit: l, Remaining: l.Count}, nil
}

// Peek returns the decision a request of cost would get from a full
// budget: its Remaining is what the request would leave, as every store's
// peek says, so that core.Usage.Remaining reports the full count.
func (u unlimited) Peek(ctx context.Context, key string, rule core.Rule, cost int64) (core.Decision, error) {
	d, err := u.Take(ctx, key, rule, cost)
	d.Remaining = max(d.Remaining-cost, 0)
	return d, err
}

// Reserve admits the request, as Take does; the charge records the cost,
// so that a refund of up to it is valid.
func (u unlimited) Reserve(ctx context.Context, key string, rule core.Rule, cost int64) (core.Decision, core.Charge, error) {
	d, err := u.Take(ctx, key, rule, cost)
	if err != nil {
		return d, core.Charge{}, err
	}
	return d, core.Charge{At: time.Now(), Cost: cost}, nil
}

// Refund checks the amount, as every store does, and gives back nothing:
// nothing was spent.
func (unlimited) Refund(_ context.Context, _ string, _ core.Rule, c core.Charge, amount int64) error {
	if amount < 0 || amount > c.Cost {
		return fmt.Errorf("limittest: Unlimited: refund %d of a charge of %d: want between 0 and the charge", amount, c.Cost)
	}
	return nil
}

// Reset does nothing: there is nothing to forget.
func (unlimited) Reset(context.Context, string, core.Rule) error { return nil }

// Close does nothing.
func (unlimited) Close() error { return nil }

// KeepsDeadlines reports that Take returns at once, so that the limiter
// calls it on the request's goroutine (see core.DeadlineKeeper).
func (unlimited) KeepsDeadlines() bool { return true }
