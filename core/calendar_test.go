package core_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	z, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestParseLimits_readsCalendarLimits(t *testing.T) {
	paris := core.MustParseLimits("1/calendar day in Europe/Paris")[0].TimeZone
	if paris == nil || paris.String() != "Europe/Paris" {
		t.Fatalf("the zone of \"in Europe/Paris\" is %v", paris)
	}
	tests := []struct {
		expr string
		want []core.Limit
	}{
		{"1000 per calendar month", []core.Limit{core.PerCalendar(1000, core.CalendarMonth, nil)}},
		{"100/calendar day", []core.Limit{core.PerCalendar(100, core.CalendarDay, nil)}},
		{"5 PER Calendar Weeks", []core.Limit{core.PerCalendar(5, core.CalendarWeek, nil)}},
		{"7/calendar years", []core.Limit{core.PerCalendar(7, core.CalendarYear, nil)}},
		{"100/calendar day in Europe/Paris", []core.Limit{core.PerCalendar(100, core.CalendarDay, paris)}},
		{"100/calendar day in UTC", []core.Limit{core.PerCalendar(100, core.CalendarDay, nil)}},
		{" 10/second ; 1000 per calendar month in Europe/Paris |5/day", []core.Limit{
			core.Per(10, time.Second), core.PerCalendar(1000, core.CalendarMonth, paris), core.Per(5, 24*time.Hour)}},
		{"1/calendar day in Europe/Paris,2/calendar month", []core.Limit{
			core.PerCalendar(1, core.CalendarDay, paris), core.PerCalendar(2, core.CalendarMonth, nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := core.ParseLimits(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("limit %d = %+v, want %+v", i, got[i], tt.want[i])
				}
				again, err := core.ParseLimits(got[i].String())
				if err != nil || len(again) != 1 || again[0] != got[i] {
					t.Errorf("%+v renders as %q, which parses to %v, %v", got[i], got[i].String(), again, err)
				}
			}
		})
	}
	// A zone is known by its name: one loaded elsewhere is the same zone.
	r1 := core.MustRule("5/calendar day in Europe/Paris", 0)
	r2 := core.Rule{Limits: []core.Limit{core.PerCalendar(5, core.CalendarDay, zone(t, "Europe/Paris"))}, Algorithm: core.FixedWindow}
	if r1.Shape() != r2.Shape() {
		t.Errorf("one zone loaded twice gives two shapes")
	}
}

func TestParseLimits_refusesBadCalendarLimitsQuotingThem(t *testing.T) {
	tests := []struct {
		expr   string
		offset int
		says   string
	}{
		{"5 per calendar fortnight", 15, `unknown calendar unit "fortnight"`},
		{"5/calendar", 10, "expected a calendar unit"},
		{"5/calendar hour", 11, `unknown calendar unit "hour"`},
		{"5/2 calendar months", 4, "without a number"},
		{"5/calendarmonth", 2, `unknown unit "calendarmonth"`},
		{"5/calendar day in", 17, "expected a time zone"},
		{"5/calendar day in Europe/Pariss", 18, `unknown time zone "Europe/Pariss"`},
		{"5/calendar day in Local", 18, "set per machine"},
		{"5/calendar day in ../etc/passwd", 18, "expected a time zone"},
		{"5/calendar day in Europe/Paris 1/hour", 31, "expected a separator"},
		{"5/calendar day UTC", 15, "expected a separator"},
		{"5/calendar day inEurope/Paris", 15, "expected a separator"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := core.ParseLimits(tt.expr)
			var se *core.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if se.Offset != tt.offset || !strings.Contains(err.Error(), `"`+tt.expr+`"`) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q at offset %d; want one quoting the input and saying %q at offset %d", err, se.Offset, tt.says, tt.offset)
			}
		})
	}
}

func TestNewRule_countsCalendarLimitsInFixedWindows(t *testing.T) {
	r := core.MustRule("10/second;1000/calendar month", 0)
	if r.Algorithm != core.FixedWindow {
		t.Errorf("NewRule with no algorithm chose %v for a calendar rule, want FixedWindow", r.Algorithm)
	}
	if r := core.MustRule("10/second", 0); r.Algorithm != 0 {
		t.Errorf("NewRule chose %v for a rule without calendar limits, want the limiter's default", r.Algorithm)
	}
	for _, alg := range []core.Algorithm{core.SlidingWindowLog, core.SlidingWindowCounter, core.TokenBucket, core.LeakyBucket} {
		_, err := core.NewRule("10/second;1000/calendar month", alg)
		if err == nil || !strings.Contains(err.Error(), `"10/second;1000/calendar month"`) || !strings.Contains(err.Error(), "FixedWindow") {
			t.Errorf("%v: error %v; want one quoting the rule and naming FixedWindow", alg, err)
		}
	}
	local := core.Rule{Limits: []core.Limit{core.PerCalendar(1, core.CalendarDay, time.Local)}, Algorithm: core.FixedWindow}
	if err := local.Validate(); err == nil || !strings.Contains(err.Error(), "time.Local") {
		t.Errorf("a calendar limit in time.Local: %v; want an error naming time.Local", err)
	}
}

