package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
)

// calendarRules are calendar rules around the dates calendarOps visits.
var calendarRules = []core.Rule{
	core.MustRule("5/calendar day in America/New_York", 0),
	core.MustRule("7/calendar day in Europe/Paris;20/calendar week in Europe/Paris", 0),
	core.MustRule("3/hour;9/calendar month", 0),
	core.MustRule("11/calendar year in Asia/Tokyo", 0),
}

// calendarOps plays n requests on a few keys and the calendarRules, at
// times that cross midnights, the days clocks change in New York and
// Paris, a month's and a year's end.
func calendarOps(r *rand.Rand, n int) []struct {
	at   time.Time
	key  string
	rule int
	cost int64
} {
	starts := []time.Time{
		time.Date(2024, 3, 9, 20, 0, 0, 0, time.UTC),   // New York springs forward on the 10th
		time.Date(2024, 3, 30, 20, 0, 0, 0, time.UTC),  // Paris on the 31st, a month's end
		time.Date(2024, 10, 26, 20, 0, 0, 0, time.UTC), // Paris falls back on the 27th
		time.Date(2023, 12, 30, 20, 0, 0, 0, time.UTC), // a year's end
	}
	ops := make([]struct {
		at   time.Time
		key  string
		rule int
		cost int64
	}, n)
	at := starts[0]
	for i := range ops {
		if i%(n/len(starts)) == 0 {
			at = starts[i/(n/len(starts))%len(starts)]
		}
		at = at.Add(time.Duration(r.IntN(int(40 * time.Minute))))
		ops[i].at, ops[i].key, ops[i].rule = at, fmt.Sprintf("k%d", r.IntN(3)), r.IntN(len(calendarRules))
		ops[i].cost = int64(r.IntN(3)) // 0 looks, 2 charges double
	}
	return ops
}

// The instance computes the calendar boundaries from its own clock and
// Redis picks among them by its time: an instance whose clock is hours off
// (here up to 20, under a day of 23) decides exactly as the memory store
// does at Redis's time.
func TestTake_calendarDecidesAtRedisTimeWhateverTheInstancesClock(t *testing.T) {
	c := redistest.Server(t)
	for _, skew := range []time.Duration{0, time.Second, -time.Second, 5 * time.Hour, -5 * time.Hour, 20 * time.Hour, -20 * time.Hour} {
		t.Run(skew.String(), func(t *testing.T) {
			clk := storetest.NewClock()
			st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithPrefix(fmt.Sprintf("cal%d:", skew)))
			st.calendarClock = func() time.Time { return clk.Now().Add(skew) }
			mem := core.NewMemoryStore(core.MemoryClock(clk.Now), core.MemorySweepInterval(time.Hour))
			t.Cleanup(func() { mem.Close() })
			ctx := context.Background()
			for i, o := range calendarOps(rand.New(rand.NewPCG(uint64(skew), 3)), 1200) {
				clk.SetTime(o.at)
				rule := calendarRules[o.rule]
				want, err := mem.Take(ctx, o.key, rule, o.cost)
				if err != nil {
					t.Fatalf("op %d: memory store: %v", i, err)
				}
				got, err := st.Take(ctx, o.key, rule, o.cost)
				if err != nil {
					t.Fatalf("op %d at %v: %v", i, o.at, err)
				}
				if got != want {
					t.Fatalf("op %d at %v: Take(%q, %v, cost %d)\n got  %+v\n want %+v", i, o.at, o.key, rule, o.cost, got, want)
				}
			}
		})
	}
}

