package core

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// A calendar limit beside an ordinary fixed window in the memory store:
// one key and many, every call admitted. Within a window a calendar check
// is a comparison with the stored end; the calendar is read only when a
// window rolls over (BenchmarkCalendarWindow).
func BenchmarkMemoryStore_calendar(b *testing.B) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		b.Skip(err)
	}
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	for _, tc := range []struct {
		name string
		rule Rule
	}{
		{"fixed-window", Rule{Limits: []Limit{Per(1<<40, 30*24*time.Hour)}, Algorithm: FixedWindow}},
		{"calendar-month", Rule{Limits: []Limit{PerCalendar(1<<40, CalendarMonth, paris)}, Algorithm: FixedWindow}},
		{"fixed-window+second", Rule{Limits: []Limit{Per(1<<40, time.Second), Per(1<<40, 30*24*time.Hour)}, Algorithm: FixedWindow}},
		{"calendar-month+second", Rule{Limits: []Limit{Per(1<<40, time.Second), PerCalendar(1<<40, CalendarMonth, paris)}, Algorithm: FixedWindow}},
	} {
		for _, nkeys := range []int{1, len(keys)} {
			b.Run(tc.name+"/keys="+strconv.Itoa(nkeys), func(b *testing.B) {
				s := NewMemoryStore()
				defer s.Close()
				ctx := context.Background()
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, err := s.Take(ctx, keys[i%nkeys], tc.rule, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// What finding a window costs: the memory store pays it once per key and
// window, the Redis store for each decision (it sends the boundaries of
// three windows).
func BenchmarkCalendarWindow(b *testing.B) {
	for _, name := range []string{"UTC", "Europe/Paris", "America/New_York"} {
		zone, err := time.LoadLocation(name)
		if err != nil {
			b.Skip(err)
		}
		for u := CalendarDay; u <= CalendarYear; u++ {
			l := PerCalendar(1, u, zone)
			b.Run(name+"/"+u.String(), func(b *testing.B) {
				t := time.Date(2024, 3, 15, 12, 0, 0, 0, time.UTC)
				b.ReportAllocs()
				for b.Loop() {
					l.Window(t)
				}
			})
		}
	}
}