func TestRule_ShapeTellsCalendarsApart(t *testing.T) {
	shapes := map[uint64]string{}
	for _, expr := range []string{
		"5/day", "5/calendar day", "5/calendar day in Europe/Paris", "5/calendar day in America/New_York",
		"5/calendar week", "5/7 days", "5/calendar month", "5/month", "5/calendar year", "5/year",
		"5/calendar day;5/calendar month", "5/calendar month;5/calendar day", "5/day;5/calendar day",
	} {
		alg := core.FixedWindow
		sh := core.MustRule(expr, alg).Shape()
		if other, ok := shapes[sh]; ok {
			t.Errorf("%q and %q share a shape", expr, other)
		}
		shapes[sh] = expr
	}
}

// Every window of every unit holds the instant it was asked for, begins
// where the one before it ends, and begins on its local date: in every
// zone of the system's database, at every change of its clocks from 1970
// to 2037 and around it, including midnights that happen twice or never.
func TestLimit_WindowTilesTheCalendarOfEveryZone(t *testing.T) {
	names := []string{"UTC", "America/New_York", "Europe/Paris", "America/Sao_Paulo", "America/Havana",
		"Asia/Beirut", "Pacific/Apia", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Kiritimati",
		"America/Santiago", "Africa/Casablanca", "Asia/Tehran", "America/Asuncion", "Antarctica/Troll"}
	if !testing.Short() {
		names = append(names, systemZones(t)...)
	}
	units := []core.CalendarUnit{core.CalendarDay, core.CalendarWeek, core.CalendarMonth, core.CalendarYear}
	checked := 0
	for _, name := range names {
		z, err := time.LoadLocation(name)
		if err != nil {
			continue
		}
		var probes []time.Time
		for t0 := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC); t0.Year() < 2038; {
			_, end := t0.In(z).ZoneBounds()
			if end.IsZero() {
				break
			}
			probes = append(probes, end.Add(-time.Second), end, end.Add(time.Second), end.Add(12*time.Hour))
			t0 = end
		}
		for _, u := range units {
			l := core.PerCalendar(1, u, z)
			for _, p := range probes {
				checked++
				start, end := l.Window(p)
				if p.Before(start) || !p.Before(end) {
					t.Fatalf("%s %v: the window of %v is [%v, %v)", name, u, p, start, end)
				}
				if s2, _ := l.Window(end); !s2.Equal(end) {
					t.Fatalf("%s %v: the window after [%v, %v) starts at %v", name, u, start, end, s2)
				}
				if _, e0 := l.Window(start.Add(-time.Second)); !e0.Equal(start) {
					t.Fatalf("%s %v: the window before [%v, %v) ends at %v", name, u, start, end, e0)
				}
				if a, b := start.Add(-time.Second).In(z), start.In(z); a.YearDay() == b.YearDay() && a.Year() == b.Year() {
					t.Fatalf("%s %v: the window of %v starts at %v, but the second before is the same day", name, u, p, start)
				}
				if y, m, d := start.In(z).Date(); u == core.CalendarMonth && d != 1 && start.In(z).Add(-time.Second).Day() == 1 {
					t.Fatalf("%s: the month of %v starts on %d-%02d-%02d", name, p, y, m, d)
				}
				if u == core.CalendarWeek && start.In(z).Weekday() != time.Monday && start.In(z).Add(-time.Second).Weekday() != time.Sunday {
					t.Fatalf("%s: the week of %v starts on a %v", name, p, start.In(z).Weekday())
				}
			}
		}
	}
	t.Logf("%d windows of %d zones", checked, len(names))
}

// systemZones lists the zones of the system's zone database, if it has one.
func systemZones(t *testing.T) []string {
	root := "/usr/share/zoneinfo"
	var out []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		name, _ := filepath.Rel(root, path)
		if first := name[0]; first < 'A' || first > 'Z' || strings.HasPrefix(name, "SystemV") {
			return nil
		}
		out = append(out, name)
		return nil
	})
	return out
}

