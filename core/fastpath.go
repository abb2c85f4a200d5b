package core

import (
	"math"
	"time"
)

// decideOne is decide for an entry of a rule of one limit, the common case,
// with the usual paths of four algorithms written out: the memory store
// spends most of a check here. Each fast path is check and commit fused,
// for a cell that only this shape has written (stores keep state per rule
// shape, so its windows start where the shape's do); anything unusual
// falls through to check and commit. It writes the decision to d, which is
// zero. With charge false it is a peek, as fast: the decision a charge
// would get, and the cell left as it is (a log may drop expired events,
// which changes no decision).
func (e *entry) decideOne(d *Decision, er *entryRule, l Limit, now, cost int64, charge bool) {
	alg, s, c := er.alg, &er.shape, &e.one
	d.Limit = l
	switch alg {
	case TokenBucket, LeakyBucket:
		tat := max(c.a, now)
		if next := tat + cost*s.step; cost <= s.burst && next-now <= s.depth {
			if charge {
				if c.a <= now {
					c.b = now // full: see cell.commit
				}
				c.a = next
			}
			d.Allowed = true
			d.Remaining = (s.depth - (next - now)) / s.step
			d.ResetAfter = time.Duration(next-now) * time.Microsecond
			if alg == LeakyBucket {
				d.Delay = time.Duration(tat-now) * time.Microsecond
			}
			return
		}
	case FixedWindow:
		// Inside the stored window there is no need to divide for the
		// window's start. (A calendar limit's cell keeps its window's end:
		// checkCalendar.)
		if s.zone == nil && now >= c.a && now-c.a < s.window && cost <= s.count && c.b <= s.count-cost {
			d.Allowed = true
			d.Remaining = s.count - c.b - cost
			d.ResetAfter = time.Duration(c.a+s.window-now) * time.Microsecond
			if charge {
				c.b += cost
			}
			return
		}
	case SlidingWindowCounter:
		if elapsed := now - c.a; now >= c.a && elapsed < s.window && cost <= s.count {
			est := estimate(c.c, c.b, s.window, elapsed)
			if est+float64(cost) <= float64(s.count) {
				if charge {
					c.b += cost
				}
				d.Allowed = true
				d.Remaining = int64(math.Floor(float64(s.count) - est - float64(cost)))
				d.ResetAfter = time.Duration(c.a+2*s.window-now) * time.Microsecond
				return
			}
		}
	case SlidingWindowLog:
		if l := c.log; l != nil {
			l.expire(now - s.window)
			if sum := l.sum(); cost <= s.count && sum <= s.count-cost {
				d.Allowed = true
				d.Remaining = s.count - sum - cost
				d.ResetAfter = time.Duration(s.window) * time.Microsecond
				if charge {
					l.add(now, cost)
				}
				return
			}
		}
	}
	v := c.check(alg, *s, now, cost)
	if v.ok && charge {
		c.commit(alg, *s, now, cost)
	}
	d.Allowed = v.ok
	d.Remaining = v.remaining
	d.ResetAfter = time.Duration(v.resetAfter) * time.Microsecond
	d.RetryAfter = time.Duration(v.retryAfter) * time.Microsecond
	d.Delay = time.Duration(v.delay) * time.Microsecond
	d.Never = v.never
}
