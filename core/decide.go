package core

import (
	"math"
	"sort"
	"time"
)

// This file holds the algorithms' arithmetic, shared by every in-process
// store. All times are integer microseconds since the Unix epoch: that is
// what Redis's TIME gives and what Lua's doubles hold exactly, so the Redis
// store's scripts repeat this arithmetic step for step and decide the same.

// shape is a limit prepared for arithmetic. The buckets' step and depth
// come first: the memory store's entry keeps them on the cache line of the
// state, which a check writes, and the rest on the line a lookup reads.
type shape struct {
	step   int64 // T = W/L, µs: the emission interval of the buckets
	depth  int64 // τ = burst·T, µs: how far the buckets may run ahead
	count  int64 // L
	window int64 // W, µs
	burst  int64
	// zone is a calendar limit's time zone (see calendar.go), nil for any
	// other limit; its unit is the one whose nominal period is window.
	zone *time.Location
}

// shapeOf prepares l. The buckets' step is W/L rounded up to a whole
// microsecond, so that a bucket never sustains more than its stated rate;
// Rule.Validate refuses the rates where the rounding would cost a whole
// request per window or more.
func shapeOf(l Limit, burst int64) shape {
	w := int64(l.Period / time.Microsecond)
	s := shape{count: l.Count, window: w, burst: burst, zone: l.calendarZone()}
	s.step = (w + l.Count - 1) / l.Count
	s.depth = burst * s.step
	return s
}

// cell is the state of one limit of one key.
//
//	FixedWindow:          a = window start, b = count
//	  (a calendar limit:  a = window end, b = count; see checkCalendar)
//	SlidingWindowCounter: a = window start, b = current count, c = previous count
//	TokenBucket, LeakyBucket: a = theoretical arrival time (TAT) of the next request,
//	                      b = when a charge last found the bucket full (refunds
//	                      give back only charges made since)
//	SlidingWindowLog:     log
type cell struct {
	a, b, c int64
	log     *eventLog
}

// limitCheck is what one limit of a rule says of a request, in µs.
type limitCheck struct {
	ok         bool
	never      bool
	remaining  int64
	resetAfter int64
	retryAfter int64
	delay      int64
}

func (c *cell) check(alg Algorithm, s shape, now, cost int64) limitCheck {
	switch alg {
	case FixedWindow:
		if s.zone != nil {
			return c.checkCalendar(s, now, cost)
		}
		return c.checkFixed(s, now, cost)
	case SlidingWindowLog:
		return c.checkLog(s, now, cost)
	case TokenBucket, LeakyBucket:
		v := c.checkBucket(s, now, cost)
		if alg == LeakyBucket && v.ok {
			v.delay = max(c.a, now) - now
		}
		return v
	default:
		return c.checkCounter(s, now, cost)
	}
}

// commit charges an admitted request; check must have said ok at the same now.
func (c *cell) commit(alg Algorithm, s shape, now, cost int64) {
	switch alg {
	case FixedWindow:
		if s.zone != nil {
			c.commitCalendar(s, now, cost)
			return
		}
		if ws := windowStart(now, s.window); ws > c.a {
			c.a, c.b = ws, 0
		}
		c.b += cost
	case SlidingWindowLog:
		c.log.add(now, cost)
	case TokenBucket, LeakyBucket:
		if c.a <= now {
			c.b = now // full: what was charged before is all back
		}
		c.a = max(c.a, now) + cost*s.step
	default:
		ws := windowStart(now, s.window)
		switch {
		case ws <= c.a:
		case ws == c.a+s.window:
			c.a, c.b, c.c = ws, 0, c.b
		default:
			c.a, c.b, c.c = ws, 0, 0
		}
		c.b += cost
	}
}

// expires is the time after which the cell holds nothing a fresh cell
// would not, so its key may be dropped.
func (c *cell) expires(alg Algorithm, s shape) int64 {
	switch alg {
	case FixedWindow:
		if s.zone != nil {
			return c.a
		}
		return c.a + s.window
	case SlidingWindowLog:
		return c.log.newest() + s.window
	case TokenBucket, LeakyBucket:
		return c.a
	default:
		return c.a + 2*s.window
	}
}

