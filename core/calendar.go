package core

// Calendar windows: limits that reset at calendar boundaries in a time zone,
// for billing-style quotas ("1000 per calendar month"). A calendar limit is
// a fixed window whose start and end are local midnights in its zone: a day
// of 23 or 25 hours where the clocks change, months of 28 to 31 days, leap
// years. This file holds their arithmetic, which every store shares: the
// memory store computes a window's end here when a window rolls over, and
// the Redis store computes here the boundaries it sends to its script.

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClockSkew is wrapped by the error a Store returns when this instance's
// clock is too far from the store's to decide a calendar limit: the Redis
// store decides by Redis's time among calendar boundaries the instance
// computes from its own, so the two must be within a window of each other.
// It concerns this instance's calendar limits, not the store: a Limiter
// answers the request by its failure policy, reports it, and does not mark
// the store down, as for ErrCorruptState.
var ErrClockSkew = errors.New("limitkit: this instance's clock is too far from the store's to decide a calendar limit")

// CalendarUnit is the length of a calendar limit's windows: a day, a week
// (Monday to Monday, as in ISO 8601), a month or a year, each from local
// midnight to local midnight in the limit's time zone. The zero value
// means the limit is not a calendar limit.
type CalendarUnit uint8

// The calendar units.
const (
	CalendarDay CalendarUnit = iota + 1
	CalendarWeek
	CalendarMonth
	CalendarYear
)

var calendarNames = [...]string{CalendarDay: "day", CalendarWeek: "week", CalendarMonth: "month", CalendarYear: "year"}

// String returns the unit's name in the grammar, such as "month".
func (u CalendarUnit) String() string {
	if u >= CalendarDay && u <= CalendarYear {
		return calendarNames[u]
	}
	return fmt.Sprintf("CalendarUnit(%d)", uint8(u))
}

// Period is the nominal length of the unit, which a calendar limit's Period
// holds: a day of 24 hours, a week of 7 days, a month of 30 days and a year
// of 365, as the grammar's plain units. The windows themselves are as long
// as the calendar makes them; the nominal length is what headers that
// describe a policy (RateLimit-Policy's w) report.
func (u CalendarUnit) Period() time.Duration {
	const day = 24 * time.Hour
	switch u {
	case CalendarDay:
		return day
	case CalendarWeek:
		return 7 * day
	case CalendarMonth:
		return 30 * day
	case CalendarYear:
		return 365 * day
	}
	return 0
}

// calendarUnitOf is the unit whose nominal period is w µs, or 0: a
// calendar limit's Period is its unit's (Rule.Validate checks it), so the
// memory store's prepared limit keeps the unit in its window.
func calendarUnitOf(w int64) CalendarUnit {
	for u := CalendarDay; u <= CalendarYear; u++ {
		if int64(u.Period()/time.Microsecond) == w {
			return u
		}
	}
	return 0
}

// PerCalendar builds a calendar limit: count requests per calendar day,
// week, month or year in zone (nil is UTC), resetting at local midnight.
// A rule holding one is counted with FixedWindow, which NewRule chooses
// for an expression that has one; "1000 per calendar month in
// Europe/Paris" is the same limit in the grammar.
func PerCalendar(count int64, unit CalendarUnit, zone *time.Location) Limit {
	return Limit{Count: count, Period: unit.Period(), Calendar: unit, TimeZone: zone}
}

// zone is a calendar limit's time zone, with nil read as UTC.
func (l Limit) zone() *time.Location {
	if l.TimeZone == nil {
		return time.UTC
	}
	return l.TimeZone
}

// calendarZone is what a prepared limit keeps of its calendar: the zone of
// a calendar limit, nil for any other limit.
func (l Limit) calendarZone() *time.Location {
	if l.Calendar == 0 {
		return nil
	}
	return l.zone()
}

// Window returns the window of the limit that holds t, as FixedWindow
// counts it: for a calendar limit, t's day, week, month or year in the
// limit's zone, from local midnight to local midnight, in that zone; for
// any other limit, the window of Period aligned to the Unix epoch. A
// request at t is counted in [start, end), and the count resets at end.
func (l Limit) Window(t time.Time) (start, end time.Time) {
	if l.Calendar != 0 {
		return calendarWindow(l.Calendar, l.zone(), t)
	}
	w := int64(l.Period / time.Microsecond)
	if w <= 0 {
		return t, t
	}
	now := t.UnixMicro()
	ws := now - now%w
	if now < 0 && now%w != 0 {
		ws -= w
	}
	return time.UnixMicro(ws), time.UnixMicro(ws + w)
}