// An instance whose clock is a window or more from Redis's gets an error,
// never a decision counted in the wrong window.
func TestTake_calendarRefusesAClockAWindowAway(t *testing.T) {
	c := redistest.Server(t)
	clk := storetest.NewClock()
	rule := core.MustRule("5/minute;5/calendar day", 0)
	for _, skew := range []time.Duration{49 * time.Hour, -49 * time.Hour} {
		st := New(c, WithClock(clk.Now), WithTimeout(testTimeout))
		st.calendarClock = func() time.Time { return clk.Now().Add(skew) }
		d, err := st.Take(context.Background(), "skewed", rule, 1)
		if !errors.Is(err, errClockSkew) || !errors.Is(err, core.ErrClockSkew) {
			t.Fatalf("skew %v: %+v, %v; want an error wrapping core.ErrClockSkew", skew, d, err)
		}
		if !strings.Contains(err.Error(), `"5/calendar day"`) {
			t.Errorf("skew %v: error %q does not name the limit", skew, err)
		}
	}
	// Nothing was charged: a well-set instance gets the whole budget.
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout))
	if d, err := st.Take(context.Background(), "skewed", rule, 5); err != nil || !d.Allowed {
		t.Fatalf("after the refused calls: %+v, %v; want the five admitted", d, err)
	}
}

// Without WithClock the script reads Redis's TIME, the instance its own
// clock: the window is today's, and ResetAfter runs to the next midnight.
func TestTake_calendarAtRedisTime(t *testing.T) {
	c := redistest.Server(t)
	st := New(c, WithTimeout(testTimeout))
	rule := core.MustRule("2/calendar day in Asia/Kolkata", 0)
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	before := time.Now()
	_, end := rule.Limits[0].Window(before)
	if end.Sub(before) < time.Minute {
		t.Skip("too close to midnight in Kolkata")
	}
	ctx := context.Background()
	for i := range 3 {
		d, err := st.Take(ctx, "kolkata", rule, 1)
		if err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		if d.Allowed != (i < 2) {
			t.Fatalf("request %d: %+v", i, d)
		}
		// Redis's clock is this machine's: its TIME lies between before and after.
		wait := d.ResetAfter
		if !d.Allowed {
			wait = d.RetryAfter
		}
		if lo, hi := end.Sub(after), end.Sub(before); wait < lo || wait > hi {
			t.Fatalf("request %d: waits %v, want the time to midnight in Kolkata (%v), between %v and %v", i, wait, end.In(kolkata), lo, hi)
		}
	}
}

// Calendar requests carry more arguments than the batched script reads:
// batched beside ordinary ones, each is sent on its own and every count
// stays exact.
func TestTake_calendarUnderBatching(t *testing.T) {
	c := redistest.Server(t)
	clk := storetest.NewClock()
	st := New(c, WithClock(clk.Now), WithTimeout(testTimeout), WithBatching(time.Millisecond, 0))
	t.Cleanup(func() { st.Close() })
	rules := []core.Rule{
		core.MustRule("5/hour", core.FixedWindow),
		core.MustRule("5/calendar day", 0),
		core.MustRule("5/hour;5/calendar month in Europe/Paris", 0),
		core.MustRule("5/hour", core.TokenBucket),
	}
	var admitted [4]atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for g := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				r := (g + i) % len(rules)
				d, err := st.Take(context.Background(), "batched", rules[r], 1)
				if err != nil {
					failed.Add(1)
				} else if d.Allowed {
					admitted[r].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d calls failed", failed.Load())
	}
	for i, r := range rules {
		if got := admitted[i].Load(); got != 5 {
			t.Errorf("%v (%v) admitted %d of 100, want 5", r, r.Algorithm, got)
		}
	}
}

// The cache of boundaries holds a bounded number of calendars and answers
// as computing them afresh does, beyond its bound too.
func TestCalendarCache_isBoundedAndExact(t *testing.T) {
	var c calendarCache
	now := time.Date(2024, 3, 31, 0, 30, 0, 0, time.UTC)
	for i := range maxCalendars + 50 {
		l := core.PerCalendar(1, core.CalendarDay, time.FixedZone(fmt.Sprintf("Z%d", i), (i%48-24)*1800))
		for _, at := range []time.Time{now, now.Add(13 * time.Hour), now.Add(-40 * time.Hour)} {
			b := c.around(l, at)
			start, end := l.Window(at)
			if b[1] != start.UnixMicro() || b[2] != end.UnixMicro() || b[0] >= b[1] || b[3] <= b[2] {
				t.Fatalf("zone %d at %v: %v, want [%v, %v) in the middle", i, at, *b, start, end)
			}
		}
	}
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	if n > maxCalendars {
		t.Fatalf("the cache holds %d calendars, more than its bound %d", n, maxCalendars)
	}
}