// loss is the share of its budget the cell has spent at now, from 0 to 1.
func (c *cell) loss(alg Algorithm, s shape, now int64) float64 {
	switch alg {
	case FixedWindow:
		if s.zone != nil {
			return c.calendarLoss(s, now)
		}
		if now >= c.a+s.window {
			return 0
		}
		return float64(c.b) / float64(s.count)
	case SlidingWindowLog:
		if c.log == nil {
			return 0
		}
		c.log.expire(now - s.window)
		return float64(c.log.sum()) / float64(s.count)
	case TokenBucket, LeakyBucket:
		// A reading of now older than the state (a clock that went back, a
		// caller that stalled before the lock) could say more than spent.
		return min(float64(max(c.a-now, 0))/float64(s.depth), 1)
	default:
		ws, curr, prev := c.counterState(s, now)
		elapsed := min(max(now-ws, 0), s.window)
		return estimate(prev, curr, s.window, elapsed) / float64(s.count)
	}
}

func windowStart(now, w int64) int64 { return now - now%w }

func (c *cell) checkFixed(s shape, now, cost int64) limitCheck {
	ws, n := windowStart(now, s.window), c.b
	if ws > c.a {
		n = 0
	} else {
		ws = c.a // the clock went back: stay in the stored window
	}
	v := limitCheck{resetAfter: ws + s.window - now}
	// cost is compared before it is added: n+cost could overflow.
	if cost <= s.count && n <= s.count-cost {
		v.ok, v.remaining = true, s.count-n-cost
		return v
	}
	v.remaining = max(s.count-n, 0)
	if cost > s.count {
		v.never = true
	} else {
		v.retryAfter = ws + s.window - now
	}
	return v
}

// counterState reads the two windows as they stand at now.
func (c *cell) counterState(s shape, now int64) (ws, curr, prev int64) {
	ws = windowStart(now, s.window)
	switch {
	case ws <= c.a:
		return c.a, c.b, c.c
	case ws == c.a+s.window:
		return ws, 0, c.b
	default:
		return ws, 0, 0
	}
}

// estimate is the sliding counter's weighted count. The order of operations
// is part of the contract: the Redis script computes the same doubles.
func estimate(prev, curr, window, elapsed int64) float64 {
	return float64(prev)*float64(window-elapsed)/float64(window) + float64(curr)
}

func (c *cell) checkCounter(s shape, now, cost int64) limitCheck {
	ws, curr, prev := c.counterState(s, now)
	elapsed := min(max(now-ws, 0), s.window)
	est := estimate(prev, curr, s.window, elapsed)
	var v limitCheck
	switch {
	case curr > 0:
		v.resetAfter = ws + 2*s.window - now
	case prev > 0:
		v.resetAfter = ws + s.window - now
	}
	if cost <= s.count && est+float64(cost) <= float64(s.count) {
		v.ok = true
		v.remaining = int64(math.Floor(float64(s.count) - est - float64(cost)))
		v.resetAfter = ws + 2*s.window - now
		return v
	}
	v.remaining = max(int64(math.Floor(float64(s.count)-est)), 0)
	if cost > s.count {
		v.never = true
		return v
	}
	// The earliest admitting moment is in this window if the current count
	// leaves room, else in the next one, where this window's count becomes
	// the previous count.
	if curr+cost <= s.count {
		v.retryAfter = ws + counterWait(prev, curr, s, cost) - now
	} else {
		v.retryAfter = ws + s.window + counterWait(curr, 0, s, cost) - now
	}
	return v
}