// calendarWindow is the window of unit in zone that holds t. Windows run
// from the first instant of a unit's first day (dayStart) to the first
// instant of the next unit's, so they tile time even where the local date
// goes back (America/Goose_Bay in 1987 set its clocks back from 00:01 to
// 23:01, so the 24th came again after the 25th had begun): t then belongs
// to the later window, which has begun.
func calendarWindow(unit CalendarUnit, zone *time.Location, t time.Time) (start, end time.Time) {
	local := t.In(zone)
	y, m, d := local.Date()
	// The unit's first day and the next unit's, as time.Date normalises them.
	var next func(y int, m time.Month, d int) (int, time.Month, int)
	switch unit {
	case CalendarDay:
		next = func(y int, m time.Month, d int) (int, time.Month, int) { return y, m, d + 1 }
	case CalendarWeek:
		d -= (int(local.Weekday()) + 6) % 7 // back to Monday
		next = func(y int, m time.Month, d int) (int, time.Month, int) { return y, m, d + 7 }
	case CalendarMonth:
		d = 1
		next = func(y int, m time.Month, d int) (int, time.Month, int) { return y, m + 1, 1 }
	default:
		m, d = time.January, 1
		next = func(y int, m time.Month, d int) (int, time.Month, int) { return y + 1, time.January, 1 }
	}
	ny, nm, nd := next(y, m, d)
	start, end = dayStart(y, m, d, zone), dayStart(ny, nm, nd, zone)
	for !t.Before(end) {
		ny, nm, nd = next(ny, nm, nd)
		start, end = end, dayStart(ny, nm, nd, zone)
	}
	return start, end
}

// calendarEnd is the end, in µs, of the window of the prepared calendar
// limit s that holds now (µs).
func (s *shape) calendarEnd(now int64) int64 {
	_, end := calendarWindow(calendarUnitOf(s.window), s.zone, time.UnixMicro(now))
	return end.UnixMicro()
}

// dayStart is the first instant of the local date y-m-d (normalised as
// time.Date does) in zone: local midnight on most days. Where the clocks
// jump over midnight (America/Havana, formerly America/Sao_Paulo) the day
// begins at the jump; where they go back across it (Antarctica/Casey in
// 2010, from 02:00 to 23:00 the day before) it began at the first
// midnight, not the second. time.Date may answer either, so the zone's
// periods of one offset are walked instead, from two days before: in each,
// the local time is the instant plus its offset, so the first instant whose
// local time reaches y-m-d 00:00 is found exactly. Offsets, and so
// boundaries, are whole seconds.
func dayStart(y int, m time.Month, d int, zone *time.Location) time.Time {
	midnight := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() // y-m-d 00:00 in local seconds
	// No zone is two days from UTC: before x the local date is earlier.
	x := midnight - 2*86400
	for {
		t := time.Unix(x, 0).In(zone)
		_, offset := t.Zone()
		at := max(midnight-int64(offset), x) // where this period's clocks read y-m-d 00:00
		_, end := t.ZoneBounds()
		if end.IsZero() || at < end.Unix() {
			return time.Unix(at, 0).In(zone)
		}
		x = end.Unix()
	}
}

// checkCalendar is checkFixed for a calendar limit, whose cell holds the
// end of its window in a, not the start, and its count in b: ends, unlike
// starts, give the reset with no calendar arithmetic, which is needed only
// when a window rolls over. A reading before the stored window (a clock
// that went back) stays in it, as checkFixed does. Like every check, it
// leaves the cell as it is: a denied request must not move a window, which
// a clock that goes back would see.
func (c *cell) checkCalendar(s shape, now, cost int64) limitCheck {
	end, n := c.a, c.b
	if now >= end {
		end, n = s.calendarEnd(now), 0
	}
	v := limitCheck{resetAfter: end - now}
	if cost <= s.count && n <= s.count-cost {
		v.ok, v.remaining = true, s.count-n-cost
		return v
	}
	v.remaining = max(s.count-n, 0)
	if cost > s.count {
		v.never = true
	} else {
		v.retryAfter = end - now
	}
	return v
}

// commitCalendar charges an admitted request; check said ok at now.
func (c *cell) commitCalendar(s shape, now, cost int64) {
	if now >= c.a {
		c.a, c.b = s.calendarEnd(now), 0
	}
	c.b += cost
}

// refundCalendar is refund for a calendar limit: only while the charge's
// window, which the cell names by its end, is the current one.
func (c *cell) refundCalendar(s shape, now, at, amount int64) {
	if end := s.calendarEnd(at); c.a == end && now < end {
		c.b -= min(amount, c.b)
	}
}

// calendarLoss is loss for a calendar limit.
func (c *cell) calendarLoss(s shape, now int64) float64 {
	if now >= c.a {
		return 0
	}
	return float64(c.b) / float64(s.count)
}

