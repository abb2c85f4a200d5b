package core_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

func TestParseLimits_acceptsTheLimitsGrammar(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		expr string
		want []core.Limit
	}{
		{"5/minute", []core.Limit{core.Per(5, time.Minute)}},
		{"5 per minute", []core.Limit{core.Per(5, time.Minute)}},
		{"10/hour;100/day", []core.Limit{core.Per(10, time.Hour), core.Per(100, day)}},
		{"2/3 seconds", []core.Limit{core.Per(2, 3*time.Second)}},
		{"100/day, 500/7 days", []core.Limit{core.Per(100, day), core.Per(500, 7*day)}},
		{"1000 per 1 hour", []core.Limit{core.Per(1000, time.Hour)}},
		{"1/SECOND|2/Minutes", []core.Limit{core.Per(1, time.Second), core.Per(2, 2*time.Minute/2)}},
		{"  7 PER 2 hours  ", []core.Limit{core.Per(7, 2*time.Hour)}},
		{"1/s,1/sec,1/m,1/min,1/h,1/d", []core.Limit{core.Per(1, time.Second), core.Per(1, time.Second), core.Per(1, time.Minute), core.Per(1, time.Minute), core.Per(1, time.Hour), core.Per(1, day)}},
		{"3/month;4/years", []core.Limit{core.Per(3, 30*day), core.Per(4, 365*day)}},
		{"9223372036854775807/second", []core.Limit{core.Per(1<<63-1, time.Second)}},
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
			}
		})
	}
}

func TestParseLimits_rejectsWithAnErrorThatQuotesTheInput(t *testing.T) {
	tests := []struct {
		expr   string
		offset int
		says   string
	}{
		{"", 0, "expected a count"},
		{"   ", 3, "expected a count"},
		{"/minute", 0, "expected a count"},
		{"5", 1, `expected "/" or "per"`},
		{"5/", 2, "expected a unit"},
		{"5/fortnight", 2, `unknown unit "fortnight"`},
		{"0/minute", 0, "must be positive"},
		{"-5/minute", 0, "negative"},
		{"5/0 minutes", 2, "must be positive"},
		{"5/-1 minutes", 2, "negative"},
		{"5/minute;", 9, "expected a count"},
		{"5/minute,,1/day", 9, "expected a count"},
		{"5/minute 1/day", 9, "expected a separator"},
		{"99999999999999999999/minute", 0, "too large"},
		{"5/99999999999 years", 2, "too long"},
		{"5.5/minute", 1, `expected "/" or "per"`},
		{"5 minute", 2, `expected "/" or "per"`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := core.ParseLimits(tt.expr)
			if err == nil {
				t.Fatal("accepted")
			}
			var se *core.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if se.Offset != tt.offset {
				t.Errorf("offset %d, want %d (%v)", se.Offset, tt.offset, err)
			}
			if !strings.Contains(err.Error(), `"`+tt.expr+`"`) {
				t.Errorf("error %q does not quote the input", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

func TestMustParseLimits_panicsWithTheExpression(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(error).Error(), `"5/lightyear"`) {
			t.Fatalf("panic value %v does not quote the expression", r)
		}
	}()
	core.MustParseLimits("5/lightyear")
}

func TestLimit_StringRoundTrips(t *testing.T) {
	for _, expr := range []string{"5/minute", "2/3 seconds", "500/7 days", "1/month", "1/year", "90/90 seconds", "1/25 hours"} {
		ls := core.MustParseLimits(expr)
		again, err := core.ParseLimits(ls[0].String())
		if err != nil || again[0] != ls[0] {
			t.Errorf("%q -> %q -> %v, %v", expr, ls[0].String(), again, err)
		}
	}
	if got := (core.Limit{Count: 5, Period: 90 * time.Second}).String(); got != "5/90 seconds" {
		t.Errorf("String() = %q", got)
	}
}

func TestNewRule_rejectsWhatNoStoreCanEnforce(t *testing.T) {
	tests := []struct {
		expr string
		alg  core.Algorithm
		says string
	}{
		{"200000/hour", core.SlidingWindowLog, "at most 100000"},
		{"5/minute", core.Algorithm(42), "unknown algorithm"},
		{"nonsense", core.FixedWindow, `"nonsense"`},
		{"5000000000000000/second", core.FixedWindow, "2^52"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := core.NewRule(tt.expr, tt.alg)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("NewRule(%q, %v) error = %v, want one saying %q", tt.expr, tt.alg, err, tt.says)
			}
		})
	}
}

func TestParseAlgorithm_readsWhatStringWrites(t *testing.T) {
	for _, a := range []core.Algorithm{core.FixedWindow, core.SlidingWindowLog, core.SlidingWindowCounter, core.TokenBucket, core.LeakyBucket} {
		got, err := core.ParseAlgorithm(strings.ToUpper(strings.ReplaceAll(a.String(), "-", "_")))
		if err != nil || got != a {
			t.Errorf("ParseAlgorithm(%v) = %v, %v", a, got, err)
		}
	}
	if _, err := core.ParseAlgorithm("gcra"); err == nil || !strings.Contains(err.Error(), `"gcra"`) {
		t.Errorf("unknown name: error %v", err)
	}
}

func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{"5/minute", "5 per minute", "10/hour;100/day", "2/3 seconds", "100/day, 500/7 days", "1000 per 1 hour", "1/s|2/d", "", "5/", "-1/day", "1000 per calendar month", "5/calendar day in Europe/Paris;1/hour", "3/calendar weeks in America/Argentina/Buenos_Aires", "1/calendar year in Etc/GMT+5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		limits, err := core.ParseLimits(expr)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(expr)) {
				t.Fatalf("error %q does not quote %q", err, expr)
			}
			return
		}
		for _, l := range limits {
			if l.Count <= 0 || l.Period <= 0 {
				t.Fatalf("%q gave non-positive limit %+v", expr, l)
			}
			again, err := core.ParseLimits(l.String())
			if err != nil || len(again) != 1 || again[0] != l {
				t.Fatalf("%q: %+v renders as %q, which parses to %v, %v", expr, l, l.String(), again, err)
			}
		}
	})
}
