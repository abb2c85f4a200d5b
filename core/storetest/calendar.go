package storetest

// The calendar windows' part of the suite: limits that reset at local
// midnight in a time zone, across months of every length, a leap day, the
// days the clocks change (23 and 25 hours), week and year boundaries.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the scenarios' zones load on machines without a zone database

	"github.com/limitkit/limitkit/core"
)

// SetTime moves the clock to t.
func (c *ManualClock) SetTime(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func mustZone(name string) *time.Location {
	z, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return z
}

var (
	newYork = mustZone("America/New_York")
	paris   = mustZone("Europe/Paris")
	tokyo   = mustZone("Asia/Tokyo")
)

// wall is the instant the clocks of zone read y-m-d h:mi:sec, as the time
// since Epoch that steps take.
func wall(zone *time.Location, y int, m time.Month, d, h, mi, sec int) time.Duration {
	return time.Date(y, m, d, h, mi, sec, 0, zone).Sub(Epoch)
}

func utc(y int, m time.Month, d, h, mi, sec int) time.Duration {
	return wall(time.UTC, y, m, d, h, mi, sec)
}

const (
	hour = time.Hour
	day  = 24 * time.Hour
	us   = time.Microsecond
)

// calendarScenarios are worked by hand from the calendar: a calendar
// limit is a fixed window from local midnight to local midnight, and
// ResetAfter and RetryAfter run to the window's end.
var calendarScenarios = []scenario{
	{
		name: "Calendar/monthsOfEveryLength",
		rule: core.MustRule("3/calendar month", 0),
		steps: []step{
			{at: utc(2023, 1, 31, 12, 0, 0), allowed: true, remaining: 2, reset: 12 * hour},
			{at: utc(2023, 1, 31, 23, 0, 0), allowed: true, remaining: 1, reset: hour},
			{at: utc(2023, 2, 1, 0, 0, 0) - us, allowed: true, remaining: 0, reset: us},
			// February 2023 has 28 days
			{at: utc(2023, 2, 1, 0, 0, 0), allowed: true, remaining: 2, reset: 28 * day},
			{at: utc(2023, 2, 1, 0, 0, 0), allowed: true, remaining: 1},
			{at: utc(2023, 2, 14, 0, 0, 0), allowed: true, remaining: 0, reset: 15 * day},
			{at: utc(2023, 2, 28, 23, 0, 0), remaining: 0, retry: hour, reset: hour},
			{at: utc(2023, 2, 28, 23, 0, 0), cost: 4, remaining: 0, never: true},
			// March has 31
			{at: utc(2023, 3, 1, 0, 0, 0), allowed: true, remaining: 2, reset: 31 * day},
			// April 30
			{at: utc(2023, 4, 1, 0, 0, 0), cost: 3, allowed: true, remaining: 0, reset: 30 * day},
			{at: utc(2023, 4, 30, 12, 0, 0), remaining: 0, retry: 12 * hour},
		},
	},
	{
		name: "Calendar/aLeapYearsFebruaryHas29Days",
		rule: core.MustRule("2/calendar month", 0),
		steps: []step{
			{at: utc(2024, 2, 1, 0, 0, 0), allowed: true, remaining: 1, reset: 29 * day},
			{at: utc(2024, 2, 29, 12, 0, 0), allowed: true, remaining: 0, reset: 12 * hour},
			{at: utc(2024, 2, 29, 23, 59, 59), remaining: 0, retry: time.Second},
			{at: utc(2024, 3, 1, 0, 0, 0), allowed: true, remaining: 1, reset: 31 * day},
		},
	},
	{
		name: "Calendar/theSpringForwardDayHas23Hours",
		rule: core.MustRule("2/calendar day in America/New_York", 0),
		steps: []step{
			// 2024-03-10: 02:00 EST becomes 03:00 EDT
			{at: wall(newYork, 2024, 3, 10, 0, 0, 0), allowed: true, remaining: 1, reset: 23 * hour},
			{at: wall(newYork, 2024, 3, 10, 1, 59, 59), allowed: true, remaining: 0, reset: 21*hour + time.Second},
			// 03:00 EDT is two hours after midnight, 21 before the next
			{at: wall(newYork, 2024, 3, 10, 3, 0, 0), remaining: 0, retry: 21 * hour},
			{at: wall(newYork, 2024, 3, 10, 23, 59, 59), remaining: 0, retry: time.Second},
			{at: wall(newYork, 2024, 3, 11, 0, 0, 0), allowed: true, remaining: 1, reset: 24 * hour},
		},
	},
	{
		name: "Calendar/theFallBackDayHas25Hours",
		rule: core.MustRule("2/calendar day in Europe/Paris", 0),
		steps: []step{
			// 2024-10-27: 03:00 CEST becomes 02:00 CET; the day is
			// 22:00 UTC on the 26th to 23:00 UTC on the 27th
			{at: wall(paris, 2024, 10, 27, 0, 0, 0), allowed: true, remaining: 1, reset: 25 * hour},
			// 02:30 CEST, the first of the two
			{at: utc(2024, 10, 27, 0, 30, 0), allowed: true, remaining: 0, reset: 22*hour + 30*time.Minute},
			// 02:30 CET, the second
			{at: utc(2024, 10, 27, 1, 30, 0), remaining: 0, retry: 21*hour + 30*time.Minute},
			{at: utc(2024, 10, 27, 23, 0, 0) - us, remaining: 0, retry: us},
			{at: wall(paris, 2024, 10, 28, 0, 0, 0), allowed: true, remaining: 1, reset: 24 * hour},
		},
	},
	{
		name: "Calendar/weeksStartOnMonday",
		rule: core.MustRule("2/calendar week", 0),
		steps: []step{
			// 2024-01-03 is a Wednesday; the week ends on Monday the 8th
			{at: utc(2024, 1, 3, 12, 0, 0), allowed: true, remaining: 1, reset: 4*day + 12*hour},
			{at: utc(2024, 1, 7, 23, 59, 59), allowed: true, remaining: 0, reset: time.Second},
			{at: utc(2024, 1, 8, 0, 0, 0) - 500*time.Millisecond, remaining: 0, retry: 500 * time.Millisecond},
			{at: utc(2024, 1, 8, 0, 0, 0), allowed: true, remaining: 1, reset: 7 * day},
		},
	},
	{
		name: "Calendar/aWeekWhenClocksChangeHas167Hours",
		rule: core.MustRule("1/calendar week in America/New_York", 0),
		steps: []step{
			{at: wall(newYork, 2024, 3, 4, 0, 0, 0), allowed: true, remaining: 0, reset: 7*day - hour},
			// Sunday noon EDT to Monday midnight EDT
			{at: wall(newYork, 2024, 3, 10, 12, 0, 0), remaining: 0, retry: 12 * hour},
			{at: wall(newYork, 2024, 3, 11, 0, 0, 0), allowed: true, remaining: 0, reset: 7 * day},
		},
	},
	{
		name: "Calendar/yearsTurnAtMidnightInTheirZone",
		rule: core.MustRule("2/calendar year in Asia/Tokyo", 0),
		steps: []step{
			// 23:59:59 in Tokyo on New Year's Eve is 14:59:59 UTC
			{at: utc(2023, 12, 31, 14, 59, 59), allowed: true, remaining: 1, reset: time.Second},
			// 2024 is a leap year: 366 days
			{at: wall(tokyo, 2024, 1, 1, 0, 0, 0), allowed: true, remaining: 1, reset: 366 * day},
			{at: wall(tokyo, 2024, 1, 1, 0, 0, 0), allowed: true, remaining: 0},
			{at: wall(tokyo, 2024, 7, 1, 0, 0, 0), remaining: 0, retry: 184 * day},
			{at: wall(tokyo, 2025, 1, 1, 0, 0, 0), allowed: true, remaining: 1, reset: 365 * day},
		},
	},
	{
		name: "Calendar/besideAnOrdinaryLimit",
		rule: core.MustRule("2/hour;3/calendar day", 0),
		steps: []step{
			{at: utc(2024, 5, 1, 22, 0, 0), allowed: true, remaining: 1, limit: "2/hour"},
			{at: utc(2024, 5, 1, 22, 0, 0), allowed: true, remaining: 0, limit: "2/hour"},
			{at: utc(2024, 5, 1, 22, 30, 0), remaining: 0, retry: 30 * time.Minute, limit: "2/hour"},
			// the denial charged neither limit: one remains today
			{at: utc(2024, 5, 1, 23, 0, 0), allowed: true, remaining: 0, reset: hour, limit: "3/calendar day"},
			{at: utc(2024, 5, 1, 23, 10, 0), remaining: 0, retry: 50 * time.Minute, limit: "3/calendar day"},
			{at: utc(2024, 5, 2, 0, 0, 0), allowed: true, remaining: 1, limit: "2/hour"},
		},
	},
}

// Refunds of calendar limits run with the quota suite's (runRefunds): a
// charge is given back only while its window, from local midnight to local
// midnight, is the current one.
func init() {
	quotaScenarios = append(quotaScenarios, quotaScenario{
		name: "Calendar/givesBackOnlyWhileTheChargesDayIsCurrent",
		rule: core.MustRule("5/calendar day in America/New_York", 0),
		steps: []quotaStep{
			// 2024-03-10 has 23 hours in New York; 23:00 EDT is an hour before its end
			{at: wall(newYork, 2024, 3, 10, 23, 0, 0), op: "reserve", cost: 3, want: step{allowed: true, remaining: 2, reset: hour}},
			{at: wall(newYork, 2024, 3, 10, 23, 30, 0), op: "refund", cost: 2, res: 0, reason: "settle 3 to 1"},
			{at: wall(newYork, 2024, 3, 10, 23, 30, 0), op: "peek", cost: 1, want: step{allowed: true, remaining: 3, reset: 30 * time.Minute}},
			{at: wall(newYork, 2024, 3, 11, 0, 0, 0) - us, op: "reserve", cost: 2, want: step{allowed: true, remaining: 2, reset: us}},
			{at: wall(newYork, 2024, 3, 11, 0, 0, 0), op: "take", cost: 1, want: step{allowed: true, remaining: 4, reset: 24 * hour}},
			{at: wall(newYork, 2024, 3, 11, 0, 0, 0), op: "refund", cost: 2, res: 1, reason: "its day is over: nothing"},
			{at: wall(newYork, 2024, 3, 11, 0, 0, 0), op: "peek", cost: 1, want: step{allowed: true, remaining: 3}},
		},
	}, quotaScenario{
		name: "Calendar/givesBackBesideAnOrdinaryLimit",
		rule: core.MustRule("4/hour;6/calendar month in Europe/Paris", 0),
		steps: []quotaStep{
			// June ends at 22:00 UTC on the 30th in Paris
			{at: utc(2024, 6, 30, 21, 0, 0), op: "reserve", cost: 4, want: step{allowed: true, remaining: 0, limit: "4/hour"}},
			{at: utc(2024, 6, 30, 21, 10, 0), op: "refund", cost: 3, res: 0, reason: "settle 4 to 1: both limits"},
			{at: utc(2024, 6, 30, 21, 10, 0), op: "peek", cost: 1, want: step{allowed: true, remaining: 2, limit: "4/hour"}},
			{at: utc(2024, 6, 30, 21, 20, 0), op: "take", cost: 3, want: step{allowed: true, remaining: 0, limit: "4/hour"}},
			{at: utc(2024, 6, 30, 21, 30, 0), op: "peek", cost: 1, want: step{retry: 30 * time.Minute, limit: "4/hour"}},
			{at: utc(2024, 6, 30, 22, 0, 0), op: "peek", cost: 3, want: step{allowed: true, remaining: 1, limit: "4/hour"}},
		},
	})
}

// runCalendarPeek keeps two keys in step across a day the clocks change
// and a month's end, and checks that a peek at one is the decision a take
// gets at the other, and charged nothing.
func runCalendarPeek(t *testing.T, f Factory) {
	st, clock := newStore(t, f)
	q := quotaStore(t, st)
	ctx := context.Background()
	r := core.MustRule("4/calendar day in Europe/Paris;9/calendar month in Europe/Paris", 0)
	a, b := keyFor(t, "a"), keyFor(t, "b")
	at := time.Date(2024, 3, 30, 20, 0, 0, 0, time.UTC)
	for i := range 40 {
		clock.SetTime(at.Add(time.Duration(i) * 97 * time.Minute))
		for _, cost := range []int64{1, 3, 10, 0} {
			where := fmt.Sprintf("step %d cost %d", i, cost)
			peeked, err := q.Peek(ctx, a, r, cost)
			if err != nil {
				t.Fatalf("%s: Peek: %v", where, err)
			}
			sameDecision(t, where+": peek against take", peeked, take(t, st, b, r, cost))
			sameDecision(t, where+": take after peek", take(t, st, a, r, cost), peeked)
		}
	}
}

// runCalendar is the calendar part of the suite.
func runCalendar(t *testing.T, f Factory) {
	t.Run("Scenarios", func(t *testing.T) {
		for _, sc := range calendarScenarios {
			t.Run(sc.name, func(t *testing.T) {
				st, clock := newStore(t, f)
				key := keyFor(t, "k")
				for i, s := range sc.steps {
					clock.Set(s.at)
					sc.check(t, i, take(t, st, key, sc.rule, max(s.cost, 1)))
				}
			})
		}
	})
	t.Run("RetryAfterIsTheNextBoundary", func(t *testing.T) { runCalendarRetryProbes(t, f) })
	t.Run("RulesOnOneKeyKeepTheirOwnState", func(t *testing.T) { runCalendarRulesOnOneKey(t, f) })
	t.Run("ConcurrentCallersNeverOverAdmit", func(t *testing.T) { runCalendarConcurrent(t, f) })
	t.Run("InvalidRulesAreAnError", func(t *testing.T) { runCalendarInvalid(t, f) })
	t.Run("EverythingExpires", func(t *testing.T) { runCalendarExpires(t, f) })
	t.Run("HugeCostsAreNeverAdmitted", func(t *testing.T) { runCalendarHugeCost(t, f) })
	t.Run("PeekIsTakeWithoutTheCharge", func(t *testing.T) { runCalendarPeek(t, f) })
}

// runCalendarHugeCost sends costs far beyond the count to a key with state
// under calendar rules: each is refused as Never, and the budget is what
// it was.
func runCalendarHugeCost(t *testing.T, f Factory) {
	for _, expr := range []string{"5/calendar month", "5/calendar day in Europe/Paris;8/hour"} {
		st, clock := newStore(t, f)
		clock.SetTime(time.Date(2024, 10, 27, 1, 30, 0, 0, time.UTC))
		key := keyFor(t, "k")
		r := core.MustRule(expr, 0)
		take(t, st, key, r, 1)
		for _, cost := range []int64{6, 1 << 40, 1<<53 + 1, 1<<62 + 1<<61, 1<<63 - 1} {
			if d := take(t, st, key, r, cost); d.Allowed || !d.Never {
				t.Fatalf("%s: cost %d: %+v, want refused as Never", expr, cost, d)
			}
		}
		for i := range 4 {
			if d := take(t, st, key, r, 1); !d.Allowed || d.Remaining != int64(3-i) {
				t.Fatalf("%s: request %d after the huge costs: %+v, want admitted with %d remaining", expr, i+2, d, 3-i)
			}
		}
		if d := take(t, st, key, r, 1); d.Allowed {
			t.Fatalf("%s: sixth request admitted: %+v", expr, d)
		}
	}
}

// runCalendarRetryProbes replays every retryable denial of the calendar
// scenarios on a fresh key: still denied a microsecond before RetryAfter,
// admitted at it.
func runCalendarRetryProbes(t *testing.T, f Factory) {
	for _, sc := range calendarScenarios {
		t.Run(sc.name, func(t *testing.T) {
			st, clock := newStore(t, f)
			for i, s := range sc.steps {
				if s.allowed || s.never {
					continue
				}
				key := keyFor(t, strconv.Itoa(i))
				for _, p := range sc.steps[:i] {
					clock.Set(p.at)
					take(t, st, key, sc.rule, max(p.cost, 1))
				}
				cost := max(s.cost, 1)
				clock.Set(s.at + s.retry - us)
				if d := take(t, st, key, sc.rule, cost); d.Allowed {
					t.Errorf("step %d: admitted 1µs before its RetryAfter %v", i, s.retry)
				}
				clock.Set(s.at + s.retry)
				if d := take(t, st, key, sc.rule, cost); !d.Allowed {
					t.Errorf("step %d: denied at its RetryAfter %v: %+v", i, s.retry, d)
				}
			}
		})
	}
}

// runCalendarRulesOnOneKey alternates rules that differ only in their
// calendar on one key: a calendar day in two zones, a calendar day and a
// plain day, a calendar day and a calendar week. Each admits its own count.
func runCalendarRulesOnOneKey(t *testing.T, f Factory) {
	rules := []core.Rule{
		core.MustRule("3/calendar day", 0),
		core.MustRule("3/calendar day in Europe/Paris", 0),
		core.MustRule("3/day", core.FixedWindow),
		core.MustRule("3/calendar week", 0),
		core.MustRule("3/calendar day in America/New_York", 0),
	}
	st, clock := newStore(t, f)
	key := keyFor(t, "k")
	clock.SetTime(time.Date(2024, 6, 5, 12, 0, 0, 0, time.UTC))
	admitted := make([]int, len(rules))
	for range 5 {
		for i, r := range rules {
			if take(t, st, key, r, 1).Allowed {
				admitted[i]++
			}
		}
	}
	for i, r := range rules {
		if admitted[i] != 3 {
			t.Errorf("%v admitted %d of 5 alternating requests, want its own 3", r, admitted[i])
		}
	}
	if err := st.Reset(context.Background(), key, rules[1]); err != nil {
		t.Fatal(err)
	}
	if d := take(t, st, key, rules[1], 1); !d.Allowed {
		t.Errorf("after Reset under %v: %+v, want admitted", rules[1], d)
	}
	if d := take(t, st, key, rules[0], 1); d.Allowed {
		t.Errorf("Reset under %v freed %v: %+v", rules[1], rules[0], d)
	}
}

// runCalendarConcurrent sends 100 goroutines of 10 requests each at one
// key under a calendar limit: exactly the limit is admitted.
func runCalendarConcurrent(t *testing.T, f Factory) {
	st, clock := newStore(t, f)
	clock.SetTime(time.Date(2024, 6, 5, 12, 0, 0, 0, time.UTC))
	key := keyFor(t, "k")
	admitsExactly(t, st, key, core.MustRule("50/calendar day in Europe/Paris;300/calendar month", 0), 50)
}

// runCalendarInvalid checks that a store refuses, as an error, what no
// calendar limit means: another algorithm than the fixed window (also the
// default one of a hand-built rule), the machine's local zone, a period
// that is not the unit's, a zone on a limit that is not a calendar limit.
func runCalendarInvalid(t *testing.T, f Factory) {
	st, _ := newStore(t, f)
	key := keyFor(t, "k")
	month := core.PerCalendar(10, core.CalendarMonth, nil)
	wrongPeriod := month
	wrongPeriod.Period = 31 * day
	zoned := core.Per(10, hour)
	zoned.TimeZone = paris
	for name, r := range map[string]core.Rule{
		"tokenBucket":       {Limits: []core.Limit{month}, Algorithm: core.TokenBucket},
		"slidingWindowLog":  {Limits: []core.Limit{core.Per(5, hour), month}, Algorithm: core.SlidingWindowLog},
		"defaultAlgorithm":  {Limits: []core.Limit{month}},
		"localZone":         {Limits: []core.Limit{core.PerCalendar(10, core.CalendarDay, time.Local)}, Algorithm: core.FixedWindow},
		"wrongPeriod":       {Limits: []core.Limit{wrongPeriod}, Algorithm: core.FixedWindow},
		"zoneNotACalendar":  {Limits: []core.Limit{zoned}, Algorithm: core.FixedWindow},
		"unknownUnit":       {Limits: []core.Limit{{Count: 1, Period: day, Calendar: 9}}, Algorithm: core.FixedWindow},
		"zoneOnABucketRate": {Limits: []core.Limit{zoned}, Algorithm: core.TokenBucket},
		"zoneNameTooLong":   {Limits: []core.Limit{core.PerCalendar(1, core.CalendarDay, time.FixedZone(strings.Repeat("z", 256), 0))}, Algorithm: core.FixedWindow},
	} {
		t.Run(name, func(t *testing.T) {
			if d, err := st.Take(context.Background(), key, r, 1); err == nil {
				t.Fatalf("Take accepted %v under %v: %+v", r, r.Algorithm, d)
			}
		})
	}
}

// runCalendarExpires works calendar limits through their paths and asks
// the store, if it can tell, for anything it holds without an expiry.
func runCalendarExpires(t *testing.T, f Factory) {
	st, clock := newStore(t, f)
	x, ok := st.(Expirer)
	if !ok {
		t.Skipf("%T cannot list what it holds without an expiry", st)
	}
	base := keyFor(t, "")
	for _, expr := range []string{"3/calendar day in America/New_York", "3/hour;5/calendar month;9/calendar year in Asia/Tokyo"} {
		key := base + expr
		r := core.MustRule(expr, 0)
		clock.SetTime(time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC))
		for range 5 {
			take(t, st, key, r, 1)
		}
		take(t, st, key, r, 0)
		take(t, st, key, r, 100)
		clock.SetTime(time.Date(2024, 3, 11, 12, 0, 0, 0, time.UTC))
		take(t, st, key, r, 0)
		take(t, st, key, r, 1)
	}
	names, err := x.Unexpiring(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > 0 {
		t.Fatalf("the store holds %d names that never expire, such as %q", len(names), names[0])
	}
}