func TestLimit_WindowOfDaysTheClocksChange(t *testing.T) {
	tests := []struct {
		expr string
		at   time.Time
		long time.Duration
	}{
		{"1/calendar day in America/New_York", time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC), 23 * time.Hour},
		{"1/calendar day in America/New_York", time.Date(2024, 11, 3, 12, 0, 0, 0, time.UTC), 25 * time.Hour},
		{"1/calendar day in Europe/Paris", time.Date(2024, 3, 31, 12, 0, 0, 0, time.UTC), 23 * time.Hour},
		// Troll station moves its clocks by two hours: days of 22 and 26
		{"1/calendar day in Antarctica/Troll", time.Date(2024, 3, 31, 12, 0, 0, 0, time.UTC), 22 * time.Hour},
		{"1/calendar day in Antarctica/Troll", time.Date(2024, 10, 27, 12, 0, 0, 0, time.UTC), 26 * time.Hour},
		{"1/calendar day in Australia/Lord_Howe", time.Date(2024, 4, 7, 12, 0, 0, 0, time.UTC), 24*time.Hour + 30*time.Minute},
		// São Paulo's clocks jumped from 00:00 to 01:00 on 2018-11-04: that day began at 01:00
		{"1/calendar day in America/Sao_Paulo", time.Date(2018, 11, 4, 12, 0, 0, 0, time.UTC), 23 * time.Hour},
		// Samoa skipped 2011-12-30: the 29th ended where the 31st began
		{"1/calendar day in Pacific/Apia", time.Date(2011, 12, 29, 12, 0, 0, 0, time.UTC), 24 * time.Hour},
		{"1/calendar month", time.Date(2023, 2, 10, 0, 0, 0, 0, time.UTC), 28 * 24 * time.Hour},
		{"1/calendar month", time.Date(2024, 2, 10, 0, 0, 0, 0, time.UTC), 29 * 24 * time.Hour},
		{"1/calendar year", time.Date(2024, 2, 10, 0, 0, 0, 0, time.UTC), 366 * 24 * time.Hour},
		{"1/calendar week in Europe/Paris", time.Date(2024, 10, 25, 0, 0, 0, 0, time.UTC), 7*24*time.Hour + time.Hour},
	}
	for _, tt := range tests {
		l := core.MustParseLimits(tt.expr)[0]
		start, end := l.Window(tt.at)
		if end.Sub(start) != tt.long {
			t.Errorf("%s at %v: [%v, %v) is %v long, want %v", tt.expr, tt.at, start, end, end.Sub(start), tt.long)
		}
	}
	sp := core.MustParseLimits("1/calendar day in America/Sao_Paulo")[0]
	if start, _ := sp.Window(time.Date(2018, 11, 4, 12, 0, 0, 0, time.UTC)); start.Format("15:04 -07") != "01:00 -02" {
		t.Errorf("2018-11-04 began at %v in São Paulo, want 01:00 -02", start)
	}
}