// counterWait is the smallest elapsed time within a window at which
// estimate(prev, curr) + cost fits the count. The estimate falls as elapsed
// grows, also in doubles (each step of it rounds monotonically), and the
// callers know it fits at the window's end, so a binary search finds it in
// at most 51 steps: a search that walked from a guess could take one step
// per microsecond where rounding makes the guess far off (seconds of Redis
// time for a count of 1e11 per 30 days).
func counterWait(prev, curr int64, s shape, cost int64) int64 {
	fits := func(e int64) bool {
		return estimate(prev, curr, s.window, e)+float64(cost) <= float64(s.count)
	}
	if prev == 0 || fits(0) {
		return 0
	}
	lo, hi := int64(0), s.window // fits(lo) is false, fits(hi) true
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if fits(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

func (c *cell) checkBucket(s shape, now, cost int64) limitCheck {
	tat := max(c.a, now)
	var v limitCheck
	if cost > s.burst {
		// Tested first: cost·step could overflow for a huge cost.
		v.never = true
		v.remaining = max((s.depth-(tat-now))/s.step, 0)
		v.resetAfter = tat - now
		return v
	}
	next := tat + cost*s.step
	if next-now <= s.depth {
		v.ok = true
		v.remaining = (s.depth - (next - now)) / s.step
		v.resetAfter = next - now
		return v
	}
	v.remaining = max((s.depth-(tat-now))/s.step, 0)
	v.resetAfter = tat - now
	v.retryAfter = next - s.depth - now
	return v
}

func (c *cell) checkLog(s shape, now, cost int64) limitCheck {
	if c.log == nil {
		c.log = &eventLog{}
	}
	l := c.log
	l.expire(now - s.window)
	sum := l.sum()
	var v limitCheck
	if sum > 0 {
		v.resetAfter = l.newest() + s.window - now
	}
	if cost <= s.count && sum <= s.count-cost {
		v.ok, v.remaining, v.resetAfter = true, s.count-sum-cost, s.window
		return v
	}
	v.remaining = max(s.count-sum, 0)
	if cost > s.count {
		v.never = true
		return v
	}
	v.retryAfter = l.freedAt(sum+cost-s.count) + s.window - now
	return v
}

// eventLog is the sliding window log of one limit: the admitted requests'
// times, oldest first, each with the running total of the costs admitted up
// to and including it. Running totals make the log's two searches, for the
// first event still in the window and for the event whose expiry frees
// enough, binary searches: no decision walks the log, however long it is
// and whatever the cost (the Redis store keeps the log the same way, where
// a walk would hold up every other client). It holds at most Count events,
// because every event costs at least one. A time and its total lie side by
// side, so that logging a request writes one cache line and grows one
// slice.
type eventLog struct {
	ev   []logEvent
	head int   // the first event still in the log
	base int64 // the total of costs before head
	// oldest is ev[head].at while the log holds events: the usual check,
	// in which nothing has left the window, reads no event but the newest.
	oldest int64
}

// logEvent is one entry of an eventLog.
type logEvent struct {
	at  int64 // µs
	cum int64 // the total of costs through this event
}

func (l *eventLog) sum() int64 {
	if l.head == len(l.ev) {
		return 0
	}
	return l.ev[len(l.ev)-1].cum - l.base
}

func (l *eventLog) newest() int64 {
	if l == nil || l.head == len(l.ev) {
		return 0
	}
	return l.ev[len(l.ev)-1].at
}

// expire drops events at or before cutoff.
func (l *eventLog) expire(cutoff int64) {
	if l.head == len(l.ev) || l.oldest > cutoff {
		return // nearly always: nothing has left the window
	}
	i := l.head + sort.Search(len(l.ev)-l.head, func(j int) bool { return l.ev[l.head+j].at > cutoff })
	l.base, l.head = l.ev[i-1].cum, i
	if l.head == len(l.ev) {
		l.ev, l.head, l.base = l.ev[:0], 0, 0
	} else if l.head > 32 && l.head > len(l.ev)/2 {
		n := copy(l.ev, l.ev[l.head:])
		l.ev, l.head = l.ev[:n], 0
	}
	if l.head < len(l.ev) {
		l.oldest = l.ev[l.head].at
	}
}

// freedAt is the time of the first event whose expiry frees at least need,
// which is at most the log's sum.
func (l *eventLog) freedAt(need int64) int64 {
	n := len(l.ev) - l.head
	i := l.head + sort.Search(n, func(j int) bool { return l.ev[l.head+j].cum-l.base >= need })
	if i == len(l.ev) {
		return l.newest()
	}
	return l.ev[i].at
}

func (l *eventLog) add(now, cost int64) {
	if cost == 0 {
		return // a request of cost 0 only looks; logging it would let the log outgrow the count
	}
	n := len(l.ev)
	total := l.base
	if n > l.head {
		total = l.ev[n-1].cum
	}
	// Callers racing for a key may arrive with their clock readings out of
	// order; the later one is logged with the newest, keeping the log sorted.
	if n > l.head && l.ev[n-1].at >= now {
		l.ev[n-1].cum = total + cost
		return
	}
	if total > maxExact {
		// Start the running totals again from zero before they could
		// overflow: rare, since the totals grow by at most the limit's
		// count per window.
		for i := l.head; i < n; i++ {
			l.ev[i].cum -= l.base
		}
		total -= l.base
		l.base = 0
	}
	if n == l.head {
		l.oldest = now
	}
	l.ev = append(l.ev, logEvent{at: now, cum: total + cost})
}

// decide runs a rule over the cells of one key, all or nothing: shapes and
// cells have one entry per limit of the rule. With charge false it is a
// peek: the decision a charge would get, and the cells are left as they are.
func decide(rule *Rule, alg Algorithm, shapes []shape, cells []cell, now, cost int64, charge bool) Decision {
	var (
		best    limitCheck
		bestIdx int
		allOK   = true
		delay   int64
	)
	for i, s := range shapes {
		v := cells[i].check(alg, s, now, cost)
		allOK = allOK && v.ok
		delay = max(delay, v.delay)
		if i == 0 || v.outranks(best) {
			best, bestIdx = v, i
		}
	}
	d := Decision{
		Allowed:    allOK,
		Limit:      rule.Limits[bestIdx],
		Index:      bestIdx,
		Remaining:  best.remaining,
		ResetAfter: time.Duration(best.resetAfter) * time.Microsecond,
		RetryAfter: time.Duration(best.retryAfter) * time.Microsecond,
		Never:      best.never,
	}
	if allOK {
		d.Delay = time.Duration(delay) * time.Microsecond
		if !charge {
			return d
		}
		for i, s := range shapes {
			cells[i].commit(alg, s, now, cost)
		}
	}
	return d
}

// outranks says whether v, rather than b, should speak for the rule: a denial
// over an admission, a futile denial over a retryable one, the longest wait
// among denials, and the fewest remaining among admissions.
func (v limitCheck) outranks(b limitCheck) bool {
	switch {
	case v.ok != b.ok:
		return !v.ok
	case v.ok:
		return v.remaining < b.remaining
	case v.never != b.never:
		return v.never
	default:
		return v.retryAfter > b.retryAfter
	}
}

// refund gives back up to amount of a charge the cell took at the store's
// time at, at now, as far as the charge still counts; what that means is
// the algorithm's (see Reservation). It never gives back more than the
// cell holds, so a refund can leave a cell as fresh as a new one, never
// fresher, whatever happened to it since (a Reset, an eviction, other
// clients' charges).
//
//	FixedWindow:          the count, only while at's window is the current one
//	SlidingWindowCounter: the count of at's window, current or previous
//	SlidingWindowLog:     the charge's own entry, while at is in the window
//	TokenBucket, LeakyBucket: the TAT moves back by amount·step, never before
//	now, unless the bucket has been full since at
func (c *cell) refund(alg Algorithm, s shape, now, at, amount int64) {
	switch alg {
	case FixedWindow:
		if s.zone != nil {
			c.refundCalendar(s, now, at, amount)
		} else if ws := windowStart(at, s.window); c.a == ws && now < ws+s.window {
			c.b -= min(amount, c.b)
		}
	case SlidingWindowLog:
		if c.log != nil && at > now-s.window {
			c.log.refund(at, amount)
		}
	case TokenBucket, LeakyBucket:
		// The TAT is the sum of the steps charged since the bucket was
		// last full, so moving it back by the refund's steps is exactly as
		// if the charge had cost less, provided the bucket has not been
		// full since the charge (c.b, set by the first charge that found it
		// full, is after at): then the charge was already all replenished,
		// and giving it back would buy tokens on top of the burst. A bucket
		// full now (c.a <= now) has nothing to give. amount is at most the
		// reservation's cost, at most the burst, so amount·step is at most
		// the depth: no overflow.
		if c.a > now && at >= c.b {
			c.a = max(c.a-amount*s.step, now)
		}
	default:
		switch ws := windowStart(at, s.window); {
		case c.a == ws:
			c.b -= min(amount, c.b)
		case c.a == ws+s.window:
			c.c -= min(amount, c.c)
		}
	}
}

// refund reduces the first entry logged at or after at, the one a charge at
// at was logged in, by up to amount and by no more than its own cost, and
// the running totals after it with it; an entry that comes to cost nothing
// leaves the log, which so still holds no more entries than its count.
func (l *eventLog) refund(at, amount int64) {
	n := len(l.ev)
	i := l.head + sort.Search(n-l.head, func(j int) bool { return l.ev[l.head+j].at >= at })
	if i == n {
		return
	}
	prev := l.base
	if i > l.head {
		prev = l.ev[i-1].cum
	}
	r := min(amount, l.ev[i].cum-prev)
	for j := i; j < n; j++ {
		l.ev[j].cum -= r
	}
	if l.ev[i].cum == prev { // the entry costs nothing now
		copy(l.ev[i:], l.ev[i+1:])
		l.ev = l.ev[:n-1]
		if l.head == len(l.ev) {
			l.ev, l.head, l.base = l.ev[:0], 0, 0
		} else if i == l.head {
			l.oldest = l.ev[l.head].at
		}
	}
}