// checkCalendar reports why l, a limit of rule r counted with alg, cannot
// be a calendar limit, or nil; any limit that is not one must not name a
// time zone, which only calendar limits read.
func (l Limit) checkCalendar(r *Rule, alg Algorithm) error {
	if l.Calendar == 0 {
		if l.TimeZone != nil {
			return fmt.Errorf("limitkit: limit %q: only a calendar limit has a time zone; write \"per calendar day\", week, month or year", l.String())
		}
		return nil
	}
	if l.Calendar > CalendarYear {
		return fmt.Errorf("limitkit: limit %q: unknown calendar unit %d", l.String(), uint8(l.Calendar))
	}
	if l.Period != l.Calendar.Period() {
		return fmt.Errorf("limitkit: limit %q: a calendar %s's Period is %v, not %v: build it with PerCalendar", l.String(), l.Calendar, l.Calendar.Period(), l.Period)
	}
	if err := checkZone(l.TimeZone); err != nil {
		return fmt.Errorf("limitkit: limit %q: %w", l.String(), err)
	}
	if len(l.zone().String()) > maxZoneName {
		return fmt.Errorf("limitkit: limit %q: a zone's name is at most %d bytes", l.String(), maxZoneName)
	}
	if alg != FixedWindow {
		return fmt.Errorf("limitkit: rule %q: a calendar limit resets at calendar boundaries, so its rule is counted with fixed windows: use FixedWindow (NewRule chooses it when given no algorithm), not %v", r.String(), alg)
	}
	return nil
}

// maxZoneName bounds a zone's name, which Rule.Shape digests with its
// length: IANA names are under 40 bytes.
const maxZoneName = 255

// checkZone refuses the one zone that would let instances disagree:
// time.Local is whatever each machine is set to.
func checkZone(zone *time.Location) error {
	if zone == time.Local || zone != nil && zone.String() == "Local" {
		return fmt.Errorf("time.Local is set per machine, so instances would disagree on when windows reset; name the zone, such as time.LoadLocation(\"Europe/Paris\")")
	}
	return nil
}

// hasCalendar reports whether any limit is a calendar limit.
func hasCalendar(limits []Limit) bool {
	for _, l := range limits {
		if l.Calendar != 0 {
			return true
		}
	}
	return false
}

// sameCalendar reports whether the prepared limit s has l's calendar: its
// unit (the nominal period in s.window) and its zone, which are known by
// name, as the Redis store's keys know them.
func (s *shape) sameCalendar(l Limit) bool {
	if s.zone == nil {
		return l.Calendar == 0 && l.TimeZone == nil // else Validate refuses l
	}
	return l.Calendar != 0 && calendarUnitOf(s.window) == l.Calendar &&
		(s.zone == l.zone() || s.zone.String() == l.zone().String())
}

// zones caches the zones the grammar has loaded, by name, so that parsing
// one expression twice gives equal limits, and parsing reads the zone
// database once per zone. Only names that loaded are kept, so it holds at
// most the database's few hundred zones.
var zones sync.Map // string -> *time.Location

// loadZone is time.LoadLocation, cached.
func loadZone(name string) (*time.Location, error) {
	if z, ok := zones.Load(name); ok {
		return z.(*time.Location), nil
	}
	z, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	z2, _ := zones.LoadOrStore(name, z)
	return z2.(*time.Location), nil
}

// WithTimeZone sets the time zone of the middleware's calendar limits that
// name none (default UTC): with it, "1000 per calendar month" resets at
// local midnight on the first of each month in zone. A limit that names its
// own zone ("1000 per calendar month in Europe/Paris") keeps it. Instances
// agree on boundaries as long as they share the zone database's version
// (import time/tzdata to embed one in the binary). A middleware given it
// reports an error if none of its limits, nor of its plans', is a calendar
// limit, or if zone is nil or time.Local, which differs from machine to
// machine.
func WithTimeZone(zone *time.Location) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) {
		if zone == nil {
			c.problem("limitkit: WithTimeZone(nil): give a zone, such as time.LoadLocation(\"Europe/Paris\"), or leave the option out for UTC")
		} else if err := checkZone(zone); err != nil {
			c.problem("limitkit: WithTimeZone(%s): %v", zone, err)
		}
		c.zone = zone
	})
}

// inZone gives the rule's calendar limits that name no zone the zone, and
// reports whether the rule has a calendar limit. The rule's limits are its
// own, fresh from ParseLimits.
func (r *Rule) inZone(zone *time.Location) bool {
	found := false
	for i := range r.Limits {
		if l := &r.Limits[i]; l.Calendar != 0 {
			found = true
			if l.TimeZone == nil && zone != nil {
				l.TimeZone = zone
			}
		}
	}
	return found
}
