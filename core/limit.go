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
type Limit struct {
	Count  int64
	Period time.Duration
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
func (l Limit) String() string {
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
//	limit = count ( "/" | "per" ) [ n ] unit
//
// Units are second, minute, hour, day, month (30 days) and year (365 days), in
// any case, singular or plural, and the short forms s, sec, m, min, h and d.
// Examples: "5/minute", "5 per minute", "10/hour;100/day", "2/3 seconds",
// "100/day, 500/7 days". The error of a bad expression is a *SyntaxError that
// quotes it and says what was expected where.
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
