package core

import (
	"fmt"
	"strings"
	"testing"
)

// pythonSpaces is every character Python's re matches with \s in a str
// pattern, as Python 3.11 lists them: [c for c in range(0x110000) if
// re.match(r'\s', chr(c))]. The limits grammar allows \s* around every
// token, so limit strings moved from slowapi or Flask-Limiter configuration
// may hold any of them.
var pythonSpaces = []rune{
	0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
	0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
	0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
}

func TestParseLimits_acceptsEveryWhiteSpaceOfPythonsGrammar(t *testing.T) {
	want := fmt.Sprint(MustParseLimits("5 per 2 minutes;10/hour"))
	for _, r := range pythonSpaces {
		sp := string(r)
		expr := sp + "5" + sp + "per" + sp + "2" + sp + "minutes" + sp + ";" + sp + "10/hour" + sp
		got, err := ParseLimits(expr)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("U+%04X: ParseLimits(%q) = %v, %v; want 5 per 2 minutes and 10/hour", r, expr, got, err)
		}
	}
	if got, err := ParseLimits("5/minute;\n10/hour"); err != nil || len(got) != 2 {
		t.Errorf("a multi-line value: %v, %v; want two limits", got, err)
	}
}

// Characters that look like space but are not \s in Python are refused
// there, so here too, with an error that quotes the expression.
func TestParseLimits_refusesWhatPythonDoesNotCallSpace(t *testing.T) {
	for _, r := range []rune{0x200b, 0xfeff, 0x180e, 0x0} {
		expr := "5" + string(r) + "/minute"
		if _, err := ParseLimits(expr); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", expr)) {
			t.Errorf("U+%04X: ParseLimits(%q): %v; want an error quoting it", r, expr, err)
		}
	}
}

func TestParseAlgorithm_readsTheStrategyNamesOfPythonsLimits(t *testing.T) {
	for name, want := range map[string]Algorithm{
		"fixed-window":           FixedWindow,
		"moving-window":          SlidingWindowLog,
		"MOVING_WINDOW":          SlidingWindowLog,
		"sliding-window-counter": SlidingWindowCounter,
	} {
		if got, err := ParseAlgorithm(name); err != nil || got != want {
			t.Errorf("ParseAlgorithm(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := ParseAlgorithm("fixed-window-elastic-expiry"); err == nil || !strings.Contains(err.Error(), `"fixed-window-elastic-expiry"`) {
		t.Errorf("an unsupported limits strategy: %v; want an error quoting it", err)
	}
}
