package core

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limit is a count of requests allowed per period: 5/minute is
// Limit{Count: 5, Period: time.Minute}.
//
// A calendar limit ("1000 per calendar month", PerCalendar) resets at
// calendar boundaries instead: Calendar names its unit, TimeZone the zone
// whose local midnights bound its windows, and Period holds the unit's
// nominal length (CalendarUnit.Period).
type Limit struct {
	Count  int64
	Period time.Duration
	// Calendar is the unit of a calendar limit; zero for any other limit.
	Calendar CalendarUnit
	// TimeZone is the zone of a calendar limit's windows; nil is UTC. Zones
	// are known by name: two zones of one name are one zone.
	TimeZone *time.Location
}

// Per builds a Limit of count requests per period.
func Per(count int64, period time.Duration) Limit {
	return Limit{Count: count, Period: period}
}

// units maps every accepted unit spelling to its length. Months are 30 days,
// as in Python's limits package; years are 365 days, where limits counts 12
// months of 30 (360 days): the README's migration table says so.
var units = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"month": 30 * 24 * time.Hour, "months": 30 * 24 * time.Hour,
	"year": 365 * 24 * time.Hour, "years": 365 * 24 * time.Hour,
}

// String renders the limit in the grammar ParseLimits reads, choosing the
// largest unit that divides the period: "5/minute", "500/7 days". Periods that
// are not whole seconds, which the grammar cannot express, render in Go's
// duration syntax instead.
//
// A calendar limit renders as "1000/calendar month", followed by
// " in Europe/Paris" when its zone is not UTC.
func (l Limit) String() string {
	if l.Calendar != 0 {
		s := strconv.FormatInt(l.Count, 10) + "/calendar " + l.Calendar.String()
		if z := l.zone().String(); z != "UTC" {
			s += " in " + z
		}
		return s
	}
	type named struct {
		name string
		d    time.Duration
	}
	for _, u := range [...]named{
		{"year", 365 * 24 * time.Hour}, {"month", 30 * 24 * time.Hour},
		{"day", 24 * time.Hour}, {"hour", time.Hour}, {"minute", time.Minute}, {"second", time.Second},
	} {
		if l.Period > 0 && l.Period%u.d == 0 {
			n := int64(l.Period / u.d)
			if n == 1 {
				return strconv.FormatInt(l.Count, 10) + "/" + u.name
			}
			return strconv.FormatInt(l.Count, 10) + "/" + strconv.FormatInt(n, 10) + " " + u.name + "s"
		}
	}
	return strconv.FormatInt(l.Count, 10) + "/" + l.Period.String()
}

// SyntaxError describes why a limit expression did not parse.
type SyntaxError struct {
	Expr   string // the whole input
	Offset int    // byte offset of the problem in Expr
	Msg    string // what was expected there
}

// Error quotes the expression and says what was expected where.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("limitkit: invalid limit %q at offset %d: %s", e.Expr, e.Offset, e.Msg)
}

// ParseLimits parses a rule of one or more limits in the grammar of Python's
// limits package (used by slowapi and Flask-Limiter):
//
//	rule  = limit *( sep limit )        sep = "," | ";" | "|"
//	limit = count ( "/" | "per" ) ( [ n ] unit | calendar )
//
// Units are second, minute, hour, day, month (30 days) and year (365 days), in
// any case, singular or plural, and the short forms s, sec, m, min, h and d.
// Examples: "5/minute", "5 per minute", "10/hour;100/day", "2/3 seconds",
// "100/day, 500/7 days". The error of a bad expression is a *SyntaxError that
// quotes it and says what was expected where.
//
// limitkit adds calendar limits, which Python's limits does not have (so no
// expression it accepts reads differently here):
//
//	calendar = "calendar" cunit [ "in" zone ]
//	cunit    = day | week | month | year (singular or plural, any case)
//
// such as "1000 per calendar month" or "100/calendar day in Europe/Paris":
// the count resets at local midnight in the zone (UTC unless named; a
// middleware's WithTimeZone sets it for the limits that name none), on the
// first of the month, on Monday for weeks, on January 1st for years. The
// zone is an IANA name (time.LoadLocation's, except "Local"). See
// PerCalendar.
func ParseLimits(expr string) ([]Limit, error) {
	p := parser{expr: expr}
	var out []Limit
	for {
		l, err := p.limit()
		if err != nil {
			return nil, err
		}
		out = append(out, l)
		p.space()
		if p.pos == len(p.expr) {
			return out, nil
		}
		switch p.expr[p.pos] {
		case ',', ';', '|':
			p.pos++
		default:
			return nil, p.fail(`expected a separator ",", ";" or "|", or the end`)
		}
	}
}

// MustParseLimits is ParseLimits for package-level set-up: it panics on a bad
// expression.
func MustParseLimits(expr string) []Limit {
	l, err := ParseLimits(expr)
	if err != nil {
		panic(err)
	}
	return l
}

type parser struct {
	expr string
	pos  int
}

func (p *parser) fail(msg string) error {
	return &SyntaxError{Expr: p.expr, Offset: p.pos, Msg: msg}
}

// space skips what Python's \s matches in the limits grammar's regular
// expression: Unicode's white space (as unicode.IsSpace), and the four
// information separators U+001C to U+001F, which Python's str counts too.
// So "5/minute;\n10/hour" from a multi-line configuration value parses.
func (p *parser) space() {
	for p.pos < len(p.expr) {
		r, n := rune(p.expr[p.pos]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(p.expr[p.pos:])
		}
		if !unicode.IsSpace(r) && (r < 0x1c || r > 0x1f) {
			return
		}
		p.pos += n
	}
}