func TestWithTimeZone_setsTheZoneOfCalendarLimitsThatNameNone(t *testing.T) {
	tokyo := zone(t, "Asia/Tokyo")
	clock := storetest.NewClock()
	// 23:00 UTC is 08:00 the next morning in Tokyo: 16 hours to midnight there
	clock.SetTime(time.Date(2024, 6, 5, 23, 0, 0, 0, time.UTC))
	lim := core.New(core.WithClock(clock.Now))
	defer lim.Close()
	m := core.MustNewMiddleware("1/calendar day;2/calendar month in Europe/Paris", core.WithLimiter(lim), core.WithName("quota"), core.WithTimeZone(tokyo))
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	serve := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		return w
	}
	if w := serve(); w.Code != http.StatusOK || w.Header().Get("X-RateLimit-Reset") != "57600" {
		t.Fatalf("first request: %d, X-RateLimit-Reset %q; want 200 and 57600 (16h to midnight in Tokyo)", w.Code, w.Header().Get("X-RateLimit-Reset"))
	}
	if w := serve(); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "57600" {
		t.Fatalf("second request: %d, Retry-After %q; want 429 and 57600", w.Code, w.Header().Get("Retry-After"))
	}
	// 15:00 UTC is midnight in Tokyo: a new day.
	clock.SetTime(time.Date(2024, 6, 6, 15, 0, 0, 0, time.UTC))
	if w := serve(); w.Code != http.StatusOK {
		t.Fatalf("third request, the next day in Tokyo: %d, want 200", w.Code)
	}
	// The month named its zone: June ends at midnight in Paris, 22:00 UTC
	// on the 30th, 24 days and 7 hours away, later than Tokyo's midnight.
	if w := serve(); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2098800" {
		t.Fatalf("fourth request: %d, Retry-After %q; want 429 and 2098800 (June's end in Paris)", w.Code, w.Header().Get("Retry-After"))
	}

	for _, tt := range []struct {
		expr string
		zone *time.Location
		says string
	}{
		{"5/minute", tokyo, "no calendar limit"},
		{"5/calendar day", nil, "WithTimeZone(nil)"},
		{"5/calendar day", time.Local, "time.Local"},
	} {
		if _, err := core.NewMiddleware(tt.expr, core.WithTimeZone(tt.zone)); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("NewMiddleware(%q, WithTimeZone(%v)): %v; want an error saying %q", tt.expr, tt.zone, err, tt.says)
		}
	}
	plans := core.WithPlans(map[string]string{"pro": "1000/calendar month"}, func(*http.Request) string { return "" })
	if _, err := core.NewMiddleware("5/minute", plans, core.WithTimeZone(tokyo)); err != nil {
		t.Errorf("a zone for a plan's calendar limit: %v", err)
	}
	if _, err := core.NewMiddleware("5/calendar day", core.WithAlgorithm(core.TokenBucket)); err == nil || !strings.Contains(err.Error(), "FixedWindow") {
		t.Errorf("a calendar limit under WithAlgorithm(TokenBucket): %v; want an error naming FixedWindow", err)
	}
	// A limiter's default algorithm is for rules that name none; a calendar rule names the fixed window.
	tb := core.New(core.WithAlgorithm(core.TokenBucket))
	defer tb.Close()
	if _, err := core.NewMiddleware("5/calendar day", core.WithLimiter(tb)); err != nil {
		t.Errorf("a calendar limit on a token-bucket limiter: %v", err)
	}
}

// The memory store validates a rule when a key first meets it: a rule that
// differs from a valid one only by what no store accepts (a time zone on a
// limit that is not a calendar limit) is refused on a key the valid one
// made, not decided as that one.
func TestMemoryStore_refusesAZoneOnAnOrdinaryLimitOnAKnownKey(t *testing.T) {
	s := core.NewMemoryStore()
	defer s.Close()
	ctx := t.Context()
	good := core.MustRule("5/hour", core.FixedWindow)
	if _, err := s.Take(ctx, "k", good, 1); err != nil {
		t.Fatal(err)
	}
	bad := core.MustRule("5/hour", core.FixedWindow)
	bad.Limits[0].TimeZone = zone(t, "Europe/Paris")
	if d, err := s.Take(ctx, "k", bad, 1); err == nil {
		t.Fatalf("a time zone on 5/hour was decided: %+v", d)
	}
	month := core.MustRule("5/calendar month", 0)
	if _, err := s.Take(ctx, "m", month, 1); err != nil {
		t.Fatal(err)
	}
	wrong := core.MustRule("5/calendar month", 0)
	wrong.Limits[0].Period = 31 * 24 * time.Hour
	if d, err := s.Take(ctx, "m", wrong, 1); err == nil {
		t.Fatalf("a calendar month of 31 nominal days was decided: %+v", d)
	}
}

// A configuration file names calendar quotas, zone and all, in the limit
// expression: a LimitSet builds them, and refuses one under another
// algorithm at construction, quoting the rule.
func TestLimitSet_buildsCalendarLimitsFromConfig(t *testing.T) {
	lim := core.New()
	defer lim.Close()
	cfg := core.Config{Limits: map[string]core.LimitConfig{
		"billing": {Limit: "1000 per calendar month in Europe/Paris;10/second"},
		"daily":   {Limit: "100/calendar day", Key: "global"},
	}}
	set, err := core.NewLimitSet(cfg, core.ConfigMiddleware(core.WithLimiter(lim)))
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	cfg.Limits["bad"] = core.LimitConfig{Limit: "5/calendar day", Algorithm: "token-bucket"}
	if _, err := core.NewLimitSet(cfg); err == nil || !strings.Contains(err.Error(), `"5/calendar day"`) || !strings.Contains(err.Error(), "FixedWindow") {
		t.Fatalf("a calendar limit under token-bucket in a Config: %v; want an error quoting it and naming FixedWindow", err)
	}
}
