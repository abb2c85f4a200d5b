package redisstore

// Calendar limits (core.PerCalendar, "1000 per calendar month") reset at
// local midnight in a time zone, which Lua cannot compute: Redis has no zone
// database. So the instance computes, with core's arithmetic, the window
// that holds its own time and the windows before and after it, and sends
// their four boundaries after the limits' arguments; the fixed-window script
// picks the window that holds Redis's TIME among them. Redis's clock, not
// the instance's, still decides: instances whose clocks are less than a
// window from Redis's (a calendar day is 23 hours where the clocks spring
// forward, 22 in Antarctica/Troll) send boundaries that hold Redis's time
// and decide exactly as the memory store would at Redis's time. An instance whose clock is a
// window or more from Redis's gets an error (errClockSkew), which its
// failure policy answers, rather than a decision in the wrong window.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/limitkit/limitkit/core"
)

// errClockSkew is the error of a decision whose calendar boundaries, from
// the instance's clock, do not hold Redis's time.
// It wraps core.ErrClockSkew, so that a Limiter does not take it for an
// outage of Redis.
var errClockSkew = fmt.Errorf("%w: Redis's clock (TIME) is a calendar window or more from this instance's; they must be less than a window apart (22 hours for days at the least)", core.ErrClockSkew)

// setCalendar points each calendar limit of rule at the boundaries of the
// windows around the instance's time, which it appends to r's arguments:
// after the limits, so that the scripts of every other rule see what they
// always saw. It does nothing for a rule without a calendar limit.
func (s *Store) setCalendar(r *request, rule *core.Rule) {
	var now time.Time
	for i, l := range rule.Limits {
		if l.Calendar == 0 {
			continue
		}
		if now.IsZero() {
			now = s.calendarNow()
		}
		b := s.calendars.around(l, now)
		p := int64(len(r.nums))
		r.nums = append(r.nums, b[0], b[1], b[2], b[3])
		r.nums[argLimits+limitArgs*i+1] = -p // the window: see lua/fixed-window.lua
	}
}

// boundaries are the starts of three consecutive windows of a calendar
// limit and the end of the last, in µs.
type boundaries [4]int64

// calendarCache keeps, per calendar unit and zone, the boundaries around
// the window the instance's clock was last in, which serve every decision
// until that window ends: finding them costs about 1.5µs (six local
// midnights), and a window lasts a day or more. It holds at most
// maxCalendars calendars; beyond, boundaries are computed every time.
type calendarCache struct {
	m sync.Map // calendarKey -> *boundaries, never changed once stored
	n atomic.Int32
}

const maxCalendars = 1024

// calendarKey names a calendar: zones are known by name (core.Limit).
type calendarKey struct {
	unit core.CalendarUnit
	zone string
}

// around returns the boundaries of the window of l that holds now and of
// the windows on either side of it.
func (c *calendarCache) around(l core.Limit, now time.Time) *boundaries {
	k := calendarKey{unit: l.Calendar, zone: "UTC"}
	if l.TimeZone != nil {
		k.zone = l.TimeZone.String()
	}
	us := now.UnixMicro()
	if v, ok := c.m.Load(k); ok {
		if b := v.(*boundaries); us >= b[1] && us < b[2] {
			return b
		}
	}
	start, end := l.Window(now)
	prev, _ := l.Window(start.Add(-time.Second)) // boundaries are whole seconds
	_, next := l.Window(end)
	b := &boundaries{prev.UnixMicro(), start.UnixMicro(), end.UnixMicro(), next.UnixMicro()}
	if _, ok := c.m.Load(k); ok || c.n.Add(1) <= maxCalendars {
		c.m.Store(k, b)
	}
	return b
}

// calendarNow is the instance's time, from which it computes calendar
// boundaries: the driven clock under WithClock (which the script then uses
// as its time too), else the system's.
func (s *Store) calendarNow() time.Time {
	if s.calendarClock != nil {
		return s.calendarClock()
	}
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// refundWindow is the window argument of limit l in a refund of a charge
// made at Redis's time at: its period in µs, or, for a calendar limit, the
// end of at's window, negated (lua/fixed-window.lua's refund). The charge's
// time came from Redis, so no clock of the instance's is involved.
func refundWindow(l core.Limit, at time.Time) int64 {
	if l.Calendar == 0 {
		return int64(l.Period / time.Microsecond)
	}
	_, end := l.Window(at)
	return -end.UnixMicro()
}

// calendarArgs reports whether r carries calendar boundaries after its
// limits, which the batched script does not read: such a request is sent
// as a script call of its own.
func (r *request) calendarArgs() bool {
	return len(r.nums) > argLimits+limitArgs*len(r.keys)
}

// clockSkew is the error of the script's reply {-2, i, ...}: Redis's time
// lies outside the boundaries sent for limit i.
func clockSkew(rule *core.Rule, i int64) error {
	if i < 0 || i >= int64(len(rule.Limits)) {
		return fmt.Errorf("unexpected script reply for limit %d", i)
	}
	return fmt.Errorf("limit %q: %w", rule.Limits[i].String(), errClockSkew)
}