// number reads a positive decimal integer; what says what it counts.
func (p *parser) number(what string) (int64, error) {
	start := p.pos
	for p.pos < len(p.expr) && p.expr[p.pos] >= '0' && p.expr[p.pos] <= '9' {
		p.pos++
	}
	if start == p.pos {
		return 0, p.fail("expected " + what + " (a positive whole number)")
	}
	n, err := strconv.ParseInt(p.expr[start:p.pos], 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		p.pos = start
		return 0, p.fail(what + " is too large")
	}
	if n == 0 {
		p.pos = start
		return 0, p.fail(what + " must be positive")
	}
	return n, nil
}

func (p *parser) limit() (Limit, error) {
	p.space()
	if p.pos < len(p.expr) && p.expr[p.pos] == '-' {
		return Limit{}, p.fail("expected a count; negative numbers are not allowed")
	}
	count, err := p.number("a count")
	if err != nil {
		return Limit{}, err
	}
	p.space()
	switch {
	case strings.HasPrefix(p.expr[p.pos:], "/"):
		p.pos++
	case len(p.expr)-p.pos >= 3 && strings.EqualFold(p.expr[p.pos:p.pos+3], "per"):
		p.pos += 3
	default:
		return Limit{}, p.fail(`expected "/" or "per" after the count`)
	}
	p.space()
	if p.word("calendar") {
		return p.calendar(count)
	}
	n, nStart := int64(1), p.pos
	if p.pos < len(p.expr) && p.expr[p.pos] == '-' {
		return Limit{}, p.fail("expected a period; negative numbers are not allowed")
	}
	if p.pos < len(p.expr) && p.expr[p.pos] >= '0' && p.expr[p.pos] <= '9' {
		if n, err = p.number("a period multiplier"); err != nil {
			return Limit{}, err
		}
		p.space()
	}
	start := p.pos
	for p.pos < len(p.expr) && isLetter(p.expr[p.pos]) {
		p.pos++
	}
	word := strings.ToLower(p.expr[start:p.pos])
	unit, ok := units[word]
	if !ok {
		p.pos = start
		if word == "calendar" {
			return Limit{}, p.fail("a calendar window is one day, week, month or year: write \"per calendar month\", without a number")
		}
		if word == "" {
			return Limit{}, p.fail("expected a unit (second, minute, hour, day, month or year)")
		}
		return Limit{}, p.fail(fmt.Sprintf("unknown unit %q; expected second, minute, hour, day, month or year", word))
	}
	if n > math.MaxInt64/int64(unit) {
		p.pos = nStart
		return Limit{}, p.fail("period is too long")
	}
	return Limit{Count: count, Period: time.Duration(n) * unit}, nil
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// word reports whether the expression goes on with w (in any case) as a
// whole word, and if so skips it.
func (p *parser) word(w string) bool {
	end := p.pos + len(w)
	if end > len(p.expr) || !strings.EqualFold(p.expr[p.pos:end], w) || end < len(p.expr) && isLetter(p.expr[end]) {
		return false
	}
	p.pos = end
	return true
}

// calendarUnits maps the grammar's calendar units to CalendarUnit.
var calendarUnits = map[string]CalendarUnit{
	"day": CalendarDay, "days": CalendarDay, "week": CalendarWeek, "weeks": CalendarWeek,
	"month": CalendarMonth, "months": CalendarMonth, "year": CalendarYear, "years": CalendarYear,
}

// calendar reads a calendar limit of count after the word "calendar": its
// unit and, optionally, "in" and its zone.
func (p *parser) calendar(count int64) (Limit, error) {
	p.space()
	start := p.pos
	for p.pos < len(p.expr) && isLetter(p.expr[p.pos]) {
		p.pos++
	}
	word := strings.ToLower(p.expr[start:p.pos])
	unit, ok := calendarUnits[word]
	if !ok {
		p.pos = start
		if word == "" {
			return Limit{}, p.fail("expected a calendar unit (day, week, month or year)")
		}
		return Limit{}, p.fail(fmt.Sprintf("unknown calendar unit %q; expected day, week, month or year", word))
	}
	l := PerCalendar(count, unit, nil)
	afterUnit := p.pos
	p.space()
	if !p.word("in") {
		p.pos = afterUnit
		return l, nil
	}
	p.space()
	start = p.pos
	for p.pos < len(p.expr) && isZoneByte(p.expr[p.pos]) {
		p.pos++
	}
	name := p.expr[start:p.pos]
	p.pos = start
	switch {
	case name == "":
		return Limit{}, p.fail(`expected a time zone after "in", such as Europe/Paris`)
	case name == "Local":
		return Limit{}, p.fail(`the zone "Local" is set per machine, so instances would disagree on when windows reset; name the zone, such as Europe/Paris`)
	}
	zone, err := loadZone(name)
	if err != nil {
		return Limit{}, p.fail(fmt.Sprintf("unknown time zone %q (an IANA name such as Europe/Paris; import time/tzdata where the system has no zone database)", name))
	}
	p.pos = start + len(name)
	if zone != time.UTC {
		l.TimeZone = zone
	}
	return l, nil
}

// isZoneByte reports whether c may be part of an IANA zone name, such as
// America/Argentina/Buenos_Aires or Etc/GMT+5.
func isZoneByte(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-' || c == '+'
}
